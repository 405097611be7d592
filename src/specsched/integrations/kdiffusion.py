"""k-diffusion: a schedule as the ``sigmas`` tensor its samplers take.

k-diffusion's ``sample_*(model, x, sigmas)`` functions take descending noise-to-signal ratios with a
trailing 0 (VE convention; for VP models ``sigma = s / alpha``, and the model wrapper scales the input
by ``1 / sqrt(sigma^2 + 1)``). The first state is ``x = sigmas[0] * randn``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SpecschedError
from ..schedules import Schedule

__all__ = ["sigmas"]


def sigmas(schedule: Schedule, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``schedule``'s levels as k-diffusion sigmas: descending ``s / alpha``, ending in 0.

    Examples
    --------
    >>> from specsched import Schedule
    >>> sigmas(Schedule.from_sigmas([80.0, 1.0], process="ve")).tolist()
    [80.0, 1.0, 0.0]
    """
    if schedule.process == "flow":
        if schedule.alpha[0] == 0:
            raise SpecschedError(
                "a flow schedule that starts at t = 1 has an infinite sigma in k-diffusion's "
                "convention: use diffusers' FlowMatchEulerDiscreteScheduler instead"
            )
    sig = np.asarray(schedule.s / schedule.alpha, dtype=np.float64)
    return torch.tensor(sig, dtype=dtype)
