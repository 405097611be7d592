"""specsched: noise schedules for diffusion samplers, designed from the spectrum of the data.

The public API::

    import specsched as ss
    spec = ss.Spectrum.from_source("builtin:photos", size=32)
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing"), train_schedule="linear")
    r = ss.response(spec, sched, sampler="ddim", eta=0.0)
    r.w2, r.kl_gen_data, r.kl_data_gen
    res = ss.fit(spec, steps=10, sampler="ddim", train_schedule="linear", objective="w2")
    res.schedule.timesteps, res.value, res.baselines
    pipe(..., **ss.diffusers_kwargs(res.schedule, pipe.scheduler))  # deploy in diffusers
    x = ss.generate(denoiser, res.schedule, "ddim", num_samples=16, shape=(3, 32, 32))
    res = ss.verify(res, denoiser, data, shape=(3, 32, 32))  # keep what samples best

The names are imported on first use (PEP 562), so ``import specsched`` and the command line start
in a fraction of a second, and a Ctrl-C while torch loads lands inside the command, which ends it
quietly.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import SpecschedError

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "Calibration": ".calibrate",
    "calibrate": ".calibrate",
    "GaussianDenoiser": ".denoisers",
    "HEURISTICS": ".heuristics",
    "all_heuristics": ".heuristics",
    "heuristic_schedule": ".heuristics",
    "LevelRange": ".levels",
    "TrainSchedule": ".levels",
    "diffusers_kwargs": ".integrations.diffusers",
    "make_ddim_scheduler": ".integrations.diffusers",
    "pinned_scheduler": ".integrations.diffusers",
    "generate": ".generation",
    "FitResult": ".optimize",
    "compare": ".optimize",
    "fit": ".optimize",
    "level_range": ".levels",
    "Response": ".response",
    "response": ".response",
    "SAMPLERS": ".samplers",
    "Schedule": ".schedules",
    "spaced_timesteps": ".schedules",
    "Spectrum": ".spectrum",
    "SpectrumAccumulator": ".spectrum",
    "Verification": ".verify",
    "verify": ".verify",
}

__all__ = [
    "HEURISTICS",
    "SAMPLERS",
    "Calibration",
    "FitResult",
    "GaussianDenoiser",
    "LevelRange",
    "Response",
    "Schedule",
    "SpecschedError",
    "Spectrum",
    "SpectrumAccumulator",
    "TrainSchedule",
    "Verification",
    "__version__",
    "all_heuristics",
    "calibrate",
    "compare",
    "diffusers_kwargs",
    "fit",
    "generate",
    "heuristic_schedule",
    "level_range",
    "make_ddim_scheduler",
    "pinned_scheduler",
    "response",
    "spaced_timesteps",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule, e.g. specsched.plots
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but needs a package that is missing
            raise AttributeError(f"module 'specsched' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """Importing the submodule ``specsched.response`` must not hide the function ``response``
    (the import system sets each submodule as an attribute of its package)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == f".{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from .calibrate import Calibration, calibrate
    from .denoisers import GaussianDenoiser
    from .generation import generate
    from .heuristics import HEURISTICS, all_heuristics, heuristic_schedule
    from .integrations.diffusers import diffusers_kwargs, make_ddim_scheduler, pinned_scheduler
    from .levels import LevelRange, TrainSchedule, level_range
    from .optimize import FitResult, compare, fit
    from .response import Response, response
    from .samplers import SAMPLERS
    from .schedules import Schedule, spaced_timesteps
    from .spectrum import Spectrum, SpectrumAccumulator
    from .verify import Verification, verify
