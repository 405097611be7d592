"""The closed-form response against diffusers' own schedulers run with the exact denoiser.

diffusers' DDIMScheduler and DDPMScheduler are independent implementations of the samplers; the
"model" is the exact Gaussian denoiser of the field in the Fourier domain, converted to an epsilon
prediction. The schedulers' alphas_cumprod are replaced by float64 copies of the same training
schedule so that the comparison is not limited by diffusers' float32 tables (checked separately).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.testing import diffusers_scheduler, mode_tolerance, run_diffusers, to_modes

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMScheduler  # noqa: E402

T = 1000


def test_diffusers_training_table_matches_ours():
    """Our float64 linear/scaled_linear/cosine tables equal diffusers' float32 ones to float32 precision."""
    for name, ends in (
        ("linear", (1e-4, 0.02)),
        ("scaled_linear", (0.00085, 0.012)),
        ("cosine", None),
    ):
        cfg = "squaredcos_cap_v2" if name == "cosine" else name
        kw = {} if ends is None else {"beta_start": ends[0], "beta_end": ends[1]}
        theirs = DDPMScheduler(num_train_timesteps=T, beta_schedule=cfg, **kw).alphas_cumprod
        ours = ss.TrainSchedule(name, T).alphas_cumprod  # our defaults: diffusers' and SD's ends
        theirs = theirs.double().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-9)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [5, 10])
def test_deterministic_ddim_equals_closed_form_per_sample(field_factory, channels, spacing, steps):
    """eta = 0: diffusers' output is exactly H x_T + mean part, sample by sample (not statistics)."""
    _, spec = field_factory(2, size=8, channels=channels)
    sch = diffusers_scheduler("ddim", steps, spacing)
    sched = ss.Schedule.from_timesteps(sch.timesteps.numpy(), train_schedule="linear")
    r = ss.response(spec, sched, sampler="ddim", eta=0.0)
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(64, channels, 8, 8, dtype=torch.float64, generator=g)
    out = run_diffusers(sch, ss.GaussianDenoiser(spec), x_T, eta=0.0).numpy()
    got = to_modes(out, spec)
    want = r.transfer * to_modes(x_T.numpy(), spec) + r.output_mean
    assert np.max(np.abs(got - want)) < 1e-8 * max(1.0, np.abs(want).max())
    # the output variance of a deterministic sampler is |H|^2 times the start variance (1 for VP)
    np.testing.assert_allclose(r.output_var, r.transfer**2, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "kind,eta,spacing,steps",
    [
        ("ddim", 1.0, "leading", 5),
        ("ddim", 1.0, "trailing", 10),
        ("ddim", 0.5, "trailing", 5),
        ("ddpm", None, "leading", 10),
        ("ddpm", None, "trailing", 5),
    ],
)
def test_stochastic_moments_match_closed_form(field_factory, channels, kind, eta, spacing, steps):
    """Stochastic samplers: empirical per-mode variance and mean from 20,000 diffusers samples.

    The tolerance is 5 standard errors of each estimate (see conftest.mode_tolerance): a variance
    estimate from n samples has relative SE 1/sqrt(n) (complex modes) or sqrt(2/n) (real modes),
    and a mean estimate has SE sqrt(P / n).
    """
    n = 20_000
    _, spec = field_factory(2, size=8, channels=channels)
    sch = diffusers_scheduler(kind, steps, spacing)
    sched = ss.Schedule.from_timesteps(sch.timesteps.numpy(), train_schedule="linear")
    if kind == "ddim":
        r = ss.response(spec, sched, sampler="ddim", eta=eta)
    else:
        r = ss.response(spec, sched, sampler="ddpm")
    g = torch.Generator().manual_seed(7)
    x_T = torch.randn(n, channels, 8, 8, dtype=torch.float64, generator=g)
    out = run_diffusers(sch, ss.GaussianDenoiser(spec), x_T, eta=eta, generator=g).numpy()
    y = to_modes(out, spec)
    emp_mean = y.mean(0)
    emp_var = np.mean(np.abs(y - r.output_mean) ** 2, axis=0)
    rel = emp_var / r.output_var - 1
    tol = mode_tolerance(spec, n)
    assert np.all(np.abs(rel) < tol), (
        f"worst mode off by {np.max(np.abs(rel) / tol):.2f} tolerances"
    )
    assert np.all(np.abs(emp_mean - r.output_mean) < 5 * np.sqrt(r.output_var / n))
    # the mean really is carried (non-zero data mean): the generated DC mean is far from zero
    assert np.abs(r.output_mean).max() > 20 * np.sqrt(r.output_var.max() / n)


def test_ddpm_is_the_posterior_of_ddim_eta_one(field_factory):
    """ddpm and ddim(eta=1) are one sampler: identical closed forms."""
    _, spec = field_factory(2, size=8, channels=3)
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(7, "linspace"))
    a = ss.response(spec, sched, sampler="ddpm")
    b = ss.response(spec, sched, sampler="ddim", eta=1.0)
    np.testing.assert_array_equal(a.output_var, b.output_var)
