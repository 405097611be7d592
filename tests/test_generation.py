"""Real sampling against diffusers' own sampling loop, on the committed tiny16 UNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from specsched.generation import generate, start_noise
from specsched.integrations.diffusers import UNetDenoiser
from specsched.schedules import Schedule, spaced_timesteps

TINY16 = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "tiny16"


def test_ddim_trailing_10_steps_matches_diffusers_ddim_scheduler():
    """generate() with UNetDenoiser reproduces DDIMScheduler's loop on the same UNet and x_T.

    diffusers runs the UNet and the scheduler in float32; specsched keeps the sampler state in
    float64. The scheduler comes from the pipeline's own config with trailing spacing,
    ``set_alpha_to_one=True`` (its last step, from t = 99 to "t = -1", lands on the clean level
    and returns the predicted x0, as specsched's last step does) and no clipping.
    """
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DModel.from_pretrained(TINY16 / "unet").eval()
    config = diffusers.DDPMScheduler.from_pretrained(TINY16 / "scheduler").config
    ddim = diffusers.DDIMScheduler.from_config(
        config, timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False
    )
    ddim.set_timesteps(10)
    timesteps = ddim.timesteps.tolist()
    assert timesteps == list(range(999, 0, -100))

    sched = Schedule.from_timesteps(spaced_timesteps(10, "trailing"))
    assert sched.timesteps.tolist() == timesteps
    shape = (1, 16, 16)
    x_t = start_noise(sched, 8, shape, seed=3).to(torch.float32)

    x = x_t.clone()
    with torch.inference_mode():
        for t in ddim.timesteps:
            eps = unet(x, t).sample
            x = ddim.step(eps, t, x, eta=0.0).prev_sample
    expected = x.double().numpy()

    den, sample_shape = UNetDenoiser.from_pipeline(TINY16)
    assert sample_shape == shape and den.prediction == "epsilon" and den.clip is None
    got = generate(
        den,
        sched,
        "ddim",
        num_samples=8,
        shape=shape,
        batch_size=4,
        x_start=x_t.double(),
        eta=0.0,
    )
    assert den.calls == 2 * 10  # two batches, one network call per step
    assert np.abs(expected).max() > 0.5  # real images, not a collapsed output
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_seeded_generation_is_paired_and_batch_independent():
    """The same seed gives the same x_T for every schedule and batch size (paired samples)."""
    den, shape = UNetDenoiser.from_pipeline(TINY16)
    a = Schedule.from_timesteps(spaced_timesteps(3, "trailing"))
    b = Schedule.from_timesteps(spaced_timesteps(4, "leading"))
    assert torch.equal(start_noise(a, 6, shape, seed=5), start_noise(b, 6, shape, seed=5))
    x1 = generate(den, a, num_samples=6, shape=shape, batch_size=6, seed=5)
    x2 = generate(den, a, num_samples=6, shape=shape, batch_size=4, seed=5)
    np.testing.assert_allclose(x1, x2, rtol=0, atol=1e-5)
