"""specsched: noise schedules for diffusion samplers, designed from the spectrum of the data.

The public API::

    import specsched as ss
    spec = ss.Spectrum.from_source("builtin:photos", size=32)
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing"), train_schedule="linear")
    r = ss.response(spec, sched, sampler="ddim", eta=0.0)
    r.w2, r.kl_gen_data, r.kl_data_gen
"""

from __future__ import annotations

from .denoisers import GaussianDenoiser
from .errors import SpecschedError
from .levels import TrainSchedule
from .response import Response, response
from .samplers import SAMPLERS
from .schedules import Schedule, spaced_timesteps
from .spectrum import Spectrum, SpectrumAccumulator

__version__ = "0.1.0"

__all__ = [
    "SAMPLERS",
    "GaussianDenoiser",
    "Response",
    "Schedule",
    "SpecschedError",
    "Spectrum",
    "SpectrumAccumulator",
    "TrainSchedule",
    "__version__",
    "response",
    "spaced_timesteps",
]
