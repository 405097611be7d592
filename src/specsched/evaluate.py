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
  whether two such estimates are indistinguishable; :func:`bootstrap` and :func:`paired_tie` for
  paired comparisons of samples generated from the same starting noise.
- :class:`Reference`: reference samples whose statistics (mean, covariance and its square root,
  principal axes, sorted projections, spectrum) are computed once and reused by every metric.
- :func:`evaluate_schedules`: sample from a denoiser with each of several schedules (same starting
  noise) and score every set, marking per metric the best schedule and those tied with it
  (:func:`best_and_ties`). ``specsched evaluate`` and ``benchmarks/real_denoisers.py`` run it.

Tie rule (one for the library, the command line and the benchmarks): two paired results tie when
their values are equal or their difference is within 2 standard deviations of the differences of
their bootstrap values (:func:`paired_tie`); the best result ties with itself, so the results
tied with the best are all those not distinguishable from it, the best included.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SpecschedError, check_int
from .spectrum import Spectrum

if TYPE_CHECKING:
    from .schedules import Schedule

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Reference",
    "ScheduleEvaluation",
    "Scorer",
    "best_and_ties",
    "bootstrap",
    "evaluate_schedules",
    "frechet_distance",
    "paired_tie",
    "rmse",
    "score",
    "sliced_wasserstein",
    "spectral_objective",
    "spectral_scorer",
    "spectral_w2",
    "tie",
    "with_uncertainty",
]


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
def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


