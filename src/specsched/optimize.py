"""Schedule design: the noise levels that make the generated spectrum closest to the data's.

:func:`fit` minimises W2 or KL (DESIGN §2, "Objectives") over the ``N`` noise levels of a sampler,
in float64 with autodiff gradients through the sampler itself and L-BFGS-B from several starts.

Parameterisation ("stick breaking"): with the free levels inside ``[lo, hi]`` in log-SNR,
``lambda_1 = lo + (hi - lo) u_1`` and ``lambda_{j+1} = lambda_j + (hi - lambda_j) u_{j+1}``,
``u_j`` in ``[0, 1]``. The order can never break, every level stays in the trained range, and the
ends of the range are reachable, all with box constraints that L-BFGS-B handles exactly.

Discrete-time models are optimised on the continuous relaxation (log-SNR interpolated between
integer timesteps); every start's optimum is rounded, then polished over integers by coordinate
descent, and the best integer schedule under the exact objective is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import divergence
from .calibrate import _ARRAYS, _TRAJ_ARRAYS, Calibration, ModeTables
from .divergence import OBJECTIVES, Objective
from .errors import SpecschedError
from .levels import LevelRange, TrainSchedule, level_range, levels_from_log_snr, start_std
from .response import (
    CONVERGED_STEPS,
    Response,
    converged_moments,
    output_moments,
    response,
    step_maps,
)
from .samplers import get_sampler
from .schedules import Schedule
from .spectrum import Spectrum

if TYPE_CHECKING:  # pragma: no cover
    from .verify import Verification

__all__ = ["FitResult", "compare", "compress_modes", "fit", "level_range"]

Tensor = torch.Tensor
_U_MIN = 1e-7  # smallest step in stick-breaking units: keeps levels strictly ordered
#: weight of the squared excess (in log-SNR) of a step over the cap of ``max_step``
_STEP_PENALTY = 1e3
#: roughness weights of the guard's path to the most regular schedule of the flat set, in units
#: of the flat set's depth, in the path's order: weakest first (see :func:`_guard`)
REGULAR_WEIGHTS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: the heuristic a guard keeps where its objective cannot tell it from the best one
#: (:func:`_regular_fallback`)
REGULAR_HEURISTIC = "logsnr"
#: default ``max_step`` of calibrated fits (see :func:`fit`)
CALIBRATED_MAX_STEP = 2.0
#: the share of a fit's objective that starting from pure noise must cost before its notes say so
#: (:func:`start_note`): on the benchmark's models, with trailing spacing, 0.53-0.87 for DDIM and
#: DPM-Solver++(2M) on sv16 (scaled-linear betas), at most 0.34 elsewhere (benchmarks/RESULTS.md)
START_NOTE_SHARE = 0.25
_FLOW_FLOOR_T = 0.999  # free flow levels stay at t <= this (the start is pinned at t = 1)


# --------------------------------------------------------------------------------- compression
def _mode_groups(S: np.ndarray, m: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The groups of :func:`compress_modes`: ``(keep, idx, n)``.

    ``keep`` marks the modes kept as they are (non-zero mean); the others get a group index
    ``idx`` (``-1`` for kept modes) among ``n`` groups: zero-variance modes in group 0 if there are
    any, then the occupied cells of a uniform grid of ``log S`` with ``bins`` cells, in order.
    """
    keep = m != 0
    zero = (~keep) & (S <= 0)
    rest = (~keep) & (S > 0)
    idx = np.full(S.shape, -1, dtype=np.int64)
    n_zero = int(zero.any())
    idx[zero] = 0
    n = n_zero
    if rest.any():
        logS = np.log(S[rest])
        edges = np.linspace(logS.min(), logS.max() + 1e-12, bins + 1)
        cell = np.clip(np.digitize(logS, edges) - 1, 0, bins - 1)
        used = np.unique(cell)  # occupied cells, in order
        idx[rest] = n_zero + np.searchsorted(used, cell)
        n += used.size
    return keep, idx, n


