"""diffusers: how to run a specsched schedule in a pipeline.

diffusers' ``DDIMScheduler`` cannot take custom timesteps; its deterministic update is the Euler
step in the noise-to-signal parameterisation (``x/alpha`` against ``sigma = s/alpha``), so
``EulerDiscreteScheduler`` with ``timesteps=`` runs exactly DDIM(eta=0) on a schedule's integer
timesteps (checked in ``tests/test_integrations_diffusers.py``). ``DDPMScheduler`` takes
``timesteps=`` directly.
"""

from __future__ import annotations

from ..errors import SpecschedError
from ..schedules import Schedule

__all__ = ["snippet"]

_SCHEDULER_FOR = {"ddim": "EulerDiscreteScheduler", "ddpm": "DDPMScheduler"}


def snippet(schedule: Schedule, sampler: str = "ddim") -> str:
    """Two lines of Python that run ``schedule`` in a diffusers pipeline ``pipe``.

    Examples
    --------
    >>> from specsched import Schedule
    >>> print(snippet(Schedule.from_timesteps([999, 500, 100]), "ddpm"))
    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    images = pipe(..., timesteps=[999, 500, 100]).images
    """
    name = _SCHEDULER_FOR.get(sampler)
    if name is None:
        raise SpecschedError(
            f"no diffusers recipe for sampler {sampler!r} yet: use one of {', '.join(_SCHEDULER_FOR)}"
        )
    if schedule.timesteps is not None:
        arg = f"timesteps={[int(t) for t in schedule.timesteps]}"
    elif schedule.process == "flow":
        name = "FlowMatchEulerDiscreteScheduler"
        arg = f"sigmas={[round(float(v), 6) for v in schedule.sigmas[:-1]]}"
    else:  # diffusers' Euler schedulers take the sigmas with the final 0
        arg = f"sigmas={[round(float(v), 6) for v in schedule.sigmas]}"
        name = "EulerDiscreteScheduler" if sampler == "ddim" else "EulerAncestralDiscreteScheduler"
    return (
        f"pipe.scheduler = {name}.from_config(pipe.scheduler.config)\n"
        f"images = pipe(..., {arg}).images"
    )
