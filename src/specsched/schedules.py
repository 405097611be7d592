"""The :class:`Schedule` type and the timestep spacings of diffusers.

A schedule is data: an immutable sequence of noise levels ``(alpha, s)`` from the noisiest to the
clean level ``(1, 0)``. ``N`` steps have ``N + 1`` levels; the last one is always clean.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from .errors import SpecschedError, check_int
from .levels import (
    Process,
    TrainSchedule,
    check_process,
    levels_from_log_snr,
    levels_from_sigma,
    log_snr_from_levels,
)

__all__ = ["SPACINGS", "Schedule", "spaced_timesteps"]

Spacing = Literal["leading", "trailing", "linspace"]
SPACINGS: tuple[str, ...] = get_args(Spacing)


@dataclass(frozen=True, eq=False)
class Schedule:
    """Noise levels of an ``N``-step sampler, noisiest first, ending at the clean level.

    Build one with a named constructor (:meth:`from_timesteps`, :meth:`from_alphas_cumprod`,
    :meth:`from_sigmas`, :meth:`from_log_snr`) rather than directly.

    Attributes
    ----------
    alpha, s : ndarray, shape (N + 1,)
        Signal and noise scales of each level, ``x_t = alpha x0 + s eps``; ``(alpha[-1], s[-1]) = (1, 0)``.
    process : {"vp", "ve", "flow"}
        The noise process the levels belong to.
    timesteps : ndarray of int, shape (N,), or None
        Integer timesteps of a discrete-time model, when the schedule was made from them.
    train : TrainSchedule or None
        The discrete-time model's training schedule, when there is one.
    name : str
        A label for tables and plots.
    """

    alpha: np.ndarray
    s: np.ndarray
    process: Process = "vp"
    timesteps: np.ndarray | None = None
    train: TrainSchedule | None = None
    name: str = "custom"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_process(self.process)
        alpha = _numbers(self.alpha, "alpha").copy()
        s = _numbers(self.s, "s").copy()
        if alpha.ndim != 1 or s.ndim != 1:
            raise SpecschedError(
                f"alpha and s must be 1-D lists of levels (got shapes {alpha.shape} and {s.shape})"
            )
        if alpha.shape != s.shape:
            raise SpecschedError(
                f"alpha has {alpha.size} levels but s has {s.size}: give one s per alpha"
            )
        if alpha.size < 2:
            raise SpecschedError(
                "a schedule needs at least one step: give one or more noise levels, noisiest first"
            )
        if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(s))):
            raise SpecschedError("schedule levels contain NaN or Inf: give finite noise levels")
        if np.any(alpha < 0) or np.any(s < 0):
            raise SpecschedError("schedule levels must have alpha >= 0 and s >= 0")
        if s[-1] != 0 or alpha[-1] <= 0:
            raise SpecschedError("a schedule must end at the clean level (s = 0)")
        lam = log_snr_from_levels(alpha, s)
        if np.any(np.diff(lam) <= 0):
            bad = int(np.argmax(np.diff(lam) <= 0))
            raise SpecschedError(
                f"noise levels must strictly decrease (they do not between steps {bad} and {bad + 1}): "
                "give them noisiest first, without repeats"
            )
        alpha.flags.writeable = False
        s.flags.writeable = False
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "s", s)
        if self.timesteps is not None:
            ts = np.asarray(self.timesteps, dtype=np.int64).copy()
            ts.flags.writeable = False
            object.__setattr__(self, "timesteps", ts)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_timesteps(
        cls,
        timesteps: Sequence[int] | np.ndarray,
        *,
        train_schedule: str | TrainSchedule = "linear",
        num_train_timesteps: int = 1000,
        name: str = "custom",
    ) -> Schedule:
        """Schedule of a discrete-time VP model from its integer timesteps, noisiest first.

        Each step goes from ``timesteps[i]`` to ``timesteps[i + 1]``, the last to the clean level
        (diffusers' ``DDIMScheduler(set_alpha_to_one=True)`` and ``DDPMScheduler``).

        Parameters
        ----------
        timesteps : sequence of int
            Strictly decreasing, within ``0 .. num_train_timesteps - 1``.
        train_schedule : str or TrainSchedule, default "linear"
            The model's training betas: ``"linear"``, ``"scaled_linear"``, ``"cosine"``.
        num_train_timesteps : int, default 1000
            ``T``, used when ``train_schedule`` is a name.

        Examples
        --------
        >>> sched = Schedule.from_timesteps([999, 666, 333], train_schedule="linear")
        >>> sched.steps
        3
        """
        train = _as_train(train_schedule, num_train_timesteps)
        ts = _numbers(timesteps, "timesteps", keep_ints=True)
        if ts.ndim != 1 or ts.size == 0:
            raise SpecschedError("give at least one timestep, e.g. --timesteps 999,899,799")
        if not np.all(np.isfinite(ts.astype(float))) or np.any(ts != np.round(ts)):
            raise SpecschedError(f"timesteps must be integers (got {list(ts)})")
        ts = ts.astype(np.int64)
        if ts.min() < 0 or ts.max() > train.T - 1:
            raise SpecschedError(
                f"timesteps must lie in 0..{train.T - 1} for a model trained on {train.T} steps "
                f"(got {ts.min()}..{ts.max()})"
            )
        if np.any(np.diff(ts) >= 0):
            raise SpecschedError(
                "timesteps must strictly decrease (noisiest first, no repeats), e.g. 999,899,...,99"
            )
        ac = np.append(train.alphas_cumprod[ts], 1.0)
        return cls(np.sqrt(ac), np.sqrt(1.0 - ac), "vp", timesteps=ts, train=train, name=name)

    @classmethod
    def from_alphas_cumprod(
        cls, alphas_cumprod: Sequence[float] | np.ndarray, *, name: str = "custom"
    ) -> Schedule:
        """Continuous VP schedule from ``alpha_bar`` values, noisiest first.

        A final ``1.0`` (clean) is appended unless present.
        """
        ac = _numbers(alphas_cumprod, "alphas_cumprod")
        if ac.ndim != 1 or ac.size == 0:
            raise SpecschedError(
                "give at least one alphas_cumprod value, noisiest (smallest) first"
            )
        if np.any((ac < 0) | (ac > 1)):
            raise SpecschedError("alphas_cumprod values must lie in [0, 1]")
        if ac[-1] != 1.0:
            ac = np.append(ac, 1.0)
        return cls(np.sqrt(ac), np.sqrt(1.0 - ac), "vp", name=name)

    @classmethod
    def from_sigmas(
        cls,
        sigmas: Sequence[float] | np.ndarray,
        *,
        process: Process = "ve",
        train_schedule: str | TrainSchedule | None = None,
        num_train_timesteps: int = 1000,
        name: str = "custom",
    ) -> Schedule:
        """Schedule from "sigmas" in the convention of the process, noisiest first.

        ``ve``: ``sigma = s`` (EDM, k-diffusion); ``vp``: ``sigma = s / alpha`` (k-diffusion and
        diffusers' Euler/DPM schedulers for VP models); ``flow``: ``sigma = t`` in ``[0, 1]``
        (diffusers' ``FlowMatchEulerDiscreteScheduler``). A final 0 (clean) is appended unless present.
        """
        check_process(process)
        sig = _numbers(sigmas, "sigmas")
        if sig.ndim != 1 or sig.size == 0:
            raise SpecschedError("give at least one sigma, noisiest first")
        if np.any(~np.isfinite(sig)) or np.any(sig < 0):
            raise SpecschedError("sigmas must be finite and >= 0")
        if sig[-1] != 0:
            sig = np.append(sig, 0.0)
        if process == "flow" and np.any(sig > 1):
            raise SpecschedError("flow-matching sigmas are times t in [0, 1]")
        alpha, s = levels_from_sigma(sig, process)
        train = None if train_schedule is None else _as_train(train_schedule, num_train_timesteps)
        return cls(alpha, s, process, train=train, name=name)

    @classmethod
    def from_log_snr(
        cls,
        log_snr: Sequence[float] | np.ndarray,
        *,
        process: Process = "vp",
        name: str = "custom",
        train: TrainSchedule | None = None,
    ) -> Schedule:
        """Schedule from log-SNR values ``lambda = 2 log(alpha / s)``, increasing (noisiest first).

        A final ``+inf`` (clean) is appended unless present.
        """
        lam = _numbers(log_snr, "log_snr")
        if lam.ndim != 1 or lam.size == 0:
            raise SpecschedError("give at least one log-SNR value, noisiest (smallest) first")
        if lam[-1] != np.inf:
            lam = np.append(lam, np.inf)
        alpha, s = levels_from_log_snr(torch.from_numpy(lam), process)
        return cls(alpha.numpy(), s.numpy(), process, train=train, name=name)

    # ---------------------------------------------------------------- views
    @property
    def steps(self) -> int:
        """Number of sampler steps ``N`` (one fewer than the levels)."""
        return int(self.alpha.size - 1)

    @property
    def log_snr(self) -> np.ndarray:
        """``2 log(alpha / s)`` per level (``+inf`` at the clean end)."""
        return log_snr_from_levels(self.alpha, self.s)

    @property
    def sigmas(self) -> np.ndarray:
        """Noise-to-signal ratio ``s / alpha`` per level, ending in 0 (k-diffusion's sigmas).

        For a flow process these are the times ``t = s`` (diffusers' flow "sigmas").
        """
        if self.process == "flow":
            return self.s.copy()
        with np.errstate(divide="ignore"):
            return self.s / self.alpha

    @property
    def alphas_cumprod(self) -> np.ndarray:
        """``alpha_bar = alpha**2 / (alpha**2 + s**2)`` per level: the VP form of every level."""
        return self.alpha**2 / (self.alpha**2 + self.s**2)

    def to_dict(self) -> dict[str, Any]:
        """Every representation of the schedule, JSON-ready (``inf`` written as ``null``)."""

        def clean(a: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in a]

        out: dict[str, Any] = {
            "format": "specsched.schedule/1",
            "name": self.name,
            "process": self.process,
            "steps": self.steps,
            "alpha": clean(self.alpha),
            "s": clean(self.s),
            "log_snr": clean(self.log_snr),
            "sigmas": clean(self.sigmas),
            "alphas_cumprod": clean(self.alphas_cumprod),
            "timesteps": None if self.timesteps is None else [int(t) for t in self.timesteps],
            "train_schedule": None if self.train is None else self.train.to_dict(),
        }
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        """Inverse of :meth:`to_dict`."""
        try:
            if not isinstance(d.get("meta", {}), dict):
                raise TypeError("'meta'")
            process = d["process"]
            train = None
            if d.get("train_schedule"):
                train = TrainSchedule(**d["train_schedule"])
            name = d.get("name", "custom")
            if d.get("timesteps") is not None and train is not None:
                sched = cls.from_timesteps(d["timesteps"], train_schedule=train, name=name)
                return sched.with_meta(**d.get("meta", {}))
            alpha, s = d["alpha"], d["s"]
            return cls(alpha, s, process, train=train, name=name, meta=d.get("meta", {}))
        except SpecschedError as exc:
            raise SpecschedError(
                f"not a valid schedule ({exc}): write one with `specsched fit -o FILE.json`"
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecschedError(
                f"not a specsched schedule (missing or malformed field {exc}): "
                "write one with `specsched fit -o FILE.json`"
            ) from None

    def with_meta(self, **meta: Any) -> Schedule:
        """A copy with ``meta`` merged into its metadata (provenance written with the schedule)."""
        return dataclasses.replace(self, meta={**self.meta, **meta})

    def save(self, path: str | Path) -> None:
        """Write the schedule as JSON (atomically: a temporary file, then a rename)."""
        from ._io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Schedule:
        """Read a schedule written by :meth:`save` or ``specsched fit -o``."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise SpecschedError(f"schedule file {p} does not exist: check the path") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecschedError(
                f"cannot read schedule file {p} ({exc}): give a JSON schedule"
            ) from None
        if not isinstance(d, dict):
            raise SpecschedError(
                f"{p} is not a specsched schedule: write one with `specsched fit -o`"
            )
        try:
            return cls.from_dict(d)
        except SpecschedError as exc:
            raise SpecschedError(f"schedule file {p}: {exc}") from None

    def __repr__(self) -> str:
        ts = "" if self.timesteps is None else f", timesteps={self.timesteps.tolist()}"
        return f"Schedule({self.name!r}, process={self.process!r}, steps={self.steps}{ts})"


def _numbers(values: Any, what: str, *, keep_ints: bool = False) -> np.ndarray:
    """``values`` as a float64 array (integers kept with ``keep_ints``), or a one-line error."""
    if isinstance(values, str | bytes):
        raise SpecschedError(
            f"{what} must be a list of numbers, not the text {values!r}: give e.g. [0.9, 0.5]"
        )
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        values = (values.double() if values.dtype.is_floating_point else values).numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, RuntimeError):
        raise SpecschedError(
            f"{what} must be a flat list of numbers (got a {type(values).__name__} numpy cannot "
            "read as one)"
        ) from None
    if arr.dtype.kind not in "iuf":
        kinds = sorted({type(v).__name__ for v in arr.ravel()[:8].tolist()})
        raise SpecschedError(
            f"{what} must be numbers (got {', '.join(kinds) or type(values).__name__}): give a "
            "list of ints or floats"
        )
    if keep_ints and arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _as_train(train_schedule: str | TrainSchedule, num_train_timesteps: int) -> TrainSchedule:
    if isinstance(train_schedule, TrainSchedule):
        return train_schedule
    return TrainSchedule(train_schedule, num_train_timesteps)


def spaced_timesteps(
    steps: int, spacing: Spacing = "trailing", *, num_train_timesteps: int = 1000, offset: int = 0
) -> np.ndarray:
    """diffusers' ``timestep_spacing`` rules (Lin et al. 2024, Table 2), noisiest first.

    ``leading``: ``(arange(N) * (T // N))[::-1] + offset``; ``trailing``:
    ``round(arange(T, 0, -T / N)) - 1``; ``linspace``: ``round(linspace(0, T - 1, N))[::-1]``.

    Examples
    --------
    >>> spaced_timesteps(4, "trailing").tolist()
    [999, 749, 499, 249]
    """
    check_int("steps", steps)
    T = check_int("num_train_timesteps", num_train_timesteps)
    if not 1 <= steps <= T:
        raise SpecschedError(f"steps must be between 1 and {T} for a {T}-step model (got {steps})")
    if spacing == "leading":
        ts = (np.arange(steps) * (T // steps))[::-1] + offset
    elif spacing == "trailing":
        # T - i T / N for i < N; diffusers' arange(T, 0, -T / N) gains a spurious last element
        # for some N (e.g. 61) through rounding of the float step
        ts = np.round(T - np.arange(steps) * T / steps).astype(np.int64) - 1
    elif spacing == "linspace":
        ts = np.round(np.linspace(0, T - 1, steps))[::-1]
    else:
        raise SpecschedError(f"unknown spacing {spacing!r}: use one of {', '.join(SPACINGS)}")
    ts = np.asarray(ts, dtype=np.int64)
    if np.any(np.diff(ts) >= 0):
        raise SpecschedError(
            f"{spacing} spacing repeats timesteps at {steps} steps of a {T}-step model: use fewer steps"
        )
    return ts