def compress_modes(
    S: np.ndarray, w: np.ndarray, m: np.ndarray, *, bins: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lossy-but-tight compression of a mode list for the optimiser (DESIGN §2).

    Modes with a non-zero mean are kept as they are. The others are grouped on a uniform grid of
    ``log S`` with ``bins`` cells; each group becomes one mode with the summed weight and the
    weight-averaged variance. Zero-variance modes become one mode.
    """
    keep, idx, _ = _mode_groups(S, m, bins)
    zero = (~keep) & (S <= 0)
    rest = (~keep) & (S > 0)
    outS, outw, outm = [S[keep]], [w[keep]], [m[keep]]
    if zero.any():
        outS.append(np.zeros(1))
        outw.append(np.array([w[zero].sum()]))
        outm.append(np.zeros(1))
    if rest.any():
        cell = idx[rest] - int(zero.any())
        wsum = np.bincount(cell, weights=w[rest])
        ssum = np.bincount(cell, weights=w[rest] * S[rest])
        outS.append(ssum / wsum)
        outw.append(wsum)
        outm.append(np.zeros(wsum.size))
    return np.concatenate(outS), np.concatenate(outw), np.concatenate(outm)


def compress_calibration(
    cal: Calibration, S: np.ndarray, w: np.ndarray, m: np.ndarray, *, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Calibration]:
    """:func:`compress_modes` for a calibrated spectrum: the compressed modes and a calibration
    of them.

    Within a group the calibration is weight-averaged: the gain's deviation from the exact
    Gaussian gain (so that the Gaussian part stays exact at the group's variance), the residual
    power and its correlation between levels; the bias keeps the group's weighted mean square at
    every level (averaging the signed biases of unrelated modes would cancel them), with the sign
    of its weighted mean. Modes with a non-zero mean (DC) are kept as they are.
    """
    Sc, wc, mc = compress_modes(S, w, m, bins=bins)
    keep, idx, n = _mode_groups(S, m, bins)
    grouped = ~keep
    names = _ARRAYS[1:]  # all but the grid
    if cal.trajectories:
        names += _TRAJ_ARRAYS
    flat = {
        name: np.asarray(getattr(cal, name)).reshape(len(getattr(cal, name)), -1) for name in names
    }
    _, g_full = cal.gaussian_gain(S)
    _, g_comp = cal.gaussian_gain(Sc)
    wg = w[grouped]
    wsum = np.bincount(idx[grouped], weights=wg, minlength=n)
    wsum = np.where(wsum > 0, wsum, 1.0)

    def avg(a: np.ndarray) -> np.ndarray:  # (rows, modes) -> (rows, kept + n)
        out = np.stack(
            [np.bincount(idx[grouped], weights=wg * row[grouped], minlength=n) for row in a]
        )
        return np.concatenate([a[:, keep], out / wsum], axis=1)

    def signed_rms(b: np.ndarray) -> np.ndarray:
        """The group's weighted mean square, with the sign of its weighted mean."""
        mean_b, rms_b = avg(b), np.sqrt(avg(b**2))
        out = np.where(mean_b < 0, -rms_b, rms_b)
        out[:, : int(keep.sum())] = b[:, keep]
        return out

    arrays = {}
    for prefix in ("", "traj_") if cal.trajectories else ("",):
        arrays[prefix + "gain"] = avg(flat[prefix + "gain"] - g_full) + g_comp
        arrays[prefix + "bias"] = signed_rms(flat[prefix + "bias"])
        for name in ("residual", "gain_se", "bias_se", "residual_se"):
            arrays[prefix + name] = avg(flat[prefix + name])
    arrays["corr"] = avg(flat["corr"])
    if cal.trajectories:
        arrays["traj_power"] = avg(flat["traj_power"])
    return Sc, wc, mc, dataclasses.replace(cal, **arrays)


# --------------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    schedule : Schedule
        The fitted schedule (integer timesteps for discrete-time models).
    value : float
        Its objective on the full spectrum.
    objective : str
    response : Response
        The closed-form response of the fitted schedule.
    baselines : list of (Schedule, Response)
        Every applicable heuristic, evaluated the same way, best first.
    continuous : Schedule or None
        For discrete-time models, the optimum of the continuous relaxation (before rounding).
    notes : list of str
        What the user should know (zero-variance modes, compression error, pinned start, ...).
    uncertainty : float
        Two standard deviations of the objective's difference between the fitted schedule and the
        best heuristic under the sampling error of the spectrum (and of the calibration): a fitted
        schedule must beat the heuristic by more than this to be returned.
    fallback : str or None
        Name of the heuristic returned instead of the fit when the fit did not beat the best
        heuristic by more than ``uncertainty`` (then ``schedule`` is that heuristic, unless a
        verification replaced it): the best heuristic, or logSNR-uniform spacing where the
        objective cannot tell the two apart and the model's timesteps realise that spacing.
    calibrated : bool
        Whether the objective is that of the calibrated response model.
    gaussian_design : bool
        Whether ``schedule`` is the Gaussian model's design, returned by a calibrated fit because
        both the calibrated and the Gaussian model rate it better than the calibrated choice
        (``fit(gaussian_design=)``).
    verification : Verification or None
        Set by :func:`specsched.verify.verify`: what sampling with the candidates measured; then
        ``schedule`` is the candidate it kept.
    respond : callable or None
        ``respond(schedule) -> Response``: another schedule's response on the fit's model,
        computed as the table's are (:func:`specsched.verify.verify` uses it for the other
        designs it samples). None for results not made by :func:`fit`.
    """

    schedule: Schedule
    value: float
    objective: str
    sampler: str
    options: dict[str, Any]
    response: Response
    baselines: list[tuple[Schedule, Response]]
    levels: LevelRange
    continuous: Schedule | None = None
    seconds: float = 0.0
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)
    uncertainty: float = 0.0
    fallback: str | None = None
    calibrated: bool = False
    gaussian_design: bool = False
    verification: Verification | None = None
    respond: Callable[[Schedule], Response] | None = field(default=None, repr=False)

    @property
    def best_baseline(self) -> tuple[Schedule, Response] | None:
        """The heuristic with the lowest objective."""
        return self.baselines[0] if self.baselines else None

    def table(self) -> list[dict[str, Any]]:
        """One row per schedule (fitted first, then heuristics): W2, both KLs, ratio to the best
        heuristic (:func:`specsched.report.comparison_rows`)."""
        from .report import comparison_rows

        rows = [(self.schedule, self.response), *list(self.baselines)]
        best = self.baselines[0][1].value(self.objective) if self.baselines else math.nan  # type: ignore[arg-type]
        names = [s.name for s, _ in rows]
        if self.verification is not None and not self.verification.kept:
            names[0] += " (verified)"
        elif self.fallback is not None:
            names[0] += " (fallback)"
        elif self.gaussian_design:
            names[0] += " (Gaussian design)"
        return comparison_rows(rows, self.objective, best, names=names)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "objective": self.objective,
            "value": self.value,
            "sampler": self.sampler,
            "options": self.options,
            "levels": self.levels.to_dict(),
            "schedule": self.schedule.to_dict(),
            "continuous": None if self.continuous is None else self.continuous.to_dict(),
            "table": self.table(),
            "seconds": self.seconds,
            "evaluations": self.evaluations,
            "uncertainty": self.uncertainty,
            "fallback": self.fallback,
            "calibrated": self.calibrated,
            "gaussian_design": self.gaussian_design,
            "verification": None if self.verification is None else self.verification.to_dict(),
            "notes": self.notes,
        }


#: log-variance bins of a calibrated spectrum of more than 1024 modes (:func:`default_bins`)
CALIBRATED_BINS = 64


def default_bins(
    n_modes: int, steps: int, calibrated: bool = False, objective: Objective = "w2"
) -> int | None:
    """Log-variance bins of the optimiser's copy of a spectrum when ``fit(compress=None)``.

    Spectra of up to 1024 modes are not compressed. Larger ones get 512 bins up to 50 steps and
    256 beyond: an evaluation's work grows as steps x modes and is memory-bound at 100 steps
    (a DDPM-100 fit of photos 32x32x3 spent 85 % of its time evaluating 355 compressed modes;
    on 199 it takes half the time). The compression error of the objective is about 1e-6 for
    W2 at 512 bins, 2e-6 at 256, and up to 2e-4 / 5e-4 for KL (``benchmarks/fit_speed.py``,
    part 2, bar 1e-3); every reported value uses the full spectrum.

    A calibrated spectrum of more than 1024 modes gets :data:`CALIBRATED_BINS` (64) for W2.
    Its model carries a state row per denoiser call, so an evaluation costs several times a
    plain one, and the objective is known only to the calibration's sampling error, 10-20 % of
    its value (photos 32x32x3), while the compression's error stays below 1e-3 of it at 32-512
    bins (benchmarks/README.md, "calibrated_speed.py"). The KL objectives of a calibration are
    not compressed: averaging the calibration within a bin moves them by up to a third at any
    bin count (photos 32x32x3 with a non-linear denoiser, 64-512 bins), since a mode's KL is
    convex in its variance ratio, which the network's gain sets mode by mode.

    Examples
    --------
    >>> default_bins(768, 10), default_bins(3072, 10), default_bins(3072, 100)
    (None, 512, 256)
    >>> default_bins(3072, 10, calibrated=True), default_bins(3072, 10, True, "kl")
    (64, None)
    """
    if n_modes <= 1024 or (calibrated and objective != "w2"):
        return None
    if calibrated:
        return CALIBRATED_BINS
    return 512 if steps <= 50 else 256


# --------------------------------------------------------------------------------- the problem
class _Problem:
    """Objective of the free levels, in stick-breaking coordinates, batched and differentiable."""

    def __init__(
        self,
        S: np.ndarray,
        w: np.ndarray,
        m: np.ndarray,
        lr: LevelRange,
        steps: int,
        sampler: str,
        objective: Objective,
        options: dict[str, Any],
        first: float | None,
        tables: ModeTables | None = None,
        target: tuple[np.ndarray, np.ndarray] | None = None,
        max_step: float | None = None,
    ):
        self.tables = tables
        self.S, self.w, self.m = (
            torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) for a in (S, w, m)
        )
        # the moments the objective compares the output with: the data's, or a calibrated model's
        # converged output
        self.S_obj, self.m_obj = (
            (self.S, self.m)
            if target is None
            else tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in target)
        )
        self.lr, self.steps, self.sampler, self.objective, self.options = (
            lr,
            steps,
            sampler,
            objective,
            options,
        )
        self.first = first
        lo = lr.lam_lo
        if lr.process == "flow":
            lo = max(lo, 2 * math.log((1 - _FLOW_FLOOR_T) / _FLOW_FLOOR_T))
        self.lo = lo if first is None or not math.isfinite(first) else first
        self.hi = lr.lam_hi
        self.n_free = steps if first is None else steps - 1
        self.evaluations = 0
        #: longest step allowed between finite levels, in log-SNR (None: no limit)
        self.step_cap = None if max_step is None else max_step * (self.hi - self.lo) / steps
        #: weight of :meth:`roughness` in the objective (0 but on the guard's regular path)
        self.smooth = 0.0

    # stick breaking -----------------------------------------------------------------------
    def lam(self, u: Tensor) -> Tensor:
        """Free levels ``(..., n_free)`` from ``u`` in [0, 1].

        Level ``j`` is ``u_j`` of the way from level ``j - 1`` to ``hi``, so the distance left to
        ``hi`` is a running product: one ``cumprod`` rather than a chain of ``n_free`` operations
        (which dominated the gradient's cost at 100 steps).
        """
        return self.hi - (self.hi - self.lo) * torch.cumprod(1.0 - u, -1)

    def within_cap(self, lam: np.ndarray) -> np.ndarray:
        """Free levels ``(n_free,)`` moved under the step cap (:meth:`step_penalty`), for a start.

        The nearest steps (least squares) under the cap that span the same range: every long
        step shortened to the cap, its excess spread evenly over the short ones (``min(d + tau,
        cap)``), so the first and last levels stay. Where the range is longer than the cap allows,
        every step is the cap and the schedule ends less clean. Levels within the cap are
        returned as they are (the same object): those starts run as they did without this.

        Why: from a start far over the cap (a heuristic's long last steps), L-BFGS-B crawled along
        the penalty's wall, 390 evaluations of one start on a 32x32x3 calibration against 28 for
        a start within it.
        """
        cap = self.step_cap
        j0 = 0 if self.first is not None else 1  # index of the first level whose steps are capped
        d = np.diff(lam[j0:])
        if cap is None or not np.any(d > cap):
            return lam  # exactly: a start within the cap runs as it did without this
        span = float(d.sum())
        if span >= cap * d.size:  # no schedule of this span fits under the cap: shorten it
            steps = np.full(d.size, cap)
        else:  # the nearest steps under the cap with the same span: min(d + tau, cap)
            lo_t, hi_t = 0.0, cap
            for _ in range(100):
                tau = 0.5 * (lo_t + hi_t)
                lo_t, hi_t = (tau, hi_t) if np.minimum(d + tau, cap).sum() < span else (lo_t, tau)
            steps = np.minimum(d + hi_t, cap)
        return np.concatenate([lam[: j0 + 1], lam[j0] + np.cumsum(steps)])

    def u_of(self, lam: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`lam` for a (clipped, ordered) set of free levels."""
        u, cur = np.empty(self.n_free), self.lo
        for j in range(self.n_free):
            u[j] = np.clip((lam[j] - cur) / (self.hi - cur), _U_MIN, 1 - _U_MIN)
            cur = cur + (self.hi - cur) * u[j]
        return u

    def full(self, lam_free: Tensor) -> Tensor:
        """All ``N + 1`` levels (pinned first, free ones, clean end), shape ``(N + 1, *batch)``."""
        batch = lam_free.shape[:-1]
        parts = []
        if self.first is not None:
            parts.append(torch.full((*batch, 1), self.first, dtype=torch.float64))
        parts += [lam_free, torch.full((*batch, 1), math.inf, dtype=torch.float64)]
        return torch.cat(parts, -1).movedim(-1, 0)

    # objective ----------------------------------------------------------------------------
    def value_of_levels(self, lam_all: Tensor) -> Tensor:
        """Objective of full level sets ``(N + 1, *batch)`` -> ``(*batch,)``."""
        alpha, s = levels_from_log_snr(lam_all, self.lr.process)
        out = output_moments(
            self.S,
            self.m,
            alpha,
            s,
            process=self.lr.process,
            sampler=self.sampler,
            calibration=self.tables,
            **self.options,
        )
        self.evaluations += 1
        per = divergence.per_mode(self.objective, self.S_obj, self.m_obj, out["var"], out["mean"])
        value = (self.w * per).sum(-1) + self.step_penalty(lam_all)
        if self.smooth:
            value = value + self.smooth * self.roughness(lam_all)
        return value

    def roughness(self, lam_all: Tensor) -> Tensor:
        """How far full level sets ``(N + 1, *batch)`` are from log-SNR-uniform spacing: the sum
        of squared second differences of the finite levels, in units of the uniform step
        ``(hi - lo) / N``. Zero for log-SNR-uniform levels; small for every smooth heuristic. A
        first level pinned at pure noise (flow models, log-SNR ``-inf``) is left out."""
        finite = lam_all[:-1]
        if self.first is not None and not math.isfinite(self.first):
            finite = finite[1:]
        d2 = finite[2:] - 2.0 * finite[1:-1] + finite[:-2]
        return ((d2 / ((self.hi - self.lo) / self.steps)) ** 2).sum(0)

    def step_penalty(self, lam_all: Tensor) -> Tensor | float:
        """The step cap's penalty of full level sets ``(N + 1, *batch)`` (0 without a cap): a
        weight that dominates the objective on each step's excess over the cap. Neither the
        first step (it starts from the initial noise, which is in the calibrated distribution)
        nor the last (to the clean level) is limited."""
        if self.step_cap is None:
            return 0.0
        finite = lam_all[1:-1]
        excess = torch.relu(finite[1:] - finite[:-1] - self.step_cap)
        return _STEP_PENALTY * (excess**2).sum(0)

    def values_and_grads(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective and gradient at each row of ``U`` (one start's point each), in one batched
        evaluation: values ``(K,)``, gradients ``(K, n_free)``.

        The rows do not mix: each row's value and gradient are those of evaluating it alone, up
        to rounding (the gradient differs in the last bit at a few % of points)."""
        ut = torch.tensor(U, dtype=torch.float64, requires_grad=True)
        val = self.value_of_levels(self.full(self.lam(ut)))
        self.evaluations += len(U) - 1  # one per start's evaluation, as if run one by one
        val.sum().backward()
        return val.detach().numpy(), ut.grad.numpy()

    def minimise(
        self, u0s: list[np.ndarray], *, max_iter: int = 300
    ) -> list[tuple[np.ndarray, float]]:
        """L-BFGS-B from each start in ``u0s``: ``(u, value)`` of each optimum.

        The starts run together: each runs scipy's L-BFGS-B in its own thread, and every round
        the points all running starts ask for are evaluated in one batched call (here, on the
        calling thread). For a spectrum of a few hundred modes one evaluation is mostly fixed
        cost, so three starts cost little more than one (benchmarks/README.md, "Issue 14,
        fourth round"); each start's path is the one it takes alone up to rounding. Where the
        objective is flat at its floor (DPM-Solver++(2M) at 10-20 steps) rounding alone moves
        the fitted schedule (3 of the benchmark's 30 plain fits when this was introduced for
        plain spectra; on calibrations since the fifteenth session, benchmarks/README.md,
        "calibrated_speed.py").
        """
        if self.n_free == 0:  # one step from a pinned first level: nothing to optimise
            values = self.values_and_grads(np.stack(u0s))[0]
            return [(u0, float(v)) for u0, v in zip(u0s, values, strict=True)]
        import threading

        import scipy.optimize  # here, not at the top: it costs ~0.2 s of `import specsched`

        lower = np.full(self.n_free, _U_MIN)
        upper = np.full(self.n_free, 1 - _U_MIN)
        if self.first is None and self.n_free:
            lower[0] = 0.0  # the first level may sit exactly at the noisiest trained level
        cond = threading.Condition()
        asked: dict[int, np.ndarray] = {}
        answers: dict[int, tuple[float, np.ndarray] | BaseException] = {}
        running = set(range(len(u0s)))
        results: list[Any] = [None] * len(u0s)
        last: list[float | None] = [None] * len(u0s)  # each start's last finite value

        def objective(k: int, u: np.ndarray) -> tuple[float, np.ndarray]:
            with cond:
                asked[k] = u.copy()
                cond.notify_all()
                while k not in answers:
                    cond.wait()
                answer = answers.pop(k)
            if isinstance(answer, BaseException):
                raise answer
            v, g = answer
            if not math.isfinite(v) or not np.all(np.isfinite(g)):
                # Levels where the objective is undefined: coinciding levels (the multistep
                # samplers divide by the step length), which L-BFGS-B's first, long steps reach by
                # pushing stick-breaking fractions to their bound. Its line search backs off by
                # interpolating the values it sees: an astronomical value makes it back off to
                # nothing and stop at its start (it did so for every DPM-Solver++(2M) and UniPC
                # fit until 2026-11-29), a value above the last finite one by the objective's own
                # scale makes it back off by a moderate factor and go on.
                prev = last[k]
                wall = 1e300 if prev is None else prev + 1.0 + abs(prev)
                return wall, np.zeros_like(g)
            last[k] = v
            return v, g

        def start(k: int) -> None:
            try:
                res = scipy.optimize.minimize(
                    lambda u: objective(k, u),
                    np.clip(u0s[k], lower, upper),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=list(zip(lower, upper, strict=True)),
                    options={"maxiter": max_iter, "ftol": 1e-7, "gtol": 1e-5, "maxcor": 20},
                )
                results[k] = (res.x, float(res.fun))
            except BaseException as exc:  # handed to the calling thread
                results[k] = exc
            finally:
                with cond:
                    running.discard(k)
                    cond.notify_all()

        threads = [threading.Thread(target=start, args=(k,), daemon=True) for k in running]
        for t in threads:
            t.start()
        try:
            while True:
                with cond:
                    while running and not running <= asked.keys():
                        cond.wait()
                    if not running:
                        break
                    keys = sorted(asked)
                    points = np.stack([asked.pop(k) for k in keys])
                values, grads = self.values_and_grads(points)
                with cond:
                    for k, v, g in zip(keys, values, grads, strict=True):
                        answers[k] = (float(v), g.copy())
                    cond.notify_all()
        except BaseException:  # Ctrl-C or an error here: stop every start, then re-raise
            with cond:
                for k in running:
                    answers[k] = RuntimeError("fit interrupted")
                cond.notify_all()
            raise
        for t in threads:
            t.join()
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread: the optimiser's tensors are small (a few hundred modes), so more
    threads only spin (about twice the wall time in CPU on 2 cores). The full-spectrum
    evaluations (baselines, final response) keep torch's threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _blas_one_thread() -> Iterator[None]:
    """numpy's and scipy's BLAS on one thread while fitting: their calls here (L-BFGS-B's
    updates, small products) are tiny, and idle OpenBLAS threads spin: with them a fit burnt
    about 1.7x its wall time in CPU on 2 cores, with one thread 1.05-1.1x at the same wall time."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn; ~10 ms

    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------- discrete polish
class _MarkovMoves:
    """The objective of single-level moves of an integer schedule, for a Markov sampler.

    Moving level ``i`` changes only the two steps into and out of it. With every step's affine map
    (:func:`specsched.response.step_maps`) of the current schedule, the moments at each level
    and the composed map from each level to the end are cached; a candidate then costs two single
    steps (one batched :func:`~specsched.response.step_maps` call) and an O(M) composition instead
    of an N-step run (the same values up to rounding).

    The cache follows the schedule incrementally: when levels change (an accepted move), only the
    maps of the steps touching them are recomputed (taken from the candidates just evaluated,
    where the change is one of them), the moments after the first changed level and the composed
    maps before the last one are marked stale, and stale entries are recomputed as a query needs
    them. A forward sweep of the polish thus propagates the moments one step per level and
    recomposes the maps to the end once per sweep, instead of rebuilding all of them after every
    accepted move.
    """

    def __init__(self, prob: _Problem, table: np.ndarray):
        self.prob = prob
        self.sampler_spec = get_sampler(prob.sampler)
        # the levels of every timestep and, at index len(table), of the clean level
        lam = torch.from_numpy(np.append(table, np.inf))
        self.alpha_of, self.s_of = (v.numpy() for v in levels_from_log_snr(lam, prob.lr.process))
        self.clean = len(table)
        self.t: np.ndarray | None = None
        self.last: tuple[int, np.ndarray, Any, Any] | None = None  # the last query's step maps

    def _maps(self, start: np.ndarray, end: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        """Maps of the steps from timesteps ``start`` to ``end`` (1-D, same length), (K, M)."""
        p, idx = self.prob, np.stack([start, end])[..., None, None]
        a, s = torch.from_numpy(self.alpha_of[idx]), torch.from_numpy(self.s_of[idx])
        return step_maps(self.sampler_spec, p.S, p.m, a, s, p.lr.process, p.options)

    def _start_var(self, t0: np.ndarray) -> Tensor:
        """Variance of the start at first timesteps ``t0``, shape (len(t0), M)."""
        p = self.prob
        std = start_std(p.lr.process, torch.from_numpy(self.s_of[t0])[:, None])
        return std**2 * torch.ones(len(t0), p.S.shape[-1], dtype=torch.float64)

    def _prepare(self, t: np.ndarray) -> None:
        """Every step's map of ``t`` (one batched call for the steps between noisy levels)."""
        self.t, self.last = t.copy(), None
        n = len(t)
        parts = []
        if n > 1:
            parts.append(self._maps(t[:-1], t[1:]))
        parts.append(self._maps(t[-1:], np.array([self.clean])))
        A, B, V = (torch.cat(x) for x in zip(*parts, strict=True))  # (N, M)
        self.A, self.B, self.V = list(A), list(B), list(V)
        self.mean = [torch.zeros_like(A[0])] + [A[0]] * n  # valid up to self.fwd
        self.var = [self._start_var(t[:1])[0]] + [A[0]] * n
        self.fwd = 0
        # level k -> end: mean P_k mean_k + Q_k, var P_k^2 var_k + R_k (valid from self.bwd on)
        one = torch.ones_like(A[0])
        self.P, self.Q, self.R = [one] * (n + 1), [0 * one] * (n + 1), [0 * one] * (n + 1)
        self.bwd = n

    def _update(self, t: np.ndarray) -> None:
        """Follow a change of the schedule to ``t`` (same length)."""
        assert self.t is not None
        changed = np.flatnonzero(t != self.t)
        if changed.size == 0:
            return
        lo, hi, n = int(changed[0]), int(changed[-1]), len(t)
        reuse = None
        if self.last is not None and changed.size == 1 and self.last[0] == lo:
            hit = np.flatnonzero(self.last[1] == t[lo])
            reuse = None if hit.size == 0 else int(hit[0])
        ends = np.append(t, self.clean)
        for k in sorted({k for j in changed for k in (j - 1, j) if k >= 0}):
            if reuse is not None:  # the maps of the accepted candidate, computed by the query
                _, _, into, out = self.last  # type: ignore[misc]
                src = into if k == lo - 1 else out
                self.A[k], self.B[k], self.V[k] = (x[reuse] for x in src)
            else:
                maps = self._maps(ends[k : k + 1], ends[k + 1 : k + 2])
                self.A[k], self.B[k], self.V[k] = (x[0] for x in maps)
        self.t, self.last = t.copy(), None  # the query's maps belong to the old neighbours
        if lo == 0:
            self.var[0] = self._start_var(t[:1])[0]
        self.fwd = max(min(self.fwd, lo - 1), 0)  # moments at levels >= lo are stale
        self.bwd = max(self.bwd, min(hi + 1, n))  # maps from levels <= hi are stale

    def _moments_at(self, k: int) -> tuple[Tensor, Tensor]:
        while self.fwd < k:
            j = self.fwd
            self.mean[j + 1] = self.A[j] * self.mean[j] + self.B[j]
            self.var[j + 1] = self.A[j] ** 2 * self.var[j] + self.V[j]
            self.fwd += 1
        return self.mean[k], self.var[k]

    def _to_end(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        while self.bwd > k:
            j = self.bwd - 1
            P = self.P[j + 1]
            self.P[j] = P * self.A[j]
            self.Q[j] = P * self.B[j] + self.Q[j + 1]
            self.R[j] = P**2 * self.V[j] + self.R[j + 1]
            self.bwd -= 1
        return self.P[k], self.Q[k], self.R[k]

    def __call__(self, t: np.ndarray, i: int, values: np.ndarray) -> np.ndarray:
        """Objective of ``t`` with level ``i`` set to each of ``values``."""
        if self.t is None or len(self.t) != len(t):
            self._prepare(t)
        else:
            self._update(t)
        p, K, n = self.prob, len(values), len(t)
        after = np.full(K, t[i + 1] if i + 1 < n else self.clean)
        with torch.no_grad():
            # the steps into and out of level i, batched over the K values
            if i == 0:
                into, out = None, self._maps(values, after)
            elif i + 1 < n:  # neither step ends at the clean level: one call for both
                before = np.full(K, t[i - 1])
                both = self._maps(np.append(before, values), np.append(values, after))
                into, out = tuple(v[:K] for v in both), tuple(v[K:] for v in both)
            else:  # the sampler treats the step to the clean level on its own
                into, out = self._maps(np.full(K, t[i - 1]), values), self._maps(values, after)
            if into is None:
                mean = torch.zeros(K, p.S.shape[-1], dtype=torch.float64)
                var = self._start_var(values)
            else:
                A, B, V = into
                mean_prev, var_prev = self._moments_at(i - 1)
                mean, var = A * mean_prev + B, A**2 * var_prev + V
            A, B, V = out
            mean, var = A * mean + B, A**2 * var + V
            P, Q, R = self._to_end(i + 1)
            mean, var = P * mean + Q, P**2 * var + R
            self.last = (i, values.copy(), into, out)
            per = divergence.per_mode(p.objective, p.S_obj, p.m_obj, var, mean)
            return (p.w * per).sum(-1).numpy()


def _round_timesteps(t_real: np.ndarray, T: int, first: int | None) -> np.ndarray:
    """Nearest integers, strictly decreasing, in ``0 .. T-1`` (the first one pinned if given)."""
    from .heuristics import distinct_timesteps

    t = np.rint(np.asarray(t_real, float)).astype(np.int64)
    if first is None:
        return distinct_timesteps(t, T)
    return np.concatenate([[first], distinct_timesteps(t[1:], first)])


def _polish_integers(
    t0: np.ndarray,
    evaluate: Callable[[np.ndarray], np.ndarray],
    T: int,
    pinned: bool,
    level_moves: _MarkovMoves | None = None,
) -> tuple[np.ndarray, float]:
    """Coordinate descent over integer timesteps.

    Sweeps over the levels; for each, every move by +-1, +-2, +-4, ..., +-32 that keeps the order
    is evaluated as one batch and the best improving one is taken. Stops once every level has been
    evaluated without improvement since the last accepted move (where sweeping on until a whole
    sweep brings none would only repeat those evaluations): the result is a local minimum over all
    such single-level moves. ``level_moves``, where given, evaluates the moves of one level faster
    than ``evaluate`` (the same values up to rounding).
    """
    t = t0.copy()
    best = float(evaluate(t[None])[0])
    moves = np.array([1, 2, 4, 8, 16, 32])
    moves = np.concatenate([moves, -moves])
    levels = list(range(1 if pinned else 0, len(t)))
    # levels evaluated in a row without an accepted move: once every level has been, the schedule
    # is a local minimum (a level's moves only need evaluating again after a change), so the
    # sweep that would repeat them is skipped: the same result as sweeping until a sweep without
    # improvement, with fewer evaluations
    unchanged = 0
    while unchanged < len(levels):
        for i in levels:
            if unchanged >= len(levels):
                break
            unchanged += 1
            hi = t[i - 1] - 1 if i > 0 else T - 1
            lo = t[i + 1] + 1 if i + 1 < len(t) else 0
            vals_i = t[i] + moves
            vals_i = vals_i[(vals_i >= lo) & (vals_i <= hi)]
            if vals_i.size == 0:
                continue
            cands = np.repeat(t[None], vals_i.size, 0)
            cands[:, i] = vals_i
            vals = evaluate(cands) if level_moves is None else level_moves(t, i, vals_i)
            k = int(np.argmin(vals))
            if vals[k] < best * (1 - 1e-13):
                t, best, unchanged = cands[k], float(vals[k]), 0
    return t, best


# --------------------------------------------------------------------------------- fit
def fit(
    spec: Spectrum,
    steps: int = 10,
    *,
    sampler: str = "ddim",
    objective: Objective = "w2",
    process: str = "vp",
    train_schedule: str | TrainSchedule | None = "linear",
    num_train_timesteps: int = 1000,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    levels: LevelRange | None = None,
    start_at: str | float | None = None,
    starts: int = 3,
    compress: int | None = None,
    heuristics: bool = True,
    guard: bool | None = None,
    target: str = "data",
    max_step: float | None = None,
    gaussian_design: bool | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **sampler_options: Any,
) -> FitResult:
    """The schedule that makes the sampler's output spectrum closest to the data's.

    Parameters
    ----------
    spec : Spectrum, calibrated Spectrum, or what :func:`specsched.spectrum.as_spectrum` takes
        The data's spectrum; a calibrated one (:func:`specsched.calibrate`) fits the network's
        response. A saved spectrum's path, a data source or samples are estimated first.
    steps : int, default 10
        Number of sampler steps ``N``.
    sampler : str, default "ddim"
        A sampler of :data:`specsched.SAMPLERS`; ``sampler_options`` go to it (``eta``).
    objective : {"w2", "kl", "kl-data"}, default "w2"
        Squared Wasserstein-2, ``KL(gen || data)`` or ``KL(data || gen)``.
    process, train_schedule, num_train_timesteps, sigma_min, sigma_max
        The model (see :func:`level_range`): by default a DDPM-trained VP model with linear betas
        and 1000 integer timesteps. ``levels`` gives a :class:`LevelRange` directly.
    start_at : None, "max", "free", or a number, default None
        ``"max"``: the first level pinned at the noisiest trained level (``t = T-1``,
        ``sigma_max``, flow ``t = 1``), where every sampler's heuristics start. ``"free"``: every
        level free within the trained range (the response accounts for starting from
        ``N(0, I)`` at a level that is not pure noise). A number pins the first level at that
        timestep (discrete) or sigma. ``None`` (default): ``"max"`` for calibrated spectra and
        flow models, ``"free"`` otherwise. Measured (``benchmarks/README.md``): free W2 fits on the
        plain spectrum start at t ~ 750-970 and beat the same fits pinned at t = 999 on both
        benchmark denoisers (tiny16 DDIM-10 FD 0.93 against 4.46), but a free W2 fit lost 2.8x to
        Karras on a pretrained model of centred objects and free KL fits start at t ~ 250-360 and
        lose 10-50x: pin the start (``"max"``) for KL, and calibrate for a learned model.
        On a calibrated spectrum of a discrete model whose network fails at the top of its
        range, ``None`` also fits with the first level pinned where the calibration measures
        the network's output power falling to the data's variance
        (:meth:`~specsched.calibrate.Calibration.passing_edge`), and returns that fit (or its
        Gaussian design) where both the calibrated and the Gaussian model rate it better than
        the fit from the top, by the test of ``gaussian_design``, and the calibrated model (the
        one that sees the failure) by itself beyond its own uncertainty
        (:data:`START_BELOW_FAILURE`, on by default since the thirtieth session). Measured in
        benchmarks/RESULTS.md, "A start where the network stops failing": on the networks
        it was developed on it changes 5 of 32 cells at 5/10 steps and wins all 5 (by 16-71 %);
        on a held-out one (gc16) it changes 3 of 8 and wins all 3 (by 12-15 %). Its first form,
        pinned at the last level measured to fail, lost 1.7x at mc16 DDIM-10; a free first
        level, sampled where the calibrated model rates it better, lost 2.2x at cc16 Heun-5
        and 1.8x at mn16 DDIM-5.
        Whatever the start, a schedule (fitted or kept) that starts where a calibrated network
        fails (:meth:`~specsched.calibrate.Calibration.failing_levels`: its output there has
        more power than the data's) gets a note saying so, and to check it with
        :func:`~specsched.verify.verify`; and one whose first level is not pure noise, where a
        start from noise of mean 0 costs more than :data:`START_NOTE_SHARE` of the objective
        (Stable Diffusion 1.x/2.x's betas), gets a note with the remedy (:func:`start_note`).
    starts : int, default 3
        Local optimisations, started from the best heuristics and from log-SNR-uniform spacing;
        on a discrete model each one's optimum is rounded and polished over integers.
    compress : int or None
        Number of log-variance bins for the optimiser's copy of the spectrum; ``None`` compresses
        spectra of more than 1024 modes into 512 bins, 256 beyond 50 steps
        (:func:`default_bins`; relative error of the objective ~1e-6 for W2, up to a few 1e-4
        for KL; see ``benchmarks/fit_speed.py``). A calibrated spectrum of more than 1024 modes
        gets 64 bins for W2 (its objective's uncertainty is 10-20 %, the compression's error
        below 1e-3), its calibration averaged per bin (:func:`compress_calibration`), and is not
        compressed for KL or the ``"converged"`` target. The reported values always use the
        full spectrum.
    heuristics : bool, default True
        Evaluate every applicable heuristic family (the baselines, and starting points).
    progress : callable, optional
        Called as ``progress(stage, done, total)`` as the fit advances through its stages (the
        heuristics, each optimiser start, each integer polish), e.g. to draw a progress bar.
    guard : bool or None, default None
        Guard the fit against the uncertainty of its objective (needs ``heuristics``): if the fit
        does not beat the best heuristic by more than the uncertainty
        (:attr:`FitResult.uncertainty`), that heuristic is returned (:attr:`FitResult.fallback`), or
        logSNR-uniform spacing where the objective cannot tell it from the best heuristic either
        and the model's timesteps realise it (:data:`REGULAR_HEURISTIC`). Otherwise an optimum
        rougher than the median heuristic (squared second differences of its log-SNR levels) is
        replaced by the most regular schedule (closest to log-SNR-uniform spacing,
        :data:`REGULAR_WEIGHTS`) that the objective cannot tell from it and that still beats the
        heuristic by more than the uncertainty; a smoother optimum is moved towards the best
        heuristic as far as the objective's uncertainty allows. Why: the optima of
        a flat objective are arbitrary points that rounding chooses between, and a network does not
        forgive irregular ones (tiny16, DPM-Solver++(2M)-10, 2560 samples: FD 1.13 for the optimum
        one CPU found, 0.28 for the most regular schedule within its uncertainty, 0.47 for
        logSNR-uniform), while smooth optima lost when made more regular (the exact mixture at 5
        steps: 1.31 against 1.07; benchmarks/README.md, "A rough optimum is made regular"). A
        calibrated fit for a sampler that combines several calls (multistep, Heun) also keeps that
        heuristic where the Gaussian model of the same spectrum rates the fit worse than any
        heuristic beyond that model's uncertainty (its advantage would rest on the calibration
        alone); for first-order samplers (DDIM, Euler) that disagreement is only noted. A
        stochastic sampler's fit on a calibrated spectrum (made on the Gaussian model) keeps the
        heuristic the calibrated model rates best where that model rates the fit worse beyond
        the paired uncertainty: only the calibration sees a network that fails where the fit
        goes (cc16 DDPM-10: FD 1,742 for the fit, 130 for leading spacing). ``None`` guards
        calibrated fits only; ``False`` also turns the stochastic check off.
    target : {"data", "converged"}, default "data"
        What a calibrated fit's objective measures the output against: the data's spectrum, or
        the network's converged output as the calibration predicts it
        (:func:`specsched.response.converged_moments`). ``"converged"`` stops the fit from
        cancelling modelled network errors with discretisation errors (tiny16, 20-step
        DPM-Solver++(2M): it keeps logSNR-uniform, FD 0.94, where the data target's fit measured
        5.2) but gave up the wins at few DDIM steps (10 steps: FD 1.53 against 0.92), so it is not
        the default.
    max_step : float, optional
        Longest step the fit may take between noisy levels, as a multiple of the uniform
        log-SNR step over its range (``(lambda_max - lambda_first) / steps``); ``0`` or ``inf``
        lifts the limit. The first step (from the initial noise, which is in the calibrated
        distribution) and the last (to the clean level) are not limited. Default: 2 for
        calibrated fits (:data:`CALIBRATED_MAX_STEP`), none for plain ones. Why: a calibration
        measures the network on noised *data*; a long step leaves the sampler's state where the
        network was not measured, and the calibrated model then misjudges it. On the exact
        mixture the calibrated DPM-Solver++(2M)-20 fit crossed t = 711 -> 365 -> 125 in two
        steps (3.6x the uniform step) and measured FD 1.05 against 0.52 for logSNR-uniform; its
        levels above t = 125 followed by logSNR-uniform's below measured 1.01, logSNR-uniform's
        above followed by its own below 0.52 (benchmarks/splice_schedules.py): the loss was the
        long middle steps. Capped at 2x it measured 0.57 (a tie). The limit is a penalty on
        the objective; the optimiser's starts (heuristics whose last steps are long) are first
        moved to the nearest steps under it over the same span, since from deep inside the
        penalty the optimiser crawls along its wall.
    gaussian_design : bool or None, default None
        On a calibrated spectrum (deterministic samplers, ``target="data"``), also fit the
        Gaussian model of the same spectrum (a plain fit: first level free and no step cap,
        unless ``start_at`` or ``max_step`` are given, which it then follows too) and
        return that design where both the calibrated and the Gaussian model rate it better than
        the guarded fit's choice, together by more than the uncertainty of the difference
        (:func:`_gaussian_design`); where they disagree, the calibrated choice stays.
        :attr:`FitResult.gaussian_design` says when it was returned. ``None`` follows the
        guard (on for calibrated fits, off with ``guard=False`` or ``heuristics=False``);
        ``False`` returns the guarded calibrated fit alone (the default until 2026-12-02).
        Ignored for a plain spectrum and for stochastic samplers, which are fitted on the
        Gaussian model. Why: where the calibrated model agrees, the plain fit measured better
        than the calibrated one in 7 of 9 stored cells and within the noise in 2
        (benchmarks/README.md, "The Gaussian design inside the fit").

    Notes
    -----
    A spectrum carrying a calibration (:func:`specsched.calibrate`) is fitted with the
    calibrated response model, on the model it was calibrated on (its level range is used unless
    ``levels`` is given). Stochastic samplers (DDPM,
    Euler ancestral, DPM-Solver++(2M) SDE, DDIM with ``eta > 0``) are the exception: the
    calibrated model predicts their output worse than the Gaussian model does (rms log error of
    the power per band for DDPM: 1.47 against 0.95 on the exact mixture, 1.41 against 1.19 on
    tiny16), so they are fitted on the Gaussian model of the same spectrum, with a plain
    spectrum's defaults (first level free, no step cap, no guard), and
    :attr:`FitResult.calibrated` is False. Measured on DDPM at 5/10/20 steps
    (``benchmarks/README.md``, calibrated_fits.py), wins / ties / losses against the best
    heuristic: the Gaussian fit 2 / 1 / 0 on the mixture and 1 / 2 / 0 on tiny16, the calibrated
    fit 3 / 0 / 0 and 0 / 2 / 1 (tiny16 DDPM-5, FD 8.39 against 6.64 for trailing).

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import specsched as ss
    >>> spec = ss.Spectrum.from_source("builtin:photos", size=16, channels=1, n=2000)
    >>> res = ss.fit(spec, steps=10, sampler="ddim", train_schedule="linear", objective="w2")
    >>> res.value <= res.best_baseline[1].w2
    True
    """
    from .response import check_inputs

    spec = check_inputs(spec, sampler, sampler_options)
    with _blas_one_thread():
        return _fit(
            spec,
            steps,
            sampler=sampler,
            objective=objective,
            process=process,
            train_schedule=train_schedule,
            num_train_timesteps=num_train_timesteps,
            sigma_min=sigma_min,
            sigma_max=sigma_max,
            levels=levels,
            start_at=start_at,
            starts=starts,
            compress=compress,
            heuristics=heuristics,
            guard=guard,
            target=target,
            max_step=max_step,
            gaussian_design=gaussian_design,
            progress=progress,
            **sampler_options,
        )


def _fit(
    spec: Spectrum,
    steps: int,
    *,
    sampler: str,
    objective: Objective,
    process: str,
    train_schedule: str | TrainSchedule | None,
    num_train_timesteps: int,
    sigma_min: float | None,
    sigma_max: float | None,
    levels: LevelRange | None,
    start_at: str | float | None,
    starts: int,
    compress: int | None,
    heuristics: bool,
    guard: bool | None = None,
    target: str = "data",
    max_step: float | None = None,
    gaussian_design: bool | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **sampler_options: Any,
) -> FitResult:
    t_start = time.perf_counter()
    if objective not in OBJECTIVES:
        raise SpecschedError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    get_sampler(sampler)  # validates the name
    cal_lr = None if spec.calibration is None else spec.calibration.levels
    lr = (
        levels
        or cal_lr
        or level_range(
            process=process,
            train_schedule=train_schedule,
            num_train_timesteps=num_train_timesteps,
            sigma_min=sigma_min,
            sigma_max=sigma_max,
        )
    )
    if cal_lr is not None and (lr.process, lr.train) != (cal_lr.process, cal_lr.train):
        raise SpecschedError(
            "the calibration was made for another model (process or training schedule): fit "
            "on that model, or calibrate this one with `specsched calibrate`"
        )
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise SpecschedError(f"steps must be a positive whole number (got {steps!r})")
    if lr.train is not None and steps > lr.train.T:
        raise SpecschedError(
            f"{steps} steps is more than the model's {lr.train.T} timesteps: use at most {lr.train.T}"
        )
    notes: list[str] = []
    dropped: Spectrum | None = None  # the calibrated spectrum a stochastic fit is checked on
    check_stochastic = guard is not False  # guard=False turns the check off too
    if spec.calibration is not None and get_sampler(sampler).noise_draws(steps, **sampler_options):
        # the calibrated model does not predict stochastic samplers: it carries the network's
        # non-linear output from call to call as coherently as along one noised sample (an ODE
        # path), while these samplers replace part of the noise at every step. Measured (rms log
        # error of the predicted power per band, DDPM, Gaussian / calibrated): 0.95 / 1.47 on the
        # exact mixture, 1.19 / 1.41 on tiny16; see benchmarks/README.md, calibrated_fits.py.
        if target == "converged":
            raise SpecschedError(
                f"target='converged' needs the calibrated model, which is not used for the "
                f"stochastic sampler {sampler!r}: use target='data' (the default)"
            )
        dropped, spec = spec, dataclasses.replace(spec, calibration=None)
        notes.append(
            f"fitted on the Gaussian model of the spectrum, not on its calibration: the "
            f"calibrated model does not predict stochastic samplers such as {sampler!r} (it "
            "predicts their output power worse than the Gaussian model on both networks "
            "measured); the first level is free and the steps are not capped, as for a plain "
            "spectrum"
        )
    start_asked, step_asked = start_at, max_step  # the Gaussian design follows what was asked
    if start_at is None and spec.calibration is not None:
        # the networks measured so far are least accurate at the noisiest levels (see start_at)
        start_at = "max"
    first = _first_level(lr, start_at)
    if max_step is None:
        max_step = CALIBRATED_MAX_STEP if spec.calibration is not None else None
    elif isinstance(max_step, bool) or not isinstance(max_step, int | float) or max_step < 0:
        raise SpecschedError(
            f"max_step must be a number >= 0 (got {max_step!r}): a multiple of the uniform "
            "log-SNR step, or 0 for no limit"
        )
    elif max_step == 0 or math.isinf(max_step):
        max_step = None
    elif max_step < 1:
        raise SpecschedError(
            f"max_step={max_step} is below 1: no schedule of {steps} steps fits under it; use "
            "at least 1 (the uniform step), or 0 for no limit"
        )
    S_full, w_full, m_full = spec.modes()
    n_zero = int(divergence.zero_variance_mask(torch.from_numpy(S_full)).sum())
    if n_zero:
        notes.append(
            f"{n_zero} modes have zero variance (constant pixels); they count in W2 but are left out "
            "of the KL objectives"
        )
    bins = (
        compress
        if compress is not None
        else default_bins(S_full.size, steps, spec.calibration is not None, objective)
    )
    if target not in ("data", "converged"):
        raise SpecschedError(f"target={target!r} is not understood: use 'data' or 'converged'")
    if target == "converged" and spec.calibration is None:
        raise SpecschedError(
            "target='converged' needs a calibrated spectrum (specsched calibrate); a plain "
            "spectrum's converged output is the data"
        )
    tables, target_moments = None, None
    if spec.calibration is not None:
        tables = ModeTables(spec.calibration, S_full)
        if target == "converged":
            bins = None  # the converged target is per mode
    if target == "converged":
        conv_var, conv_mean = converged_moments(
            torch.from_numpy(S_full), torch.from_numpy(m_full), tables, lr.process
        )
        target_moments = (conv_var.numpy(), conv_mean.numpy())
        conv_w2 = float(
            divergence.total(
                "w2",
                *(torch.from_numpy(a) for a in (S_full, w_full, m_full)),
                conv_var,
                conv_mean,
            )
        )
        notes.append(
            f"calibrated: the objective is measured against the network's converged output (a "
            f"{CONVERGED_STEPS}-step DPM-Solver++(2M) run of the calibrated model, W2 {conv_w2:.4g} "
            "from the data), which no schedule can improve on"
        )
    if bins is None:
        S, w, m = S_full, w_full, m_full
    elif spec.calibration is None:
        S, w, m = compress_modes(S_full, w_full, m_full, bins=bins)
    else:
        S, w, m, cal_c = compress_calibration(spec.calibration, S_full, w_full, m_full, bins=bins)
        tables = ModeTables(cal_c, S)
    prob = _Problem(
        S,
        w,
        m,
        lr,
        steps,
        sampler,
        objective,
        dict(sampler_options),
        first,
        tables,
        target_moments,
        max_step,
    )

    def exact(sched: Schedule) -> Response:
        return response(spec, sched, sampler=sampler, target=target_moments, **sampler_options)

    # baselines -------------------------------------------------------------------------------
    baselines = (
        compare(
            spec,
            steps=steps,
            sampler=sampler,
            levels=lr,
            objective=objective,
            target=target_moments,
            **sampler_options,
        )
        if heuristics
        else []
    )

    # continuous optimisation from several starts ------------------------------------------------
    inits = [_lam_free(b.log_snr, prob) for b, _ in baselines[: max(starts - 1, 0)]]
    inits.append(np.linspace(prob.lo, prob.hi, prob.n_free + 2)[1:-1])
    n_polish = (
        (len(inits) if tables is None else 1 + min(len(baselines), 1))
        if lr.train is not None
        else 0
    )
    if guard is None:
        guard = spec.calibration is not None
    guarded = guard and bool(baselines)
    if gaussian_design is None:
        gaussian_design = guarded  # part of the guard: off with guard=False or no heuristics
    designed = bool(gaussian_design) and spec.calibration is not None and target == "data"
    n_stages = 1 + len(inits) + n_polish + guarded + designed
    say = progress or (lambda stage, done, total: None)
    say("heuristics", 1, n_stages)
    say(f"optimiser starts 1-{len(inits)}", 1, n_stages)
    with _one_thread():
        optima = prob.minimise([prob.u_of(prob.within_cap(lam0)) for lam0 in inits])
    optima.sort(key=lambda uv: uv[1])  # stable: ties keep the order of the starts
    with torch.no_grad():
        lam_optima = [prob.full(prob.lam(torch.from_numpy(u))).numpy() for u, _ in optima]
    lam_cont = lam_optima[0]
    cont_sched = None
    if np.all(np.diff(lam_cont[:-1]) > 0):
        cont_sched = Schedule.from_log_snr(
            lam_cont[:-1], process=lr.process, name="spectral (continuous)", train=lr.train
        )
    elif lr.train is not None:
        # Levels the optimum crowds at one end (KL fits of 50+ steps put dozens at the cleanest
        # level) can coincide in floating point: the stick-breaking fractions keep them apart
        # by 1e-7 of the distance left, which falls below the rounding of the level itself.
        # Rounding spreads them over distinct integer timesteps; the continuous optimum is not
        # a valid schedule and is not reported.
        notes.append(
            "the continuous optimum puts several levels at the same noise level (within "
            "rounding); they were spread over distinct integer timesteps"
        )
    else:
        raise SpecschedError(
            f"the optimum puts several of the {steps} levels at the same noise level: fewer "
            "steps do as well here; fit fewer steps (or another objective)"
        )

    # discrete models: round, then polish over integers ---------------------------------------------
    pinned_t = (
        None
        if first is None or lr.train is None
        else round(float(lr.train.timestep_of_log_snr(first)))
    )
    if lr.train is not None:
        train = lr.train
        table = train.log_snr

        def evaluate(ts: np.ndarray) -> np.ndarray:
            lam_all = np.concatenate([table[ts], np.full((len(ts), 1), np.inf)], 1).T
            with torch.no_grad():
                return prob.value_of_levels(torch.from_numpy(np.ascontiguousarray(lam_all))).numpy()

        # the incremental moves know the objective alone: not with a calibration or a step cap
        markov = get_sampler(sampler).markov and prob.tables is None and prob.step_cap is None
        moves = _MarkovMoves(prob, table) if markov else None
        # where the polish starts. On a plain spectrum: every start's optimum, rounded. The
        # integer landscape has local minima that the continuous one does not (the lowest levels
        # sit on a few integers), and a start that is not the best continuous optimum can round
        # into a better one (photos 32x32x3, KL, DDIM 20 steps: 20.43 against 28.52 for the best
        # optimum and the best heuristic polished, which took twice the time).
        # On a calibration: the best optimum and the best heuristic, as before. Its objective
        # carries the calibration's sampling error, and choosing among more optima on it chose
        # that error: on the exact mixture (UniPC-10) the three starts' polished optima differ by
        # 2 % in the calibrated objective, whose uncertainty is 75 %, and measured FD 0.82, 1.01
        # and 1.05 against 0.73 for the heuristic's polish, which stays near the heuristic
        # (benchmarks/README.md, "Every start polished").
        starts_t = [
            _round_timesteps(train.timestep_of_log_snr(lam_k[:-1]), train.T, pinned_t)
            for lam_k in (lam_optima if tables is None else lam_optima[:1])
        ]
        if tables is not None:
            for b, _ in baselines[:1]:
                tb = b.timesteps.copy()
                if pinned_t is not None:
                    tb = _round_timesteps(tb.astype(float), train.T, pinned_t)
                starts_t.append(tb)
        candidates: list[tuple[np.ndarray, float]] = []
        seen: set[tuple[int, ...]] = set()
        for k, t0 in enumerate(starts_t):
            say("integer polish", 1 + len(inits) + k, n_stages)
            if tuple(t0) in seen:  # the same start as one polished already: the same result
                continue
            seen.add(tuple(t0))
            with _one_thread():
                candidates.append(
                    _polish_integers(t0, evaluate, train.T, pinned_t is not None, moves)
                )
        # candidates ranked by the exact objective (the polish may have used compressed modes)
        exact_vals = [
            exact(Schedule.from_timesteps(c[0], train_schedule=train)).value(objective)
            + float(prob.step_penalty(torch.from_numpy(np.append(table[c[0]], np.inf))))
            for c in candidates
        ]
        t_best = candidates[int(np.argmin(exact_vals))][0]
        final = Schedule.from_timesteps(t_best, train_schedule=train, name="spectral")
        if pinned_t is not None:
            notes.append(f"first level pinned at t={pinned_t}")
    else:
        final = Schedule.from_log_snr(lam_cont[:-1], process=lr.process, name="spectral")
        if first is not None:
            notes.append("first level pinned at the noisiest trained level")
        cont_sched = None
    final = Schedule(
        final.alpha,
        final.s,
        final.process,
        timesteps=final.timesteps,
        train=final.train,
        name="spectral",
        meta={"objective": objective, "sampler": sampler, "options": dict(sampler_options)},
    )
    r_final = exact(final)
    if prob.step_cap is not None:
        finite = final.log_snr[:-1]
        longest = float(np.max(np.diff(finite)[1:])) if finite.size > 2 else 0.0
        if longest >= 0.99 * prob.step_cap:
            notes.append(
                f"steps limited to {max_step:g}x the uniform log-SNR step ({prob.step_cap:.3g}): "
                "the calibration measured the network on noised data, and a longer step leaves "
                "where it was measured (max_step=0 lifts the limit)"
            )

    def roughness(sched: Schedule) -> float:
        """:meth:`_Problem.roughness` of one schedule."""
        lam = torch.from_numpy(np.ascontiguousarray(sched.log_snr))[:, None]
        return float(prob.roughness(lam)[0])

    def most_regular(
        accept: Callable[[Schedule, Response], float | None], scale: float
    ) -> tuple[Schedule, Response, float, float] | None:
        """The most regular schedule that ``accept`` accepts, found by continuation from the fit.

        From the fit's own (rounded) optimum, minimise the objective plus ``weight * scale``
        times :meth:`_Problem.roughness` for each weight of :data:`REGULAR_WEIGHTS` in turn
        (weakest first), each from the last weight's optimum, while ``accept`` accepts the
        rounded result (it returns the uncertainty it accepted it within, or None). Returns the
        smoothest one accepted, with its response, weight and that uncertainty, if it is
        smoother than the fit; else None. The path stays in the flat set around the optimum:
        started from the heuristics instead, the penalised minima of MNIST's Heun-20
        calibration stayed in another basin (W2 1.60 and above, against 1.51 at the fit) at
        every weight and none was accepted, after six minimisations of five starts each."""
        if prob.n_free == 0:
            return None
        u = prob.u_of(_lam_free(final.log_snr, prob))
        found, least = None, roughness(final)
        try:
            for weight in REGULAR_WEIGHTS:
                prob.smooth = weight * scale
                with _one_thread():
                    u, _ = prob.minimise([u])[0]
                with torch.no_grad():
                    lam = prob.full(prob.lam(torch.from_numpy(u))).numpy()
                if lr.train is not None:
                    t = _round_timesteps(
                        lr.train.timestep_of_log_snr(lam[:-1]), lr.train.T, pinned_t
                    )
                    sched = Schedule.from_timesteps(t, train_schedule=lr.train, name="spectral")
                else:
                    sched = Schedule.from_log_snr(lam[:-1], process=lr.process, name="spectral")
                r = exact(sched)
                within = accept(sched, r)
                if within is None:
                    break
                rough = roughness(sched)
                if rough < least:
                    found, least = (sched, r, weight, within), rough
        finally:
            prob.smooth = 0.0
        return found

    uncertainty, fallback = 0.0, None
    if guarded:
        # the guard can take as long as the optimiser (the path to the most regular schedule)
        say("guard", n_stages - 1 - designed, n_stages)
        final, r_final, uncertainty, fallback = _guard(
            spec,
            final,
            r_final,
            baselines,
            exact,
            objective,
            sampler,
            sampler_options,
            notes,
            roughness,
            most_regular,
            pinned=first is not None,
            converged=target == "converged",
        )
    design = False
    if designed:
        say("Gaussian design", n_stages - 1, n_stages)
        chosen = _gaussian_design(
            spec, final, r_final, baselines, exact, objective, sampler, sampler_options, notes,
            levels=lr, starts=starts, heuristics=heuristics, start_at=start_asked,
            max_step=step_asked,
        )  # fmt: skip
        if chosen is not None:
            final, r_final, uncertainty = chosen
            fallback, design = None, True
    edge = None
    if designed and start_asked is None and lr.train is not None and START_BELOW_FAILURE:
        edge = spec.calibration.passing_edge(spec.variances, spec.weights)
    if edge is not None:
        # the network fails at the top of the range: the same fit with its first level pinned
        # where the calibration measures it stop failing is a candidate (see start_at)
        t_edge = int(np.floor(lr.train.timestep_of_log_snr(np.array([edge]))[0]))
        if t_edge < lr.train.T - 1:
            say("start below the failure", n_stages - 1, n_stages)
            below = _fit(
                spec, steps, sampler=sampler, objective=objective, process=process,
                train_schedule=train_schedule, num_train_timesteps=num_train_timesteps,
                sigma_min=sigma_min, sigma_max=sigma_max, levels=lr, start_at=t_edge,
                starts=starts, compress=compress, heuristics=heuristics, guard=guard,
                target=target, max_step=step_asked, gaussian_design=gaussian_design,
                **sampler_options,
            )  # fmt: skip
            both = None
            if below.fallback is None and not np.array_equal(below.schedule.log_snr, final.log_snr):
                # only the calibrated model sees the failure: it must rate the start below
                # it better by itself, beyond its own uncertainty
                both = _both_rate_better(
                    spec, final, r_final, below.schedule, below.response, objective, sampler,
                    sampler_options, calibrated_alone=True,
                )  # fmt: skip
            if both is not None:
                (vc_f, vc_b), (vg_f, vg_b), within = both
                notes.append(
                    f"returned the {'Gaussian design' if below.gaussian_design else 'fit'} "
                    f"started at t={t_edge}, where the calibration measures the network stop "
                    f"failing, instead of {final.name!r} from t={int(final.timesteps[0])}: both "
                    f"models rate it better ({objective} {vc_b:.4g} against {vc_f:.4g} "
                    f"calibrated, {vg_b:.4g} against {vg_f:.4g} Gaussian), together by more than "
                    f"the uncertainty of the difference ({within:.2g}), the calibrated one by "
                    "itself too"
                )
                final, r_final, uncertainty = below.schedule, below.response, below.uncertainty
                fallback, design = None, below.gaussian_design
    if dropped is not None and baselines and check_stochastic:
        final, r_final, uncertainty, fallback = _stochastic_check(
            dropped, final, r_final, baselines, objective, sampler, sampler_options, notes
        )
    checked = spec if dropped is None else dropped
    if checked.calibration is not None:
        failing = checked.calibration.failure_note(
            checked.variances, checked.weights, float(final.log_snr[0])
        )
        if failing is not None:
            notes.append(failing)
    start = start_note(checked, final, objective, sampler, **sampler_options)
    if start is not None:
        notes.append(start)
    if bins is not None and fallback is None:
        with torch.no_grad():
            approx = float(
                prob.value_of_levels(
                    torch.from_numpy(np.append(final.log_snr[:-1], np.inf))[:, None]
                )[0]
            )
        rel = abs(approx - r_final.value(objective)) / max(r_final.value(objective), 1e-300)
        notes.append(
            f"optimised on {S.size} compressed modes (of {S_full.size}); relative error {rel:.2e}"
        )
    say("done", n_stages, n_stages)
    return FitResult(
        schedule=final,
        value=r_final.value(objective),
        objective=objective,
        sampler=sampler,
        options=dict(sampler_options),
        response=r_final,
        baselines=baselines,
        levels=lr,
        continuous=cont_sched,
        seconds=time.perf_counter() - t_start,
        evaluations=prob.evaluations,
        notes=notes,
        uncertainty=uncertainty,
        fallback=fallback,
        calibrated=spec.calibration is not None,
        gaussian_design=design,
        respond=exact,
    )


def start_note(
    spec: Spectrum, sched: Schedule, objective: Objective, sampler: str, **sampler_options: Any
) -> str | None:
    """A note where a start from pure noise costs much of the objective, else None.

    A sampler starts from noise of mean 0, but where its first level keeps signal (the training
    schedule's terminal SNR is not zero, as in Stable Diffusion 1.x/2.x, or the schedule starts
    below the top) the data noised to that level is not that noise: the samples miss the
    data's mean (and the variance of its strongest modes), whatever the schedule. Measured on
    the Gaussian model of ``spec`` (its calibration dropped: this is a property of the data
    and the process) by :meth:`~specsched.response.Response.value_from_marginal`; the note is
    returned when the start costs more than :data:`START_NOTE_SHARE` of the objective, and
    says how much of that is the mean, which adding ``alpha_0`` times the data's mean image to
    the noise recovers. On sv16 (scaled-linear betas, log-SNR -5.4 at t = 999) the start costs
    53-87 % of the Gaussian W2 of DDIM and DPM-Solver++(2M), and that remedy cut the measured
    pixel FD 2-6x; on cc16, whose default starts at t = 800-950, 2.6x (benchmarks/RESULTS.md,
    "A start that is not pure noise").
    """
    plain = spec if spec.calibration is None else dataclasses.replace(spec, calibration=None)
    r = response(plain, sched, sampler=sampler, **sampler_options)
    value = r.value(objective)
    cost = value - r.value_from_marginal(objective)
    if not (math.isfinite(cost) and value > 0 and cost > START_NOTE_SHARE * value):
        return None
    mean_part = value - r.value_from_marginal(objective, variance=False)
    alpha0, s0, lam0 = float(sched.alpha[0]), float(sched.s[0]), float(sched.log_snr[0])
    where, which = "", "no schedule recovers it"
    if sched.timesteps is not None:
        t0 = int(sched.timesteps[0])
        where = f"t={t0}, "
        if sched.train is not None and t0 < sched.train.T - 1:
            which = f"a first level nearer t={sched.train.T - 1} would lose less of it"
    return (
        f"the first level ({where}log-SNR {lam0:.3g}) is not pure noise: starting from noise "
        f"of mean 0 misses the data noised to that level, which costs {cost:.3g} of this "
        f"schedule's {objective} of {value:.3g} ({100 * cost / value:.0f} %) on the Gaussian "
        f"model, {mean_part:.3g} of it the mean; {which}. Add {alpha0:.3g} x the data's mean "
        "image (Spectrum.mean_image(); start_noise(..., mean=)) to the starting noise (states "
        "alpha x + s noise, as in diffusers; for k-diffusion's x + sigma noise, 1 x it), or "
        "train with zero-terminal-SNR betas (diffusers: rescale_betas_zero_snr=True). Starting "
        f"from training samples noised to that level ({alpha0:.3g} x + {s0:.3g} noise) "
        f"recovers more, but carries {alpha0:.3g} of each sample into the output"
    )


# --------------------------------------------------------------------------------- guards
#: perturbed copies of the spectrum (and calibration) used to estimate the objective's uncertainty
UNCERTAINTY_DRAWS = 16


def objective_draws(
    spec: Spectrum,
    schedules: list[Schedule],
    *,
    sampler: str,
    objective: Objective,
    draws: int = UNCERTAINTY_DRAWS,
    seed: int = 0,
    converged: bool = False,
    **sampler_options: Any,
) -> np.ndarray:
    """The objective of each schedule under ``draws`` resamplings of the spectrum's sampling error.

    Each draw replaces every mode's variance by ``S chi2(n dof) / (n dof)`` (``n`` the spectrum's
    sample count, ``dof`` 2 for complex modes, else 1), every mean by ``m + N(0, S / n)`` and, for a
    calibrated spectrum, the calibration's gain, bias and residual power by a draw within their
    standard errors. The schedules must have the same number of steps; they are evaluated as one
    batch. With ``converged`` (calibrated spectra) each draw's objective is measured against that
    draw's converged output (:func:`specsched.response.converged_moments`). Returns an array of
    shape ``(draws, len(schedules))``; the spread of differences between columns is the paired
    uncertainty of a comparison.
    """
    S, w, m = (np.asarray(a, dtype=np.float64) for a in spec.modes())
    n = int(spec.n_samples)
    dof = np.where(w > 1, 2.0, 1.0)
    rng = np.random.default_rng(seed)
    lam = np.stack([sch.log_snr for sch in schedules], 1)  # (N + 1, n_sched)
    alpha, s = levels_from_log_snr(torch.from_numpy(lam), schedules[0].process)
    out = np.empty((draws, len(schedules)))
    for b in range(draws):
        if n > 0:
            Sb = S * rng.chisquare(n * dof) / (n * dof)
            mb = m + (m != 0) * rng.standard_normal(m.shape) * np.sqrt(S / n)
        else:
            Sb, mb = S, m
        tables = None if spec.calibration is None else ModeTables(spec.calibration, Sb, perturb=rng)
        St, mt, wt = (torch.from_numpy(a) for a in (Sb, mb, w))
        St_obj, mt_obj = St, mt
        if converged and tables is not None:
            St_obj, mt_obj = converged_moments(St, mt, tables, schedules[0].process)
        with torch.no_grad():
            res = output_moments(
                St,
                mt,
                alpha,
                s,
                process=schedules[0].process,
                sampler=sampler,
                calibration=tables,
                **sampler_options,
            )
            per = divergence.per_mode(objective, St_obj, mt_obj, res["var"], res["mean"])
        out[b] = (wt * per).sum(-1).numpy()
    return out


def _blend(
    fitted: Schedule, heuristic: Schedule, theta: float, pinned: bool = False
) -> Schedule | None:
    """A schedule ``theta`` of the way from ``fitted`` to ``heuristic`` (timesteps or log-SNR).

    With ``pinned`` the first level stays the fitted one.
    """
    keep = slice(1 if pinned else 0, None)
    if fitted.timesteps is not None and heuristic.timesteps is not None:
        t = fitted.timesteps.copy()
        t[keep] = np.rint((1 - theta) * t[keep] + theta * heuristic.timesteps[keep])
        if np.any(np.diff(t) >= 0):
            return None
        return Schedule.from_timesteps(t, train_schedule=fitted.train, name="spectral")
    lam = fitted.log_snr[:-1].copy()
    lam[keep] = (1 - theta) * lam[keep] + theta * heuristic.log_snr[:-1][keep]
    if np.any(np.diff(lam) <= 0):
        return None
    return Schedule.from_log_snr(lam, process=fitted.process, name="spectral")


def _both_rate_better(
    spec: Spectrum,
    final: Schedule,
    r_final: Response,
    cand: Schedule,
    r_cand: Response,
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    *,
    calibrated_alone: bool = False,
) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """Whether both the calibrated model (``spec``) and the Gaussian model of the same spectrum
    rate ``cand`` better than ``final``, and the sum of the two improvements (both distances to
    the data's spectrum, in the same units) exceeds the uncertainty of the difference (2 sd of
    the paired difference under each model over :func:`objective_draws`, added in quadrature).
    With ``calibrated_alone``, the calibrated model's improvement must also exceed its own
    2 sd. Returns ``((calibrated final, cand), (Gaussian final, cand), uncertainty)``, or
    None."""
    plain = dataclasses.replace(spec, calibration=None)
    pair = [final, cand]
    vc_f, vc_g = r_final.value(objective), r_cand.value(objective)
    vg_f, vg_g = (
        response(plain, x, sampler=sampler, **sampler_options).value(objective) for x in pair
    )
    if not (vc_g < vc_f and vg_g < vg_f):
        return None  # the models disagree (the draws below are needed only where they agree)
    cal = objective_draws(spec, pair, sampler=sampler, objective=objective, **sampler_options)
    gau = objective_draws(plain, pair, sampler=sampler, objective=objective, **sampler_options)
    sd_cal = _two_sd(cal[:, 1] - cal[:, 0])
    within = math.hypot(sd_cal, _two_sd(gau[:, 1] - gau[:, 0]))
    if (vc_f + vg_f) - (vc_g + vg_g) <= within:
        return None
    if calibrated_alone and vc_f - vc_g <= sd_cal:
        return None
    return (vc_f, vc_g), (vg_f, vg_g), within


def _gaussian_design(
    spec: Spectrum,
    final: Schedule,
    r_final: Response,
    baselines: list[tuple[Schedule, Response]],
    exact: Callable[[Schedule], Response],
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    notes: list[str],
    *,
    levels: LevelRange,
    starts: int,
    heuristics: bool,
    start_at: str | float | None = None,
    max_step: float | None = None,
) -> tuple[Schedule, Response, float] | None:
    """The Gaussian model's design in place of a calibrated fit's choice ``final``, where both
    models rate it better: ``(design, its calibrated response, uncertainty)``, else None.

    The design is :func:`fit` on ``spec`` with its calibration dropped, with a plain spectrum's
    defaults (the first level free, no step cap, no guard) unless ``start_at`` or ``max_step``
    were asked of the calibrated fit. The design is returned where both the calibrated model
    and the Gaussian model of the same spectrum rate it better than ``final``, and the sum of
    the two improvements (both are distances to the data's spectrum, in the same units) exceeds
    the uncertainty of the difference (2 sd of the paired difference under each model over
    :func:`objective_draws`, added in quadrature). Where the models disagree, ``final`` stays.
    The uncertainty returned is the calibrated objective's paired uncertainty of the design
    against the best heuristic, as the guard's.

    Why: the calibrated optimum is chosen on the calibration's sampling errors, and its own
    model rates it better than a schedule the Gaussian model prefers only by construction;
    where even the calibrated model rates the design better, the design is better on both
    accounts. On the 57 stored cells of six learned models where both were sampled at 1,024
    samples, this returns the design in 9, which measured better than the calibrated default in
    7 (by up to 4.5x) and within the noise in 2. Where the models disagree it measured worse
    in 37 of 47 cells; returning it wherever the summed objectives favour it lost a win on
    tiny16 at DDIM-5 and measured worse than the calibrated fit on a tenth model (gs16) there
    (benchmarks/README.md, "The Gaussian design inside the fit")."""
    plain = dataclasses.replace(spec, calibration=None)
    g = fit(
        plain,
        final.steps,
        sampler=sampler,
        objective=objective,
        levels=levels,
        start_at=start_at,
        starts=starts,
        heuristics=heuristics,
        max_step=max_step,
        **sampler_options,
    ).schedule
    if np.array_equal(g.log_snr, final.log_snr):
        return None
    r_g = exact(g)
    both = _both_rate_better(spec, final, r_final, g, r_g, objective, sampler, sampler_options)
    if both is None:
        return None
    (vc_f, vc_g), (vg_f, vg_g), within = both
    chosen = Schedule(
        g.alpha,
        g.s,
        g.process,
        timesteps=g.timesteps,
        train=g.train,
        name="spectral",
        meta={"objective": objective, "sampler": sampler, "options": dict(sampler_options)},
    )  # the fit's own metadata, also where ``final`` was a heuristic the guard kept
    start = "" if g.timesteps is None else f" (first level t={int(g.timesteps[0])})"
    notes.append(
        f"returned the Gaussian model's design{start} instead of {final.name!r}: both models "
        f"rate it better ({objective} {vc_g:.4g} against {vc_f:.4g} calibrated, {vg_g:.4g} "
        f"against {vg_f:.4g} Gaussian), together by more than the uncertainty of the difference "
        f"({within:.2g})"
    )
    tol = 0.0
    if baselines:
        tol = _paired_uncertainty(
            spec, chosen, baselines[0][0], objective, sampler, sampler_options, False
        )
    return chosen, dataclasses.replace(r_g, schedule=chosen), tol


def _guard(
    spec: Spectrum,
    final: Schedule,
    r_final: Response,
    baselines: list[tuple[Schedule, Response]],
    exact: Callable[[Schedule], Response],
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    notes: list[str],
    roughness: Callable[[Schedule], float],
    most_regular: Callable[
        [Callable[[Schedule, Response], float | None], float],
        tuple[Schedule, Response, float, float] | None,
    ],
    pinned: bool = False,
    converged: bool = False,
) -> tuple[Schedule, Response, float, str | None]:
    """Fall back to the best heuristic, or return the most regular schedule of the flat set.

    ``baselines`` are the heuristics with their responses, best first; a calibrated fit is also
    checked against all of them under the Gaussian model (:func:`_gaussian_veto`; a verdict
    against it is applied unless the sampler is first-order and Markov). A fit that is
    kept and rougher (``roughness``) than the median heuristic is replaced by the most regular
    schedule (``most_regular``) that the objective's uncertainty cannot tell from it (2 sd of
    their paired difference over :func:`objective_draws`) and that still beats the heuristic by
    more than ``tol``; a smoother one moves towards the heuristic as far as ``tol`` allows."""
    h_sched, h_resp = baselines[0]
    v_fit, v_h = r_final.value(objective), h_resp.value(objective)

    def paired_uncertainty(other: Schedule) -> float:
        """2 sd of the objective's difference between the fit and ``other`` over the draws."""
        return _paired_uncertainty(
            spec, final, other, objective, sampler, sampler_options, converged
        )

    tol = paired_uncertainty(h_sched)
    tol = max(tol, 1e-12 * max(abs(v_h), 1e-300))  # rounding: equal schedules tie

    def fallback(why: str) -> tuple[Schedule, Response, float, str | None]:
        """Keep a heuristic: the best one, or logSNR-uniform spacing where the objective cannot
        tell it from the best (:func:`_regular_fallback`); ``why`` the note's reason."""
        kept, r_kept, regular = _regular_fallback(
            spec, baselines, objective, sampler, sampler_options, converged
        )
        notes.append(f"kept the heuristic {kept.name!r}: {why}{regular}")
        return kept, r_kept, tol, kept.name

    if not v_h - v_fit > tol:
        return fallback(
            f"the fit ({objective} {v_fit:.4g}) does not beat the best heuristic "
            f"{h_sched.name!r} ({v_h:.4g}) by more than the objective's uncertainty ({tol:.2g})"
        )
    if spec.calibration is not None:
        worse = _gaussian_veto(
            spec, final, [b for b, _ in baselines], objective, sampler, sampler_options
        )
        if worse is not None:
            than = "" if worse[1] == h_sched.name else f" than {worse[1]!r}"
            disagree = (
                f"the calibrated model rates the fit better ({objective} {v_fit:.4g} against "
                f"{v_h:.4g}), but the Gaussian model of the same spectrum rates it worse{than} "
                f"({worse[0]:.4g} against {worse[2]:.4g}, beyond its uncertainty {worse[3]:.2g})"
            )
            if not get_sampler(sampler).markov:
                return fallback(f"{disagree}: the advantage rests on the calibration alone")
            notes.append(
                f"{disagree}; the fit is kept: {sampler!r} is a first-order (Markov) sampler, "
                "whose steps each pass one call's measured gain and bias on, and there the "
                "calibrated model is the better judge of schedules (benchmarks/README.md, "
                '"The Gaussian veto and first-order samplers")'
            )
    budget = min(tol, v_h - v_fit - tol)  # stays better than the heuristic by more than tol

    def accept(cand: Schedule, r: Response) -> float | None:
        """The paired uncertainty of ``cand``'s difference with the optimum if the objective
        cannot tell them apart (the difference within it, and within ``budget``); else None."""
        v = r.value(objective)
        if v > v_fit + budget:
            return None
        within = paired_uncertainty(cand)
        return within if v - v_fit <= within else None

    r_fit = roughness(final)
    r_median = float(np.median([roughness(b) for b, _ in baselines]))
    if r_fit > r_median:
        found = most_regular(accept, budget)
        if found is not None:
            sched, r, weight, within = found
            chosen = dataclasses.replace(sched, name="spectral", meta=final.meta)
            r_chosen = dataclasses.replace(r, schedule=chosen)  # the same levels: no re-evaluation
            notes.append(
                f"returned the most regular schedule the objective cannot tell from the optimum "
                f"(roughness weight {weight:g}): {objective} {v_fit:.4g} at the optimum, "
                f"{r_chosen.value(objective):.4g} here, within the uncertainty of the difference "
                f"({within:.2g})"
            )
            return chosen, r_chosen, tol, None
        smooth = (
            f"the optimum is rougher than the median heuristic (roughness {r_fit:.3g} against "
            f"{r_median:.3g}), but no more regular schedule is within the objective's "
            "uncertainty of it"
        )
    else:
        smooth = (
            f"the optimum is no rougher than the median heuristic (roughness {r_fit:.3g} "
            f"against {r_median:.3g})"
        )
    # towards the heuristic, as far as the objective's uncertainty allows
    chosen, r_chosen, theta_used = final, r_final, 0.0
    for theta in np.linspace(0.1, 1.0, 10):
        cand = _blend(final, h_sched, float(theta), pinned)
        if cand is None:
            continue
        r = exact(cand)
        if r.value(objective) <= v_fit + budget:
            chosen, r_chosen, theta_used = cand, r, float(theta)
    if theta_used == 0:
        notes.append(f"{smooth}: the optimum is returned")
        return final, r_final, tol, None
    notes.append(
        f"{smooth}; the objective is flat within its uncertainty ({tol:.2g}) around it: moved "
        f"{theta_used:.0%} of the way towards {h_sched.name!r} ({objective} {v_fit:.4g} -> "
        f"{r_chosen.value(objective):.4g})"
    )
    chosen = dataclasses.replace(chosen, name="spectral", meta=final.meta)
    return chosen, dataclasses.replace(r_chosen, schedule=chosen), tol, None


def _stochastic_check(
    cal: Spectrum,
    final: Schedule,
    r_final: Response,
    baselines: list[tuple[Schedule, Response]],
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    notes: list[str],
) -> tuple[Schedule, Response, float, str | None]:
    """A stochastic sampler's fit (made on the Gaussian model) checked on the calibrated model:
    where that model rates it worse than its best heuristic by more than the paired uncertainty
    of the two (2 sd over :func:`objective_draws`), that heuristic is kept; ``(schedule, its
    Gaussian response, uncertainty, the heuristic's name or None)``.

    The calibrated model predicts a stochastic sampler's output power less well than the
    Gaussian model does where the network is sound, so the fit is not made on it; but only it
    sees a network that fails where the fit goes. On cc16 (benchmarks/models/cc16, an
    epsilon-predictor under cosine betas, whose output blows up above t ~ 850), the Gaussian
    DDPM fits start at t = 977-990 and measured FD 915, 1,742 and 4,501 at 5, 10 and 20 steps
    against 207, 130 and 112 for leading spacing, which the calibrated model rates best
    (benchmarks/RESULTS.md, "A sixth model"). Of the other models' DDPM cells, the check moves
    only rgb16's 20-step one, a tie before and after (FD 10.40 for the fit, 9.63 for the
    quadratic spacing kept)."""
    vals = {b.name: response(cal, b, sampler=sampler, **sampler_options) for b, _ in baselines}
    h_sched, h_gauss = min(baselines, key=lambda b: vals[b[0].name].value(objective))
    v_h = vals[h_sched.name].value(objective)
    v_fit = response(cal, final, sampler=sampler, **sampler_options).value(objective)
    tol = _paired_uncertainty(cal, final, h_sched, objective, sampler, sampler_options, False)
    if not v_fit - v_h > tol:
        return final, r_final, 0.0, None
    notes.append(
        f"kept the heuristic {h_sched.name!r}: the calibrated model rates the fit worse than it "
        f"({objective} {v_fit:.4g} against {v_h:.4g}, beyond the uncertainty of their difference, "
        f"{tol:.2g}); a stochastic sampler is fitted on the Gaussian model, and this check is "
        "how the network's own errors reach it"
    )
    return h_sched, h_gauss, tol, h_sched.name


def _two_sd(diff: np.ndarray) -> float:
    """Two standard deviations of paired differences over the draws (0 for a single draw)."""
    return 2.0 * float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0


def _paired_uncertainty(
    spec: Spectrum,
    first: Schedule,
    other: Schedule,
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    converged: bool,
) -> float:
    """2 sd of the objective's difference between two schedules over :func:`objective_draws`:
    the guard's test of whether its objective can tell them apart."""
    vals = objective_draws(
        spec,
        [first, other],
        sampler=sampler,
        objective=objective,
        converged=converged,
        **sampler_options,
    )
    return _two_sd(vals[:, 1] - vals[:, 0])


def _regular_fallback(
    spec: Spectrum,
    baselines: list[tuple[Schedule, Response]],
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
    converged: bool,
) -> tuple[Schedule, Response, str]:
    """The heuristic a guard keeps: :data:`REGULAR_HEURISTIC` where the objective cannot tell it
    from the best one (their difference within 2 sd of its paired spread over
    :func:`objective_draws`), else the best one; with what to add to the note ("" for the best).

    The fit's own rule for a flat objective (return its most regular schedule), applied to the
    heuristics: where the model cannot rank the best heuristic above logSNR-uniform spacing, the
    ranking is a draw of the calibration's sampling error, and the regular spacing is kept.
    Measured offline on every fallback cell of the benchmark's four models
    (``benchmarks/fallback_choice.py``, rule ``logsnr_within``; benchmarks/README.md): it keeps
    logSNR-uniform instead of AYS on the exact mixture's DPM-Solver++(2M) at 10 and 20 steps
    (the best heuristic of both; AYS lost the 20-step cell by 1.30x at 2,560 samples), and
    changes no cell of tiny16 or rgb16.

    A logSNR-uniform schedule that the model's timesteps do not realise (levels moved off their
    nearest timestep to keep the timesteps distinct, ``meta["moved_levels"]``) is not regular
    spacing, and is not kept: on a cosine training schedule, whose log-SNR falls from -10 to -20
    over its last five timesteps, logSNR-uniform spacing puts 7 of 20 levels at t >= 993, 6 of
    them moved. On MNIST's UniPC-20 (cosine schedule) it had been kept in place of AYS, the
    model's best, and measured FD 11.58 +- 0.44 against AYS's 11.29 +- 0.41 at 1,024 samples
    (trailing 11.15; benchmarks/README.md). Rejected: the most regular of *all* the heuristics
    within the uncertainty (any spacing, by :meth:`_Problem.roughness`), which on rgb16, whose
    objective is uncertain by more than its spread at few steps, kept trailing instead of
    leading at Heun-5 (FD 264 against 114) and quadratic instead of leading at DDIM-5 (27.8
    against 22.7)."""
    best, r_best = baselines[0]
    regular = next(((b, r) for b, r in baselines if b.name == REGULAR_HEURISTIC), None)
    if regular is None or regular[0] is best:
        return best, r_best, ""
    within = _paired_uncertainty(
        spec, best, regular[0], objective, sampler, sampler_options, converged
    )
    v_best, v_reg = r_best.value(objective), regular[1].value(objective)
    if v_reg - v_best > within:
        return best, r_best, ""
    cannot_rank = (
        f"; {REGULAR_HEURISTIC!r} ({objective} {v_reg:.4g}) is within the uncertainty of its "
        f"difference ({within:.2g}) from {best.name!r}: the objective cannot rank them"
    )
    moved = regular[0].meta.get("moved_levels", 0)
    if moved:
        return (
            best,
            r_best,
            f"{cannot_rank}, but the model's timesteps do not realise logSNR-uniform spacing "
            f"({moved} of its levels moved off their nearest timestep to keep the timesteps "
            "distinct), and the best is kept",
        )
    return regular[0], regular[1], f"{cannot_rank}, and the regular spacing is kept"


def _gaussian_veto(
    spec: Spectrum,
    fitted: Schedule,
    heuristics: list[Schedule],
    objective: Objective,
    sampler: str,
    sampler_options: dict[str, Any],
) -> tuple[float, str, float, float] | None:
    """``(fit, heuristic name, heuristic, uncertainty)`` under the Gaussian model where it rates a
    calibrated fit worse than one of ``heuristics`` beyond its uncertainty (the heuristic it
    rates best of those); else ``None``.

    The calibrated model is the Gaussian one plus measured corrections, and a fit on it picks the
    schedule that is best for *this* calibration, sampling errors included: the paired
    uncertainty of the guard (the same two schedules under resampled calibrations) does not see
    that selection. The Gaussian model of the same spectrum has no calibration error; where it
    rates the fit worse than a heuristic beyond its own uncertainty, the fit's advantage rests
    on the calibration alone and the calibrated model's best heuristic is kept.

    Until 2026-11-30 the check compared the fit with the calibrated model's best heuristic
    alone. The two models can disagree on which heuristic is best, and the one the Gaussian
    model prefers is the comparison that matters: on the exact mixture (DPM-Solver++(2M)-10) the
    calibrated model ranked AYS first and the Gaussian model logSNR-uniform, which it rated
    better than the fit (0.125 against 0.160); the fit measured FD 1.03 against 0.56 for
    logSNR-uniform and 0.62 for AYS. Against every heuristic, on the stored calibrated fits of
    three denoisers (benchmarks/README.md, calibrated_fits.py), the check turned that loss into a
    tie and three wins into ties (tiny16 DDIM-5 and UniPC-5, MNIST DPM-Solver++(2M)-10): wins /
    ties / losses 4 / 10 / 1 -> 4 / 11 / 0 (mixture), 5 / 10 / 0 -> 3 / 12 / 0 (tiny16),
    3 / 1 / 0 -> 2 / 2 / 0 (MNIST, 10 steps). For a denoiser far from the Gaussian model of its
    data it can refuse a right fit (a linear denoiser built for twice the data's deviations,
    whose calibrated model is exact, keeps the heuristic at DPM-Solver++(2M)-10,
    tests/test_calibrate.py).

    :func:`_guard` applies the verdict to samplers that combine several calls (multistep, Heun,
    UniPC) and only notes it for first-order Markov ones (the DDIM family: DDIM, Euler, flow
    Euler; the stochastic members are fitted on the Gaussian model anyway). A DDIM step passes
    one denoiser call on, scaled, so a schedule acts through each call's gain and bias, which the
    calibration measures level by level, and the network's errors that the Gaussian model cannot
    see (the mean modes at the noisiest levels) are what decides the schedule. A multistep step
    passes on a difference of two calls' outputs, and how their non-linear parts cancel rests on
    the calibrated model's coherence between calls, its least accurate part (its predicted power
    loses to the Gaussian model's at tiny16 UniPC-10 and -20, DPM-Solver++(2M)-20 and Heun-10
    and -20). On the two learned models measured, the calibrated model ranks DDIM schedules
    with Spearman 0.92-0.97 against measured FD, the Gaussian model 0.74-0.85; and with the
    verdict applied, DDIM fits were refused in four cells, of which three measured better than
    the kept heuristic at 2,560 samples (1,024 on MNIST) and one tied (benchmarks/README.md,
    "The Gaussian veto and first-order samplers").
    """
    plain = dataclasses.replace(spec, calibration=None)
    scheds = [fitted, *heuristics]
    vals = objective_draws(plain, scheds, sampler=sampler, objective=objective, **sampler_options)
    v_fit = response(plain, fitted, sampler=sampler, **sampler_options).value(objective)
    flagged = []
    for k, h in enumerate(heuristics, start=1):
        v_h = response(plain, h, sampler=sampler, **sampler_options).value(objective)
        tol = _two_sd(vals[:, 0] - vals[:, k])
        if v_fit - v_h > tol:
            flagged.append((v_h, h.name, tol))
    if not flagged:
        return None
    v_h, name, tol = min(flagged)
    return v_fit, name, v_h, tol


START_BELOW_FAILURE = True
"""Whether a calibrated fit with the default start (``start_at=None``) on a discrete model whose
network fails at the top of its range also tries its first level pinned where the calibration
measures the network stop failing (:meth:`~specsched.calibrate.Calibration.passing_edge`), and
returns that where both models rate it better and the calibrated one by itself beyond its
uncertainty (see ``start_at`` in :func:`fit`). On by default since the thirtieth session: it won
every cell it changed, 5 on the networks it was developed on and 3 on a held-out one
(benchmarks/RESULTS.md, "A start where the network stops failing"). Set it False for the fit
from the top of the range alone."""


def _first_level(lr: LevelRange, start_at: str | float | None) -> float | None:
    """log-SNR of a pinned first level, or None for a free one."""
    if start_at is None and lr.process == "flow" and math.isinf(lr.lam_lo):
        start_at = "max"
    if start_at is None or start_at == "free":
        return None
    if start_at == "max":
        return lr.lam_lo
    try:
        v = float(start_at)
    except (TypeError, ValueError):
        raise SpecschedError(
            f"start_at={start_at!r} is not understood: use 'free', 'max' or a number"
        ) from None
    if lr.train is not None:
        if v != int(v) or not 0 <= v <= lr.train.T - 1:
            raise SpecschedError(
                f"start_at={start_at} must be an integer timestep in 0..{lr.train.T - 1}"
            )
        return float(lr.train.log_snr[int(v)])
    lam = Schedule.from_sigmas([v], process=lr.process).log_snr[0]
    if not lr.contains(np.array([lam])):
        lo, hi = lr.sigma_range
        raise SpecschedError(f"start_at={v} lies outside the model's range [{lo:.4g}, {hi:.4g}]")
    return float(lam)


def _lam_free(lam: np.ndarray, prob: _Problem) -> np.ndarray:
    """The free levels of a schedule's log-SNRs, clipped into the optimiser's box."""
    finite = lam[:-1]
    if prob.first is not None:
        finite = finite[1:]
    return np.clip(finite, prob.lo, prob.hi)


def compare(
    spec: Spectrum,
    schedules: list[Schedule] | None = None,
    *,
    steps: int | None = None,
    sampler: str = "ddim",
    levels: LevelRange | None = None,
    heuristics: bool = True,
    objective: Objective = "w2",
    target: tuple[np.ndarray, np.ndarray] | None = None,
    **sampler_options: Any,
) -> list[tuple[Schedule, Response]]:
    """Evaluate schedules (and every applicable heuristic) on a spectrum, best first.

    Parameters
    ----------
    schedules : list of Schedule, optional
        The user's schedules. They must belong to the model's process, and to a discrete-time
        model they must be integer timesteps.
    steps : int, optional
        Step count of the heuristics; defaults to that of the first schedule.
    levels : LevelRange, optional
        The model (see :func:`level_range`); defaults to the discrete linear-1000 VP model.
    target : (variances, means), optional
        Moments the objectives compare the output with instead of the data's (see
        :func:`~specsched.response.response`).
    """
    from .response import check_inputs

    lr = levels or level_range()
    spec = check_inputs(spec, sampler, sampler_options)
    schedules = list(schedules or [])
    for sch in schedules:
        if not isinstance(sch, Schedule):
            raise SpecschedError(
                f"schedules must be Schedule objects, got {type(sch).__name__}: e.g. "
                "Schedule.from_timesteps([999, 899, 799]) or Schedule.load(FILE)"
            )
        lr.check_schedule(sch)
    if steps is None:
        if not schedules:
            raise SpecschedError("give steps (the heuristics' step count) or at least one schedule")
        steps = schedules[0].steps
    if heuristics:
        from .heuristics import all_heuristics

        res_side = max(spec.signal_shape) if spec.kind == "fourier" else None
        schedules += all_heuristics(steps, lr, resolution=res_side)
    rows = [
        (s, response(spec, s, sampler=sampler, target=target, **sampler_options)) for s in schedules
    ]
    rows.sort(key=lambda sr: sr[1].value(objective))
    return rows
