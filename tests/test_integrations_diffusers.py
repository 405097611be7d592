"""The diffusers recipes specsched prints actually run the schedule it designed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import to_modes

import specsched as ss
from specsched.integrations.diffusers import snippet

pytest.importorskip("diffusers")
from diffusers import DDPMScheduler, EulerDiscreteScheduler

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_euler_with_custom_timesteps_is_ddim(field_factory):
    """EulerDiscreteScheduler(timesteps=...) with the exact denoiser == closed-form DDIM(eta=0)."""
    _, spec = field_factory(2, size=8, channels=3)
    ts = [999, 874, 701, 555, 420, 300, 187, 90, 33, 5]
    sched = ss.Schedule.from_timesteps(ts)
    r = ss.response(spec, sched, sampler="ddim")
    sch = EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear")
    sch.alphas_cumprod = torch.from_numpy(ss.TrainSchedule("linear").alphas_cumprod.copy())
    sch.set_timesteps(timesteps=ts)
    assert [int(t) for t in sch.timesteps] == ts
    den = ss.GaussianDenoiser(spec)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(32, 3, 8, 8, dtype=torch.float64, generator=g)
    x = x_T * sch.init_noise_sigma  # diffusers' Euler works on x / alpha
    for t in sch.timesteps:
        abar = sch.alphas_cumprod[int(t)].double()
        inp = sch.scale_model_input(x, t)  # = x / sqrt(sigma^2 + 1), the VP-scaled state
        eps = (inp - abar.sqrt() * den(inp, abar.sqrt(), (1 - abar).sqrt())) / (1 - abar).sqrt()
        x = sch.step(eps, t, x).prev_sample
    # Euler starts from sigma_max * x_T in x/alpha units, i.e. x_T * sigma_max * alpha_0 in VP
    # units; the closed form starts from N(0, I): compare per unit of start noise.
    a0, s0 = sched.alpha[0], sched.s[0]
    assert s0 < 1
    start = float(sch.init_noise_sigma) * a0
    got = to_modes(x.numpy(), spec)
    want = r.transfer * start * to_modes(x_T.numpy(), spec) + r.output_mean
    # diffusers stores its sigmas in float32 (relative rounding 6e-8 per level, ten levels):
    # agreement to 1e-6 of the largest mode is what float32 levels allow, far below any real error
    np.testing.assert_allclose(got, want, atol=1e-6 * np.abs(want).max())
    assert start == pytest.approx(s0, rel=1e-6)  # init_noise_sigma = sigma_max: x_T scaled by s_0


def test_snippets_name_schedulers_that_take_the_arguments():
    sched = ss.Schedule.from_timesteps([999, 500, 100])
    for sampler, cls in (("ddim", EulerDiscreteScheduler), ("ddpm", DDPMScheduler)):
        text = snippet(sched, sampler)
        assert cls.__name__ in text and "timesteps=[999, 500, 100]" in text
        s = cls(num_train_timesteps=1000)
        s.set_timesteps(timesteps=[999, 500, 100])
        assert [int(t) for t in s.timesteps] == [999, 500, 100]
    with pytest.raises(ss.SpecschedError):
        snippet(sched, "heun")