class Reference:
    """Reference samples ``y`` with the statistics the metrics need, each computed once.

    Every metric of this module accepts a :class:`Reference` wherever it accepts reference
    samples ``y``; comparing many generated sets against one reference (a benchmark, a bootstrap)
    then does the reference's work once.

    Parameters
    ----------
    y : ndarray, shape (m, C, H, W)
        Reference samples (any ``(m, ...)`` for the metrics that flatten samples); at least 2.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = Reference(rng.standard_normal((400, 1, 2, 2)))
    >>> x = rng.standard_normal((400, 1, 2, 2))
    >>> frechet_distance(x, ref) == frechet_distance(x, ref.samples)
    True
    """

    def __init__(self, y: Any):
        self.samples = _as_samples(y, "y", min_n=2)
        self.flat = self.samples.reshape(self.samples.shape[0], -1)
        self.mean, self.cov = _gaussian(self.flat)
        self._cache: dict[Any, Any] = {}

    @property
    def n(self) -> int:
        """Number of reference samples."""
        return int(self.samples.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.samples.shape[1:])

    def gaussian(
        self, pca: int | None = None
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """``(basis, mean, cov, sqrt(cov))`` in pixel space (basis None) or on ``pca`` axes."""
        key = ("gaussian", pca)
        if key not in self._cache:
            if pca is None:
                basis, mean, cov = None, self.mean, self.cov
            else:
                d = self.flat.shape[1]
                if (
                    isinstance(pca, bool)
                    or not isinstance(pca, (int, np.integer))
                    or not 1 <= pca <= d
                ):
                    raise SpecschedError(
                        f"pca={pca!r} is not a number of components: give an integer from 1 to {d}"
                    )
                _, vecs = np.linalg.eigh(self.cov)
                basis = vecs[:, ::-1][:, : int(pca)]
                mean, cov = self.mean @ basis, basis.T @ self.cov @ basis
            self._cache[key] = (basis, mean, cov, _psd_sqrt(cov))
        return self._cache[key]

    def projections(self, projections: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit directions ``(projections, d)`` and the sorted projections ``(m, projections)``."""
        key = ("projections", projections, seed)
        if key not in self._cache:
            rng = np.random.default_rng(seed)
            theta = rng.standard_normal((int(projections), self.flat.shape[1]))
            theta /= np.linalg.norm(theta, axis=1, keepdims=True)
            self._cache[key] = (theta, np.sort(self.flat @ theta.T, axis=0))
        return self._cache[key]

    def spectrum(self) -> Spectrum:
        """The Fourier spectrum of the samples (:meth:`Spectrum.from_array`, NCHW)."""
        if "spectrum" not in self._cache:
            self._cache["spectrum"] = Spectrum.from_array(
                self.samples, layout="NCHW", kind="fourier"
            )
        return self._cache["spectrum"]


def _reference(y: Any) -> Reference:
    return y if isinstance(y, Reference) else Reference(y)


def _check_generated(x: Any, ref: Reference, *, min_n: int = 1) -> np.ndarray:
    xa = _as_samples(x, "x", min_n=min_n)
    if xa.shape[1:] != ref.sample_shape:
        raise SpecschedError(
            f"samples of shape {xa.shape[1:]} against reference data of a different shape "
            f"{ref.sample_shape}: resize or crop both to one sample shape"
        )
    return xa


def _quantiles(sorted_cols: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles (numpy's default method) of pre-sorted columns."""
    n = sorted_cols.shape[0]
    pos = levels * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo)[:, None]
    return sorted_cols[lo] * (1.0 - frac) + sorted_cols[hi] * frac


def frechet_distance(x: np.ndarray, y: np.ndarray, *, pca: int | None = None) -> float:
    """Fréchet distance between Gaussians fitted to the flattened samples of ``x`` and ``y``.

    ``|m_x - m_y|^2 + tr(C_x) + tr(C_y) - 2 tr((C_x C_y)^(1/2))``, the squared 2-Wasserstein
    distance between ``N(m_x, C_x)`` and ``N(m_y, C_y)`` (unbiased covariances).

    Parameters
    ----------
    x, y : ndarray, shapes (n, C, H, W) and (m, C, H, W); y may be a Reference
        Generated and reference samples, of one sample shape (any ``(n, ...)``; flattened).
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
    ref = _reference(y)
    xa = _check_generated(x, ref, min_n=2)
    basis, my, cy, root_y = ref.gaussian(pca)
    fx = xa.reshape(xa.shape[0], -1)
    if basis is not None:
        fx = fx @ basis
    n, d = fx.shape
    mx = fx.mean(0)
    # b: the centred samples in an orthonormal basis of the n - 1 directions orthogonal to the
    # mean (a Householder reflection taking ones/sqrt(n) to e_1), so b.T @ b = centred.T @ centred
    u = np.full(n, 1.0 / np.sqrt(n))
    u[0] -= 1.0
    u /= np.linalg.norm(u)
    b = (fx - 2.0 * np.outer(u, u @ fx))[1:]
    trace_x = float(np.sum(b * b)) / (n - 1)
    # tr (C_x C_y)^(1/2) = tr (C_y^(1/2) C_x C_y^(1/2))^(1/2), a symmetric PSD eigenproblem; with
    # fewer samples than dimensions the (n-1) x (n-1) matrix b C_y b^T / (n-1) has the same
    # non-zero eigenvalues and no structural zeros to add sqrt(round-off) noise
    if n <= d:
        eig = np.linalg.eigvalsh(b @ cy @ b.T / (n - 1))
    else:
        eig = np.linalg.eigvalsh(root_y @ (b.T @ b / (n - 1)) @ root_y)
    cross = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    value = float(np.sum((mx - my) ** 2) + trace_x + np.trace(cy) - 2.0 * cross)
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
    x, y : ndarray, shapes (n, C, H, W) and (m, C, H, W); y may be a Reference
        Generated and reference samples, of one sample shape (any ``(n, ...)``; flattened).
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
    ref = _reference(y)
    xa = _check_generated(x, ref)
    theta, sy = ref.projections(check_int("projections", projections), seed)
    sx = np.sort(xa.reshape(xa.shape[0], -1) @ theta.T, axis=0)
    m = max(sx.shape[0], sy.shape[0])
    levels = (np.arange(m) + 0.5) / m
    return float(np.mean((_quantiles(sx, levels) - _quantiles(sy, levels)) ** 2))


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
    y : ndarray, shape (m, C, H, W), or Reference
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
    ref = _reference(y)
    xa = _check_generated(x, ref, min_n=2)
    if xa.ndim != 4:
        raise SpecschedError(
            f"spectral_w2 needs image arrays (n, C, H, W), got shape {xa.shape}: add the "
            "missing channel axis with x[:, None]"
        )
    sx = Spectrum.from_array(xa, layout="NCHW", kind="fourier")
    sy = ref.spectrum()
    px, wx, _ = sx.modes()
    py, _, _ = sy.modes()
    variance_term = float(np.sum(wx * (np.sqrt(px) - np.sqrt(py)) ** 2))
    pixels = int(np.prod(sx.signal_shape))
    mean_term = pixels * float(np.sum((sx.channel_means - sy.channel_means) ** 2))
    return variance_term + mean_term


def spectral_objective(x: np.ndarray, spectrum: Spectrum, objective: str = "w2") -> float:
    """The fit's objective measured on samples: ``x`` against ``spectrum`` in its own modes.

    The samples' mode coefficients (Fourier frequencies in the eigenbasis of each frequency's
    cross-spectrum, or the PCA axes, as :func:`specsched.calibrate.calibrate` measures them)
    give each mode's variance ``P_k`` and mean ``mu_k``, and the objective is the one that
    :func:`specsched.fit` minimises (:mod:`specsched.divergence`), e.g.
    ``W2^2 = sum_k w_k [(sqrt S_k - sqrt P_k)^2 + (mu_k - m_k)^2]``. Where the response model
    predicts ``P`` and ``mu`` for a schedule, this measures them, so it needs no reference data:
    only the spectrum the fit was made on.

    Parameters
    ----------
    x : ndarray, shape (n, C, *signal_shape)
        Generated samples; at least 2.
    spectrum : Spectrum
        The data's spectrum (Fourier with cross-spectra, or PCA).
    objective : {"w2", "kl", "kl-data"}, default "w2"
        As for :func:`specsched.fit`.

    Returns
    -------
    float

    Raises
    ------
    SpecschedError
        If the samples' shape is not the spectrum's, or on too few or non-finite samples.
    """
    import torch

    from .calibrate import _basis
    from .divergence import total

    xa = _as_samples(x, "x", min_n=2)
    want = (spectrum.channels, *spectrum.signal_shape)
    if tuple(xa.shape[1:]) != want:
        raise SpecschedError(
            f"samples of shape {tuple(xa.shape[1:])} against a spectrum of samples {want}: give "
            "samples of the data the spectrum was estimated on"
        )
    X = _basis(spectrum)(torch.from_numpy(xa), 1.0).reshape(xa.shape[0], -1)  # about the mean
    mean = X.mean(0)
    P = ((X - mean).abs() ** 2).mean(0)
    S = torch.from_numpy(np.asarray(spectrum.variances, dtype=np.float64).reshape(-1))
    w = np.broadcast_to(np.asarray(spectrum.weights, dtype=np.float64), spectrum.variances.shape)
    zero = torch.zeros_like(S)
    return float(total(objective, S, torch.from_numpy(w.reshape(-1).copy()), zero, P, mean.abs()))  # type: ignore[arg-type]


def spectral_scorer(
    spectrum: Spectrum, objective: str = "w2", *, n_boot: int = 20, seed: int = 0
) -> Scorer:
    """:func:`spectral_objective` against ``spectrum`` as a :data:`Scorer`: the value and its
    :func:`bootstrap` values (``n_boot``, ``seed``: paired with the other metrics of a
    :func:`score` or :func:`evaluate_schedules` call given the same ones)."""

    def scorer(x: np.ndarray) -> tuple[float, np.ndarray]:
        return bootstrap(
            lambda xs, _: spectral_objective(xs, spectrum, objective), x, None, n_boot=n_boot,
            seed=seed,
        )  # fmt: skip

    return scorer


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
def bootstrap(
    metric: Callable[..., float],
    x: np.ndarray,
    y: Any,
    *,
    n_boot: int = 20,
    seed: int = 0,
    paired: bool = False,
    **kw: Any,
) -> tuple[float, np.ndarray]:
    """A metric and its values over bootstrap resamples of the generated samples.

    The resampled indices depend only on ``seed``, ``n_boot`` and ``len(x)``: two generated sets
    of the same size get the same resamples, so for sets generated from the same starting noise
    the differences of their bootstrap values measure the uncertainty of their difference
    (:func:`paired_tie`).

    Parameters
    ----------
    metric : callable
        ``metric(x, y, **kw) -> float``, e.g. :func:`frechet_distance`.
    x : ndarray, shape (n, ...)
        Generated samples; resampled with replacement ``n_boot`` times.
    y : ndarray or Reference
        Reference samples; kept fixed (pass a :class:`Reference` to reuse its statistics).
    n_boot : int, default 20
        Number of bootstrap resamples, at least 2.
    seed : int, default 0
        Seed of the resampling.
    paired : bool, default False
        Resample ``y`` with the same indices as ``x`` (for paired metrics such as :func:`rmse`,
        whose ``y`` holds one reference per sample).
    **kw
        Passed to ``metric``.

    Returns
    -------
    value : float
        ``metric(x, y, **kw)``.
    boot : ndarray, shape (n_boot,)
        The metric on each resample.

    Raises
    ------
    SpecschedError
        If ``n_boot < 2`` or ``metric`` is not callable (and whatever ``metric`` raises).
    """
    if not callable(metric):
        raise SpecschedError(f"metric {metric!r} is not callable: pass e.g. frechet_distance")
    check_int("n_boot", n_boot, 2)
    xa = _as_samples(x, "x")
    if paired:
        ya = _as_samples(y, "y")
        if ya.shape[0] != xa.shape[0]:
            raise SpecschedError(
                f"paired bootstrap of {xa.shape[0]} samples against {ya.shape[0]} references: "
                "give one reference per sample"
            )
    elif not isinstance(y, Reference):
        y = Reference(y) if metric in (frechet_distance, sliced_wasserstein, spectral_w2) else y
    value = float(metric(xa, y, **kw))
    rng = np.random.default_rng(seed)
    n = xa.shape[0]
    boot = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        boot[b] = float(metric(xa[idx], ya[idx] if paired else y, **kw))
    return value, boot


def with_uncertainty(
    metric: Callable[..., float], x: np.ndarray, y: Any, **options: Any
) -> tuple[float, float]:
    """A metric and its bootstrap standard deviation over the generated samples.

    :func:`bootstrap` (same parameters, ``n_boot``, ``seed`` and the metric's own keywords among
    ``options``, and the same errors) reduced to ``(value, sd)``, with ``sd`` the standard
    deviation (``ddof=1``) of the metric over the resamples.
    """
    value, boot = bootstrap(metric, x, y, **options)
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


def paired_tie(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray], z: float = 2.0) -> bool:
    """Whether two paired :func:`bootstrap` results are indistinguishable at ``z`` deviations.

    ``a`` and ``b`` are ``(value, boot)`` pairs from :func:`bootstrap` with the same seed,
    ``n_boot`` and sample count, for sample sets generated from the same starting noise. The
    test is ``a == b or |a - b| < z * sd(boot_a - boot_b)``: the common part of the two sets'
    sampling noise cancels, so real differences much smaller than either metric's own spread are
    resolved; equal values tie, also where the two bootstrap arrays are equal (the same samples)
    and their differences have no spread.

    Examples
    --------
    >>> import numpy as np
    >>> boot = np.array([1.0, 1.2, 0.8, 1.1])
    >>> paired_tie((1.0, boot), (1.05, boot + 0.05))  # a consistent shift is resolved
    False
    >>> paired_tie((1.0, boot), (1.01, boot[::-1]))  # inside the paired noise
    True
    >>> paired_tie((1.0, boot), (1.0, boot))  # the same samples
    True
    """
    (va, ba), (vb, bb) = a, b
    ba, bb = np.asarray(ba, float), np.asarray(bb, float)
    if ba.shape != bb.shape or ba.ndim != 1 or ba.size < 2:
        raise SpecschedError(
            "paired_tie needs two bootstrap arrays of the same length (same n_boot and seed)"
        )
    return bool(va == vb or abs(va - vb) < z * float(np.std(ba - bb, ddof=1)))


# ------------------------------------------------------------------------------------- registry
#: The sample metrics by name: ``name -> (function, keyword arguments, description)``.
METRICS: dict[str, tuple[Callable[..., float], dict[str, Any], str]] = {
    "fd": (frechet_distance, {}, "Frechet distance in pixel space"),
    "fd_pca64": (frechet_distance, {"pca": 64}, "Frechet distance on the reference's top 64 axes"),
    "sw2": (sliced_wasserstein, {}, "sliced W2^2 over 256 random directions"),
    "spectral_w2": (spectral_w2, {}, "W2^2 between the Gaussian spectra"),
}
#: The metrics scored when none are named: every one of :data:`METRICS`.
DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)

#: A metric outside :data:`METRICS`: ``scorer(x) -> (value, bootstrap values)`` for generated
#: samples ``x``, with its own reference (e.g. FID on Inception features, or the paired RMSE to a
#: reference solution from the same starting noise); lower is better.
Scorer = Callable[[np.ndarray], tuple[float, np.ndarray]]


def score(
    x: np.ndarray,
    y: Any,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    n_boot: int = 20,
    seed: int = 0,
    scorers: Mapping[str, Scorer] | None = None,
) -> dict[str, tuple[float, np.ndarray]]:
    """Several metrics of ``x`` against ``y``, each with its :func:`bootstrap` values.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        Generated samples.
    y : ndarray, Reference or None
        Reference samples (None when every metric is one of ``scorers``).
    metrics : sequence of str
        Names from :data:`METRICS` or ``scorers``, in the order of the result. ``fd_pca64`` needs
        at least 64 dimensions; with fewer it uses all of them.
    n_boot, seed
        As in :func:`bootstrap` (the same for every metric, so results of equal-sized sets pair).
    scorers : mapping of str to Scorer, optional
        Further metrics by name (:data:`Scorer`), called as ``scorer(x)``.

    Returns
    -------
    dict
        ``name -> (value, bootstrap values)``.

    Raises
    ------
    SpecschedError
        If a name is in neither :data:`METRICS` nor ``scorers``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> out = score(rng.standard_normal((200, 1, 4, 4)), rng.standard_normal((400, 1, 4, 4)),
    ...             ["fd", "sw2"], n_boot=4)
    >>> sorted(out), out["fd"][1].shape
    (['fd', 'sw2'], (4,))
    """
    _check_metrics(metrics, scorers)
    ref = None if y is None else _reference(y)
    out: dict[str, tuple[float, np.ndarray]] = {}
    for name in metrics:
        if scorers is not None and name in scorers:
            out[name] = scorers[name](x)
            continue
        if ref is None:
            raise SpecschedError(f"{name} needs reference samples: give reference data")
        fn, kw, _ = METRICS[name]
        if "pca" in kw:
            kw = {**kw, "pca": min(kw["pca"], int(np.prod(ref.sample_shape)))}
        out[name] = bootstrap(fn, x, ref, n_boot=n_boot, seed=seed, **kw)
    return out


def _check_metrics(metrics: Sequence[str], scorers: Mapping[str, Scorer] | None) -> None:
    known = [*METRICS, *(scorers or {})]
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise SpecschedError(f"unknown metric {', '.join(unknown)}: use any of {', '.join(known)}")


def best_and_ties(
    results: Sequence[Mapping[str, tuple[float, np.ndarray]]], *, z: float = 2.0
) -> tuple[list[dict[str, bool]], list[dict[str, bool]]]:
    """Per metric, the best of several paired results and those tied with it.

    The best is the lowest value (the first of equal ones); a result ties with the best by
    :func:`paired_tie` (equal values, or a paired bootstrap difference within ``z`` standard
    deviations), and the best ties with itself.

    Parameters
    ----------
    results : sequence of mapping
        Per result (e.g. per schedule), ``metric -> (value, bootstrap values)`` as from
        :func:`score`, with the same ``n_boot`` and seed for all, from samples generated from the
        same starting noise. A metric missing from some results is compared among the others.
    z : float, default 2.0
        Standard deviations of the tie test.

    Returns
    -------
    best : list of dict
        Per result, ``metric -> whether it is the best`` (exactly one per metric).
    tie : list of dict
        Per result, ``metric -> whether it ties with the best`` (true for the best).

    Examples
    --------
    >>> import numpy as np
    >>> boot = np.array([1.0, 1.2, 0.8, 1.1])
    >>> best, tie = best_and_ties([{"fd": (1.0, boot)}, {"fd": (1.01, boot[::-1])},
    ...                            {"fd": (2.0, boot + 1.0)}])
    >>> [b["fd"] for b in best], [t["fd"] for t in tie]
    ([True, False, False], [True, True, False])
    """
    best: list[dict[str, bool]] = [{} for _ in results]
    tie: list[dict[str, bool]] = [{} for _ in results]
    for metric in dict.fromkeys(m for r in results for m in r):
        having = [i for i, r in enumerate(results) if metric in r]
        top = min(having, key=lambda i: results[i][metric][0])
        for i in having:
            best[i][metric] = i == top
            tie[i][metric] = paired_tie(results[i][metric], results[top][metric], z)
    return best, tie


@dataclasses.dataclass
class ScheduleEvaluation:
    """One schedule's samples scored against a reference (a row of :func:`evaluate_schedules`).

    Attributes
    ----------
    name : str
        The row's name (the schedule's, unless given).
    schedule : Schedule
        The schedule sampled with.
    scores : dict
        ``metric -> (value, bootstrap values)``, lower is better.
    best, tie : dict
        ``metric -> bool``: the best of the rows, and tied with the best (:func:`best_and_ties`;
        the best ties with itself).
    calls : int or None
        Denoiser calls (batches) the sampling took, where the denoiser counts them (a ``calls``
        attribute, as :class:`~specsched.integrations.networks.ModelDenoiser` has).
    sampling_seconds, scoring_seconds : float
        Wall time of the sampling and of the scoring.
    samples : ndarray or None
        The generated samples ``(num_samples, *shape)`` when asked for (``keep_samples``).
    """

    name: str
    schedule: Schedule
    scores: dict[str, tuple[float, np.ndarray]]
    best: dict[str, bool]
    tie: dict[str, bool]
    calls: int | None
    sampling_seconds: float
    scoring_seconds: float
    samples: np.ndarray | None = None

    def sd(self, metric: str) -> float:
        """The bootstrap standard deviation (``ddof=1``) of ``metric``."""
        return float(np.std(self.scores[metric][1], ddof=1))


def evaluate_schedules(
    denoiser: Callable[..., Any],
    schedules: Sequence[Schedule],
    reference: Any,
    *,
    shape: tuple[int, ...],
    sampler: str = "ddim",
    sampler_options: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    scorers: Mapping[str, Scorer] | None = None,
    num_samples: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    n_boot: int = 20,
    names: Sequence[str] | None = None,
    keep_samples: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[ScheduleEvaluation]:
    """Sample with each schedule from the same starting noise and score the samples.

    Every schedule starts from the same seeded noise and every score uses the same bootstrap
    resamples, so the comparisons between schedules are paired: per metric the best row and the
    rows tied with it are marked by :func:`best_and_ties`.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, alpha, s) -> x0_hat``, as for :func:`~specsched.generation.generate`.
    schedules : sequence of Schedule
        The schedules to compare.
    reference : ndarray, Reference or None
        Reference samples of shape ``(m, *shape)`` (a :class:`Reference` is reused as it is);
        None when every metric is one of ``scorers``.
    shape : tuple of int
        The shape of one sample.
    sampler : str, default "ddim"
        A name from :data:`specsched.samplers.SAMPLERS`.
    sampler_options : mapping, optional
        Sampler options (e.g. ``{"eta": 0.5}``).
    metrics : sequence of str, default :data:`DEFAULT_METRICS`
        Names from :data:`METRICS` or ``scorers``, in the order of the scores.
    scorers : mapping of str to Scorer, optional
        Further metrics by name (:data:`Scorer`), e.g. FID or a paired RMSE.
    num_samples : int, default 1000
        Samples per schedule.
    batch_size : int, default 256
        Samples per denoiser call.
    seed : int, default 0
        Seed of the starting noise (and of a stochastic sampler's noise) and of the bootstrap.
    n_boot : int, default 20
        Bootstrap resamples, at least 2.
    names : sequence of str, optional
        Row names (default: the schedules' names).
    keep_samples : bool, default False
        Keep each schedule's samples in its row.
    progress : callable, optional
        ``progress(k)`` after each batch of ``k`` generated samples.

    Returns
    -------
    list of ScheduleEvaluation
        One row per schedule, in order.

    Raises
    ------
    SpecschedError
        On an unknown metric, names that do not match the schedules, a reference of another
        sample shape, or what :func:`~specsched.generation.generate` and :func:`score` refuse.

    Examples
    --------
    >>> import numpy as np
    >>> from specsched import Schedule, Spectrum, spaced_timesteps
    >>> from specsched.denoisers import GaussianDenoiser
    >>> data = np.random.default_rng(0).standard_normal((256, 1, 4, 4))
    >>> den = GaussianDenoiser(Spectrum.from_array(data))
    >>> scheds = [Schedule.from_timesteps(spaced_timesteps(n), name=f"{n} steps") for n in (2, 20)]
    >>> rows = evaluate_schedules(den, scheds, data, shape=(1, 4, 4), metrics=["fd"],
    ...                           num_samples=256, n_boot=4)
    >>> [(r.name, r.best["fd"]) for r in rows]
    [('2 steps', False), ('20 steps', True)]
    """
    from .generation import generate

    _check_metrics(metrics, scorers)
    names = [s.name for s in schedules] if names is None else list(names)
    if len(names) != len(schedules):
        raise SpecschedError(
            f"{len(names)} names for {len(schedules)} schedules: give one name per schedule"
        )
    if reference is None:  # every metric is a scorer, which has its own reference
        unscored = [m for m in metrics if m not in (scorers or {})]
        if unscored:
            raise SpecschedError(
                f"{', '.join(unscored)} {'needs' if len(unscored) == 1 else 'need'} reference "
                "samples: give reference data"
            )
        ref = None
    else:
        ref = _reference(reference)
        if ref.sample_shape != tuple(shape):
            raise SpecschedError(
                f"reference samples of shape {ref.sample_shape} for samples of shape "
                f"{tuple(shape)}: give reference data of the model's sample shape"
            )
    rows = []
    for name, sched in zip(names, schedules, strict=True):
        calls0, t0 = getattr(denoiser, "calls", None), time.perf_counter()
        try:
            x = generate(
                denoiser,
                sched,
                sampler,
                num_samples=num_samples,
                shape=tuple(shape),
                batch_size=batch_size,
                seed=seed,
                progress=progress,
                **(sampler_options or {}),
            )
            t1 = time.perf_counter()
            scores = score(x, ref, metrics, n_boot=n_boot, seed=seed, scorers=scorers)
        except SpecschedError as exc:  # say which schedule
            raise SpecschedError(f"schedule {name!r}: {exc}") from None
        rows.append(
            ScheduleEvaluation(
                name=name,
                schedule=sched,
                scores=scores,
                best={},
                tie={},
                calls=None if calls0 is None else denoiser.calls - calls0,  # type: ignore[attr-defined]
                sampling_seconds=t1 - t0,
                scoring_seconds=time.perf_counter() - t1,
                samples=x if keep_samples else None,
            )
        )
    best, tie = best_and_ties([r.scores for r in rows])
    for row, b, t in zip(rows, best, tie, strict=True):
        row.best, row.tie = b, t
    return rows
