"""Noise processes, noise levels and the training schedules of discrete-time models.

A noise level is a pair ``(alpha, s)``: ``x_t = alpha * x0 + s * eps`` (DESIGN §2). Three processes
name the usual families of levels:

======== ============================== ===========================================
process  level                          parameter users know
======== ============================== ===========================================
``vp``   ``alpha**2 + s**2 = 1``         ``alpha_bar = alpha**2`` (``alphas_cumprod``)
``ve``   ``alpha = 1``                   ``sigma = s``
``flow`` ``alpha = 1 - t, s = t``        ``t`` (diffusers' flow-matching "sigmas")
======== ============================== ===========================================

All share the log-SNR ``lambda = 2 log(alpha / s)`` and the noise-to-signal ratio
``sigma = s / alpha``; every conversion goes through ``lambda``, written once here in torch so that
the optimiser can differentiate through it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from .errors import SpecschedError

if TYPE_CHECKING:  # pragma: no cover
    from .schedules import Schedule

__all__ = [
    "PROCESSES",
    "TRAIN_SCHEDULES",
    "LevelRange",
    "Process",
    "TrainSchedule",
    "check_process",
    "level_range",
    "levels_from_log_snr",
    "levels_from_sigma",
    "log_snr_from_levels",
    "log_snr_of_sigma",
    "start_std",
]

Process = Literal["vp", "ve", "flow"]
PROCESSES: tuple[str, ...] = get_args(Process)
TrainScheduleName = Literal["linear", "scaled_linear", "cosine"]
TRAIN_SCHEDULES: tuple[str, ...] = get_args(TrainScheduleName)


def check_process(process: str) -> Process:
    """Return ``process`` if it names a known noise process, else raise a clear error."""
    if process not in PROCESSES:
        raise SpecschedError(
            f"unknown noise process {process!r}: use one of {', '.join(PROCESSES)}"
        )
    return process  # type: ignore[return-value]


def levels_from_log_snr(lam: torch.Tensor, process: Process) -> tuple[torch.Tensor, torch.Tensor]:
    """Levels ``(alpha, s)`` of a process at log-SNR ``lam`` (``+inf`` gives the clean level).

    VP: ``alpha**2 = sigmoid(lam)``; VE: ``s = exp(-lam / 2)``; flow: ``t = sigmoid(-lam / 2)``.
    """
    lam = torch.as_tensor(lam, dtype=torch.float64)
    if process == "vp":
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    if process == "ve":
        return torch.ones_like(lam), torch.exp(-lam / 2)
    if process == "flow":
        return torch.sigmoid(lam / 2), torch.sigmoid(-lam / 2)
    check_process(process)
    raise AssertionError  # pragma: no cover


def log_snr_from_levels(alpha: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``lambda = 2 log(alpha / s)``; ``+inf`` at the clean level, ``-inf`` at pure noise."""
    with np.errstate(divide="ignore"):
        return 2.0 * (np.log(np.asarray(alpha, float)) - np.log(np.asarray(s, float)))


def levels_from_sigma(sigma: np.ndarray, process: Process) -> tuple[np.ndarray, np.ndarray]:
    """Levels ``(alpha, s)`` of "sigmas" in the process's convention (``sigma = 0`` is clean).

    VE: ``s = sigma``, ``alpha = 1``; VP: ``sigma = s / alpha`` with ``alpha**2 + s**2 = 1``;
    flow: ``sigma = t``, ``(alpha, s) = (1 - t, t)``.
    """
    sig = np.asarray(sigma, dtype=np.float64)
    if process == "ve":
        return np.ones_like(sig), sig
    if process == "vp":
        return 1 / np.sqrt(1 + sig**2), sig / np.sqrt(1 + sig**2)
    check_process(process)
    return 1 - sig, sig


