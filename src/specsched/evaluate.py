"""Sample-quality metrics between generated samples ``x`` and reference samples ``y``.

All metrics take numpy arrays of shape ``(n, C, H, W)`` (any ``(n, ...)`` for the ones that
flatten the samples), compute in float64 and return Python floats. ``x`` and ``y`` may hold
different numbers of samples but must have the same sample shape.

- :func:`frechet_distance`: Fréchet distance between Gaussians fitted to the flattened samples,
  optionally after projecting onto the top principal components of ``y``.
- :func:`sliced_wasserstein`: squared sliced 2-Wasserstein distance over random directions.
- :func:`spectral_w2`: squared W2 between the Gaussian spectra of ``x`` and ``y``
  (the objective of :mod:`specsched.divergence`, measured on samples).
- :func:`rmse`: root mean squared error between paired arrays.
- :func:`with_uncertainty` and :func:`tie`: bootstrap standard deviation of a metric and a test of
  whether two such estimates are indistinguishable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from .errors import SpecschedError
from .spectrum import Spectrum

__all__ = [
    "frechet_distance",
    "rmse",
    "sliced_wasserstein",
    "spectral_w2",
    "tie",
    "with_uncertainty",
]

_IMAG_TOL = 1e-3  # largest relative imaginary part of sqrtm(cov_x @ cov_y) taken as round-off


# ------------------------------------------------------------------------------------- helpers
def _as_samples(a: Any, name: str, *, min_n: int = 1) -> np.ndarray:
    """``a`` as a finite float64 array ``(n, ...)`` with at least ``min_n`` samples."""
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise SpecschedError(f"{name} has dtype {arr.dtype}: give a float array of samples")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim < 2:
        raise SpecschedError(
            f"{name} has shape {arr.shape}: give samples as an array (n, C, H, W) (or (n, d))"
        )
    if arr.shape[0] < min_n:
        raise SpecschedError(
            f"{name} has {arr.shape[0]} samples, needs at least {min_n}: give more"
        )
    if not np.all(np.isfinite(arr)):
        raise SpecschedError(f"{name} contains NaN or Inf values: clean or drop those samples")
    return arr


def _pair(x: Any, y: Any, *, min_n: int = 1, same_n: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate generated samples ``x`` against reference data ``y`` (same sample shape)."""
    xa = _as_samples(x, "x", min_n=min_n)
    ya = _as_samples(y, "y", min_n=min_n)
    if same_n and xa.shape != ya.shape:
        raise SpecschedError(
            f"paired arrays of different shapes {xa.shape} and {ya.shape}: give one reference "
            "per sample, in the same order"
        )
    if xa.shape[1:] != ya.shape[1:]:
        raise SpecschedError(
            f"samples of shape {xa.shape[1:]} against reference data of a different shape "
            f"{ya.shape[1:]}: resize or crop both to one sample shape"
        )
    return xa, ya


