"""Array conventions shared by the spectrum estimator and the data sources.

The layouts of data arrays and how to view them channels first, the scaling of integer and boolean
data, and torch tensors as numpy arrays (without importing torch). :mod:`specsched.spectrum` and
:mod:`specsched.data` both build on this module; it imports neither, so the data sources need
nothing from the estimator (the dependency runs one way: ``spectrum`` -> ``data``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

from .errors import SpecschedError

__all__ = [
    "LAYOUTS",
    "Layout",
    "as_channels_first",
    "infer_layout",
    "is_tensor",
    "to_float",
    "to_numpy",
    "zero_variance_mask",
]

Layout = Literal["NL", "NCL", "NHW", "NCHW", "NHWC"]
LAYOUTS: tuple[str, ...] = get_args(Layout)


def infer_layout(shape: tuple[int, ...]) -> Layout:
    """Guess the layout of a data array from its shape, or raise if it is ambiguous.

    ``(n, L)`` is 1-D signals; ``(n, H, W)`` with ``H == W`` is greyscale images; 4-D arrays are
    channels-first or channels-last by which axis looks like channels (the one that is not part of
    a square image, or the only one of size <= 4).
    """
    nd = len(shape)
    if nd == 2:
        return "NL"
    if nd == 3:
        if shape[1] == shape[2]:
            return "NHW"
        raise SpecschedError(
            f"array of shape {shape} is ambiguous: pass layout='NHW' (greyscale images) or "
            "layout='NCL' (multichannel 1-D signals); on the command line --layout"
        )
    if nd == 4:
        _, a, b, c = shape
        nchw = b == c and a != b
        nhwc = a == b and c != a
        if nchw != nhwc:
            return "NCHW" if nchw else "NHWC"
        small_first, small_last = a <= 4, c <= 4
        if small_first != small_last:
            return "NCHW" if small_first else "NHWC"
        raise SpecschedError(
            f"array of shape {shape} is ambiguous: pass layout='NCHW' or layout='NHWC' "
            "(on the command line --layout)"
        )
    raise SpecschedError(
        f"data arrays must have 2 to 4 dimensions (n, ...), got shape {shape}: "
        f"reshape to one of the layouts {', '.join(LAYOUTS)}"
    )


def as_channels_first(x: np.ndarray, layout: Layout | None = None) -> np.ndarray:
    """View ``x`` as ``(n, C, *signal_shape)`` given (or inferring) its layout."""
    layout = infer_layout(x.shape) if layout is None else layout
    if layout not in LAYOUTS:
        raise SpecschedError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if len(layout) != x.ndim:
        raise SpecschedError(
            f"layout {layout!r} needs a {len(layout)}-D array, got shape {x.shape}"
        )
    if layout in ("NL", "NHW"):
        return x[:, None]
    if layout == "NHWC":
        return np.moveaxis(x, -1, 1)
    return x


def to_float(x: np.ndarray) -> tuple[np.ndarray, str]:
    """Float arrays as given; integer images from [0, 255] to [-1, 1]; booleans (binary data)
    to -1 (False) and +1 (True)."""
    if x.dtype == np.bool_:
        return np.where(x, 1.0, -1.0), "bool {False, True} -> {-1, 1}"
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise SpecschedError(
                "integer data outside [0, 255]: convert it to floats in the scale your model uses"
            )
        if hi == 1:
            raise SpecschedError(
                "integer data holding only 0 and 1 look binary, but integers are read as [0, 255] "
                "images: pass binary data as bool (mapped to -1 and +1), or as floats in the "
                "scale your model uses"
            )
        return x.astype(np.float64) / 127.5 - 1.0, "uint8 [0, 255] -> [-1, 1]"
    if not np.issubdtype(x.dtype, np.floating):
        raise SpecschedError(f"data of dtype {x.dtype} is not numeric: give float or uint8 arrays")
    return x.astype(np.float64, copy=False), "as given"


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x: Any) -> Any:
    """A torch tensor as a numpy array (detached, on the CPU; bfloat16 as float32); other
    objects unchanged."""
    if is_tensor(x):
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return x


#: a mode is zero-variance when its variance is at most this fraction of the largest mode's (the
#: rounding of an eigendecomposition, or of a rank-deficient covariance, n <= d); the one
#: definition used by the summary, the estimator and the objectives
ZERO_VARIANCE_REL = 1e-12


def zero_variance_mask(S: Any, rel: float = ZERO_VARIANCE_REL) -> Any:
    """Modes whose variance is zero to working precision: at most ``rel`` times the largest.

    The one definition of a zero-variance mode (the summary's count, the PCA estimate's exact
    zeros, the KL objectives' exclusions); works on numpy arrays and torch tensors alike.
    """
    return S <= rel * S.max()
