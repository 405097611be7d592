"""Heuristic schedule families: the hand-picked schedules that designed schedules are compared with.

Each family is a plain function ``fn(steps, lr, *, resolution=None, **params) -> Schedule`` that
returns ``steps`` noise levels, noisiest first, plus the clean end, inside the model's
:class:`~specsched.levels.LevelRange` and in its process. :data:`HEURISTICS` names them:

================== ============ =======================================================================
name               processes    levels
================== ============ =======================================================================
``leading``        vp discrete  ``(arange(N) * (T // N))[::-1] + offset`` (diffusers ``timestep_spacing``)
``trailing``       vp discrete  ``round(arange(T, 0, -T / N)) - 1``
``linspace``       vp discrete  ``round(linspace(0, T - 1, N))[::-1]``
``quadratic``      vp discrete  ``floor(linspace(0, sqrt(0.8 T), N) ** 2)[::-1]`` (DDIM)
``karras``         vp, ve       ``(smax**(1/rho) + i/(N-1) (smin**(1/rho) - smax**(1/rho)))**rho``
``logsnr``         vp, ve, flow uniform in log-SNR (= uniform in log sigma)
``kl_optimal``     vp, ve       uniform in ``arctan(sigma)``
``shifted_cosine`` vp, ve       cosine log-SNR shifted by ``2 log(64 / resolution)``, uniform in t
``sigmoid``        vp, ve       sigmoid ``alpha_bar(t)``, uniform in t
``flow_shift``     flow         ``t' = shift u / (1 + (shift - 1) u)`` of uniform ``u``
``ays``            vp, ve       Align Your Steps lists (:data:`AYS_TABLES`), log-linearly interpolated
================== ============ =======================================================================

"sigma" is the process's sigma convention (:attr:`LevelRange.sigma_range`): the noise-to-signal
ratio ``s / alpha`` for VP and VE, the time ``t`` for flow.

On a discrete range (``lr.train`` set) every schedule is a list of integer timesteps: families
defined on sigma or log-SNR map each level to the real timestep with the same log-SNR
(:meth:`TrainSchedule.timestep_of_log_snr`, linear in log-SNR between integers, as diffusers'
``_sigma_to_t``), round it to the nearest integer, and resolve rounding collisions by moving the
cleaner level down one timestep; where there is no room below (near ``t = 0``) the noisier level
moves up instead (:func:`distinct_timesteps`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from .errors import SpecschedError, check_int
from .levels import LevelRange, log_snr_of_sigma
from .schedules import Schedule, spaced_timesteps

__all__ = [
    "HEURISTICS",
    "HEURISTIC_NAMES",
    "Heuristic",
    "HeuristicName",
    "all_heuristics",
    "applicable",
    "heuristic_schedule",
]

HeuristicName = Literal[
    "leading",
    "trailing",
    "linspace",
    "quadratic",
    "karras",
    "logsnr",
    "kl_optimal",
    "shifted_cosine",
    "sigmoid",
    "flow_shift",
    "ays",
]
HEURISTIC_NAMES: tuple[str, ...] = get_args(HeuristicName)

AysTable = Literal[
    "StableDiffusionTimesteps",
    "StableDiffusionSigmas",
    "StableDiffusionXLTimesteps",
    "StableDiffusionXLSigmas",
    "StableDiffusionVideoSigmas",
]


@dataclass(frozen=True)
class Heuristic:
    """One heuristic schedule family.

    Attributes
    ----------
    name : str
        The family's key in :data:`HEURISTICS`, e.g. ``"karras"``.
    fn : callable
        ``fn(steps, lr, *, resolution=None, **params) -> Schedule``.
    processes : tuple of str
        The noise processes it applies to (``"vp"``, ``"ve"``, ``"flow"``).
    discrete_only : bool
        True for the timestep spacings, which need a discrete-time model.
    description : str
        One line, with the reference.
    defaults : dict
        Its parameters and their usual values (read from ``fn``'s keyword-only arguments; treat it
        as read-only).
    """

    name: str
    fn: Callable[..., Schedule]
    processes: tuple[str, ...]
    discrete_only: bool
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- shared machinery
def _check_steps(steps: int) -> int:
    return check_int("steps", steps, 1, ": e.g. steps=10")


def _check(family: str, steps: int, lr: LevelRange) -> int:
    """Validate ``steps`` and that ``family`` applies to ``lr``; return ``steps`` as an int."""
    steps = _check_steps(steps)
    h = HEURISTICS[family]
    if lr.process not in h.processes:
        raise SpecschedError(
            f"the {family} schedule does not apply to {lr.process} models: "
            f"use one of {', '.join(applicable(lr))}"
        )
    if h.discrete_only and lr.train is None:
        raise SpecschedError(
            f"{family} spaces the integer timesteps of a discrete-time model: give "
            "LevelRange.discrete(...), or use a continuous family such as karras or logsnr"
        )
    if lr.train is not None and steps > lr.train.T:
        raise SpecschedError(
            f"{steps} steps is more than the {lr.train.T} timesteps the model was trained on: "
            f"use at most {lr.train.T} steps"
        )
    return steps


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _label(family: str, params: dict[str, Any]) -> str:
    """``family`` followed by the parameters that differ from its defaults, e.g. ``karras(rho=5)``."""
    defaults = HEURISTICS[family].defaults
    shown = [f"{k}={_fmt(v)}" for k, v in params.items() if k not in defaults or v != defaults[k]]
    return f"{family}({', '.join(shown)})" if shown else family


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def distinct_timesteps(ts: np.ndarray, T: int) -> np.ndarray:
    """Make rounded timesteps strictly decreasing within ``0 .. T-1``, moving as few as needed.

    A collision moves the cleaner timestep down by one (repeatedly, so a run of equal values
    becomes consecutive). Level ``i`` of ``n`` needs ``n - 1 - i`` distinct timesteps below it and
    ``i`` above it, so it is first clipped to ``[n - 1 - i, T - 1 - i]``: where the bottom has no
    room (several levels rounded to ``0``), the noisier levels move up instead. Always succeeds
    for ``n <= T``.
    """
    ts = np.asarray(ts, dtype=np.int64)
    n = ts.size
    if n > T:
        raise SpecschedError(
            f"{n} distinct timesteps do not fit in a {T}-step model: use at most {T} steps"
        )
    i = np.arange(n)
    ts = np.clip(ts, n - 1 - i, T - 1 - i)
    # ts[k] = min(ts[k], ts[k-1] - 1) for k = 1..n-1, in closed form
    return np.minimum.accumulate(ts + i) - i


def _build(
    lr: LevelRange,
    family: str,
    params: dict[str, Any],
    *,
    steps: int,
    lam: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
    timesteps: np.ndarray | None = None,
) -> Schedule:
    """Turn a family's levels (log-SNR, sigmas or integer timesteps) into a Schedule of ``lr``.

    Levels are clipped into the range (this absorbs rounding at the ends); a family that then has
    repeated levels cannot make ``steps`` distinct levels and raises. On a discrete model each
    level goes to its nearest timestep, and levels that share one are moved apart
    (:func:`distinct_timesteps`); how many moved is recorded as ``meta["moved_levels"]`` (absent
    when none did).
    """
    name = _label(family, params)
    meta = {"heuristic": family, "params": {k: _jsonable(v) for k, v in params.items()}}
    if timesteps is None:
        if sigma is not None:
            lo, hi = lr.sigma_range
            sigma = np.clip(np.asarray(sigma, dtype=np.float64), lo, hi)
            ok = sigma.size == steps and np.all(np.diff(sigma) < 0)
            lam = log_snr_of_sigma(sigma, lr.process)
        else:
            lam = np.clip(np.asarray(lam, dtype=np.float64), lr.lam_lo, lr.lam_hi)
            ok = lam.size == steps and np.all(np.diff(lam) > 0)
        if not ok:
            raise SpecschedError(
                f"{name} does not give {steps} distinct noise levels inside the model's range: "
                "use fewer steps, other parameters or another family"
            )
        if lr.train is None:
            if sigma is not None:
                sched = Schedule.from_sigmas(sigma, process=lr.process, name=name)
            else:
                sched = Schedule.from_log_snr(lam, process=lr.process, name=name)
            return dataclasses.replace(sched, meta=meta)
        nearest = np.round(lr.train.timestep_of_log_snr(lam))
        timesteps = distinct_timesteps(nearest, lr.train.T)
        moved = int(np.sum(timesteps != nearest))
        if moved:
            # the model's timesteps do not realise the family's spacing: this many levels left
            # their nearest timestep to keep the timesteps distinct (logSNR-uniform spacing on a
            # cosine schedule, whose log-SNR falls steeply over its last timesteps)
            meta["moved_levels"] = moved
    sched = Schedule.from_timesteps(timesteps, train_schedule=lr.train, name=name)
    return dataclasses.replace(sched, meta=meta)


def _sigma_bounds(
    lr: LevelRange, family: str, sigma_min: float | None, sigma_max: float | None
) -> tuple[float, float]:
    """``(sigma_min, sigma_max)``, defaulting to the range's and checked to lie inside it."""
    lo, hi = lr.sigma_range
    smin = lo if sigma_min is None else float(sigma_min)
    smax = hi if sigma_max is None else float(sigma_max)
    tol = 1e-12 * hi
    if not (lo - tol <= smin < smax <= hi + tol):
        raise SpecschedError(
            f"{family} needs sigma_min < sigma_max inside the model's range [{lo:g}, {hi:g}] "
            f"(got {smin:g}, {smax:g}): leave them out to use the whole range"
        )
    return min(max(smin, lo), hi), min(max(smax, lo), hi)


