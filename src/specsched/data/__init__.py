"""Data sources: built-in datasets and loaders that feed the spectrum estimator.

:func:`open_source` turns what the user has into a :class:`~.sources.Source`, which
:func:`~.stream.accumulate` streams (on one process, local workers or a Dask cluster):

- ``builtin:photos``, ``builtin:digits``, ``builtin:faces``, ``builtin:mnist``,
  ``synthetic:powerlaw`` (see :mod:`specsched.data.builtin`);
- a ``.npy`` or ``.npz`` file (memory-mapped one batch at a time), or an in-memory array;
- a folder of images (PNG, JPEG, WebP, BMP, TIFF; :mod:`.images`), of audio files (WAV, FLAC,
  OGG; :mod:`.audio`), or a Hugging Face dataset written by ``save_to_disk``;
- a ``datasets.Dataset``, a map-style ``torch.utils.data.Dataset`` (or any object with ``len``
  and integer indexing), or an iterable of batches (a ``DataLoader``);
- any image source with ``vae=PATH``: the latents of a diffusers ``AutoencoderKL``
  (:mod:`.latents`).

``load(source, **options)`` still returns the samples of a built-in source or array file as one
array.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecschedError
from .sources import Source

__all__ = ["ESTIMATE_OPTIONS", "Source", "load", "open_source"]

#: Options of the estimate (:meth:`specsched.Spectrum.from_source`: ``kind`` and the options of
#: :func:`specsched.data.stream.accumulate`); the rest describe the source.
ESTIMATE_OPTIONS = (
    "kind",
    "workers",
    "dask",
    "dask_timeout",
    "limit",
    "batch_size",
    "strict",
    "progress",
)
_IMAGE_OPTIONS = ("size", "crop", "channels", "seed")
_AUDIO_OPTIONS = ("sample_rate", "segment", "channels")
_VAE_OPTIONS = ("vae", "vae_scaling_factor", "vae_shift_factor", "vae_device")


def _take(options: dict[str, Any], names: tuple[str, ...], what: str) -> dict[str, Any]:
    """Pop ``names`` from ``options``; anything left over does not apply to ``what``."""
    taken = {k: options.pop(k) for k in names if k in options}
    if options:
        raise SpecschedError(
            f"option(s) {', '.join(sorted(options))} do not apply to {what}: drop them"
            + (f" ({what} take {', '.join(names)})" if names else "")
        )
    return taken


def open_source(source: Any, **options: Any) -> Source:
    """The :class:`~.sources.Source` for ``source`` and its options.

    Parameters
    ----------
    source : str, Path, ndarray, datasets.Dataset, torch Dataset or iterable
        See the module notes.
    **options
        Built-in sources: the options of their loader (``size``, ``channels``, ``n`` (also
        spelled ``num_samples``, like the command line's ``--num-samples``), ``seed``, ``split``,
        ``exponent``, ...). Arrays: ``layout``, ``key`` (``.npz``). Images (folders and
        datasets of PIL images): ``size``, ``crop`` ("center" or "random"), ``channels``
        (1 or 3), ``seed``. Audio: ``sample_rate``, ``segment``, ``channels``. Datasets:
        ``column``, ``layout`` and the image options. Latents: ``vae`` (folder of a saved
        ``AutoencoderKL``), ``vae_scaling_factor``, ``vae_shift_factor``, ``vae_device``.

    Examples
    --------
    >>> import numpy as np
    >>> src = open_source(np.zeros((10, 3, 8, 8)))
    >>> src.n_items
    10
    """
    from .sources import ArraySource, IterableSource, MapSource

    options = {k: v for k, v in options.items() if v is not None}
    if "num_samples" in options:  # the command line's --num-samples
        if "n" in options:
            raise SpecschedError("give n or num_samples (the same option), not both")
        options["n"] = options.pop("num_samples")
    vae = {k: options.pop(k) for k in _VAE_OPTIONS if k in options}
    if vae:
        if "vae" not in vae:
            raise SpecschedError(
                f"{', '.join(sorted(vae))} need vae=PATH (--vae PATH): give the VAE's folder"
            )
        from .latents import LatentSource, check_vae_path

        check_vae_path(vae["vae"])
        return LatentSource.open(
            open_source(source, **options),
            vae["vae"],
            scaling_factor=vae.get("vae_scaling_factor"),
            shift_factor=vae.get("vae_shift_factor"),
            device=vae.get("vae_device", "cpu"),
        )
    if isinstance(source, str) and is_builtin(source):
        from .builtin import load_builtin

        layout = options.pop("layout", None)
        return replace(
            ArraySource.open(load_builtin(source, **options), layout=layout), name=source
        )
    if isinstance(source, str | Path):
        return _open_path(Path(source), options)
    from .._arrays import is_tensor, to_numpy

    if isinstance(source, np.ndarray) or is_tensor(source):
        return ArraySource.open(to_numpy(source), **_take(options, ("layout",), "arrays"))
    if type(source).__module__.split(".")[0] == "datasets":
        from .sources import HFDatasetSource

        return _open_dataset(HFDatasetSource, source, options)
    if any(c.__name__ == "IterableDataset" for c in type(source).__mro__):
        raise SpecschedError(
            "a torch IterableDataset yields one sample at a time: wrap it in "
            "torch.utils.data.DataLoader(dataset, batch_size=64) and pass the loader"
        )
    if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        return _open_dataset(MapSource, source, options)
    if hasattr(source, "__iter__"):
        kw = _take(options, ("layout",), "iterables")
        return IterableSource(source, f"iterable {type(source).__name__}", **kw)
    raise SpecschedError(
        f"cannot read data from a {type(source).__name__}: give a path, an array, a dataset or "
        "an iterable of batches"
    )


def is_builtin(source: str) -> bool:
    from .builtin import is_builtin as builtin

    return builtin(source)


def _open_dataset(cls, data: Any, options: dict[str, Any]) -> Source:
    from .imaging import check_image_options

    kw = _take(options, ("column", "layout", *_IMAGE_OPTIONS), "datasets")
    image = {k: kw.pop(k) for k in _IMAGE_OPTIONS if k in kw}
    size, crop, channels, seed = check_image_options(
        image.get("size"), image.get("crop", "center"), image.get("channels"), image.get("seed", 0)
    )
    image_options = {"size": size, "crop": crop, "channels": channels, "seed": seed}
    if hasattr(cls, "open"):
        return cls.open(data, image_options=image_options, **kw)
    return cls(data, f"dataset {type(data).__name__}", image_options=image_options, **kw)


def _open_path(path: Path, options: dict[str, Any]) -> Source:
    try:
        return _open_path_unguarded(path, options)
    except OSError as exc:  # permissions, a name too long, an I/O error...
        raise SpecschedError(
            f"cannot read {path} ({exc.strerror or type(exc).__name__}): check the path and its "
            "permissions"
        ) from None


def _open_path_unguarded(path: Path, options: dict[str, Any]) -> Source:
    import os

    from .audio import AUDIO_EXTENSIONS, AudioFolder
    from .images import IMAGE_EXTENSIONS, ImageFolder, find_files
    from .sources import ArraySource, HFDatasetSource

    if not path.exists():
        raise SpecschedError(
            f"source {str(path)!r} does not exist: give a path to data or a built-in source "
            "such as builtin:photos"
        )
    if path.is_file():
        return ArraySource.open(path, **_take(options, ("layout", "key"), "array files"))
    if not os.access(path, os.R_OK | os.X_OK):
        raise SpecschedError(
            f"cannot read the folder {path} (permission denied): make it readable "
            f"(chmod u+rx {path}) or copy the data somewhere you can read"
        )
    if any((path / f).is_file() for f in ("state.json", "dataset_dict.json")):
        return _open_dataset(HFDatasetSource, path, options)
    files = find_files(path, IMAGE_EXTENSIONS + AUDIO_EXTENSIONS)
    images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    audio = [f for f in files if f.lower().endswith(AUDIO_EXTENSIONS)]
    if images and audio:
        raise SpecschedError(
            f"folder {path} holds both images ({len(images)}) and audio files ({len(audio)}): "
            "point at a folder of one kind"
        )
    if audio:
        return AudioFolder.open(
            path, files=audio, **_take(options, _AUDIO_OPTIONS, "audio folders")
        )
    if images:
        return ImageFolder.open(
            path, files=images, **_take(options, _IMAGE_OPTIONS, "image folders")
        )
    raise SpecschedError(
        f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}) or audio files "
        f"({', '.join(AUDIO_EXTENSIONS)}): point at the folder of your data"
    )


def load(source: str, **options: Any) -> np.ndarray:
    """Load the samples of ``source`` as an array (layout as stored)."""
    from .builtin import is_builtin, load_builtin

    if is_builtin(source):
        return load_builtin(source, **options)
    path = Path(source)
    if not path.exists():
        raise SpecschedError(
            f"source {source!r} does not exist: give a path to data or a built-in source "
            "such as builtin:photos"
        )
    if options:
        raise SpecschedError(
            f"options {', '.join(sorted(options))} do not apply to array files: drop them"
        )
    from .sources import ArraySource

    src = ArraySource.open(path)  # the one reader of .npy / .npz files (memory-mapped)
    return src._rows(0, src.n_items)
