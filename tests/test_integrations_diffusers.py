"""The diffusers recipes specsched prints actually run the schedule it designed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.integrations.diffusers import snippet
from specsched.testing import to_modes

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
        snippet(sched, "ipndm")


# ----------------------------------------------------------------------------- deployment
from diffusers import (  # noqa: E402
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UNet2DModel,
    UniPCMultistepScheduler,
)

from specsched.integrations import kdiffusion  # noqa: E402
from specsched.integrations.diffusers import (  # noqa: E402
    diffusers_kwargs,
    make_ddim_scheduler,
    model_from_config,
    pinned_scheduler,
)


def _run_eps_scheduler(sch, spec, x_T, **step_kw):
    den = ss.GaussianDenoiser(spec)
    x = x_T.clone()
    for t in sch.timesteps:
        abar = sch.alphas_cumprod[int(t)].double()
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x = sch.step((x - a * den(x, a, s)) / s, t, x, **step_kw).prev_sample
    return x


def test_drop_in_ddim_runs_custom_timesteps_exactly(field_factory):
    _, spec = field_factory(2, size=8, channels=3)
    ts = [999, 874, 701, 555, 420, 300, 187, 90, 33, 5]
    sch = make_ddim_scheduler(DDIMScheduler(clip_sample=False).config)
    sch.alphas_cumprod = torch.from_numpy(ss.TrainSchedule("linear").alphas_cumprod.copy())
    sch.set_timesteps(**diffusers_kwargs(ss.Schedule.from_timesteps(ts), sch))
    assert sch.timesteps.tolist() == ts
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(16, 3, 8, 8, dtype=torch.float64, generator=g)
    out = _run_eps_scheduler(sch, spec, x_T, eta=0.0)
    r = ss.response(spec, ss.Schedule.from_timesteps(ts), sampler="ddim")
    want = r.transfer * to_modes(x_T.numpy(), spec) + r.output_mean
    assert np.max(np.abs(to_modes(out.numpy(), spec) - want)) < 1e-8 * np.abs(want).max()


def test_drop_in_ddim_equals_diffusers_ddim_on_uniform_spacing(field_factory):
    _, spec = field_factory(2, size=8, channels=1)
    ac = torch.from_numpy(ss.TrainSchedule("linear").alphas_cumprod.copy())
    theirs = DDIMScheduler(clip_sample=False, timestep_spacing="trailing")
    theirs.set_timesteps(10)
    theirs.alphas_cumprod, theirs.final_alpha_cumprod = ac, torch.tensor(1.0, dtype=torch.float64)
    ours = make_ddim_scheduler(theirs.config)
    ours.alphas_cumprod = ac
    ours.set_timesteps(timesteps=theirs.timesteps.tolist())
    x_T = torch.randn(8, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = _run_eps_scheduler(theirs, spec, x_T, eta=0.0)
    b = _run_eps_scheduler(ours, spec, x_T, eta=0.0)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-10)


def _tiny_unet():
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )


@pytest.mark.parametrize(
    "pipeline,scheduler",
    [
        (DDIMPipeline, DDIMScheduler()),
        (DDPMPipeline, DDPMScheduler()),
        (DDPMPipeline, DPMSolverMultistepScheduler()),
        (DDPMPipeline, EulerDiscreteScheduler()),
    ],
)
def test_real_pipeline_visits_exactly_the_fitted_timesteps(pipeline, scheduler):
    from specsched.data.builtin import photos

    spec = ss.Spectrum.from_array(photos(size=8, channels=1, n=500))
    sched = ss.fit(spec, 6, sampler="ddim").schedule
    unet = _tiny_unet()
    seen: list[int] = []
    forward = unet.forward

    def spy(sample, timestep, *a, **k):
        seen.append(round(float(timestep)))
        return forward(sample, timestep, *a, **k)

    unet.forward = spy
    pipe = pipeline(unet=unet, scheduler=scheduler)
    pipe.scheduler = pinned_scheduler(sched, pipe.scheduler)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=1, num_inference_steps=3, output_type="np")  # the pin overrides 3
    assert seen == sched.timesteps.tolist()
    assert np.all(np.isfinite(out.images))


def test_diffusers_kwargs_per_scheduler():
    sched = ss.Schedule.from_timesteps([999, 600, 200, 10])
    for cls in (
        DDPMScheduler,
        EulerDiscreteScheduler,
        DPMSolverMultistepScheduler,
        HeunDiscreteScheduler,
    ):
        s = cls()
        kw = diffusers_kwargs(sched, s)
        s.set_timesteps(**kw)
        visited = sorted({round(float(t)) for t in s.timesteps}, reverse=True)
        assert visited == [999, 600, 200, 10], cls.__name__
    for cls in (DDIMScheduler, EulerAncestralDiscreteScheduler):
        with pytest.raises(ss.SpecschedError, match="cannot take custom timesteps"):
            diffusers_kwargs(sched, cls())
    with pytest.raises(ss.SpecschedError, match="1000-step model"):
        diffusers_kwargs(sched, DDPMScheduler(num_train_timesteps=500))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_sigmas_are_compensated_for_the_scheduler_shift(shift):
    sched = ss.Schedule.from_sigmas([1.0, 0.8, 0.45, 0.2, 0.05], process="flow")
    s = FlowMatchEulerDiscreteScheduler(shift=shift)
    s.set_timesteps(**diffusers_kwargs(sched, s))
    np.testing.assert_allclose(s.sigmas.numpy(), sched.s, atol=1e-6)
    dyn = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    with pytest.raises(ss.SpecschedError, match="use_dynamic_shifting"):
        diffusers_kwargs(sched, dyn)


def test_model_from_config(tmp_path):
    lr, sampler, opts = model_from_config(
        DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")
    )
    assert sampler == "dpmpp_2m_sde" and lr.train == ss.TrainSchedule("linear")
    lr, sampler, opts = model_from_config(
        UniPCMultistepScheduler(
            solver_order=3, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
        )
    )
    assert (sampler, opts) == ("unipc", {"order": 3}) and lr.train == ss.TrainSchedule(
        "scaled_linear"
    )
    lr, sampler, _ = model_from_config(FlowMatchEulerDiscreteScheduler())
    assert (lr.process, sampler) == ("flow", "flow_euler")
    cfg = dict(DDIMScheduler(beta_schedule="squaredcos_cap_v2").config)
    cfg["_class_name"] = "DDIMScheduler"
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(cfg))
    lr, sampler, _ = model_from_config(tmp_path)  # a pipeline folder
    assert sampler == "ddim" and lr.train.name == "cosine"
    del cfg["beta_schedule"]
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    with pytest.raises(ss.SpecschedError, match="lacks beta_schedule"):
        model_from_config(tmp_path / "bad.json")
    with pytest.raises(ss.SpecschedError, match="unknown or missing scheduler"):
        model_from_config({"_class_name": "LCMScheduler"})
    with pytest.raises(ss.SpecschedError, match="does not exist"):
        model_from_config(tmp_path / "missing.json")


def test_kdiffusion_sigmas():
    sched = ss.Schedule.from_timesteps([999, 500, 20])
    sig = kdiffusion.sigmas(sched, dtype=torch.float64).numpy()
    ac = ss.TrainSchedule("linear").alphas_cumprod[[999, 500, 20]]
    np.testing.assert_allclose(sig, np.append(np.sqrt((1 - ac) / ac), 0.0), rtol=1e-12)
    assert np.all(np.diff(sig) < 0)
    with pytest.raises(ss.SpecschedError, match="infinite sigma"):
        kdiffusion.sigmas(ss.Schedule.from_sigmas([1.0, 0.5], process="flow"))