# --------------------------------------------------------------------------- timestep spacings
def leading(
    steps: int, lr: LevelRange, *, resolution: int | None = None, offset: int = 0
) -> Schedule:
    """diffusers' ``timestep_spacing="leading"``: ``(arange(N) * (T // N))[::-1] + offset``.

    The spacing of DDIM, LDM and Stable Diffusion (``steps_offset=1``); never reaches ``T - 1``.

    References
    ----------
    S. Lin, B. Liu, J. Li, X. Yang, "Common Diffusion Noise Schedules and Sample Steps are Flawed",
    WACV 2024, Table 2.
    """
    steps = _check("leading", steps, lr)
    check_int("offset", offset, 0, ", e.g. 1")
    ts = spaced_timesteps(steps, "leading", num_train_timesteps=lr.train.T, offset=int(offset))
    return _build(lr, "leading", {"offset": offset}, steps=steps, timesteps=ts)


def trailing(steps: int, lr: LevelRange, *, resolution: int | None = None) -> Schedule:
    """diffusers' ``timestep_spacing="trailing"``: ``round(arange(T, 0, -T / N)) - 1``.

    Starts at ``T - 1`` (Lin et al. 2024, Table 2).
    """
    steps = _check("trailing", steps, lr)
    ts = spaced_timesteps(steps, "trailing", num_train_timesteps=lr.train.T)
    # float arange can overshoot by one element (a final -1, e.g. N = 61 of T = 1000, as in
    # diffusers): the first N entries are the spacing's definition.
    return _build(lr, "trailing", {}, steps=steps, timesteps=ts[:steps])


