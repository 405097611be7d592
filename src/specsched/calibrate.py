"""What a real denoiser does to every mode, measured once, and the response model built from it.

A trained network is not the Gaussian posterior mean (DESIGN §3, "Beyond the Gaussian model").
:func:`calibrate` runs it on real data noised to a grid of levels and measures, for every mode of
the data's spectrum (in the spectrum's own basis: Fourier frequencies and the eigenvectors of each
frequency's cross-spectrum), the regression of its output on its input mode,

    Y_k = g_k X_k + b_k + r_k,    X = U^H FFT(x - alpha mu),  Y = U^H FFT(x0_hat - mu),

with ``g_k`` the network's effective linear gain (the exact Gaussian denoiser has
``g = alpha S / (alpha^2 S + s^2)``), ``b_k`` its mean bias (non-zero on the DC modes when the
network is off in brightness), ``R_k = E|r_k|^2`` the power of what it adds beyond the linear part
(edges inferred from the other modes, and its errors), and ``c_k``, the correlation of the residual
``r_k`` between neighbouring levels of the grid along the same noised sample: how coherently the
non-linear output evolves with the level.

:class:`CalibratedModeDenoiser` is the response model: on the coefficient states of
:mod:`specsched.response` a denoiser call returns

    x0_hat = m + g(lambda) (x - alpha m) + b(lambda) + sqrt(R(lambda)) u_i,
    u_i = rho_i u_{i-1} + sqrt(1 - rho_i^2) e_i,   rho_i = c(lambda)^(|lambda_i - lambda_{i-1}| / dlambda),

where each ``e_i`` is a new independent source (a new row) and ``u`` carries the non-linear output
from call to call with the measured coherence: refining the steps makes consecutive calls coherent
(``rho -> 1``) instead of averaging independent draws away. Before it is scaled, ``u_i`` is
projected off the state ``x`` it is added to: a regression residual is uncorrelated with the mode it
was regressed on. Without that projection a coherent residual would correlate with the state it
has already entered and inflate every mode's variance even for the exact posterior mean, whose
probability-flow ODE reproduces the data's variance exactly in the limit of small steps (measured:
the unprojected model's error on the mixture oracle at 20 steps was 6x the Gaussian model's). The gain is the exact Gaussian gain
plus the measured deviation, so only a smooth deviation is interpolated between grid levels, and a
calibration of the exact Gaussian denoiser gives back the closed-form response.

**The samples' draw** is measured and reported, not corrected. A few hundred samples of real
data hold more or fewer high-contrast images than the data do, and every mode's regression gain
can follow that common draw, an error the per-mode standard errors (independent across modes)
do not see: the benchmark mixture's 200 calibration samples carry 1.17x its power, and the exact
denoiser's gain, whose population value is the Gaussian gain, came out 6-11 % above it (median
over modes) at log-SNR 0-5, so that the model predicts the converged sampler of that exact
denoiser at 1.05-1.17x the data's power (benchmarks/calibration_draw.py). ``meta["draw"]``
holds the samples' power over the spectrum's less 1; more ``num_samples`` make it smaller. Two
corrections were tried and not adopted (benchmarks/RESULTS.md, "The samples' draw"): one also
removed real deviations of a network that misjudges the noise, the other made the mixture's
fits worse.

**The network's own paths.** A sampler does not feed the network noised data: its states carry
what the network generated at the calls before. :func:`calibrate` therefore also runs the network
along its own sampling paths (``trajectories`` of them, DPM-Solver++(2M) through the grid levels
from the noisiest) and measures the same regression on their states, with their power ``P`` about
``alpha m`` relative to noised data's ``alpha^2 S + s^2``. Where the network is close to a
posterior mean its paths look like noised data and the two measurements agree; where it fails (an
epsilon-prediction network at its noisiest levels) its paths carry its own error, and on them it
keeps and amplifies that error, which no measurement on noised data shows. The model takes, mode
by mode and call by call, the noised-data terms for a state whose power is noised data's, the
paths' terms for one whose power is the paths', and a mix in between: weight
``w = clip(q / d, 0, 1) max(0, 1 - 3 sqrt(2 / n) / |d|)`` with ``q`` the state's relative power
excess, ``d`` the paths' and ``n`` the number of paths, so that only the part of the paths'
excess beyond three times its sampling error counts (on the exact mixture denoiser the paths
look like noised data, and a smaller margin let the 100 paths' sampling noise move its fits).
Measured on the benchmark's networks (benchmarks/README.md, calibration.py and sampling_states.py).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._arrays import zero_variance_mask
from .errors import SpecschedError
from .levels import LevelRange, levels_from_log_snr
from .samplers import Denoiser

__all__ = ["CalibratedModeDenoiser", "Calibration", "calibrate"]

Tensor = torch.Tensor

#: default grid: 24 levels uniform in log-SNR over the model's range (about 0.85 apart for a
#: linear-1000 VP model). The Gaussian part of the gain is exact at every level; only the network's
#: deviation from it is interpolated, and that varies slowly in log-SNR.
DEFAULT_LEVELS = 24
DEFAULT_SAMPLES = 200
#: log-SNR span used when a range is unbounded (flow models starting at t = 1)
_LAM_FLOOR = -14.0

#: how the note of :meth:`Calibration.failure_note` begins (``verify`` drops it: it has checked)
FAILURE_NOTE = "the schedule starts where the calibrated network fails"

_ARRAYS = ("log_snr", "gain", "bias", "residual", "corr", "gain_se", "bias_se", "residual_se")
#: the regression on the network's own sampling paths (:func:`calibrate`'s ``trajectories``):
#: the same quantities, and the paths' power over noised data's
_TRAJ_ARRAYS = (
    "traj_gain",
    "traj_bias",
    "traj_residual",
    "traj_gain_se",
    "traj_bias_se",
    "traj_residual_se",
    "traj_power",
)

#: default number of the network's own sampling paths measured besides the noised data
#: (:func:`calibrate`): 100 paths through the 24 grid levels are 2,400 network evaluations
DEFAULT_TRAJECTORIES = 100


@dataclass(frozen=True, eq=False)
class Calibration:
    """Per-mode measurements of a denoiser on a grid of levels (see the module docstring).

    Arrays of shape ``(K, *mode_shape)`` (``mode_shape`` is ``spectrum.variances.shape``) hold one
    row per grid level, in increasing log-SNR (noisiest first).

    Attributes
    ----------
    log_snr : ndarray, shape (K,)
        The grid, increasing.
    gain, bias, residual : ndarray
        ``g``, ``b`` and ``R`` of every mode at every level.
    corr : ndarray, shape (K - 1, *mode_shape)
        Correlation of the non-linear residual between grid levels ``j`` and ``j + 1``.
    gain_se, bias_se, residual_se : ndarray
        Their standard errors.
    num_samples : int
        Data samples noised at every level.
    evaluations : int
        Network evaluations (samples, not batches).
    model : dict
        What was calibrated: process, training schedule, prediction type, sample shape, name.
    meta : dict
        Seconds, seed and options; ``draw``, the calibration samples' power over the
        spectrum's less 1 (absent from files calibrated before it).
    trajectories : int
        The network's own sampling paths measured (0: none; files before them have none).
    traj_gain, traj_bias, traj_residual, traj_gain_se, traj_bias_se, traj_residual_se : ndarray or None
        The same regression on the states of those paths at every grid level.
    traj_power : ndarray or None
        The power of those states about ``alpha m`` over noised data's ``alpha^2 S + s^2``.
    """

    log_snr: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    residual: np.ndarray
    corr: np.ndarray
    gain_se: np.ndarray
    bias_se: np.ndarray
    residual_se: np.ndarray
    num_samples: int
    evaluations: int
    model: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    trajectories: int = 0
    traj_gain: np.ndarray | None = None
    traj_bias: np.ndarray | None = None
    traj_residual: np.ndarray | None = None
    traj_gain_se: np.ndarray | None = None
    traj_bias_se: np.ndarray | None = None
    traj_residual_se: np.ndarray | None = None
    traj_power: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name (for saving)."""
        names = _ARRAYS + (_TRAJ_ARRAYS if self.trajectories else ())
        return {name: getattr(self, name) for name in names}

    def header(self) -> dict[str, Any]:
        """The scalars and descriptions (for saving)."""
        return {
            "num_samples": self.num_samples,
            "evaluations": self.evaluations,
            "trajectories": self.trajectories,
            "model": self.model,
            "meta": self.meta,
        }

    @classmethod
    def from_parts(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Calibration:
        """Inverse of :meth:`header` and :meth:`arrays`."""
        missing = [a for a in _ARRAYS if a not in arrays]
        if missing:
            raise SpecschedError(
                f"the calibration is missing {', '.join(missing)}: calibrate again with "
                "`specsched calibrate`"
            )
        trajectories = int(header.get("trajectories", 0))
        names = _ARRAYS + (_TRAJ_ARRAYS if trajectories else ())
        if trajectories and any(a not in arrays for a in _TRAJ_ARRAYS):
            raise SpecschedError(
                "the calibration is missing its trajectory arrays: calibrate again with "
                "`specsched calibrate`"
            )
        arr = {k: np.asarray(arrays[k], dtype=np.float64) for k in names}
        K = arr["log_snr"].size
        shape = arr["gain"].shape
        bad = [
            k for k in names[1:] if arr[k].shape != ((K - 1, *shape[1:]) if k == "corr" else shape)
        ]
        if K < 2 or shape[0] != K or bad or not all(np.all(np.isfinite(a)) for a in arr.values()):
            raise SpecschedError(
                "the calibration's arrays are inconsistent or not finite: calibrate again with "
                "`specsched calibrate`"
            )
        return cls(
            **arr,
            trajectories=trajectories,
            num_samples=int(header.get("num_samples", 0)),
            evaluations=int(header.get("evaluations", 0)),
            model=dict(header.get("model", {})),
            meta=dict(header.get("meta", {})),
        )

    @property
    def levels(self) -> LevelRange | None:
        """The level range of the calibrated model, if it was recorded."""
        from .levels import TrainSchedule

        m = self.model
        if m.get("train_schedule"):
            ts = m["train_schedule"]
            train = TrainSchedule(
                ts["name"],
                int(ts["num_train_timesteps"]),
                beta_start=ts.get("beta_start"),
                beta_end=ts.get("beta_end"),
            )
            return LevelRange.discrete(train)
        if "lam_lo" in m and "process" in m:
            return LevelRange(m["process"], float(m["lam_lo"]), float(m["lam_hi"]))
        return None

    def _grid_levels(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """``alpha`` and ``s`` of the grid levels, shape ``(K, 1, ..., 1)`` (``ndim`` ones)."""
        a, s = levels_from_log_snr(torch.from_numpy(self.log_snr), self.model.get("process", "vp"))
        shape = (-1, *([1] * ndim))
        return a.numpy().reshape(shape), s.numpy().reshape(shape)

    def gaussian_gain(self, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``alpha`` and the exact Gaussian gain ``alpha S / (alpha^2 S + s^2)`` at every grid
        level (DESIGN §2), in the calibrated model's process, shape ``(K, *variances.shape)``."""
        alpha, s = self._grid_levels(np.ndim(variances))
        return alpha, alpha * variances / (alpha**2 * variances + s**2)

    def output_power(
        self, variances: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The network's output power about the data's mean over the data's variance, per level.

        On noised data, ``x0_hat`` has power ``g^2 (alpha^2 S + s^2) + R + b^2`` about the
        data's mean in every mode. An exact denoiser, the posterior mean, has at most the data's
        variance ``S`` there (its variance is ``S`` less the posterior variance, and its mean is
        the data's), so a total above 1 is the network's own error.

        Returns
        -------
        ratio, se : ndarray, shape (K,)
            The weighted total over the data's total variance at each grid level, and its
            standard error from the calibration's sampling error.
        """
        S = np.asarray(variances, dtype=np.float64)
        alpha, s = self._grid_levels(S.ndim)
        vx = alpha**2 * S + s**2  # the noised mode's variance
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), S.shape)
        axes = tuple(range(1, self.gain.ndim))
        power = self.gain**2 * vx + self.residual + self.bias**2
        var = (
            (2 * self.gain * vx * self.gain_se) ** 2
            + self.residual_se**2
            + (2 * self.bias * self.bias_se) ** 2
        )
        total = float(np.sum(w * S))
        return np.sum(w * power, axis=axes) / total, np.sqrt(np.sum(w**2 * var, axis=axes)) / total

    def failing_levels(self, variances: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The noisiest grid levels where the network fails: a boolean mask of the levels, from
        the noisiest one on until the first that passes, where the network's output has more
        power about the data's mean than the data's variance by more than 3 standard errors
        (:meth:`output_power`), which no exact denoiser has. What the network returns there is
        mostly its own error: typically an epsilon-prediction network at its noisiest levels,
        whose x0 estimate multiplies the error of its noise estimate by ``1 / alpha``. (Near
        the clean end a network that returns its input has a little more power than the data,
        the noise it leaves; that is not counted.)"""
        return self._failing(*self.output_power(variances, weights))

    def failure_edge(self, variances: np.ndarray, weights: np.ndarray) -> float | None:
        """The log-SNR of the least noisy grid level of :meth:`failing_levels` (the network
        fails from the top of its range down to there), or None where it does not fail."""
        mask = self.failing_levels(variances, weights)
        return float(self.log_snr[mask].max()) if mask.any() else None

    def passing_edge(self, variances: np.ndarray, weights: np.ndarray) -> float | None:
        """The log-SNR where the network stops failing at the top of its range: between the
        least noisy level of :meth:`failing_levels` and the noisiest one that passes, where its
        output power about the data's mean (:meth:`output_power`) falls to the data's variance,
        interpolating the log of that power linearly in log-SNR (the power of a network that
        fails there grows about exponentially with the noise). None where the network does not
        fail at the top, or fails at every level.
        """
        ratio, se = self.output_power(variances, weights)
        mask = self._failing(ratio, se)
        order = np.argsort(self.log_snr)  # noisiest first
        n_fail = int(mask.sum())
        if n_fail == 0 or n_fail == order.size:
            return None
        jf, jp = order[n_fail - 1], order[n_fail]
        lf, lp = self.log_snr[jf], self.log_snr[jp]
        if ratio[jp] >= 1.0:  # passes within its uncertainty, with more power than the data's
            return float(lp)
        rf, rp = np.log(ratio[jf]), np.log(ratio[jp])  # rf > 0 > rp
        return float(lf + (lp - lf) * rf / (rf - rp))

    def _failing(self, ratio: np.ndarray, se: np.ndarray) -> np.ndarray:
        """:meth:`failing_levels` from :meth:`output_power`'s ``ratio`` and ``se``."""
        over = ratio > 1.0 + 3.0 * se
        mask = np.zeros(ratio.shape, dtype=bool)
        for j in np.argsort(self.log_snr):  # noisiest first
            if not over[j]:
                break
            mask[j] = True
        return mask

    def summary(self, variances: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
        """Figures a person reads: where the network departs from the Gaussian model."""
        lam = self.log_snr
        alpha, g_gauss = self.gaussian_gain(variances)
        # zero-variance modes (constant pixels: the border of MNIST digits) have no relative power
        w = np.where(zero_variance_mask(variances), 0.0, weights)
        w = w / w.sum()
        nonlinear = np.sum(
            w * self.residual / np.maximum(variances, 1e-300),
            axis=tuple(range(1, self.residual.ndim)),
        )
        rel_gain = np.sum(
            w * np.abs(self.gain - g_gauss) * alpha / np.maximum(alpha * g_gauss + 1e-3, 1e-300),
            axis=tuple(range(1, self.gain.ndim)),
        )
        ratio, se = self.output_power(variances, weights)
        failing = self._failing(ratio, se)
        paths = None
        if self.trajectories:
            # the paths' weighted power over noised data's, per level
            alpha_l, s_l = self._grid_levels(np.ndim(variances))
            noised = np.asarray(weights) * (alpha_l**2 * variances + s_l**2)
            axes = tuple(range(1, noised.ndim))
            paths = [
                float(v) for v in np.sum(noised * self.traj_power, axis=axes) / noised.sum(axes)
            ]
        return {
            "levels": int(lam.size),
            "log_snr_range": [float(lam[0]), float(lam[-1])],
            "num_samples": self.num_samples,
            "trajectories": self.trajectories,
            "own_paths_power_by_level": paths,
            # the calibration samples' power over the spectrum's: the gains can follow that
            # draw at every mode (None: calibrated before it was measured)
            "samples_power_over_spectrum": (
                1.0 + self.meta["draw"] if "draw" in self.meta else None
            ),
            "evaluations": self.evaluations,
            "seconds": self.meta.get("seconds"),
            "residual_over_variance_by_level": [float(v) for v in nonlinear],
            "gain_deviation_by_level": [float(v) for v in rel_gain],
            "output_over_data_by_level": [float(v) for v in ratio],
            # the least noisy level of the noisiest ones where the network fails, and its worst
            "fails_up_to_log_snr": float(lam[failing].max()) if failing.any() else None,
            "fails_up_to": self._where(float(lam[failing].max())) if failing.any() else None,
            "fails_worst_output_over_data": float(ratio[failing].max()) if failing.any() else None,
        }

    def _where(self, lam: float) -> str:
        """``log-SNR -5.92``, with the timestep of a discrete model: ``log-SNR -5.92 (t = 764)``."""
        levels = self.levels
        if levels is None or levels.train is None:
            return f"log-SNR {lam:.2f}"
        t = float(levels.train.timestep_of_log_snr(np.array([lam]))[0])
        return f"log-SNR {lam:.2f} (t = {t:.0f})"

    def failure_note(
        self, variances: np.ndarray, weights: np.ndarray, log_snr0: float
    ) -> str | None:
        """What to tell a user whose schedule starts at ``log_snr0`` where the network fails
        (:meth:`failing_levels`), or None."""
        ratio, se = self.output_power(variances, weights)
        failing = self._failing(ratio, se)
        if not failing.any() or log_snr0 > float(self.log_snr[failing].max()):
            return None
        at = float(np.interp(log_snr0, self.log_snr, ratio))
        return (
            f"{FAILURE_NOTE}: its output there has "
            f"{at:.3g}x the data's variance, where an exact denoiser's is at most 1x (it fails "
            f"down to {self._where(float(self.log_snr[failing].max()))}). How that error grows "
            "along the "
            "sampler is what the calibrated model predicts least well (benchmarks/README.md, "
            "sampling_states.py: a third of the output variance sampling measured, on a network "
            "at 85x; within 10 % on one at 17x); check the schedule on the network with --verify"
        )


# ----------------------------------------------------------------------------- the mode basis
def _basis(spectrum: Any) -> _Basis | _PCABasis:
    """The coefficient map of ``spectrum``'s modes (Fourier or PCA)."""
    if spectrum.kind == "pca":
        return _PCABasis(spectrum)
    return _Basis(spectrum)


class _PCABasis:
    """Coefficients of signals in a PCA spectrum's modes: ``V^T x.ravel()`` (real)."""

    def __init__(self, spectrum: Any):
        if spectrum.eigenvectors is None:
            raise SpecschedError(
                "calibration in PCA modes needs the spectrum's eigenvectors, which this spectrum "
                "lacks (saved by an older specsched): estimate it again with `specsched spectrum`"
            )
        V = np.asarray(spectrum.eigenvectors, dtype=np.float64)
        self.V = torch.from_numpy(V)  # (d, d), one column per mode
        # the mean image: V is orthonormal and the modes' means are V^T mean
        self.mean = torch.from_numpy(V @ np.asarray(spectrum.means, dtype=np.float64))

    def __call__(self, x: Tensor, shift: float) -> Tensor:
        """Mode coefficients of ``x - shift * mean``, shape ``(B, d)``, real."""
        return (x.reshape(x.shape[0], -1) - shift * self.mean) @ self.V


class _Basis:
    """Coefficients of signals in a Fourier spectrum's modes: ``U(k)^H FFT_ortho(x)``."""

    def __init__(self, spectrum: Any):
        if spectrum.kind != "fourier" or spectrum.cross_spectrum is None:
            raise SpecschedError(
                "calibration needs a Fourier spectrum with cross-spectra or a PCA spectrum; "
                "estimate the spectrum again with `specsched spectrum`"
            )
        self.signal_shape = tuple(spectrum.signal_shape)
        self.channels = int(spectrum.channels)
        self.axes = tuple(range(-len(self.signal_shape), 0))
        sigma = np.asarray(spectrum.cross_spectrum)
        _, u = np.linalg.eigh(0.5 * (sigma + np.conj(np.swapaxes(sigma, -1, -2))))
        # eigenvalues ascending -> the spectrum stores them largest first
        self.U = torch.from_numpy(u[..., ::-1].copy())  # (*F, C, C)
        self.mu = torch.from_numpy(np.asarray(spectrum.channel_means, dtype=np.float64))

    def __call__(self, x: Tensor, shift: float) -> Tensor:
        """Mode coefficients of ``x - shift * mu``, shape ``(B, *F, C)``, complex."""
        mu = self.mu.reshape(1, -1, *([1] * len(self.signal_shape)))
        X = torch.fft.rfftn(x - shift * mu, dim=self.axes, norm="ortho")  # (B, C, *F)
        X = X.movedim(1, -1).unsqueeze(-1)  # (B, *F, C, 1)
        return (self.U.conj().transpose(-1, -2) @ X).squeeze(-1)


def _grid(levels: LevelRange, num_levels: int) -> np.ndarray:
    lo = levels.lam_lo if math.isfinite(levels.lam_lo) else _LAM_FLOOR
    return np.linspace(lo, levels.lam_hi, int(num_levels))


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpecschedError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def calibrate(
    spectrum: Any,
    denoiser: Denoiser,
    data: np.ndarray,
    *,
    levels: LevelRange,
    num_levels: int = DEFAULT_LEVELS,
    num_samples: int = DEFAULT_SAMPLES,
    trajectories: int | None = None,
    batch_size: int = 200,
    seed: int = 0,
    model: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Measure a denoiser per mode and level; return the spectrum with the calibration attached.

    Parameters
    ----------
    spectrum : Spectrum
        The data's spectrum; its modes are the basis of the measurement: Fourier frequencies
        and the eigenvectors of their cross-spectra, or the covariance's eigenvectors (PCA:
        ``X = V^T (x - alpha m)``, ``Y = V^T (x0_hat - m)`` with ``m`` the mean image).
    denoiser : callable
        ``denoise(x, alpha, s) -> x0_hat`` on float64 tensors ``(B, C, *signal_shape)``, e.g. a
        :class:`~specsched.integrations.networks.ModelDenoiser`.
    data : ndarray, shape (n, C, *signal_shape)
        Real clean samples in the model's scale (e.g. [-1, 1]); ``num_samples`` of them are used.
    levels : LevelRange
        The model's trained range; the grid spans it.
    num_levels : int, default 24
        Grid levels, uniform in log-SNR.
    num_samples : int, default 200
        Samples noised at every level (the same samples and noise at every level, so that the
        residual's coherence between levels can be measured).
    trajectories : int, optional
        The network's own sampling paths measured besides (default: 100, or ``num_samples`` if
        fewer; 0 for none): from the first ``trajectories`` of
        those samples noised to the noisiest level, DPM-Solver++(2M) with the network through
        the grid levels, and the same regression on its states at every level. A sampler feeds
        the network states that carry what the network generated before, and on them a network
        can behave otherwise than on noised data (one that fails at its noisiest levels keeps
        and amplifies its own error there); the response model blends the two measurements by
        the state's power (:class:`CalibratedModeDenoiser`). 0 measures noised data alone.
        Network evaluations are ``num_levels * (num_samples + trajectories)``.
    batch_size : int, default 200
        Samples per denoiser call.
    seed : int, default 0
        Chooses the samples and the noise.
    model : dict, optional
        Description of the calibrated model stored with the result (process and training
        schedule are added from ``levels``).
    progress : callable, optional
        ``progress(done, total)`` after every batch (in network evaluations).

    Returns
    -------
    Spectrum
        ``spectrum`` with ``calibration`` set: :func:`specsched.fit`, :func:`specsched.compare`
        and :func:`specsched.response` then use the calibrated response model.

    Examples
    --------
    >>> import specsched as ss
    >>> x = ss.Spectrum.from_source  # doctest: +SKIP
    >>> spec = ss.Spectrum.from_array(data)  # doctest: +SKIP
    >>> cal = ss.calibrate(spec, denoiser, data, levels=ss.LevelRange.discrete("linear"))  # doctest: +SKIP
    >>> ss.fit(cal, steps=10, sampler="dpmpp_2m").schedule.timesteps  # doctest: +SKIP
    """
    num_levels = _check_count("num_levels", num_levels, 2)
    num_samples = _check_count("num_samples", num_samples, 2)
    trajectories = trajectory_count(trajectories, num_samples)
    batch_size = _check_count("batch_size", batch_size, 1)
    basis = _basis(spectrum)
    x0_all = np.asarray(data)
    want = (spectrum.channels, *spectrum.signal_shape)
    if x0_all.ndim != len(want) + 1 or tuple(x0_all.shape[1:]) != want:
        raise SpecschedError(
            f"calibration data of shape {x0_all.shape} do not match the spectrum's samples "
            f"{want}: give samples (n, {', '.join(map(str, want))}) of the data the spectrum "
            "was estimated on"
        )
    if x0_all.shape[0] < num_samples:
        raise SpecschedError(
            f"{x0_all.shape[0]} calibration samples is fewer than num_samples={num_samples}: "
            "give more data or lower --num-samples"
        )
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(x0_all.shape[0], num_samples, replace=False))
    x0 = torch.from_numpy(np.ascontiguousarray(x0_all[idx], dtype=np.float64))
    if not torch.all(torch.isfinite(x0)):
        raise SpecschedError("the calibration data contain NaN or Inf: clean the data first")
    gen = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    grid = _grid(levels, num_levels)
    mode_shape = tuple(spectrum.variances.shape)
    weights = np.asarray(spectrum.weights)
    dof = np.where(weights > 1, 2.0, 1.0)  # real degrees of freedom per sample and mode
    out = {k: np.empty((num_levels, *mode_shape)) for k in _ARRAYS[1:] if k != "corr"}
    corr = np.empty((num_levels - 1, *mode_shape))
    S = np.asarray(spectrum.variances, dtype=np.float64)
    # the clean samples' mean power in every mode: their draw (reported, see the docstring)
    P0 = sum(
        (basis(x0[i : i + batch_size], 1.0).abs() ** 2).sum(0)
        for i in range(0, num_samples, batch_size)
    )
    draw = _draw(np.asarray(P0) / num_samples, S)
    total, done = num_levels * (num_samples + trajectories), 0
    t0 = time.perf_counter()
    prev_r: Tensor | None = None
    prev_R: Tensor | None = None
    for j, lam in enumerate(grid):
        a_t, s_t = levels_from_log_snr(
            torch.tensor(float(lam), dtype=torch.float64), levels.process
        )
        alpha, s = float(a_t), float(s_t)
        xs, ys = [], []
        for start in range(0, num_samples, batch_size):
            xb = alpha * x0[start : start + batch_size] + s * eps[start : start + batch_size]
            yb = denoiser(
                xb, torch.tensor(alpha, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
            )
            yb = torch.as_tensor(yb).to(torch.float64)
            if yb.shape != xb.shape:
                raise SpecschedError(
                    f"the denoiser returned shape {tuple(yb.shape)} for input {tuple(xb.shape)}: "
                    "the model's sample shape must be the data's"
                )
            if not torch.all(torch.isfinite(yb)):
                raise SpecschedError(
                    f"the denoiser returned NaN or Inf at log-SNR {lam:.2f}: check the model "
                    "(its prediction type and training schedule) before calibrating"
                )
            xs.append(basis(xb, alpha))
            ys.append(basis(yb, 1.0))
            done += xb.shape[0]
            if progress is not None:
                progress(done, total)
        X, Y = torch.cat(xs), torch.cat(ys)  # (n, *F, C) complex
        fitted, r = _regress(X, Y, dof)
        R = torch.from_numpy(fitted["residual"])
        if prev_r is not None:
            num = (prev_r.conj() * r).real.mean(0)
            den = torch.sqrt(prev_R * R).clamp_min(1e-300)
            corr[j - 1] = (num / den).clamp(-1.0, 1.0).numpy()
        prev_r, prev_R = r, R
        for k, v in fitted.items():
            out[k][j] = v
    if trajectories:
        traj = _trajectories(
            S,
            dof,
            denoiser,
            x0[:trajectories],
            eps[:trajectories],
            grid,
            levels,
            basis,
            batch_size,
            lambda n: progress(done + n, total) if progress is not None else None,
        )
        out.update({f"traj_{k}": v for k, v in traj.items()})
    seconds = time.perf_counter() - t0
    desc = dict(model or {})
    desc.setdefault("process", levels.process)
    desc.setdefault("lam_lo", float(levels.lam_lo))
    desc.setdefault("lam_hi", float(levels.lam_hi))
    if levels.train is not None:
        desc.setdefault("train_schedule", levels.train.to_dict())
    desc.setdefault("sample_shape", list(want))
    cal = Calibration(
        log_snr=grid,
        corr=corr,
        num_samples=num_samples,
        evaluations=total,
        trajectories=trajectories,
        model=desc,
        meta={
            "seconds": seconds,
            "seed": int(seed),
            "num_levels": num_levels,
            "draw": draw,
        },
        **out,
    )
    return dataclasses.replace(spectrum, calibration=cal)


def trajectory_count(trajectories: int | None, num_samples: int) -> int:
    """The number of the network's own paths :func:`calibrate` measures: ``trajectories``, or
    by default 100 (``num_samples`` if fewer); 0 or 2 to ``num_samples``.

    Raises
    ------
    SpecschedError
        For any other count.
    """
    if trajectories is None:
        return min(DEFAULT_TRAJECTORIES, num_samples)
    if trajectories != 0:
        trajectories = _check_count("trajectories", trajectories, 2)
    if trajectories > num_samples:
        raise SpecschedError(
            f"trajectories={trajectories} is more than num_samples={num_samples}: the paths start "
            "from the calibration's samples; lower trajectories or raise num_samples"
        )
    return int(trajectories)


def _regress(X: Tensor, Y: Tensor, dof: np.ndarray) -> tuple[dict[str, np.ndarray], Tensor]:
    """Per-mode regression ``Y = g X + b + r`` over samples (axis 0) with its standard errors;
    returns them by name and the residual ``r``."""
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    vx = (Xc.abs() ** 2).mean(0)
    g = (Xc.conj() * Yc).real.mean(0) / vx.clamp_min(1e-300)
    b = (Y.mean(0) - g * X.mean(0)).real
    r = Yc - g * Xc
    R = (r.abs() ** 2).mean(0).numpy()
    n_eff = n * dof
    return {
        "gain": g.numpy(),
        "bias": b.numpy(),
        "residual": R,
        "gain_se": np.sqrt(R / np.maximum(n_eff * vx.numpy(), 1e-300)),
        "bias_se": np.sqrt(R / n),
        "residual_se": R * np.sqrt(2.0 / n_eff),
    }, r


def _draw(P: np.ndarray, S: np.ndarray) -> float:
    """The calibration samples' draw: their mean power ``P`` in each mode over the spectrum's
    ``S``, less 1, averaged over the modes with variance."""
    ok = S > 0
    return float(np.mean(P[ok] / S[ok]) - 1.0) if np.any(ok) else 0.0


def _trajectories(
    S: np.ndarray,
    dof: np.ndarray,
    denoiser: Denoiser,
    x0: Tensor,
    eps: Tensor,
    grid: np.ndarray,
    levels: LevelRange,
    basis: Callable[[Tensor, float], Tensor],
    batch_size: int,
    progress: Callable[[int], None],
) -> dict[str, np.ndarray]:
    """The regression of :func:`calibrate` on the network's own sampling paths (``S``: the
    modes' variances, ``dof``: their real degrees of freedom per sample).

    ``x0`` noised to the noisiest grid level starts DPM-Solver++(2M) through the grid levels
    (then to the clean end), with ``denoiser`` at every step; the states it passes to the network
    at each level are regressed on as the noised data are. Also returns ``power``: those states'
    power about ``alpha m`` over noised data's, ``alpha^2 S + s^2``.
    """
    from .samplers import get_sampler

    a, s = levels_from_log_snr(torch.from_numpy(np.asarray(grid, dtype=np.float64)), levels.process)
    alpha = torch.cat([a, torch.ones(1, dtype=torch.float64)])
    sig = torch.cat([s, torch.zeros(1, dtype=torch.float64)])
    K = len(grid)
    xs: list[list[Tensor]] = [[] for _ in range(K)]
    ys: list[list[Tensor]] = [[] for _ in range(K)]
    calls, done = [0], [0]  # the call within the batch's path (its grid level); evaluations

    def recording(x: Tensor, a_i: Tensor, s_i: Tensor) -> Tensor:
        y = torch.as_tensor(denoiser(x, a_i, s_i)).to(torch.float64)
        if not torch.all(torch.isfinite(y)):
            raise SpecschedError(
                "the denoiser returned NaN or Inf on its own sampling path at log-SNR "
                f"{grid[calls[0]]:.2f}: check the model before calibrating"
            )
        xs[calls[0]].append(basis(x, float(a_i)))
        ys[calls[0]].append(basis(y, 1.0))
        calls[0] += 1
        done[0] += x.shape[0]
        progress(done[0])
        return y

    for start in range(0, x0.shape[0], batch_size):
        calls[0] = 0
        xb = alpha[0] * x0[start : start + batch_size] + sig[0] * eps[start : start + batch_size]
        with torch.no_grad():
            get_sampler("dpmpp_2m")(recording, xb, alpha, sig, process=levels.process)
    out: dict[str, list[np.ndarray]] = {}
    for j in range(K):
        X, Y = torch.cat(xs[j]), torch.cat(ys[j])
        fitted, _ = _regress(X, Y, dof)
        noised = float(a[j]) ** 2 * S + float(s[j]) ** 2
        fitted["power"] = (X.abs() ** 2).mean(0).numpy() / noised
        for k, v in fitted.items():
            out.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in out.items()}


# ---------------------------------------------------------------------- the response model
def _interp(lam: Tensor, grid: Tensor, table: Tensor) -> Tensor:
    """Piecewise-linear interpolation in log-SNR, clamped at the ends, differentiable in ``lam``.

    ``lam`` has shape ``(*batch, 1, 1)`` (one level per schedule of a batch), ``table`` ``(K, M)``;
    the result has shape ``(*batch, 1, M)``.
    """
    flat = lam.reshape(-1).clamp(grid[0], grid[-1])
    i = torch.searchsorted(grid, flat.detach()).clamp(1, grid.numel() - 1)
    w = ((flat - grid[i - 1]) / (grid[i] - grid[i - 1])).unsqueeze(-1)
    vals = table[i - 1] * (1.0 - w) + table[i] * w
    return vals.reshape(*lam.shape[:-2], 1, table.shape[-1])


class ModeTables:
    """A calibration's tables for a flat list of modes, as float64 tensors (the optimiser's view)."""

    def __init__(
        self, cal: Calibration, variances: np.ndarray, perturb: np.random.Generator | None = None
    ):
        K = cal.log_snr.size
        flat = {
            k: np.asarray(getattr(cal, k)).reshape(K if k != "corr" else K - 1, -1)
            for k in _ARRAYS[1:]
        }
        if flat["gain"].shape[1] != np.asarray(variances).size:
            raise SpecschedError(
                "the calibration does not match the spectrum's modes: calibrate this spectrum "
                "again with `specsched calibrate`"
            )
        lam = cal.log_snr
        _, g_gauss = cal.gaussian_gain(np.asarray(variances, dtype=np.float64).reshape(-1))

        def table(arr: dict[str, np.ndarray], prefix: str) -> Tensor:
            """gain deviation | bias | residual amplitude, one interpolation per call (with one
            draw of the calibration's sampling error when ``perturb`` is given)."""
            gain, bias, res = (arr[prefix + k] for k in ("gain", "bias", "residual"))
            if perturb is not None:
                gain = gain + perturb.standard_normal(gain.shape) * arr[prefix + "gain_se"]
                bias = bias + perturb.standard_normal(bias.shape) * arr[prefix + "bias_se"]
                res = res + perturb.standard_normal(res.shape) * arr[prefix + "residual_se"]
                res = np.clip(res, 0, None)
            return torch.from_numpy(
                np.concatenate([gain - g_gauss, bias, np.sqrt(np.clip(res, 0, None))], axis=1)
            )

        self.grid = torch.from_numpy(np.ascontiguousarray(lam, dtype=np.float64))
        self.M = flat["gain"].shape[1]
        self.table = table(flat, "")
        # the same on the network's own sampling paths, and their power's excess over noised
        # data's (CalibratedModeDenoiser blends the two tables by the state's excess)
        self.traj_table: Tensor | None = None
        self.traj_excess: Tensor | None = None
        self.traj_tol = 0.0
        if cal.trajectories:
            traj = {k: np.asarray(getattr(cal, k)).reshape(K, -1) for k in _TRAJ_ARRAYS}
            self.traj_table = table(traj, "traj_")
            self.traj_excess = torch.from_numpy(traj["traj_power"] - 1.0)
            # 3x the relative sampling error of the paths' power in a mode (one real degree of
            # freedom a path, the larger error): an excess within it is not told from none
            self.traj_tol = 3.0 * math.sqrt(2.0 / cal.trajectories)
        # coherence per unit log-SNR: rho = corr ** (|dlambda| / grid spacing)
        spacing = np.diff(lam)[:, None]
        c = np.clip(flat["corr"], 1e-6, 1.0)
        rate = -np.log(c) / spacing  # (K - 1, M)
        self.mid = torch.from_numpy(0.5 * (lam[1:] + lam[:-1]))
        self.rate = torch.from_numpy(rate)
        self.nonlinear = bool(torch.any(self.table[:, 2 * self.M :] > 0))  # a residual somewhere


class CalibratedModeDenoiser:
    """The calibrated response model on coefficient states (module docstring, DESIGN §3).

    Parameters
    ----------
    variances, means : Tensor, shape (M,) or broadcastable
        Data modes ``S_k``, ``m_k``.
    tables : ModeTables
        The calibration for these modes.
    first_row : int
        Index of the first state row reserved for the non-linear sources ``e_i``; one row is used
        per denoiser call.
    levels : (Tensor, Tensor), optional
        The sampler's ``alpha`` and ``s``, shape ``(N + 1, *batch, 1, 1)``, when the denoiser will
        be called at their levels. What a call needs at each level but the last (the
        interpolated tables, the gain, the coherence between consecutive levels) is then
        computed for all levels at once: a few operations per quantity instead of a few per
        call, and the same values to the last bit (every operation is elementwise; a level's
        gradient sums its parts in another order, which changes its last bits). A call is
        recognised as at level ``i`` when its ``alpha`` and ``s`` are the views ``alpha[i]`` and
        ``s[i]``, as the samplers pass them; any other level is computed at the call.
    """

    def __init__(
        self,
        variances: Tensor,
        means: Tensor,
        tables: ModeTables,
        first_row: int,
        levels: tuple[Tensor, Tensor] | None = None,
    ):
        self.S, self.m, self.t = variances, means, tables
        self.next_row = first_row
        self.u: Tensor | None = None
        self.lam_prev: Tensor | None = None
        self.i_prev: int | None = None
        self.at: dict[tuple[int, int, tuple[int, ...]], int] = {}
        if levels is not None and levels[0].shape[0] > 1:
            self._prepare(*levels)

    def _terms(self, alpha: Tensor, s: Tensor) -> tuple[Tensor, ...]:
        """``lam, g, m (1 - g alpha), bias, amp`` at levels ``alpha, s``, shape ``(..., 1, 1)``;
        with a trajectory table, then what :meth:`_blend` needs: the paths' terms less these four,
        the paths' relative power excess, noised data's power ``alpha^2 S + s^2`` and
        ``alpha m``."""
        t = self.t
        lam = 2.0 * (torch.log(alpha) - torch.log(s))
        out: tuple[Tensor, ...] = (lam,)
        # (the operations in the order of the model before the paths: autograd sums a level's
        # gradient in the order its parts were made, and its last bits move fits on flat
        # objectives)
        for table in (t.table,) if t.traj_table is None else (t.table, t.traj_table):
            vals = _interp(lam, t.grid, table)
            dgain, bias, amp = vals[..., : t.M], vals[..., t.M : 2 * t.M], vals[..., 2 * t.M :]
            g = alpha * self.S / (alpha**2 * self.S + s**2) + dgain
            out += (g, self.m * (1 - g * alpha), bias, amp)
        if t.traj_excess is None:
            return out
        noised = alpha**2 * self.S + s**2
        return (
            *out[:5],
            *(b - a for a, b in zip(out[1:5], out[5:9], strict=True)),
            _interp(lam, t.grid, t.traj_excess),  # the paths' relative power excess
            noised,
            alpha * self.m,
        )

    def _blend(self, x: Tensor, terms: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """``g, offset, bias, amp`` for state ``x`` from :meth:`_terms` with a trajectory table.

        Per mode, the weight of the paths' measurement is the state's power excess ``q`` over
        noised data's as a fraction of the paths' own excess ``d``: 0 for a state like noised
        data, 1 for one like the network's own paths (clipped to 0..1), times the part of the
        paths' excess beyond 3 times its sampling error, ``max(0, 1 - tol / |d|)`` (module
        docstring).
        """
        excess, noised, am = terms[9:]
        power = (x[..., 1:, :] ** 2).sum(-2, keepdim=True) + (x[..., :1, :] - am) ** 2
        q = power / noised - 1.0
        # (1e-150: its square does not underflow, so a mode whose paths' excess is exactly 0
        # gets weight 0 rather than 0 / 0)
        size = excess.abs().clamp_min(1e-150)
        w = (q * excess / size**2).clamp(0.0, 1.0) * (1.0 - self.t.traj_tol / size).clamp_min(0.0)
        return tuple(a + w * d for a, d in zip(terms[1:5], terms[5:9], strict=True))

    def _coherence(self, lam: Tensor, lam_prev: Tensor) -> tuple[Tensor, Tensor]:
        """``rho`` and ``sqrt(1 - rho^2)`` from a call at ``lam_prev`` to one at ``lam``."""
        dlam = (lam - lam_prev).abs()
        rho = torch.exp(-_interp(0.5 * (lam + lam_prev), self.t.mid, self.t.rate) * dlam)
        return rho, torch.sqrt((1.0 - rho**2).clamp_min(1e-300))

    def _prepare(self, alpha: Tensor, s: Tensor) -> None:
        """Every level's terms but the last (clean) one's, and the coherence of each pair of
        consecutive levels (and, once a call repeats a level as Heun's do, of each level with
        itself)."""
        self.levels = (alpha, s)  # kept alive: their data pointers identify the calls' levels
        shape = tuple(alpha.shape[1:])
        keys = {(alpha[i].data_ptr(), s[i].data_ptr(), shape): i for i in range(len(alpha) - 1)}
        if len(keys) < len(alpha) - 1:  # levels that share memory (expanded): not told apart
            return
        self.at = keys
        terms = self._terms(alpha[:-1], s[:-1])
        self.terms = [term.unbind(0) for term in terms]
        if len(terms) > 5:
            # the levels where some mode's paths differ from noised data beyond the margin: at
            # the others every blend weight is exactly 0, and the blend is skipped (the same
            # values and gradients; on the exact mixture 18 of the 24 grid levels, on tiny16 14)
            beyond = terms[9].detach().abs() > self.t.traj_tol
            self.blend_at = beyond.reshape(beyond.shape[0], -1).any(1).tolist()
        self.lam_levels = lam = terms[0]
        self.next_pair = [c.unbind(0) for c in self._coherence(lam[1:], lam[:-1])]
        self.same_pair: list[tuple[Tensor, ...]] | None = None  # when first needed

    def __call__(self, x: Tensor, alpha: Tensor, s: Tensor) -> Tensor:
        t = self.t
        i = self.at.get((alpha.data_ptr(), s.data_ptr(), tuple(alpha.shape)))
        terms = self._terms(alpha, s) if i is None else tuple(term[i] for term in self.terms)
        lam, g, offset, bias, amp = terms[:5]
        if len(terms) > 5 and (i is None or self.blend_at[i]):
            g, offset, bias, amp = self._blend(x, terms)
        out = g * x  # the linear part, then the constant row's offset and bias, in place
        out[..., :1, :] = out[..., :1, :] + offset + bias
        if not t.nonlinear:
            return out
        row = self.next_row
        if row >= x.shape[-2]:
            raise RuntimeError("more denoiser calls than rows allocated for the calibrated model")
        self.next_row += 1
        if self.u is None:
            self.u = torch.zeros_like(x)
            self.u[..., row, :] = 1.0
        else:
            if i is not None and self.i_prev == i - 1:
                rho, keep = (c[i - 1] for c in self.next_pair)
            elif i is not None and self.i_prev == i:
                if self.same_pair is None:
                    lam_all = self.lam_levels
                    self.same_pair = [c.unbind(0) for c in self._coherence(lam_all, lam_all)]
                rho, keep = (c[i] for c in self.same_pair)
            else:
                rho, keep = self._coherence(lam, self.lam_prev)
            # rho u + sqrt(1 - rho^2) e with e the new source's row (zero in u until now)
            self.u = rho * self.u
            self.u[..., row : row + 1, :] += keep
        self.lam_prev, self.i_prev = lam, i
        # the residual is orthogonal to the state it is computed from (it is what a regression on
        # the mode leaves): project the coherent source off the state's random part (rows 1:),
        # then scale it to the measured power
        xs, us = x[..., 1:, :], self.u[..., 1:, :]
        coef = (us * xs).sum(-2, keepdim=True) / (xs * xs).sum(-2, keepdim=True).clamp_min(1e-300)
        perp = us - coef * xs
        norm = torch.sqrt((perp * perp).sum(-2, keepdim=True).clamp_min(1e-300))
        out[..., 1:, :] += amp * perp / norm
        return out
