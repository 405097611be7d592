"""Image folders, with the preprocessing diffusion training pipelines apply.

:func:`preprocess` turns a PIL image into the uint8 array a diffusion model is trained on, in the
order of the usual ``torchvision`` pipeline (``Resize(size, BILINEAR)``, ``CenterCrop(size)`` or
``RandomCrop(size)``, ``ToTensor``, ``Normalize([0.5], [0.5])``):

1. **Mode.** Palette images become RGB, or RGBA when they carry transparency; alpha channels are
   dropped (what ``Image.convert("RGB")`` does, as in the diffusers training scripts); 16-bit
   greyscale is rounded to 8 bits; then ``channels=3`` converts to RGB (grey images are
   replicated) and ``channels=1`` to greyscale with PIL's ITU-R 601 luma.
2. **Resize** (``size`` given): the short side to ``size``, the long side to
   ``int(size * long / short)``, bilinear with PIL's antialiasing; skipped when the short side
   already is ``size``.
3. **Crop** to ``size x size``: ``"center"`` (top-left corner ``round((H - size) / 2)``,
   ``round((W - size) / 2)``) or ``"random"``, drawn from ``numpy.random.default_rng((seed,
   index))`` so every item's crop is reproducible whichever worker reads it.
4. **Scale**: ``v / 127.5 - 1`` maps [0, 255] to [-1, 1] (done once per batch by the estimator).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ItemError, SpecschedError, check_int
from .sources import FileSource

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "find_files", "preprocess"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
Crop = Literal["center", "random"]
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")


def find_files(root: str | Path, extensions: tuple[str, ...]) -> list[str]:
    """Files under ``root`` (recursively, following no symlinked folders) with one of
    ``extensions`` (case-insensitive), hidden files and folders skipped, in sorted order."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(folder, f)
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions
        )
    return sorted(found)


def check_image_options(
    size: int | None, crop: str, channels: int | None, seed: int
) -> tuple[int | None, Crop, int | None, int]:
    """Validate the preprocessing options; returns them normalised."""
    if size is not None:
        size = check_int("size", size, 1, " (--size N)")
    if crop not in ("center", "random"):
        raise SpecschedError(f"crop must be 'center' or 'random' (got {crop!r})")
    if channels not in (None, 1, 3):
        raise SpecschedError(f"images have 1 (grey) or 3 (RGB) channels: got channels={channels}")
    seed = check_int("seed", seed, 0)
    return size, crop, channels, seed  # type: ignore[return-value]


def _normalise_mode(im: Any, channels: int) -> Any:
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(im, dtype=np.float64) / 257.0
        im = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    elif mode == "F":
        raise ItemError(
            "32-bit float images have no fixed range: save 8-bit (or 16-bit) images instead"
        )
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    target = "RGB" if channels == 3 else "L"
    return im if im.mode == target else im.convert(target)


def preprocess(
    im: Any,
    *,
    size: int | None = None,
    crop: Crop = "center",
    channels: int | None = 3,
    seed: int = 0,
    index: int = 0,
) -> np.ndarray:
    """A PIL image as a uint8 array ``(C, H, W)``, resized and cropped (see the module notes).

    Parameters
    ----------
    im : PIL.Image.Image
    size : int, optional
        Resize the short side to ``size`` and crop a ``size x size`` square; None keeps the
        image as it is.
    crop : {"center", "random"}, default "center"
    channels : {3, 1, None}, default 3
        3: RGB, 1: greyscale; None: greyscale if the image is, else RGB.
    seed, index : int
        The random crop of item ``index`` is drawn from ``default_rng((seed, index))``.

    Examples
    --------
    >>> from PIL import Image
    >>> im = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    >>> preprocess(im, size=16).shape
    (3, 16, 16)
    """
    if channels is None:
        channels = 1 if im.mode in _GREY_MODES else 3
    im = _normalise_mode(im, channels)
    if size is None:
        arr = np.asarray(im)
    else:
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        if short != size:
            new_long = int(size * long / short)
            new_w, new_h = (size, new_long) if w <= h else (new_long, size)
            from PIL import Image

            im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
        arr = np.asarray(im)
        h, w = arr.shape[:2]
        if crop == "center":
            top, left = round((h - size) / 2.0), round((w - size) / 2.0)
        else:
            rng = np.random.default_rng((seed, index))
            top, left = (int(v) for v in rng.integers(0, [h - size + 1, w - size + 1]))
        arr = arr[top : top + size, left : left + size]
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image(path: str, **options: Any) -> np.ndarray:
    """Decode and :func:`preprocess` one image file (``(C, H, W)`` uint8)."""
    from PIL import Image

    with Image.open(path) as im:
        return preprocess(im, **options)


@dataclass(frozen=True, eq=False)
class ImageFolder(FileSource):
    """The images under a folder (recursively), preprocessed as a diffusion pipeline does.

    Use :meth:`open`. The file list is made once, sorted, and shipped to the workers with the
    options; every worker reopens the files by path (on a Dask cluster they must be readable at
    the same path on every worker).
    """

    files: tuple[str, ...]
    name: str
    size: int | None = None
    crop: Crop = "center"
    channels: int = 3
    seed: int = 0

    shape_hint = "pass --size N to resize the short side of every image and crop"

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        size: int | None = None,
        crop: Crop = "center",
        channels: int | None = None,
        seed: int = 0,
        files: list[str] | None = None,
    ) -> ImageFolder:
        """Scan ``root`` for images (PNG, JPEG, WebP, BMP, TIFF).

        Parameters
        ----------
        root : str or Path
            A folder, searched recursively.
        size : int, optional
            Resize (short side) and crop every image to ``size x size``; without it all images
            must have one size.
        crop : {"center", "random"}, default "center"
        channels : {3, 1, None}, default None
            3: RGB, 1: greyscale; None: those of the first readable image (1 for greyscale
            images, else 3).
        seed : int, default 0
            Seed of the random crops.
        files : list of str, optional
            The image files, if the folder has been scanned already.
        """
        size, crop, channels, seed = check_image_options(size, crop, channels, seed)
        files = find_files(root, IMAGE_EXTENSIONS) if files is None else files
        if not files:
            raise SpecschedError(
                f"folder {root} holds no images ({', '.join(IMAGE_EXTENSIONS)}): point at the "
                "folder of your training images"
            )
        if channels is None:
            channels = _first_channels(files)
        return cls(tuple(files), str(root), size, crop, channels, seed)

    def load_item(self, i: int) -> np.ndarray:
        return load_image(
            self.files[i],
            size=self.size,
            crop=self.crop,
            channels=self.channels,
            seed=self.seed,
            index=i,
        )[None]


def _first_channels(files: list[str]) -> int:
    """1 if the first image that opens is greyscale, else 3 (3 if none opens)."""
    from PIL import Image

    for path in files:
        try:
            with Image.open(path) as im:
                return 1 if im.mode in _GREY_MODES else 3
        except Exception:
            continue
    return 3