def linspace(steps: int, lr: LevelRange, *, resolution: int | None = None) -> Schedule:
    """diffusers' ``timestep_spacing="linspace"``: ``round(linspace(0, T - 1, N))[::-1]``.

    Spans ``T - 1 .. 0`` (Lin et al. 2024, Table 2).
    """
    steps = _check("linspace", steps, lr)
    ts = spaced_timesteps(steps, "linspace", num_train_timesteps=lr.train.T)
    return _build(lr, "linspace", {}, steps=steps, timesteps=ts)


def quadratic(steps: int, lr: LevelRange, *, resolution: int | None = None) -> Schedule:
    """DDIM's quadratic timestep selection, noisiest first: ``floor(linspace(0, sqrt(0.8 T), N)**2)``.

    As in the official code (``seq = [int(s) for s in np.linspace(0, np.sqrt(T * 0.8), N) ** 2]``,
    iterated in reverse, the last step going to the clean level), so it tops out near ``0.8 T``
    (``799`` or ``800`` of ``1000``). Beyond about ``sqrt(0.8 T) + 1`` steps (29 of 1000) the
    smallest values repeat; they are made distinct as described in the module docstring.

    References
    ----------
    J. Song, C. Meng, S. Ermon, "Denoising Diffusion Implicit Models", ICLR 2021, App. D.2;
    github.com/ermongroup/ddim, ``runners/diffusion.py`` (``skip_type == "quad"``).
    """
    steps = _check("quadratic", steps, lr)
    T = lr.train.T
    seq = (np.linspace(0.0, np.sqrt(T * 0.8), steps) ** 2).astype(np.int64)
    ts = distinct_timesteps(seq[::-1], T)
    return _build(lr, "quadratic", {}, steps=steps, timesteps=ts)


