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

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from ._io import atomic_path
from .errors import SpecschedError

__all__ = [
    "LAYOUTS",
    "Spectrum",
    "SpectrumAccumulator",
    "as_channels_first",
    "infer_layout",
]

Layout = Literal["NL", "NCL", "NHW", "NCHW", "NHWC"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
Kind = Literal["fourier", "pca"]
PCA_MAX_DIM = 4096
_FORMAT = "specsched.spectrum/1"


# ------------------------------------------------------------------------------------- layouts
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


def _to_float(x: np.ndarray) -> tuple[np.ndarray, str]:
    """Float arrays as given; integer images from [0, 255] to [-1, 1]."""
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise SpecschedError(
                "integer data outside [0, 255]: convert it to floats in the scale your model uses"
            )
        return x.astype(np.float64) / 127.5 - 1.0, "uint8 [0, 255] -> [-1, 1]"
    if not np.issubdtype(x.dtype, np.floating):
        raise SpecschedError(f"data of dtype {x.dtype} is not numeric: give float or uint8 arrays")
    return x.astype(np.float64, copy=False), "as given"


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
        Provenance: source, scaling and options.
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

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_array(
        cls,
        x: np.ndarray,
        *,
        layout: Layout | None = None,
        kind: Kind = "fourier",
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
        kind : {"fourier", "pca"}, default "fourier"
            ``"fourier"`` assumes shift invariance (cross-spectra per frequency); ``"pca"`` takes
            the eigenvalues of the full covariance (small, non-stationary data; ``d <= 4096``).
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
        x = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if int(batch_size) < 1:
            raise SpecschedError(f"batch_size must be at least 1 (got {batch_size})")
        batch_size = int(batch_size)
        xc = as_channels_first(x, layout)
        acc = SpectrumAccumulator(xc.shape[2:], xc.shape[1], kind=kind)
        scaling = "as given"
        for i in range(0, xc.shape[0], batch_size):
            batch, scaling = _to_float(np.asarray(xc[i : i + batch_size]))
            acc.update(batch, channels_first=True)
        return acc.finalize(source=source, scaling=scaling)

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
            ``kind``, ``workers``, ``dask``, ``dask_timeout``, ``limit``, ``batch_size``,
            ``strict`` and ``progress`` go to :func:`specsched.data.stream.estimate`; the others
            describe the source (``size``, ``crop``, ``channels``, ``seed``, ``layout``,
            ``sample_rate``, ``segment``, ``column``, ``vae``, ``vae_scaling_factor``, the
            built-in loaders' options, ...).

        Examples
        --------
        >>> import specsched as ss
        >>> spec = ss.Spectrum.from_source("synthetic:powerlaw", n=200, size=8, batch_size=50)
        >>> spec.n_samples
        200
        >>> ss.Spectrum.from_source("images/", size=64, workers=4)  # doctest: +SKIP
        """
        from .data import ESTIMATE_OPTIONS, open_source
        from .data.stream import estimate

        est = {k: options.pop(k) for k in ESTIMATE_OPTIONS if k in options}
        return estimate(open_source(source, **options), **est)

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
            "zero_variance_modes": int(np.sum(S <= 0)),
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
        arrays = {
            "variances": self.variances,
            "weights": self.weights,
            "means": self.means,
            "frequencies": self.frequencies,
            "channel_means": self.channel_means,
        }
        if self.cross_spectrum is not None:
            arrays["cross_spectrum"] = self.cross_spectrum
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
            return cls(
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
            )
        except Exception as exc:
            raise SpecschedError(
                f"{p} is not a specsched spectrum ({type(exc).__name__}): "
                "make one with `specsched spectrum SOURCE -o FILE.npz`"
            ) from None


# ------------------------------------------------------------------------------------- estimator
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
        C = self.channels
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
        n = x.shape[0]
        if self.kind == "fourier":
            import scipy.fft  # here, not at the top: it costs ~0.3 s of `import specsched`

            X = scipy.fft.rfftn(x, axes=self._axes, norm="ortho", workers=1)  # float64
            Xf = X.reshape(n, self.channels, -1).transpose(2, 1, 0)  # (F, C, n)
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
        out = SpectrumAccumulator(self.signal_shape, self.channels, kind=self.kind)
        out.n = self.n + other.n
        out.sum_xx = self.sum_xx + other.sum_xx
        if self.kind == "fourier":
            out.sum_dc = self.sum_dc + other.sum_dc
        else:
            out.sum_x = self.sum_x + other.sum_x
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
        if self.kind == "pca":
            mean = self.sum_x / n
            cov = self.sum_xx / n - np.outer(mean, mean)
            evals, evecs = np.linalg.eigh(cov)
            evals, evecs = evals[::-1], evecs[:, ::-1]
            d = evals.size
            return Spectrum(
                variances=np.clip(evals, 0, None),
                weights=np.ones(d),
                means=evecs.T @ mean,
                frequencies=np.full(d, np.nan),
                kind="pca",
                signal_shape=self.signal_shape,
                channels=C,
                n_samples=n,
                channel_means=mean.reshape(C, P).mean(1),
                meta=dict(meta),
            )
        dc_mean = self.sum_dc / n  # = sqrt(P) * mu
        sigma = self.sum_xx / n
        dc = (*([0] * len(self.signal_shape)),)
        sigma[dc] -= np.outer(dc_mean, dc_mean)
        return Spectrum.from_cross_spectrum(
            sigma, dc_mean / np.sqrt(P), self.signal_shape, n_samples=n, meta=meta
        )
