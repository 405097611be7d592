"""The preprocessing diffusion training pipelines apply to images (PIL image -> uint8 array).

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

from typing import Any, Literal

import numpy as np

from ..errors import ItemError, SpecschedError, check_int

__all__ = ["GREY_MODES", "Crop", "check_image_options", "preprocess"]

Crop = Literal["center", "random"]
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")


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
        channels = 1 if im.mode in GREY_MODES else 3
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
