"""Generation: batched, seeded sampling with any schedule, sampler and denoiser.

:func:`generate` runs one of the samplers of :mod:`specsched.samplers` (the same functions that
give the closed-form spectral response) with any denoiser ``denoise(x, alpha, s) -> x0_hat``, in batches, from seeded starting
noise: two schedules run with the same seed start from the same ``x_T``, so their samples are
paired.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .errors import SpecschedError, check_int
from .levels import start_std
from .samplers import Denoiser, get_sampler
from .schedules import Schedule

__all__ = ["generate", "start_noise"]

Tensor = torch.Tensor


def start_noise(
    schedule: Schedule,
    num_samples: int,
    shape: tuple[int, ...],
    *,
    seed: int = 0,
    mean: np.ndarray | Tensor | None = None,
) -> Tensor:
    """The seeded starting noise ``x_T`` of :func:`generate`, float64, ``(num_samples, *shape)``.

    Drawn in one piece from a CPU generator seeded with ``seed``, so it does not depend on the
    batch size, and scaled by the process's starting standard deviation
    (:func:`~specsched.levels.start_std`).

    Parameters
    ----------
    schedule : Schedule
        The levels, noisiest first.
    num_samples : int
    shape : tuple of int
        The shape of one sample.
    seed : int, default 0
    mean : array, optional
        The data's mean sample (:meth:`specsched.Spectrum.mean_image`): the noise is moved to
        the data's noised mean, ``alpha_0`` times it, where the first level is not pure noise
        (see :meth:`specsched.response.Response.value_from_marginal` and the note of
        :func:`specsched.fit`).

    Examples
    --------
    >>> import numpy as np, specsched as ss
    >>> from specsched.generation import start_noise
    >>> sched = ss.Schedule.from_timesteps([999, 500, 0], train_schedule="scaled_linear")
    >>> z = start_noise(sched, 2, (1, 2, 2))
    >>> x = start_noise(sched, 2, (1, 2, 2), mean=np.full((1, 2, 2), -1.0))
    >>> round(float((x - z).max()) / float(sched.alpha[0]), 6)
    -1.0
    """
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn((int(num_samples), *shape), generator=g, dtype=torch.float64)
    z = z * float(start_std(schedule.process, float(schedule.s[0])))
    if mean is None:
        return z
    m = torch.as_tensor(np.asarray(mean, dtype=np.float64))
    if tuple(m.shape) != tuple(shape):
        raise SpecschedError(
            f"mean has shape {tuple(m.shape)}, a sample {tuple(shape)}: give the data's mean "
            "sample (Spectrum.mean_image()) of the model's sample shape"
        )
    return z + float(schedule.alpha[0]) * m


def generate(
    denoise: Denoiser,
    schedule: Schedule,
    sampler: str = "ddim",
    *,
    num_samples: int,
    shape: tuple[int, ...],
    batch_size: int = 256,
    seed: int = 0,
    x_start: Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    """Sample with ``schedule`` and ``sampler`` from a denoiser, in batches.

    Parameters
    ----------
    denoise : callable
        ``denoise(x, alpha, s) -> x0_hat``, e.g. a
        :class:`~specsched.integrations.networks.ModelDenoiser`, a
        :class:`~specsched.denoisers.GaussianDenoiser` or a
        :class:`~specsched.mixture.MixtureDenoiser`.
    schedule : Schedule
        The levels, noisiest first.
    sampler : str, default "ddim"
        A name from :data:`specsched.samplers.SAMPLERS`.
    num_samples : int
        How many samples.
    shape : tuple of int
        The shape of one sample, e.g. ``(1, 16, 16)``.
    batch_size : int, default 256
        Samples per denoiser call.
    seed : int, default 0
        Seeds the starting noise (:func:`start_noise`; independent of ``batch_size``) and, for
        stochastic samplers, the noise injected along the way (a generator seeded with
        ``seed + 1``, drawn batch after batch: reproducible for a fixed ``batch_size``).
    x_start : Tensor, optional
        Starting states ``(num_samples, *shape)`` instead of the seeded ones.
    progress : callable, optional
        ``progress(k)`` after each batch of ``k`` samples.
    **options
        Sampler options (e.g. ``eta`` for ddim).

    Returns
    -------
    ndarray, shape (num_samples, *shape)
        float64 samples.

    Examples
    --------
    >>> import numpy as np
    >>> from specsched import Spectrum, Schedule
    >>> from specsched.denoisers import GaussianDenoiser
    >>> spec = Spectrum.from_array(np.random.default_rng(0).standard_normal((64, 1, 4, 4)))
    >>> sched = Schedule.from_timesteps([999, 500, 0])
    >>> generate(GaussianDenoiser(spec), sched, num_samples=8, shape=(1, 4, 4)).shape
    (8, 1, 4, 4)
    """
    sampler_spec = get_sampler(sampler)
    sampler_spec.check_process(schedule.process)
    num_samples = check_int("num_samples", num_samples)
    batch_size = check_int("batch_size", batch_size)
    shape = tuple(int(n) for n in shape)
    if x_start is None:
        x_start = start_noise(schedule, num_samples, shape, seed=seed)
    elif tuple(x_start.shape) != (num_samples, *shape):
        raise SpecschedError(
            f"x_start has shape {tuple(x_start.shape)}, expected {(num_samples, *shape)}"
        )
    alpha = torch.tensor(np.array(schedule.alpha), dtype=torch.float64)
    s = torch.tensor(np.array(schedule.s), dtype=torch.float64)
    g = torch.Generator().manual_seed(int(seed) + 1)

    def noise(like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=g, dtype=torch.float64)

    out = np.empty((num_samples, *shape), dtype=np.float64)
    for lo in range(0, num_samples, batch_size):
        hi = min(lo + batch_size, num_samples)
        x = sampler_spec(
            denoise,
            x_start[lo:hi].to(torch.float64),
            alpha,
            s,
            noise=noise,
            process=schedule.process,
            **options,
        )
        out[lo:hi] = x.numpy()
        if progress is not None:
            progress(hi - lo)
    if not np.all(np.isfinite(out)):
        raise SpecschedError(
            "sampling produced NaN or Inf values: check the model's prediction type and the "
            "schedule's levels"
        )
    return out