def log_snr_of_sigma(sigma: np.ndarray, process: Process) -> np.ndarray:
    """log-SNR of sigmas in the process's convention (``s / alpha``; flow: ``t``)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if process == "flow":
            return 2.0 * (np.log1p(-sigma) - np.log(sigma))
        return -2.0 * np.log(sigma)


def start_std(process: Process, s0: torch.Tensor | float) -> torch.Tensor | float:
    """Standard deviation of the noise a sampler starts from at its first level.

    VP and flow models start from ``N(0, I)`` whatever the first level is (``init_noise_sigma = 1``
    in diffusers); VE models from ``N(0, s0**2 I)`` (``sigma_max`` in k-diffusion).
    """
    return s0 if process == "ve" else 1.0


@dataclass(frozen=True)
class TrainSchedule:
    """The noise levels a discrete-time (DDPM-style) VP model was trained on.

    Parameters
    ----------
    name : {"linear", "scaled_linear", "cosine"}
        diffusers' ``beta_schedule`` (``"cosine"`` is ``"squaredcos_cap_v2"``).
    num_train_timesteps : int, default 1000
        ``T``; the model accepts integer timesteps ``0 .. T-1``.
    beta_start, beta_end : float, optional
        Ends of the beta ramp; ``None`` takes diffusers' defaults for the name
        (linear: 1e-4, 0.02; scaled_linear: 0.00085, 0.012). Unused by ``"cosine"``.

    Examples
    --------
    >>> ts = TrainSchedule("linear")
    >>> ts.alphas_cumprod.shape
    (1000,)
    """

    name: str = "linear"
    num_train_timesteps: int = 1000
    beta_start: float | None = None
    beta_end: float | None = None
    alphas_cumprod: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        T = int(self.num_train_timesteps)
        if T < 2:
            raise SpecschedError(
                f"num_train_timesteps must be at least 2 (got {T}): models are trained on "
                "hundreds of steps, e.g. 1000"
            )
        defaults = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012)}
        if self.name == "cosine":
            betas = _cosine_betas(T)
        elif self.name in defaults:
            b0 = defaults[self.name][0] if self.beta_start is None else self.beta_start
            b1 = defaults[self.name][1] if self.beta_end is None else self.beta_end
            if not 0 < b0 <= b1 < 1:
                raise SpecschedError(
                    f"beta_start={b0}, beta_end={b1} are not a valid ramp: need 0 < start <= end < 1"
                )
            object.__setattr__(self, "beta_start", float(b0))  # defaults made explicit: equal
            object.__setattr__(self, "beta_end", float(b1))  # ramps compare equal
            if self.name == "linear":
                betas = np.linspace(b0, b1, T, dtype=np.float64)
            else:
                betas = np.linspace(math.sqrt(b0), math.sqrt(b1), T, dtype=np.float64) ** 2
        else:
            raise SpecschedError(
                f"unknown training schedule {self.name!r}: use one of {', '.join(TRAIN_SCHEDULES)}"
            )
        object.__setattr__(self, "alphas_cumprod", np.cumprod(1.0 - betas))

    @property
    def T(self) -> int:
        """Number of training timesteps."""
        return int(self.num_train_timesteps)

    @functools.cached_property
    def log_snr(self) -> np.ndarray:
        """log-SNR of every integer timestep ``0 .. T-1`` (decreasing in t; read-only, cached)."""
        ac = self.alphas_cumprod
        lam = np.log(ac) - np.log1p(-ac)
        lam.flags.writeable = False
        return lam

    def timestep_of_log_snr(self, lam: np.ndarray) -> np.ndarray:
        """Real-valued timestep whose log-SNR, linear between integer timesteps (the continuous
        relaxation), is ``lam``."""
        table = self.log_snr[::-1]  # increasing
        t_rev = np.interp(np.asarray(lam, float), table, np.arange(self.T)[::-1].astype(float))
        return t_rev

    def to_dict(self) -> dict:
        """JSON-ready description."""
        return {
            "name": self.name,
            "num_train_timesteps": self.T,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
        }


def _cosine_betas(T: int, max_beta: float = 0.999) -> np.ndarray:
    """diffusers' ``squaredcos_cap_v2`` (Nichol & Dhariwal 2021, eq. 17), betas capped at 0.999."""

    def abar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / T) / abar(i / T), max_beta) for i in range(T)])