# --------------------------------------------------------------------------- sigma / log-SNR families
def karras(
    steps: int,
    lr: LevelRange,
    *,
    resolution: int | None = None,
    rho: float = 7.0,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> Schedule:
    """Karras et al. (EDM) eq. 5: uniform in ``sigma**(1/rho)`` from ``sigma_max`` to ``sigma_min``.

    ``sigma_i = (sigma_max**(1/rho) + i/(N-1) (sigma_min**(1/rho) - sigma_max**(1/rho)))**rho``,
    ``i = 0 .. N-1``, then the clean level (k-diffusion ``get_sigmas_karras``; diffusers
    ``use_karras_sigmas=True``).

    Parameters
    ----------
    rho : float, default 7
        ``rho = 1`` is uniform in sigma; large ``rho`` tends to uniform in log sigma.
    sigma_min, sigma_max : float, optional
        Ends of the schedule (``s / alpha``); ``None`` uses the model's range.

    References
    ----------
    T. Karras, M. Aittala, T. Aila, S. Laine, "Elucidating the Design Space of Diffusion-Based
    Generative Models", NeurIPS 2022, eq. 5.
    """
    steps = _check("karras", steps, lr)
    if not rho > 0:
        raise SpecschedError(f"rho must be positive (got {rho}): the usual value is 7")
    lo, hi = _sigma_bounds(lr, "karras", sigma_min, sigma_max)
    ramp = np.linspace(0.0, 1.0, steps)
    sigma = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    params = {"rho": rho, "sigma_min": sigma_min, "sigma_max": sigma_max}
    return _build(lr, "karras", params, steps=steps, sigma=sigma)


def logsnr(
    steps: int,
    lr: LevelRange,
    *,
    resolution: int | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> Schedule:
    """Uniform in log-SNR from the noisiest to the cleanest end of the range, ``N`` levels.

    ``lambda_i = linspace(lambda_lo, lambda_hi, N)``; for VP and VE this is uniform in
    ``log sigma`` (k-diffusion ``get_sigmas_exponential``, diffusers ``use_exponential_sigmas`` and
    ``use_lu_lambdas``), so log-sigma uniform is not listed separately.

    A flow range that reaches ``t = 1`` (``lambda_lo = -inf``) pins the first level at ``t = 1``
    and spaces the other ``N - 1`` uniformly in log-SNR over the trained range mirrored about
    ``t = 1/2``: from ``t = 1 - t_min`` to ``t_min``, i.e. ``lambda`` from ``-lambda_hi`` to
    ``lambda_hi`` (the flow process is symmetric under ``t -> 1 - t``, swapping data and noise).

    Parameters
    ----------
    sigma_min, sigma_max : float, optional
        Ends in the process's sigma convention (flow: ``t``); ``None`` uses the model's range.

    References
    ----------
    C. Lu, Y. Zhou, F. Bao, J. Chen, C. Li, J. Zhu, "DPM-Solver: A Fast ODE Solver for Diffusion
    Probabilistic Model Sampling in Around 10 Steps", NeurIPS 2022, Sec. 3.3 ("logSNR" steps).
    """
    steps = _check("logsnr", steps, lr)
    lo, hi = _sigma_bounds(lr, "logsnr", sigma_min, sigma_max)
    lam_lo, lam_hi = (float(v) for v in log_snr_of_sigma(np.array([hi, lo]), lr.process))
    if sigma_max is None:
        lam_lo = lr.lam_lo
    if sigma_min is None:
        lam_hi = lr.lam_hi
    if math.isinf(lam_lo):
        if steps > 1 and lam_hi <= 0:
            raise SpecschedError(
                "logsnr on a flow range from t = 1 needs t_min < 0.5: give a smaller sigma_min"
            )
        lam = np.concatenate([[-np.inf], np.linspace(-lam_hi, lam_hi, steps - 1)])
    else:
        lam = np.linspace(lam_lo, lam_hi, steps)
    params = {"sigma_min": sigma_min, "sigma_max": sigma_max}
    return _build(lr, "logsnr", params, steps=steps, lam=lam)


def kl_optimal(
    steps: int,
    lr: LevelRange,
    *,
    resolution: int | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> Schedule:
    """Uniform in ``arctan(sigma)``: the schedule that is KL-optimal for a point-mass data set.

    ``sigma_i = tan((1 - i/(N-1)) atan(sigma_max) + i/(N-1) atan(sigma_min))``.

    References
    ----------
    A. Sabour, S. Fidler, K. Kreis, "Align Your Steps: Optimizing Sampling Schedules in Diffusion
    Models", ICML 2024 (the "KL-optimal" schedule).
    """
    steps = _check("kl_optimal", steps, lr)
    lo, hi = _sigma_bounds(lr, "kl_optimal", sigma_min, sigma_max)
    w = np.linspace(0.0, 1.0, steps)
    sigma = np.tan((1 - w) * np.arctan(hi) + w * np.arctan(lo))
    params = {"sigma_min": sigma_min, "sigma_max": sigma_max}
    return _build(lr, "kl_optimal", params, steps=steps, sigma=sigma)


def shifted_cosine(
    steps: int, lr: LevelRange, *, resolution: int | None = None, base: int = 64
) -> Schedule:
    """Cosine log-SNR shifted for the image resolution, uniform in ``t``.

    ``lambda(t) = -2 log tan(pi t / 2) + 2 log(base / resolution)``; ``t`` runs uniformly over the
    interval whose shifted log-SNR lies in the range: ``t_i = linspace(t(lambda_lo),
    t(lambda_hi), N)``, ``t(lambda) = (2 / pi) atan(exp(-(lambda - shift) / 2))``. This equals the
    paper's ``logsnr_schedule_cosine_shifted`` with ``logsnr_min, logsnr_max`` set to the range
    minus the shift, so the schedule always spans the whole range.

    Parameters
    ----------
    resolution : int
        Image side in pixels (required): larger images get noisier levels.
    base : int, default 64
        The resolution at which the schedule is the plain cosine.

    References
    ----------
    E. Hoogeboom, J. Heek, T. Salimans, "simple diffusion: End-to-end diffusion for high resolution
    images", ICML 2023, Sec. 3.1.
    """
    steps = _check("shifted_cosine", steps, lr)
    if resolution is None:
        raise SpecschedError(
            "shifted_cosine needs the image resolution: pass resolution=<image side in pixels>, "
            "e.g. resolution=256"
        )
    if not (resolution > 0 and base > 0):
        raise SpecschedError(
            f"resolution and base must be positive (got {resolution}, {base}), e.g. 256 and 64"
        )
    shift = 2.0 * math.log(base / resolution)

    def t_of(lam: float) -> float:
        return 2.0 / math.pi * math.atan(math.exp(-(lam - shift) / 2))

    t = np.linspace(t_of(lr.lam_lo), t_of(lr.lam_hi), steps)
    lam = -2.0 * np.log(np.tan(np.pi * t / 2)) + shift
    params = {"resolution": resolution, "base": base}
    return _build(lr, "shifted_cosine", params, steps=steps, lam=lam)


def sigmoid(
    steps: int,
    lr: LevelRange,
    *,
    resolution: int | None = None,
    start: float = -3.0,
    end: float = 3.0,
    tau: float = 1.0,
) -> Schedule:
    """Sigmoid ``alpha_bar(t)``, uniform in ``t`` over the part of ``[0, 1]`` inside the range.

    ``alpha_bar(t) = (sig(end/tau) - sig((t (end - start) + start) / tau)) /
    (sig(end/tau) - sig(start/tau))``; ``t_i = linspace(t(lambda_lo), t(lambda_hi), N)``.

    Parameters
    ----------
    start, end, tau : float, default -3, 3, 1
        The sigmoid's input interval and temperature (Chen 2023, Algorithm 1).

    References
    ----------
    T. Chen, "On the Importance of Noise Scheduling for Diffusion Models", arXiv:2301.10972, 2023,
    Algorithm 1; A. Jabri, D. Fleet, T. Chen, "Scalable Adaptive Computation for Iterative
    Generation", ICML 2023.
    """
    from scipy.special import expit, logit  # here: scipy.special costs ~0.1 s of the import

    steps = _check("sigmoid", steps, lr)
    if not (end > start and tau > 0):
        raise SpecschedError(
            f"sigmoid needs start < end and tau > 0 (got {start}, {end}, {tau}): e.g. -3, 3, 1"
        )
    v_start, v_end = expit(start / tau), expit(end / tau)
    width = v_end - v_start

    def t_of(lam: float) -> float:
        # sig(x(t)) = v_end - alpha_bar * width = v_start + (1 - alpha_bar) * width
        x = logit(v_start + expit(-lam) * width)
        return (tau * x - start) / (end - start)

    t = np.linspace(t_of(lr.lam_lo), t_of(lr.lam_hi), steps)
    v = expit((t * (end - start) + start) / tau)
    lam = np.log(v_end - v) - np.log(v - v_start)  # log(alpha_bar / (1 - alpha_bar))
    params = {"start": start, "end": end, "tau": tau}
    return _build(lr, "sigmoid", params, steps=steps, lam=lam)


def flow_shift(
    steps: int, lr: LevelRange, *, resolution: int | None = None, shift: float = 3.0
) -> Schedule:
    """SD3's shifted flow-matching times: ``t' = shift u / (1 + (shift - 1) u)``, ``u`` uniform.

    ``u = linspace(u_max, u_min, N)`` with ``u_max = min(t_max, s^-1(t_max))`` and ``u_min =
    max(t_min, s^-1(t_min))`` (``s^-1`` the inverse shift): diffusers'
    ``FlowMatchEulerDiscreteScheduler.set_timesteps`` grid ``linspace(sigma_max, sigma_min, N)``,
    kept inside the range. With ``t_max = 1`` and ``shift >= 1`` this is exactly diffusers' grid;
    note that diffusers' own ``sigma_min`` is already shifted (``s(1/T)``), so pass that as
    ``t_min`` to reproduce its schedules.

    Parameters
    ----------
    shift : float, default 3
        SD3's value; ``shift = 1`` is uniform in ``t``.

    References
    ----------
    P. Esser et al., "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis",
    ICML 2024, Sec. 5.3.2.
    """
    steps = _check("flow_shift", steps, lr)
    if not shift > 0:
        raise SpecschedError(f"shift must be positive (got {shift}): SD3 uses 3")
    t_min, t_max = lr.sigma_range

    def unshift(t: float) -> float:
        return t / (shift - (shift - 1) * t)

    u_max, u_min = min(t_max, unshift(t_max)), max(t_min, unshift(t_min))
    u = np.linspace(u_max, u_min, steps)
    t = shift * u / (1 + (shift - 1) * u)
    return _build(lr, "flow_shift", {"shift": shift}, steps=steps, sigma=t)


#: Align Your Steps' optimised 10-step lists, as data (reading them from diffusers would import it,
#: seconds at start-up, for a handful of published numbers). The values are those of diffusers'
#: ``AysSchedules`` (``diffusers/schedulers/scheduling_utils.py``, checked equal in
#: ``tests/test_heuristics.py``), which copies the paper's how-to page
#: (research.nvidia.com/labs/toronto-ai/AlignYourSteps/howto.html) with the last sigma (the paper's
#: ``sigma_min``, 0.029 or 0.002) replaced by ``0``. Timestep lists: 10 integer timesteps of a
#: 1000-step model; sigma lists: 10 noisy sigmas and the clean ``0``.
AYS_TABLES: dict[str, tuple[float, ...]] = {
    "StableDiffusionTimesteps": (999, 850, 736, 645, 545, 455, 343, 233, 124, 24),
    "StableDiffusionSigmas": (
        14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0,
    ),
    "StableDiffusionXLTimesteps": (999, 845, 730, 587, 443, 310, 193, 116, 53, 13),
    "StableDiffusionXLSigmas": (
        14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.0,
    ),
    "StableDiffusionVideoSigmas": (
        700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.0,
    ),
}  # fmt: skip


def _loglinear_interp(sigma: np.ndarray, n: int) -> np.ndarray:
    """AYS's ``loglinear_interp``: log sigma linear in the normalised step index, noisiest first."""
    if n == sigma.size:
        return sigma.copy()
    xs = np.linspace(0.0, 1.0, sigma.size)
    return np.exp(np.interp(np.linspace(0.0, 1.0, n), xs, np.log(sigma)))


def ays(
    steps: int, lr: LevelRange, *, resolution: int | None = None, table: AysTable | None = None
) -> Schedule:
    """Align Your Steps: the optimised 10-step lists of the paper, as diffusers ships them.

    Default table: ``"StableDiffusionTimesteps"`` for a discrete VP model (used as integer
    timesteps; needs ``T = 1000``), ``"StableDiffusionSigmas"`` for a continuous VP model,
    ``"StableDiffusionVideoSigmas"`` (EDM-style sigmas) for VE. For ``N != 10`` the 10 noisy levels
    are interpolated log-linearly against the normalised step index (the paper's
    ``loglinear_interp``; timesteps through their sigmas under the model's training schedule).
    Sigmas are clipped into the range: ``700`` of the video list becomes ``sigma_max``. (ComfyUI
    interpolates the paper's 11-value lists, whose last value is ``sigma_min``; diffusers replaced it
    by ``0``, so here only the 10 noisy levels are interpolated.)

    Parameters
    ----------
    table : str, optional
        A key of :data:`AYS_TABLES` (the keys of diffusers' ``AysSchedules``).

    References
    ----------
    A. Sabour, S. Fidler, K. Kreis, "Align Your Steps: Optimizing Sampling Schedules in Diffusion
    Models", ICML 2024; research.nvidia.com/labs/toronto-ai/AlignYourSteps/howto.html.
    """
    steps = _check("ays", steps, lr)
    tables = AYS_TABLES
    params = {"table": table}  # the name shows a table only when one was asked for
    if table is None:
        default = {"vp": "StableDiffusionSigmas", "ve": "StableDiffusionVideoSigmas"}
        table = "StableDiffusionTimesteps" if lr.train is not None else default[lr.process]
    if table not in tables:
        raise SpecschedError(f"unknown AYS table {table!r}: use one of {', '.join(tables)}")
    values = np.asarray(tables[table], dtype=np.float64)
    if table.endswith("Timesteps"):
        if lr.train is None or lr.train.T != 1000:
            raise SpecschedError(
                f"{table} lists timesteps of a 1000-step discrete-time model: use it with "
                "LevelRange.discrete(...) of 1000 steps, or use a Sigmas table"
            )
        ts = values.astype(np.int64)
        if steps == ts.size:
            return _build(lr, "ays", params, steps=steps, timesteps=ts)
        sigma = np.exp(-lr.train.log_snr[ts] / 2)
    else:
        sigma = values[values > 0]
    return _build(lr, "ays", params, steps=steps, sigma=_loglinear_interp(sigma, steps))


# --------------------------------------------------------------------------- registry
def _heuristic(
    fn: Callable[..., Schedule], processes: tuple[str, ...], discrete_only: bool, description: str
) -> Heuristic:
    sig = inspect.signature(fn)
    defaults = {
        k: p.default
        for k, p in sig.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "resolution"
    }
    return Heuristic(fn.__name__, fn, processes, discrete_only, description, defaults)


HEURISTICS: dict[str, Heuristic] = {
    h.name: h
    for h in (
        _heuristic(
            leading,
            ("vp",),
            True,
            "(arange(N) * (T // N))[::-1] + offset: diffusers' 'leading' spacing (DDIM, SD; "
            "Lin et al. 2024, Table 2)",
        ),
        _heuristic(
            trailing,
            ("vp",),
            True,
            "round(arange(T, 0, -T/N)) - 1: diffusers' 'trailing' spacing (Lin et al. 2024, Table 2)",
        ),
        _heuristic(
            linspace,
            ("vp",),
            True,
            "round(linspace(0, T-1, N))[::-1]: diffusers' 'linspace' spacing (Lin et al. 2024, "
            "Table 2)",
        ),
        _heuristic(
            quadratic,
            ("vp",),
            True,
            "floor(linspace(0, sqrt(0.8 T), N)**2)[::-1]: DDIM's quadratic timesteps (Song et al. "
            "2021, App. D.2)",
        ),
        _heuristic(
            karras,
            ("vp", "ve"),
            False,
            "uniform in sigma**(1/rho), rho=7: Karras et al. 2022 (EDM), eq. 5",
        ),
        _heuristic(
            logsnr,
            ("vp", "ve", "flow"),
            False,
            "uniform in log-SNR, alias uniform in log sigma (DPM-Solver 'logSNR', Lu et al. 2022; "
            "k-diffusion get_sigmas_exponential)",
        ),
        _heuristic(
            kl_optimal,
            ("vp", "ve"),
            False,
            "uniform in arctan(sigma): the KL-optimal schedule of Sabour, Fidler & Kreis 2024 "
            "(Align Your Steps)",
        ),
        _heuristic(
            shifted_cosine,
            ("vp", "ve"),
            False,
            "cosine log-SNR shifted by 2 log(64/resolution), uniform in t: Hoogeboom et al. 2023 "
            "(simple diffusion)",
        ),
        _heuristic(
            sigmoid,
            ("vp", "ve"),
            False,
            "sigmoid alpha_bar(t), uniform in t: Chen 2023 (On the importance of noise scheduling), "
            "Jabri et al. 2023",
        ),
        _heuristic(
            flow_shift,
            ("flow",),
            False,
            "t' = shift u / (1 + (shift-1) u), u uniform: SD3 (Esser et al. 2024), diffusers "
            "FlowMatchEulerDiscreteScheduler",
        ),
        _heuristic(
            ays,
            ("vp", "ve"),
            False,
            "Align Your Steps 10-step lists (as diffusers ships them), log-linearly interpolated "
            "(Sabour, Fidler & Kreis 2024)",
        ),
    )
}

# extra parameter sets that all_heuristics evaluates besides the defaults
_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "flow_shift": ({}, {"shift": 1.0}),
}


def heuristic_schedule(
    name: HeuristicName | str,
    steps: int,
    lr: LevelRange,
    *,
    resolution: int | None = None,
    **params: Any,
) -> Schedule:
    """The ``steps``-step schedule of one heuristic family for a model's range.

    Parameters
    ----------
    name : str
        A key of :data:`HEURISTICS`.
    steps : int
        Number of sampler steps ``N``; the schedule has ``N`` noise levels plus the clean one.
    lr : LevelRange
        The model's process and trained range; discrete ranges give integer timesteps.
    resolution : int, optional
        Image side in pixels; needed by ``shifted_cosine`` only.
    **params
        The family's parameters (see ``HEURISTICS[name].defaults``), e.g. ``rho=5``.

    Returns
    -------
    Schedule
        Named after the family and its non-default parameters, e.g. ``"karras(rho=5)"``.

    Raises
    ------
    SpecschedError
        Unknown name or parameter, a family that does not apply to the process, or one that cannot
        make ``steps`` distinct levels in the range.

    Examples
    --------
    >>> from specsched.levels import LevelRange
    >>> heuristic_schedule("trailing", 4, LevelRange.discrete("linear")).timesteps.tolist()
    [999, 749, 499, 249]
    >>> heuristic_schedule("karras", 10, LevelRange.continuous("ve"), rho=5).name
    'karras(rho=5)'
    """
    if name not in HEURISTICS:
        raise SpecschedError(
            f"unknown heuristic schedule {name!r}: use one of {', '.join(HEURISTICS)}"
        )
    h = HEURISTICS[name]
    unknown = sorted(set(params) - set(h.defaults))
    if unknown:
        allowed = ", ".join(h.defaults) or "none"
        raise SpecschedError(
            f"{name} has no parameter {', '.join(unknown)}: its parameters are {allowed}"
        )
    return h.fn(steps, lr, resolution=resolution, **params)


def applicable(lr: LevelRange) -> list[str]:
    """Names of the families that apply to the range's process (and need no discrete model it lacks).

    A family listed here can still raise for particular parameters (``shifted_cosine`` without a
    resolution, too many steps for the range).

    Examples
    --------
    >>> from specsched.levels import LevelRange
    >>> applicable(LevelRange.continuous("flow"))
    ['logsnr', 'flow_shift']
    """
    return [
        name
        for name, h in HEURISTICS.items()
        if lr.process in h.processes and (lr.train is not None or not h.discrete_only)
    ]


def _same_levels(a: Schedule, b: Schedule, tol: float = 1e-12) -> bool:
    """Same levels: equal log-SNR to ``tol`` (infinite ends must match exactly)."""
    la, lb = a.log_snr, b.log_snr
    if la.shape != lb.shape or np.any(np.isfinite(la) != np.isfinite(lb)):
        return False
    finite = np.isfinite(la)
    return bool(
        np.all(la[~finite] == lb[~finite]) and np.all(np.abs(la[finite] - lb[finite]) <= tol)
    )


def all_heuristics(steps: int, lr: LevelRange, *, resolution: int | None = None) -> list[Schedule]:
    """Every applicable family at its usual parameters, for comparison tables.

    Families that raise for this range (e.g. ``shifted_cosine`` without ``resolution``, ``ays``
    on a discrete range of other than 1000 steps) are skipped; ``flow_shift`` comes at ``shift=3`` and ``shift=1``. A schedule
    whose levels equal an earlier one's (to ``1e-12``) is dropped, so names and levels are unique.

    Examples
    --------
    >>> from specsched.levels import LevelRange
    >>> [s.name for s in all_heuristics(10, LevelRange.continuous("flow"))]
    ['logsnr', 'flow_shift', 'flow_shift(shift=1)']
    """
    _check_steps(steps)
    out: list[Schedule] = []
    for name in applicable(lr):
        for params in _VARIANTS.get(name, ({},)):
            try:
                sched = heuristic_schedule(name, steps, lr, resolution=resolution, **params)
            except SpecschedError:
                continue
            if not any(_same_levels(sched, other) for other in out):
                out.append(sched)
    return out
