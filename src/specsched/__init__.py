"""specsched: noise schedules for diffusion samplers, designed from the spectrum of the data.

The public API::

    import specsched as ss
    spec = ss.Spectrum.from_source("builtin:photos", size=32)
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing"), train_schedule="linear")
    r = ss.response(spec, sched, sampler="ddim", eta=0.0)
    r.w2, r.kl_gen_data, r.kl_data_gen
    res = ss.fit(spec, steps=10, sampler="ddim", train_schedule="linear", objective="w2")
    res.schedule.timesteps, res.value, res.baselines
"""

from __future__ import annotations

from .calibrate import Calibration, calibrate
from .denoisers import GaussianDenoiser
from .errors import SpecschedError
from .heuristics import HEURISTICS, all_heuristics, heuristic_schedule
from .levels import LevelRange, TrainSchedule
from .optimize import FitResult, compare, fit, level_range
from .response import Response, response
from .samplers import SAMPLERS
from .schedules import Schedule, spaced_timesteps
from .spectrum import Spectrum, SpectrumAccumulator

__version__ = "0.1.0"

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
    "__version__",
    "all_heuristics",
    "calibrate",
    "compare",
    "fit",
    "heuristic_schedule",
    "level_range",
    "response",
    "spaced_timesteps",
]