@dataclass(frozen=True)
class LevelRange:
    """The noise levels a model accepts: its process, its trained range and, if discrete, its timesteps.

    Use the constructors: :meth:`discrete` (a DDPM-style VP model with integer timesteps),
    :meth:`continuous` (VP, VE or flow with a range of sigmas).

    Attributes
    ----------
    process : {"vp", "ve", "flow"}
    lam_lo, lam_hi : float
        The trained range of log-SNR (``lam_lo`` may be ``-inf`` for a flow model that starts at
        ``t = 1``).
    train : TrainSchedule or None
        Set for discrete-time models: every level must then be an integer timestep.
    """

    process: Process
    lam_lo: float
    lam_hi: float
    train: TrainSchedule | None = None

    def __post_init__(self) -> None:
        check_process(self.process)
        if not self.lam_lo < self.lam_hi or math.isnan(self.lam_lo) or math.isnan(self.lam_hi):
            raise SpecschedError(
                "the noise range is empty: the smallest noise level must be below the largest"
            )
        if math.isinf(self.lam_hi):
            raise SpecschedError("the smallest noise level must be positive (sigma_min > 0)")

    @classmethod
    def discrete(
        cls, train: TrainSchedule | str = "linear", num_train_timesteps: int = 1000
    ) -> LevelRange:
        """A discrete-time VP model: integer timesteps ``0 .. T-1`` of a training schedule."""
        if isinstance(train, str):
            train = TrainSchedule(train, num_train_timesteps)
        lam = train.log_snr
        return cls("vp", float(lam[-1]), float(lam[0]), train)

    @classmethod
    def continuous(
        cls,
        process: Process = "ve",
        *,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
    ) -> LevelRange:
        """A continuous-time model accepting any level between ``sigma_min`` and ``sigma_max``.

        Sigmas are in the process's convention (:meth:`Schedule.from_sigmas`): VE and VP
        ``s / alpha`` (defaults: EDM's 0.002 and 80), flow ``t`` (defaults 0.001 and 1).
        """
        check_process(process)
        if process == "flow":
            lo = 1e-3 if sigma_min is None else sigma_min
            hi = 1.0 if sigma_max is None else sigma_max
            if not 0 < lo < hi <= 1:
                raise SpecschedError(
                    f"flow times must satisfy 0 < t_min < t_max <= 1 (got {lo}, {hi})"
                )
            lam = [2 * math.log((1 - t) / t) if t < 1 else -math.inf for t in (hi, lo)]
            return cls("flow", lam[0], lam[1])
        lo = 0.002 if sigma_min is None else sigma_min
        hi = 80.0 if sigma_max is None else sigma_max
        if not 0 < lo < hi < math.inf:
            raise SpecschedError(f"sigmas must satisfy 0 < sigma_min < sigma_max (got {lo}, {hi})")
        return cls(process, -2 * math.log(hi), -2 * math.log(lo))

    @classmethod
    def for_model(
        cls,
        *,
        process: str = "vp",
        train_schedule: str | TrainSchedule | None = "linear",
        num_train_timesteps: int = 1000,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
    ) -> LevelRange:
        """The levels a model accepts, from the options users know.

        A VP model with a training schedule is discrete-time (integer timesteps);
        ``train_schedule=None`` makes it continuous. VE and flow models are continuous within
        ``[sigma_min, sigma_max]`` (see :meth:`continuous` for the defaults).

        Examples
        --------
        >>> LevelRange.for_model().train.T
        1000
        >>> [round(v, 6) for v in LevelRange.for_model(process="ve").sigma_range]
        [0.002, 80.0]
        """
        if process == "vp" and train_schedule is not None:
            if sigma_min is not None or sigma_max is not None:
                raise SpecschedError(
                    "sigma_min/sigma_max do not apply to a discrete-time model: its range is its "
                    "training schedule (pass train_schedule=None for a continuous VP model)"
                )
            return cls.discrete(train_schedule, num_train_timesteps)
        return cls.continuous(process, sigma_min=sigma_min, sigma_max=sigma_max)  # type: ignore[arg-type]

    @property
    def is_discrete(self) -> bool:
        return self.train is not None

    def describe(self) -> str:
        """The model in words, e.g. ``discrete-time vp model (linear betas, 1000 steps)``."""
        if self.train is None:
            return f"continuous {self.process} model"
        return f"discrete-time vp model ({self.train.name} betas, {self.train.T} steps)"

    def check_schedule(
        self,
        schedule: Schedule,
        *,
        name: str | None = None,
        fix: str = "fit the schedule for this model",
        tol: float = 1e-9,
        timesteps: bool = True,
    ) -> None:
        """Raise a one-line error if the model cannot run ``schedule``.

        Parameters
        ----------
        schedule : Schedule
        name : str, optional
            How the message names the schedule (e.g. its file); defaults to its name.
        fix : str, default "fit the schedule for this model"
            What the message tells the user to do.
        tol : float, default 1e-9
            Tolerance in log-SNR of the range check.
        timesteps : bool, default True
            Whether a discrete-time model needs integer timesteps (a network adapter that takes
            real-valued timesteps does not).

        Raises
        ------
        SpecschedError
            If the schedule is for another process or training schedule, lacks the timesteps a
            discrete-time model needs, or leaves the trained range.
        """
        what = f"schedule {name if name is not None else repr(schedule.name)}"
        model = f"the model is a {self.describe()}"
        if schedule.process != self.process:
            raise SpecschedError(f"{what} is for a {schedule.process} model, but {model}: {fix}")
        if self.train is not None and timesteps and schedule.timesteps is None:
            raise SpecschedError(
                f"{what} has no integer timesteps, which {model.removeprefix('the model is ')} "
                f"needs: {fix}"
            )
        if self.train is not None and schedule.train is not None and schedule.train != self.train:
            raise SpecschedError(
                f"{what} is for a model trained with {schedule.train.name} betas over "
                f"{schedule.train.T} steps, but {model}: {fix}"
            )
        if not self.contains(schedule.log_snr, tol=tol):
            lo, hi = self.sigma_range
            where = (
                "the model's trained range"
                if self.train is None
                else f"the model's timesteps 0..{self.train.T - 1}"
            )
            raise SpecschedError(
                f"{what} has levels outside {where} (sigma {lo:.4g} to {hi:.4g}): {fix}"
            )

    @property
    def sigma_range(self) -> tuple[float, float]:
        """``(sigma_min, sigma_max)`` in the process's sigma convention."""
        if self.process == "flow":
            return 1 / (1 + math.exp(self.lam_hi / 2)), (
                1.0 if math.isinf(self.lam_lo) else 1 / (1 + math.exp(self.lam_lo / 2))
            )
        return math.exp(-self.lam_hi / 2), math.exp(-self.lam_lo / 2)

    def contains(self, lam: np.ndarray, tol: float = 1e-9) -> bool:
        """Whether every finite level lies in the range."""
        lam = np.asarray(lam, float)
        lam = lam[np.isfinite(lam) | (lam < 0)]
        return bool(np.all(lam >= self.lam_lo - tol) and np.all(lam <= self.lam_hi + tol))

    def to_dict(self) -> dict:
        lo, hi = self.sigma_range
        return {
            "process": self.process,
            "sigma_min": lo,
            "sigma_max": hi,
            "train_schedule": None if self.train is None else self.train.to_dict(),
        }


#: The levels a model accepts, from the options users know (:meth:`LevelRange.for_model`).
level_range = LevelRange.for_model
