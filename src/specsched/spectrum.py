"""Spectra of data sets: per-mode variances, weights and means (DESIGN §2, "Modes", "Estimator").

Under shift invariance the orthonormal DFT diagonalises the covariance up to a ``C x C``
cross-spectrum per frequency; its eigenvalues are the *modes*. With ``rfft`` a bin whose conjugate
partner is not stored carries weight 2, the others weight 1, so the weights add up to the dimension
``d = C * prod(signal_shape)``. The mean is non-zero only on the DC modes. Without shift invariance
(``kind="pca"``) the modes are the eigenvalues of the full covariance.

The estimate is a sum over samples: :class:`SpectrumAccumulator` streams batches and merges partial
estimates exactly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from ._arrays import (  # the array conventions, shared with specsched.data
    LAYOUTS,
    Layout,
    as_channels_first,
    infer_layout,
    is_tensor,
    to_float,
    to_numpy,
    zero_variance_mask,
)
from ._io import atomic_path
from .errors import SpecschedError

if TYPE_CHECKING:
    from .calibrate import Calibration

__all__ = [
    "LAYOUTS",
    "Spectrum",
    "SpectrumAccumulator",
    "as_channels_first",
    "choose_kind",
    "infer_layout",
    "stationarity",
    "zero_variance_mask",
]

Kind = Literal["fourier", "pca"]
#: what a caller may ask for: a kind, or ``"auto"`` (chosen by :func:`choose_kind`)
KindRequest = Literal["auto", "fourier", "pca"]
PCA_MAX_DIM = 4096
_FORMAT = "specsched.spectrum/1"


# ------------------------------------------------------------------------------------- stationarity
#: :func:`choose_kind`'s limits (see there for the measurements they come from)
MEAN_SHARE_LIMIT = 0.01
VARIANCE_SPREAD_LIMIT = 0.15


def stationarity(sum_x: np.ndarray, sum_xx: np.ndarray, n: int, channels: int) -> dict[str, float]:
    """How far data are from shift invariance, from per-pixel sums of ``x`` and ``x**2``.

    Parameters
    ----------
    sum_x, sum_xx : ndarray, shape (C * P,)
        Per-pixel sums over ``n`` samples of ``x`` and of ``x**2`` (pixels flattened channels
        first). Any common power-of-two scaling gives the same figures (they are ratios).
    n : int
        Samples summed.
    channels : int

    Returns
    -------
    dict
        ``mean_image_share``: ``sum_p (m_p - mu_c)^2 / (sum_p (m_p - mu_c)^2 + sum_p v_p)``, the
        share of a Fourier spectrum's variance that is really the fixed structure of the mean
        image ``m`` (a stationary mean is constant: ``mu_c`` per channel); ``variance_spread``:
        the coefficient of variation of the per-pixel variances ``v_p`` about their channel's
        mean (a stationary variance is the same at every pixel); ``n_samples``.
    """
    m = (sum_x / n).reshape(channels, -1)
    v = np.clip((sum_xx / n).reshape(channels, -1) - m**2, 0, None)
    mean_var = float(np.sum((m - m.mean(1, keepdims=True)) ** 2))
    total = mean_var + float(v.sum())
    vbar = v.mean(1, keepdims=True)
    den = float(np.sum(vbar**2) * v.shape[1])
    return {
        "mean_image_share": mean_var / total if total > 0 else 0.0,
        "variance_spread": float(np.sqrt(np.sum((v - vbar) ** 2) / den)) if den > 0 else 0.0,
        "n_samples": int(n),
    }


def choose_kind(stats: dict[str, float], dim: int, *, can_reread: bool = True) -> tuple[Kind, str]:
    """The spectrum kind for data with these :func:`stationarity` figures, and why.

    Fourier when the data are close to stationary: a mean-image share at most
    ``max(0.01, 5 / n)`` and a per-pixel variance spread at most ``max(0.15, 4 sqrt(2 / n))``.
    Otherwise PCA (the full covariance), if ``d <= PCA_MAX_DIM`` and the data can be read a
    second time; else Fourier, saying why.

    The limits come from measurements (``benchmarks/stationarity.py``, n = 5,000 unless given):

    ========================  ======  ================  ===============  =======
    data                      d       mean-image share  variance spread  chosen
    ========================  ======  ================  ===============  =======
    photos 16x16 RGB          768     0.00002           0.005            fourier
    photos 32x32 RGB          3072    0.00002           0.007            fourier
    photos 64x64 RGB          12288   0.00004           0.012            fourier
    power-law fields 32x32    1024    0.0002            0.020            fourier
    power-law, n = 500 (x3)   1024    0.0015-0.0018     0.060-0.070      fourier
    power-law, n = 50 (x3)    1024    0.015-0.019       0.19-0.22        fourier
    gmm16 (mixture samples)   256     0.00003           0.013            fourier
    LFW faces 25x25, n = 200  625     0.050             0.198            pca
    MNIST (n = 10,000)        784     0.294             1.140            pca
    MNIST (n = 1,000)         784     0.293             1.151            pca
    sklearn digits 8x8        64      0.481             0.788            pca
    centred discs 32x32       1024    0.452             1.255            pca
    ========================  ======  ================  ===============  =======

    Stationary data sit at their sampling noise (the share about ``1 / n``, the spread about
    ``sqrt(2 / n)`` or less: neighbouring pixels' estimates are correlated), centred data one to
    three orders of magnitude above; the limits lie between the two groups, about a factor 3
    from the nearest of each (the share's 0.01 is geometrically between 0.0015 and 0.05, the
    spread's 0.15 between 0.07 and 0.2), and grow with the noise at small ``n`` so that a few
    hundred stationary samples never look centred (at n = 50 the fixed limits alone would call
    power-law fields non-stationary). The issue's pretrained model of centred
    objects had a mean-image share of 0.57 (0.26 of 0.46 per-pixel variance).

    Both figures come from per-pixel sums, ``O(d)`` per sample at any size. A direct comparison
    of the Fourier (block-diagonal) model with the full covariance needs that covariance: 14x
    the Fourier pass's time on 10,000 32x32 RGB patches (24 s against 1.7 s, plus 17 s for the
    eigendecomposition), too much to pay on every estimate when most data are stationary, so
    ``"auto"`` pays it only in the second pass, when PCA is chosen. There is no hybrid (PCA on
    the leading components) for ``d > PCA_MAX_DIM``: it would need a streaming sketch of the
    covariance, a second estimator; such data get the Fourier spectrum and the reason says so.
    """
    n = max(int(stats.get("n_samples", 0)), 1)
    share, spread = float(stats["mean_image_share"]), float(stats["variance_spread"])
    share_max = max(MEAN_SHARE_LIMIT, 5.0 / n)
    spread_max = max(VARIANCE_SPREAD_LIMIT, 4.0 * np.sqrt(2.0 / n))
    figures = (
        f"mean image {share:.3g} of the variance (limit {share_max:.3g}), per-pixel variance "
        f"spread {spread:.3g} (limit {spread_max:.3g})"
    )
    if share <= share_max and spread <= spread_max:
        return "fourier", f"close to stationary: {figures}"
    if dim > PCA_MAX_DIM:
        return "fourier", (
            f"not stationary ({figures}), but d = {dim} > {PCA_MAX_DIM} is too large for the "
            "full covariance: the Fourier modes count the mean image's structure as variance"
        )
    if not can_reread:
        return "fourier", (
            f"not stationary ({figures}), but a one-pass source cannot be read again for the "
            "full covariance: pass kind='pca' (--kind pca)"
        )
    return "pca", f"not stationary: {figures}"


def estimate_kind(
    kind: KindRequest, one_pass: Callable[[Kind], Spectrum], *, can_reread: bool = True
) -> Spectrum:
    """The spectrum of ``kind``, made by ``one_pass(kind)`` (one pass over the data).

    ``"auto"`` makes the Fourier spectrum, then, if :func:`choose_kind` says PCA, the PCA one (a
    second pass). ``meta["kind_choice"]`` records what was requested, chosen, and why.
    """
    if kind not in get_args(KindRequest):
        raise SpecschedError(f"unknown spectrum kind {kind!r}: use 'auto', 'fourier' or 'pca'")
    spec = one_pass("fourier" if kind == "auto" else kind)
    chosen, reason = choose_kind(spec.meta["stationarity"], spec.dim, can_reread=can_reread)
    if kind == "auto":
        if chosen == "pca":
            spec = one_pass("pca")
    elif chosen == kind:
        reason = f"requested; auto agrees ({reason})"
    else:
        reason = f"requested; auto would choose {chosen} ({reason})"
    spec.meta["kind_choice"] = {"requested": kind, "chosen": spec.kind, "reason": reason}
    return spec


def _kind_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """The stationarity figures and the kind's reason, for :meth:`Spectrum.summary`."""
    out: dict[str, Any] = {}
    st = meta.get("stationarity")
    if isinstance(st, dict):
        out["mean_image_share"] = st.get("mean_image_share")
        out["variance_spread"] = st.get("variance_spread")
    choice = meta.get("kind_choice")
    if isinstance(choice, dict):
        out["kind_requested"] = choice.get("requested")
        out["kind_reason"] = choice.get("reason")
    return out


# ------------------------------------------------------------------------------------- spectrum
@dataclass(frozen=True, eq=False)
class Spectrum:
    """A weighted list of modes: variance, weight and mean of each (DESIGN §2).

    Attributes
    ----------
    variances : ndarray
        Mode variances ``S_k``. Fourier spectra: shape ``(*freq_shape, C)`` where ``freq_shape`` is
        the ``rfftn`` grid of the signal and the last axis holds the eigenvalues of each frequency's
        ``C x C`` cross-spectrum, largest first. PCA spectra: shape ``(d,)``, largest first.
    weights : ndarray
        ``w_k``, same shape: 2 for rfft bins whose conjugate partner is not stored, else 1. They sum
        to the data dimension.
    means : ndarray
        ``m_k``, same shape; non-zero only on the DC modes (Fourier).
    frequencies : ndarray
        Radial frequency ``|f|`` in cycles per sample of each mode (NaN for PCA).
    kind : {"fourier", "pca"}
    signal_shape : tuple of int
        ``(H, W)`` for images, ``(L,)`` for 1-D signals.
    channels : int
    n_samples : int
        How many samples the estimate is made of.
    channel_means : ndarray, shape (C,)
        Mean of each channel over samples and positions.
    cross_spectrum : ndarray or None
        Fourier spectra: the ``(*freq_shape, C, C)`` Hermitian cross-spectra the modes come from.
    meta : dict
        Provenance: source, scaling and options; ``"stationarity"`` (:func:`stationarity`) and,
        when the kind was chosen automatically, ``"kind_choice"`` (:func:`choose_kind`).
    calibration : Calibration or None
        What a real denoiser does to these modes (:func:`specsched.calibrate`); when set, the
        response, ``fit`` and ``compare`` use the calibrated response model.
    eigenvectors : ndarray or None
        PCA spectra: the ``(d, d)`` orthonormal eigenvectors of the covariance, one column per
        mode in the order of ``variances`` (pixels flattened channels first); the modes'
        coefficients of ``x`` are ``eigenvectors.T @ x.ravel()``.
    """

    variances: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    frequencies: np.ndarray
    kind: Kind
    signal_shape: tuple[int, ...]
    channels: int
    n_samples: int
    channel_means: np.ndarray
    cross_spectrum: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    eigenvectors: np.ndarray | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_array(
        cls,
        x: np.ndarray,
        *,
        layout: Layout | None = None,
        kind: KindRequest = "auto",
        batch_size: int = 512,
        source: str = "array",
    ) -> Spectrum:
        """Estimate the spectrum of a data array.

        Parameters
        ----------
        x : ndarray
            Samples in layout ``(n, H, W)``, ``(n, C, H, W)``, ``(n, H, W, C)``, ``(n, L)`` or
            ``(n, C, L)``. Float arrays are used as given; integer arrays are images in [0, 255] and
            are scaled to [-1, 1]. A ``np.memmap`` streams in batches.
        layout : {"NL", "NCL", "NHW", "NCHW", "NHWC"}, optional
            Needed only when the shape is ambiguous.
        kind : {"auto", "fourier", "pca"}, default "auto"
            ``"fourier"`` assumes shift invariance (cross-spectra per frequency); ``"pca"`` takes
            the eigenvalues of the full covariance (small, non-stationary data; ``d <= 4096``);
            ``"auto"`` measures how stationary the data are and chooses (:func:`choose_kind`;
            a second pass over the data when it chooses PCA).
        batch_size : int, default 512
            Samples per FFT batch; bounds the working memory.

        Examples
        --------
        >>> import numpy as np, specsched as ss
        >>> x = np.random.default_rng(0).standard_normal((100, 3, 8, 8))
        >>> spec = ss.Spectrum.from_array(x)
        >>> spec.variances.shape, float(spec.weights.sum())
        ((8, 5, 3), 192.0)
        """
        x = np.asarray(to_numpy(x)) if not isinstance(x, np.ndarray) else x
        if int(batch_size) < 1:
            raise SpecschedError(f"batch_size must be at least 1 (got {batch_size})")
        batch_size = int(batch_size)
        xc = as_channels_first(x, layout)

        def one_pass(kind: Kind) -> Spectrum:
            acc = SpectrumAccumulator(xc.shape[2:], xc.shape[1], kind=kind)
            scaling = "as given"
            for i in range(0, xc.shape[0], batch_size):
                batch, scaling = to_float(np.asarray(xc[i : i + batch_size]))
                acc.update(batch, channels_first=True)
            return acc.finalize(source=source, scaling=scaling)

        return estimate_kind(kind, one_pass)

    @classmethod
    def from_source(cls, source: Any, **options: Any) -> Spectrum:
        """Estimate the spectrum of a data source, streamed, optionally in parallel.

        Parameters
        ----------
        source : str, Path, ndarray, datasets.Dataset, torch Dataset or iterable
            A built-in source (``builtin:photos``, ``synthetic:powerlaw``, ...), a ``.npy`` /
            ``.npz`` file, a folder of images or audio files, a saved Hugging Face dataset, or a
            Python dataset object (see :func:`specsched.data.open_source`).
        **options
            ``kind`` ({"auto", "fourier", "pca"}, default "auto": Fourier if the data are close
            to stationary, else PCA, a second pass over the source; see :func:`choose_kind`).
            ``workers``, ``dask``, ``dask_timeout``, ``limit``, ``batch_size``, ``strict`` and
            ``progress`` go to :func:`specsched.data.stream.accumulate` (each pass streams
            there, with a :class:`SpectrumAccumulator`); the others describe the source
            (``size``, ``crop``, ``channels``, ``seed``, ``layout``, ``sample_rate``,
            ``segment``, ``column``, ``vae``, ``vae_scaling_factor``, the built-in loaders'
            options, ...).

        Returns
        -------
        Spectrum
            ``meta`` holds the source, the scaling, the items read and the items skipped
            (``"skipped"``, with up to five examples and their reasons in
            ``"skipped_examples"``), and the kind's choice (``"kind_choice"``).

        Examples
        --------
        >>> import specsched as ss
        >>> spec = ss.Spectrum.from_source("synthetic:powerlaw", n=200, size=8, batch_size=50)
        >>> spec.n_samples
        200
        >>> ss.Spectrum.from_source("images/", size=64, workers=4)  # doctest: +SKIP
        """
        from .data import ESTIMATE_OPTIONS, open_source
        from .data.stream import accumulate

        est = {k: options.pop(k) for k in ESTIMATE_OPTIONS if k in options}
        kind = est.pop("kind", "auto")
        src = open_source(source, **options)

        def one_pass(pass_kind: Kind) -> Spectrum:
            new = functools.partial(SpectrumAccumulator, kind=pass_kind)
            return accumulate(src, new, **est)

        return estimate_kind(kind, one_pass, can_reread=src.splittable)

    @classmethod
    def from_cross_spectrum(
        cls,
        cross_spectrum: np.ndarray,
        channel_means: np.ndarray,
        signal_shape: tuple[int, ...],
        *,
        n_samples: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> Spectrum:
        """Spectrum of a stationary Gaussian given its cross-spectra (exact, no sampling).

        Parameters
        ----------
        cross_spectrum : ndarray, shape (*freq_shape, C, C)
            ``E[X(k) X(k)^H]`` of the orthonormal ``rfftn`` of ``x - mu`` on the rfft grid of
            ``signal_shape``. A ``(*freq_shape,)`` array is taken as one channel.
        channel_means : ndarray, shape (C,)
            ``mu``, the mean of each channel.
        signal_shape : tuple of int
            ``(H, W)`` or ``(L,)``.
        """
        signal_shape = tuple(int(v) for v in signal_shape)
        freq = (*signal_shape[:-1], signal_shape[-1] // 2 + 1)
        sigma = np.asarray(cross_spectrum, dtype=np.complex128)
        if sigma.shape == freq:
            sigma = sigma[..., None, None]
        mu = np.atleast_1d(np.asarray(channel_means, dtype=np.float64))
        C = mu.size
        if sigma.shape != (*freq, C, C):
            raise SpecschedError(
                f"cross-spectrum of shape {sigma.shape} does not fit signals of shape "
                f"{signal_shape} with {C} channels: expected {(*freq, C, C)}"
            )
        sigma = 0.5 * (sigma + sigma.conj().swapaxes(-1, -2))
        variances = np.clip(np.linalg.eigvalsh(sigma)[..., ::-1], 0, None)
        dc = (*([0] * len(signal_shape)),)
        means = np.zeros_like(variances)
        _, u_dc = np.linalg.eigh(sigma[dc].real)
        means[dc] = u_dc[:, ::-1].T @ (mu * np.sqrt(np.prod(signal_shape)))
        last = signal_shape[-1]
        k = np.arange(last // 2 + 1)
        w_last = np.where((k == 0) | (2 * k == last), 1.0, 2.0)
        weights = np.broadcast_to(w_last[..., None], variances.shape).copy()
        grids = [np.fft.fftfreq(m) for m in signal_shape[:-1]] + [np.fft.rfftfreq(last)]
        mesh = np.meshgrid(*grids, indexing="ij")
        radius = np.sqrt(sum(g**2 for g in mesh))
        frequencies = np.broadcast_to(radius[..., None], variances.shape).copy()
        return cls(
            variances=variances,
            weights=weights,
            means=means,
            frequencies=frequencies,
            kind="fourier",
            signal_shape=signal_shape,
            channels=C,
            n_samples=int(n_samples),
            channel_means=mu,
            cross_spectrum=sigma,
            meta=dict(meta or {}),
        )

    # ---------------------------------------------------------------- views
    @property
    def n_modes(self) -> int:
        """Number of stored modes."""
        return int(self.variances.size)

    @property
    def dim(self) -> int:
        """Data dimension ``d`` (the sum of the weights)."""
        return round(float(self.weights.sum()))

    def modes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat ``(variances, weights, means)``, float64, for the response and the optimiser."""
        return self.variances.ravel(), self.weights.ravel(), self.means.ravel()

    def mean_image(self) -> np.ndarray:
        """The data's mean sample as this spectrum models it, shape ``(C, *signal_shape)``.

        Fourier spectra assume shift invariance, so their mean is each channel's mean at every
        position; PCA spectra hold the full mean image. A sampler whose first level keeps
        signal should start from noise plus ``alpha_0`` times this (the data's noised mean:
        :meth:`specsched.response.Response.value_from_marginal`).

        Examples
        --------
        >>> import numpy as np, specsched as ss
        >>> x = np.random.default_rng(0).standard_normal((50, 3, 4, 4)) + 2.0
        >>> spec = ss.Spectrum.from_array(x, kind="fourier")
        >>> spec.mean_image().shape, bool(np.allclose(spec.mean_image(), x.mean((0, 2, 3))[:, None, None]))
        ((3, 4, 4), True)
        """
        shape = (self.channels, *self.signal_shape)
        if self.kind == "pca" and self.eigenvectors is None:
            raise SpecschedError(
                "this PCA spectrum has no eigenvectors, so its mean image is unknown: estimate "
                "it again with Spectrum.from_array or from_source"
            )
        if self.eigenvectors is not None:
            return (self.eigenvectors @ self.means).reshape(shape)
        mu = np.asarray(self.channel_means, dtype=np.float64)
        return np.broadcast_to(mu.reshape(-1, *([1] * len(self.signal_shape))), shape).copy()

    @property
    def total_variance(self) -> float:
        """``sum_k w_k S_k``: the summed per-pixel variance (trace of the covariance)."""
        return float(np.sum(self.weights * self.variances))

    def radial_profile(self, bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean mode variance in radial-frequency bins, per eigen-channel.

        Returns
        -------
        f : ndarray, shape (B,)
            Bin centres in cycles per sample (DC excluded).
        power : ndarray, shape (B, C)
            Weighted mean of the ``c``-th largest eigenvalue over the bin.
        """
        if self.kind != "fourier":
            raise SpecschedError("a radial profile needs a Fourier spectrum (kind='fourier')")
        f = self.frequencies[..., 0].ravel()
        w = self.weights[..., 0].ravel()
        v = self.variances.reshape(-1, self.channels)
        nz = f > 0
        fmax = 0.5 * np.sqrt(len(self.signal_shape))
        bins = bins or max(4, min(self.signal_shape) // 2)
        edges = np.linspace(0, fmax, bins + 1)
        idx = np.clip(np.digitize(f[nz], edges) - 1, 0, bins - 1)
        wsum = np.bincount(idx, weights=w[nz], minlength=bins)
        power = np.stack(
            [
                np.bincount(idx, weights=w[nz] * v[nz, c], minlength=bins)
                for c in range(self.channels)
            ],
            axis=1,
        )
        keep = wsum > 0
        return 0.5 * (edges[1:] + edges[:-1])[keep], power[keep] / wsum[keep, None]

    def summary(self) -> dict[str, Any]:
        """Key figures, JSON-ready."""
        S = self.variances.ravel()
        pos = S[S > 0]
        out = {
            "kind": self.kind,
            "signal_shape": list(self.signal_shape),
            "channels": self.channels,
            "n_samples": self.n_samples,
            "dim": self.dim,
            "n_modes": self.n_modes,
            "total_variance": self.total_variance,
            "per_pixel_variance": self.total_variance / self.dim,
            "channel_means": [float(v) for v in self.channel_means],
            "max_variance": float(S.max()),
            "min_positive_variance": float(pos.min()) if pos.size else 0.0,
            "zero_variance_modes": int(np.sum(zero_variance_mask(S))),
            "dynamic_range_db": float(10 * np.log10(S.max() / pos.min())) if pos.size else 0.0,
            "relative_standard_error": float(np.sqrt(2.0 / max(self.n_samples, 1))),
        }
        if self.kind == "fourier" and len(self.signal_shape) >= 1 and min(self.signal_shape) >= 4:
            f, p = self.radial_profile()
            sel = (p[:, 0] > 0) & (f > 0)
            if sel.sum() >= 2:
                out["radial_slope"] = float(np.polyfit(np.log(f[sel]), np.log(p[sel, 0]), 1)[0])
        keep = ("source", "scaling", "items", "skipped")
        out.update({k: v for k, v in self.meta.items() if k in keep})
        out.update(_kind_summary(self.meta))
        return out

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write the spectrum to an ``.npz`` file with its metadata (atomically).

        Examples
        --------
        >>> spec.save("photos32.npz")  # doctest: +SKIP
        >>> Spectrum.load("photos32.npz").n_samples  # doctest: +SKIP
        10000
        """
        meta = {
            "format": _FORMAT,
            "kind": self.kind,
            "signal_shape": list(self.signal_shape),
            "channels": self.channels,
            "n_samples": self.n_samples,
            "meta": self.meta,
        }
        arrays = self._mode_arrays()
        if self.cross_spectrum is not None:
            arrays["cross_spectrum"] = self.cross_spectrum
        if self.eigenvectors is not None:
            arrays["eigenvectors"] = self.eigenvectors
        if self.calibration is not None:
            meta["calibration"] = self.calibration.header()
            arrays.update({f"cal_{k}": v for k, v in self.calibration.arrays().items()})
        try:
            header = json.dumps(meta)
        except TypeError as exc:
            raise SpecschedError(f"spectrum metadata is not JSON-serialisable ({exc})") from None
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, header=np.array(header), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Spectrum:
        """Read a spectrum written by :meth:`save` or ``specsched spectrum -o``."""
        p = Path(path)
        if not p.exists():
            raise SpecschedError(
                f"spectrum file {p} does not exist: make one with `specsched spectrum`"
            )
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in z.files if k != "header"}
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("wrong format tag")
            spec = cls(
                variances=arrays["variances"],
                weights=arrays["weights"],
                means=arrays["means"],
                frequencies=arrays["frequencies"],
                kind=meta["kind"],
                signal_shape=tuple(meta["signal_shape"]),
                channels=int(meta["channels"]),
                n_samples=int(meta["n_samples"]),
                channel_means=arrays["channel_means"],
                cross_spectrum=arrays.get("cross_spectrum"),
                meta=meta.get("meta", {}),
                calibration=_load_calibration(meta, arrays),
                eigenvectors=arrays.get("eigenvectors"),
            )
        except SpecschedError:
            raise
        except Exception as exc:
            raise SpecschedError(
                f"{p} is not a specsched spectrum ({type(exc).__name__}): "
                "make one with `specsched spectrum SOURCE -o FILE.npz`"
            ) from None
        problem = spec.problem()
        if problem:
            raise SpecschedError(
                f"{p} is a damaged spectrum ({problem}): estimate it again with "
                "`specsched spectrum SOURCE -o FILE.npz`"
            )
        return spec

    def _mode_arrays(self) -> dict[str, np.ndarray]:
        """The per-mode and per-channel arrays by their file names."""
        return {
            "variances": self.variances,
            "weights": self.weights,
            "means": self.means,
            "frequencies": self.frequencies,
            "channel_means": self.channel_means,
        }

    def problem(self) -> str | None:
        """What makes this spectrum unusable (inconsistent shapes, non-finite or negative
        values), or None if it is sound. :meth:`load`, :func:`specsched.response` and
        :func:`specsched.fit` check it."""
        shape = np.shape(self.variances)
        arrays = self._mode_arrays()
        for name, a in arrays.items():
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
                return f"{name} is not a real numeric array"
        if self.kind not in get_args(Kind):
            return f"unknown kind {self.kind!r}"
        sig = tuple(self.signal_shape)
        if not (
            1 <= len(sig) <= 2
            and all(isinstance(v, int | np.integer) and v >= 1 for v in sig)
            and isinstance(self.channels, int | np.integer)
            and self.channels >= 1
        ):
            return f"signal shape {sig} with {self.channels} channels"
        C = int(self.channels)
        freq = (*sig[:-1], sig[-1] // 2 + 1)
        want = (*freq, C) if self.kind == "fourier" else (C * int(np.prod(sig)),)
        if shape != want:
            return f"variances of shape {shape}, expected {want} for {sig} with {C} channels"
        for name in ("weights", "means", "frequencies"):
            if np.shape(arrays[name]) != shape:
                return f"{name} of shape {np.shape(arrays[name])}, variances {shape}"
        if np.shape(self.channel_means) != (C,):
            return f"channel_means of shape {np.shape(self.channel_means)}, expected {(C,)}"
        if self.cross_spectrum is not None and np.shape(self.cross_spectrum) != (*freq, C, C):
            return f"cross_spectrum of shape {np.shape(self.cross_spectrum)}"
        for name in ("variances", "weights", "means", "channel_means"):
            if not np.all(np.isfinite(arrays[name])):
                return f"{name} contain NaN or Inf"
        if self.cross_spectrum is not None and not np.all(np.isfinite(self.cross_spectrum)):
            return "cross_spectrum contains NaN or Inf"
        if self.eigenvectors is not None and (
            self.kind != "pca"
            or np.shape(self.eigenvectors) != (shape[0], shape[0])
            or not np.all(np.isfinite(self.eigenvectors))
        ):
            return f"eigenvectors of shape {np.shape(self.eigenvectors)} (or not finite)"
        if np.any(self.variances < 0):
            return "negative variances"
        if np.any(self.weights <= 0):
            return "weights that are not positive"
        if not isinstance(self.n_samples, int | np.integer) or self.n_samples < 0:
            return f"n_samples = {self.n_samples}"
        if self.calibration is not None and self.calibration.gain.shape[1:] != shape:
            return f"a calibration of modes {self.calibration.gain.shape[1:]}, variances {shape}"
        return None

    def check_usable(self) -> None:
        """Raise :class:`SpecschedError` unless a schedule can be designed for this spectrum:
        it is sound (see :meth:`problem`) and its data vary (not every sample the same)."""
        problem = self.problem()
        if problem:
            raise SpecschedError(
                f"the spectrum is unusable ({problem}): estimate it with Spectrum.from_source"
            )
        if not np.any(self.variances > 0):
            raise SpecschedError(
                "the data have zero variance (every sample is the same): "
                "there is nothing for a schedule to fit; check the source (an all-black folder, "
                "a constant array, the wrong --column)"
            )


def is_saved_spectrum(path: str | Path) -> bool:
    """Whether ``path`` is a spectrum ``.npz`` written by :meth:`Spectrum.save`.

    Anything unreadable is not (the data readers then name the problem in one line).
    """
    p = Path(path)
    try:
        if p.suffix != ".npz" or not p.is_file():
            return False
        with np.load(p, allow_pickle=False) as z:
            return "header" in z.files
    except Exception:
        return False


def recorded_pipeline(path: str | Path) -> str | None:
    """The model folder a saved calibration was measured on (``specsched calibrate --pipeline``).

    None for a file that is no saved spectrum, has no calibration, or does not record one. Reads
    only the file's header.
    """
    if not is_saved_spectrum(path):
        return None
    with np.load(Path(path), allow_pickle=False) as z:
        meta = json.loads(str(z["header"]))
    model = meta.get("calibration", {}).get("model", {}) if isinstance(meta, dict) else {}
    pipeline = model.get("pipeline") if isinstance(model, dict) else None
    return str(pipeline) if pipeline else None


def as_spectrum(spec: Any, where: str = "spec") -> Spectrum:
    """``spec`` as a usable :class:`Spectrum` (the check public functions run on their input).

    A Spectrum is checked (:meth:`Spectrum.check_usable`); a path to a saved spectrum is loaded;
    another path or a built-in source name is estimated with :meth:`Spectrum.from_source`, an
    array (or tensor) of samples with :meth:`Spectrum.from_array`. Anything else raises
    :class:`SpecschedError` naming what is wanted.
    """
    if isinstance(spec, str | Path):
        spec = Spectrum.load(spec) if is_saved_spectrum(spec) else Spectrum.from_source(spec)
    elif isinstance(spec, np.ndarray) or is_tensor(spec):
        spec = Spectrum.from_array(spec)
    if not isinstance(spec, Spectrum):
        raise SpecschedError(
            f"{where} must be a Spectrum (or a saved spectrum's path, a data source, an array of "
            f"samples), got {type(spec).__name__}: make one with Spectrum.from_source(...)"
        )
    spec.check_usable()
    return spec


def _load_calibration(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Calibration | None:
    if "calibration" not in meta:
        return None
    from .calibrate import Calibration

    cal_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("cal_")}
    return Calibration.from_parts(meta["calibration"], cal_arrays)


# ------------------------------------------------------------------------------------- estimator
def _ldexp(a: np.ndarray, k: int) -> np.ndarray:
    """``a * 2**k``, exactly, for real or complex arrays."""
    with np.errstate(over="ignore", under="ignore"):
        if np.iscomplexobj(a):
            return np.ldexp(a.real, k) + 1j * np.ldexp(a.imag, k)
        return np.ldexp(a, k)


class SpectrumAccumulator:
    """Streaming, mergeable estimate of a spectrum (DESIGN §2, "Estimator").

    The state is a sum over samples: the count, the sum of ``X X^H`` per frequency and the sum of
    the DC coefficients (``kind="fourier"``), or the sum of ``x`` and of ``x x^T`` (``"pca"``).
    Two accumulators over disjoint data merge exactly into the accumulator of their union.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(H, W)`` or ``(L,)``.
    channels : int
    kind : {"fourier", "pca"}

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = SpectrumAccumulator((8, 8), 1).update(rng.standard_normal((50, 1, 8, 8)))
    >>> b = SpectrumAccumulator((8, 8), 1).update(rng.standard_normal((70, 1, 8, 8)))
    >>> (a + b).n
    120
    """

    def __init__(self, signal_shape: Iterable[int], channels: int, *, kind: Kind = "fourier"):
        self.signal_shape = tuple(int(v) for v in signal_shape)
        self.channels = int(channels)
        if kind not in get_args(Kind):
            raise SpecschedError(f"unknown spectrum kind {kind!r}: use 'fourier' or 'pca'")
        if not 1 <= len(self.signal_shape) <= 2 or min(self.signal_shape) < 1 or self.channels < 1:
            raise SpecschedError(
                f"signals must be 1-D or 2-D with at least one channel (got shape "
                f"{self.signal_shape}, {self.channels} channels)"
            )
        self.kind: Kind = kind
        self.n = 0
        # The sums are kept for x * 2**-exp, exp set by the largest |x| seen, so data of any
        # magnitude float64 can hold accumulate without overflow or underflow; powers of two
        # scale exactly, so the estimate is the same as without scaling.
        self.exp = 0
        C = self.channels
        # per-channel extremes: a constant channel's variances are exactly zero, not rounding
        self.lo = np.full(C, np.inf)
        self.hi = np.full(C, -np.inf)
        # per-pixel sums of x and x^2: O(d) per sample, for :func:`stationarity` at any size
        self.sum_px = np.zeros(C * int(np.prod(self.signal_shape)))
        self.sum_px2 = np.zeros_like(self.sum_px)
        if kind == "fourier":
            freq = (*self.signal_shape[:-1], self.signal_shape[-1] // 2 + 1)
            self.sum_xx = np.zeros((*freq, C, C), dtype=np.complex128)
            self.sum_dc = np.zeros(C, dtype=np.float64)
        else:
            d = C * int(np.prod(self.signal_shape))
            if d > PCA_MAX_DIM:
                raise SpecschedError(
                    f"kind='pca' needs the full {d}x{d} covariance; it is limited to d <= "
                    f"{PCA_MAX_DIM}: use kind='fourier' or smaller signals"
                )
            self.sum_x = np.zeros(d, dtype=np.float64)
            self.sum_xx = np.zeros((d, d), dtype=np.float64)

    @property
    def _axes(self) -> tuple[int, ...]:
        return tuple(range(2, 2 + len(self.signal_shape)))

    def update(self, x: np.ndarray, *, channels_first: bool = True) -> SpectrumAccumulator:
        """Add a batch ``x`` of shape ``(n, C, *signal_shape)`` (float). Returns ``self``."""
        x = np.asarray(x, dtype=np.float64)
        if not channels_first:
            x = np.moveaxis(x, -1, 1)
        if x.shape[1:] != (self.channels, *self.signal_shape):
            raise SpecschedError(
                f"sample shape {x.shape[1:]} differs from the first samples' "
                f"{(self.channels, *self.signal_shape)}: resize all samples to one size (--size)"
            )
        if not np.all(np.isfinite(x)):
            raise SpecschedError("data contain NaN or Inf values: clean or drop those samples")
        if x.size:
            per_channel = (0, *self._axes)
            self.lo = np.minimum(self.lo, x.min(axis=per_channel))
            self.hi = np.maximum(self.hi, x.max(axis=per_channel))
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 0:
            exp = int(np.frexp(peak)[1])
            if self.n == 0 or exp > self.exp:
                self._rescale(exp)
        if self.exp:
            x = np.ldexp(x, -self.exp)
        n = x.shape[0]
        pixels = x.reshape(n, -1)
        self.sum_px += pixels.sum(0)
        self.sum_px2 += np.einsum("ij,ij->j", pixels, pixels)
        if self.kind == "fourier":
            import scipy.fft  # here, not at the top: it costs ~0.3 s of `import specsched`

            X = scipy.fft.rfftn(x, axes=self._axes, norm="ortho", workers=1)  # float64
            # (F, C, n), contiguous: the batched products run about 20 % faster than on the
            # strided view, with the same values (benchmarks/README.md, spectrum_speed.py)
            Xf = np.ascontiguousarray(X.reshape(n, self.channels, -1).transpose(2, 1, 0))
            self.sum_xx += (Xf @ Xf.conj().transpose(0, 2, 1)).reshape(self.sum_xx.shape)
            self.sum_dc += X[(slice(None), slice(None), *([0] * len(self.signal_shape)))].real.sum(
                0
            )
        else:
            flat = x.reshape(n, -1)
            self.sum_x += flat.sum(0)
            self.sum_xx += flat.T @ flat
        self.n += n
        return self

    def _rescale(self, exp: int) -> None:
        """Re-express the sums for data scaled by ``2**-exp`` (exact for powers of two)."""
        if self.n:
            k = self.exp - exp
            self.sum_xx = _ldexp(self.sum_xx, 2 * k)
            self.sum_px, self.sum_px2 = np.ldexp(self.sum_px, k), np.ldexp(self.sum_px2, 2 * k)
            if self.kind == "fourier":
                self.sum_dc = np.ldexp(self.sum_dc, k)
            else:
                self.sum_x = np.ldexp(self.sum_x, k)
        self.exp = exp

    def _copy(self) -> SpectrumAccumulator:
        out = SpectrumAccumulator(self.signal_shape, self.channels, kind=self.kind)
        out.n, out.exp, out.sum_xx = self.n, self.exp, self.sum_xx.copy()
        out.lo, out.hi = self.lo.copy(), self.hi.copy()
        out.sum_px, out.sum_px2 = self.sum_px.copy(), self.sum_px2.copy()
        if self.kind == "fourier":
            out.sum_dc = self.sum_dc.copy()
        else:
            out.sum_x = self.sum_x.copy()
        return out

    def merge(self, other: SpectrumAccumulator) -> SpectrumAccumulator:
        """Exact union of two partial estimates (a new accumulator)."""
        if (other.kind, other.signal_shape, other.channels) != (
            self.kind,
            self.signal_shape,
            self.channels,
        ):
            raise SpecschedError(
                "cannot merge spectra of different kinds or sample shapes: estimate both the same way"
            )
        a, b = self._copy(), other._copy()
        exp = max(a.exp if a.n else b.exp, b.exp if b.n else a.exp)
        a._rescale(exp)
        b._rescale(exp)
        out = SpectrumAccumulator(self.signal_shape, self.channels, kind=self.kind)
        out.n, out.exp = a.n + b.n, exp
        out.lo, out.hi = np.minimum(a.lo, b.lo), np.maximum(a.hi, b.hi)
        out.sum_xx = a.sum_xx + b.sum_xx
        out.sum_px, out.sum_px2 = a.sum_px + b.sum_px, a.sum_px2 + b.sum_px2
        if self.kind == "fourier":
            out.sum_dc = a.sum_dc + b.sum_dc
        else:
            out.sum_x = a.sum_x + b.sum_x
        return out

    __add__ = merge

    def finalize(self, **meta: Any) -> Spectrum:
        """The spectrum of everything added so far (maximum-likelihood normalisation, ``1/n``)."""
        if self.n < 2:
            raise SpecschedError(
                f"a spectrum needs at least 2 samples (got {self.n}): give more data"
            )
        n, C = self.n, self.channels
        P = int(np.prod(self.signal_shape))
        # scale-free ratios: the scaled sums give the data's figures
        meta = {**meta, "stationarity": stationarity(self.sum_px, self.sum_px2, n, C)}
        if self.kind == "pca":
            mean = self.sum_x / n
            cov = self.sum_xx / n - np.outer(mean, mean)
            for c in np.flatnonzero(self.lo == self.hi):  # constant channels: exactly zero
                cov[c * P : (c + 1) * P] = 0.0
                cov[:, c * P : (c + 1) * P] = 0.0
            evals, evecs = np.linalg.eigh(cov)
            evals, evecs = evals[::-1], np.ascontiguousarray(evecs[:, ::-1])
            d = evals.size
            # rounding (and a rank-deficient covariance, n <= d) leaves +-1e-16 x the largest
            # eigenvalue where the variance is zero: make those exact zeros
            evals = np.where(zero_variance_mask(evals), 0.0, evals)
            scaled = Spectrum(
                variances=evals,
                weights=np.ones(d),
                means=evecs.T @ mean,
                frequencies=np.full(d, np.nan),
                kind="pca",
                signal_shape=self.signal_shape,
                channels=C,
                n_samples=n,
                channel_means=mean.reshape(C, P).mean(1),
                meta=dict(meta),
                eigenvectors=evecs,
            )
        else:
            dc_mean = self.sum_dc / n  # = sqrt(P) * mu
            sigma = self.sum_xx / n
            dc = (*([0] * len(self.signal_shape)),)
            sigma[dc] -= np.outer(dc_mean, dc_mean)
            const = self.lo == self.hi  # constant channels: exactly zero, not rounding
            sigma[..., const, :] = 0.0
            sigma[..., :, const] = 0.0
            scaled = Spectrum.from_cross_spectrum(
                sigma, dc_mean / np.sqrt(P), self.signal_shape, n_samples=n, meta=meta
            )
        return self._unscale(scaled)

    def _unscale(self, spec: Spectrum) -> Spectrum:
        """The estimate of the data from that of ``x * 2**-exp``; fails if float64 cannot hold it."""
        import dataclasses

        k = self.exp
        if k == 0:
            return spec
        with np.errstate(over="ignore", under="ignore"):
            out = dataclasses.replace(
                spec,
                variances=np.ldexp(spec.variances, 2 * k),
                means=np.ldexp(spec.means, k),
                channel_means=np.ldexp(spec.channel_means, k),
                cross_spectrum=None
                if spec.cross_spectrum is None
                else _ldexp(spec.cross_spectrum, 2 * k),
            )
        if not (np.all(np.isfinite(out.variances)) and np.all(np.isfinite(out.means))):
            raise SpecschedError(
                f"the data's values (up to about {np.ldexp(1.0, k):.3g}) are too large: their "
                "variance overflows float64; rescale the data (diffusion models expect values "
                "in about [-1, 1])"
            )
        tiny = np.finfo(np.float64).tiny
        if spec.variances.max() > 0 and out.variances.max() < tiny:
            raise SpecschedError(
                f"the data's values (up to about {np.ldexp(1.0, k):.3g}) are too small: their variance "
                "underflows float64; rescale the data (diffusion models expect values in about "
                "[-1, 1])"
            )
        return out