def _gaussian(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of flattened samples ``(n, d)``."""
    mean = flat.mean(0)
    centred = flat - mean
    cov = centred.T @ centred / (flat.shape[0] - 1)
    return mean, cov


# ------------------------------------------------------------------------------------- metrics
def frechet_distance(x: np.ndarray, y: np.ndarray, *, pca: int | None = None) -> float:
    """Fréchet distance between Gaussians fitted to the flattened samples of ``x`` and ``y``.

    ``|m_x - m_y|^2 + tr(C_x) + tr(C_y) - 2 tr((C_x C_y)^(1/2))``, the squared 2-Wasserstein
    distance between ``N(m_x, C_x)`` and ``N(m_y, C_y)`` (unbiased covariances).

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Generated samples (any ``(n, ...)``; samples are flattened).
    y : ndarray, shape (m, C, H, W)
        Reference samples, same sample shape.
    pca : int, optional
        Project both onto the top ``pca`` principal components of ``y`` first (``1 <= pca <= d``);
        by the contraction of W2 under projections the result is at most the full value.

    Returns
    -------
    float
        The distance (``>= 0`` up to round-off), in squared data units.

    Raises
    ------
    SpecschedError
        On a sample-shape mismatch, fewer than 2 samples, non-finite data or a bad ``pca``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((500, 1, 2, 2))
    >>> round(frechet_distance(x + 1.0, x), 6)
    4.0
    """
    xa, ya = _pair(x, y, min_n=2)
    fx = xa.reshape(xa.shape[0], -1)
    fy = ya.reshape(ya.shape[0], -1)
    if pca is not None:
        d = fy.shape[1]
        if isinstance(pca, bool) or not isinstance(pca, (int, np.integer)) or not 1 <= pca <= d:
            raise SpecschedError(
                f"pca={pca!r} is not a number of components: give an integer from 1 to {d}"
            )
        _, cov_ref = _gaussian(fy)
        _, vecs = np.linalg.eigh(cov_ref)
        basis = vecs[:, ::-1][:, : int(pca)]
        fx, fy = fx @ basis, fy @ basis
    mx, cx = _gaussian(fx)
    my, cy = _gaussian(fy)
    root = scipy.linalg.sqrtm(cx @ cy)
    if np.iscomplexobj(root):
        scale = max(float(np.abs(root).max()), 1e-300)
        if float(np.abs(root.imag).max()) > _IMAG_TOL * scale:
            raise SpecschedError(
                "the covariance product has no real square root (singular or ill-conditioned "
                "covariances): give more samples than dimensions or use pca=k"
            )
        root = root.real
    value = float(np.sum((mx - my) ** 2) + np.trace(cx) + np.trace(cy) - 2.0 * np.trace(root))
    return max(value, 0.0)


def sliced_wasserstein(
    x: np.ndarray, y: np.ndarray, *, projections: int = 256, seed: int = 0
) -> float:
    """Squared sliced 2-Wasserstein distance between the empirical distributions of samples.

    The mean over ``projections`` random unit directions ``theta`` (uniform on the sphere) of the
    1-D ``W2^2`` between ``theta . x`` and ``theta . y``, each found by matching quantiles on a
    common grid of ``max(n_x, n_y)`` levels (so different sample counts work).

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Generated samples (any ``(n, ...)``; samples are flattened).
    y : ndarray, shape (m, C, H, W)
        Reference samples, same sample shape.
    projections : int, default 256
        Number of random directions.
    seed : int, default 0
        Seed of the directions; the same seed gives the same directions.

    Returns
    -------
    float
        The distance in squared data units. A shift of ``x`` by a vector ``c`` adds
        ``|c|^2 / d`` in expectation over directions.

    Raises
    ------
    SpecschedError
        On a sample-shape mismatch, non-finite data or ``projections < 1``.
    """
    xa, ya = _pair(x, y)
    if isinstance(projections, bool) or not isinstance(projections, (int, np.integer)):
        raise SpecschedError(f"projections={projections!r} is not an integer: give one >= 1")
    if projections < 1:
        raise SpecschedError(f"projections={projections} is too small: give at least 1")
    fx = xa.reshape(xa.shape[0], -1)
    fy = ya.reshape(ya.shape[0], -1)
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((int(projections), fx.shape[1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    m = max(fx.shape[0], fy.shape[0])
    levels = (np.arange(m) + 0.5) / m
    qx = np.quantile(fx @ theta.T, levels, axis=0)  # (m, projections)
    qy = np.quantile(fy @ theta.T, levels, axis=0)
    return float(np.mean((qx - qy) ** 2))


def spectral_w2(x: np.ndarray, y: np.ndarray) -> float:
    """Squared W2 between the Gaussian spectra of ``x`` and ``y`` (DESIGN §2).

    ``sum_k w_k (sqrt S_k - sqrt P_k)^2 + sum_pixels (mu_x - mu_y)^2`` with ``P_k``, ``S_k`` the
    mode variances of :meth:`Spectrum.from_array` of ``x`` and ``y`` (sorted the same way per
    frequency) and ``mu`` the stationary mean (each channel's mean, at every pixel). The mean term
    equals ``sum_k w_k (m_k - mu_k)^2`` but is taken in pixel space, so it does not depend on the
    DC eigenbases of the two spectra, which differ.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Generated samples, float; at least 2.
    y : ndarray, shape (m, C, H, W)
        Reference samples, same sample shape; at least 2.

    Returns
    -------
    float
        The distance in squared data units (summed over pixels).

    Raises
    ------
    SpecschedError
        On a sample-shape mismatch, non-4-D arrays, fewer than 2 samples or non-finite data.
    """
    xa, ya = _pair(x, y, min_n=2)
    if xa.ndim != 4:
        raise SpecschedError(
            f"spectral_w2 needs image arrays (n, C, H, W), got shape {xa.shape}: add the "
            "missing channel axis with x[:, None]"
        )
    sx = Spectrum.from_array(xa, layout="NCHW")
    sy = Spectrum.from_array(ya, layout="NCHW")
    px, wx, _ = sx.modes()
    py, _, _ = sy.modes()
    variance_term = float(np.sum(wx * (np.sqrt(px) - np.sqrt(py)) ** 2))
    pixels = int(np.prod(sx.signal_shape))
    mean_term = pixels * float(np.sum((sx.channel_means - sy.channel_means) ** 2))
    return variance_term + mean_term


def rmse(x: np.ndarray, ref: np.ndarray) -> float:
    """Root mean squared error between paired arrays.

    ``sqrt(mean over samples and entries of (x - ref)^2)``: the root of the per-sample mean
    squared error averaged over samples, in data units (independent of the sample size).

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Samples.
    ref : ndarray, shape (n, C, H, W)
        One reference per sample, in the same order.

    Returns
    -------
    float

    Raises
    ------
    SpecschedError
        If the arrays differ in shape or contain non-finite values.

    Examples
    --------
    >>> import numpy as np
    >>> rmse(np.zeros((2, 1, 2, 2)), np.full((2, 1, 2, 2), 3.0))
    3.0
    """
    xa, ra = _pair(x, ref, same_n=True)
    return float(np.sqrt(np.mean((xa - ra) ** 2)))


# ------------------------------------------------------------------------------------- uncertainty
def with_uncertainty(
    metric: Callable[..., float],
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_boot: int = 20,
    seed: int = 0,
    **kw: Any,
) -> tuple[float, float]:
    """A metric and its bootstrap standard deviation over the generated samples.

    Parameters
    ----------
    metric : callable
        ``metric(x, y, **kw) -> float``, e.g. :func:`frechet_distance`.
    x : ndarray, shape (n, ...)
        Generated samples; resampled with replacement ``n_boot`` times.
    y : ndarray, shape (m, ...)
        Reference samples; kept fixed.
    n_boot : int, default 20
        Number of bootstrap resamples, at least 2.
    seed : int, default 0
        Seed of the resampling.
    **kw
        Passed to ``metric``.

    Returns
    -------
    value : float
        ``metric(x, y, **kw)``.
    sd : float
        Standard deviation of the metric over the resamples.

    Raises
    ------
    SpecschedError
        If ``n_boot < 2`` or ``metric`` is not callable (and whatever ``metric`` raises).
    """
    if not callable(metric):
        raise SpecschedError(f"metric {metric!r} is not callable: pass e.g. frechet_distance")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise SpecschedError(f"n_boot={n_boot!r} is too small: give an integer of at least 2")
    xa = _as_samples(x, "x")
    value = float(metric(xa, y, **kw))
    rng = np.random.default_rng(seed)
    n = xa.shape[0]
    boot = [float(metric(xa[rng.integers(0, n, n)], y, **kw)) for _ in range(int(n_boot))]
    return value, float(np.std(boot, ddof=1))


def tie(a: tuple[float, float], b: tuple[float, float], z: float = 2.0) -> bool:
    """Whether two ``(value, sd)`` estimates are indistinguishable at ``z`` standard deviations.

    ``|a - b| < z * sqrt(sd_a^2 + sd_b^2)``.

    Examples
    --------
    >>> tie((1.0, 0.1), (1.1, 0.1)), tie((1.0, 0.01), (1.1, 0.01))
    (True, False)
    """
    (va, sa), (vb, sb) = a, b
    return bool(abs(va - vb) < z * np.hypot(sa, sb))
