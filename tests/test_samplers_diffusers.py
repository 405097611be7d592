"""Every sampler of specsched.SAMPLERS against an independent implementation, with the exact denoiser.

The independent implementations are diffusers' schedulers (DDIM, DDPM, Euler, Euler ancestral,
Heun, DPM-Solver++ 2M and 2M SDE, UniPC bh2 of order 2 and 3, IPNDM, the flow-matching Euler and
Heun schedulers, and the EDM (VE) Euler and DPM-Solver++ schedulers), k-diffusion's ``sample_*``
where k-diffusion can be loaded, and, for iPNDM on VE levels, a transcription in this file of the
reference implementation (zju-pi/diff-sampler ``ipndm_sampler``). The "model" is the exact
posterior mean of a stationary Gaussian field (:class:`specsched.GaussianDenoiser`) converted to
what the scheduler expects: epsilon, velocity (flow: ``v = eps - x0``) or EDM's raw network output.

With the exact Gaussian denoiser every sampler here is affine in its start noise and its injected
noise, mode by mode. So:

- deterministic samplers must produce, sample by sample and mode by mode,
  ``H_k * (start state)_k + mu_k`` with ``H_k`` and ``mu_k`` from specsched's closed form
  (:func:`specsched.response`), which runs the same sampler functions on coefficient states;
- stochastic samplers must match the closed-form per-mode mean and variance within a
  tolerance derived from the sample count (conftest.mode_tolerance, 5 standard errors).

The closed-form schedule is always built from the levels the scheduler actually visits (its
``sigmas`` / ``timesteps`` after ``set_timesteps``), with the scheduler's float32 tables replaced
by float64 ones, so that agreement reaches float64 round-off (``F64``). Some schedulers cast the
state to float32 inside ``step`` whatever its dtype (``sample = sample.to(torch.float32)``):
EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler and EDMEulerScheduler. Against
those the agreement is limited by float32 rounding of the state, once per step (``f32_tol``).

Start noise: the sampler's first state is ``x_T * init_noise_sigma`` in the units the scheduler
steps in. For diffusers' Euler/Heun schedulers on a VP model those units are ``x / alpha``
(``z``, the VE form of the ODE), so the VP state is ``alpha_0 * init_noise_sigma * x_T``; the VP
closed form's transfer function is per unit of VP start state, hence the comparison "per unit of
start noise" (as in test_integrations_diffusers.py).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.levels import start_std
from specsched.testing import MEANS3, mode_tolerance, to_modes, true_spectrum

pytest.importorskip("diffusers")
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EDMDPMSolverMultistepScheduler,
    EDMEulerScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    HeunDiscreteScheduler,
    IPNDMScheduler,
    UniPCMultistepScheduler,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

T = 1000
ABAR = ss.TrainSchedule("linear", T).alphas_cumprod  # float64, equal to diffusers' to float32
F64 = 1e-8  # float64 runs: relative agreement (measured 4e-16 to 1e-14)
EPS32 = 2.0**-24  # unit round-off of float32
N_MC = 20_000  # samples for the stochastic samplers
VE_SIGMAS = (80.0, 0.002)  # EDM's sigma_max, sigma_min


def f32_tol(steps: int) -> float:
    """Tolerance for the schedulers that round the state to float32 at every step.

    Each step rounds every pixel of the state to float32 (relative error <= 2^-24); the sampler
    is linear, so each rounding error reaches the output filtered by the rest of the chain, which
    does not amplify (|H| <= 1 up to the few-percent overshoot of second-order methods), and the
    orthonormal DFT keeps the error's norm. ``8 * steps * 2^-24`` of the output's largest mode
    (2.4e-6 at 5 steps, 4.8e-6 at 10) leaves a margin of 10 or more over the measured 3e-8 to
    2e-7, and is still four orders of magnitude below what a real discrepancy does (a wrong
    coefficient, level or order moves the output by 1e-3 to 1e-1 of its largest mode).
    """
    return 8 * steps * EPS32


# ---------------------------------------------------------------- fields, start noise, closed form


@functools.cache
def field(channels: int) -> ss.Spectrum:
    """The exact spectrum of an 8x8 synthetic:powerlaw field with a non-zero mean."""
    return true_spectrum(8, channels, MEANS3[:channels])


def start_noise(n: int, channels: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, 8, 8, dtype=torch.float64, generator=g)


def closed_form_error(
    out: torch.Tensor,
    x_T: torch.Tensor,
    start: float,
    spec: ss.Spectrum,
    sched: ss.Schedule,
    sampler: str,
    **options,
) -> float:
    """Largest per-sample, per-mode distance to the closed form, relative to the largest mode
    (absolute when that is below 1).

    ``start`` is the start state per unit of ``x_T`` in the units of ``sched.process``.
    """
    r = ss.response(spec, sched, sampler=sampler, **options)
    got = to_modes(out.detach().numpy(), spec)
    want = r.transfer * float(start) * to_modes(x_T.numpy(), spec) + r.output_mean
    assert np.all(np.isfinite(got)), "the scheduler produced NaN or Inf"
    return float(np.max(np.abs(got - want)) / max(1.0, np.abs(want).max()))


@pytest.fixture
def record(request):
    """``record(name, value)``: attach a measured figure to the test's report (user_properties,
    which ``--junitxml`` writes out), without record_property's warning under xunit2."""
    return lambda name, value: request.node.user_properties.append((name, value))


def check(record, err: float, tol: float) -> None:
    record("max_rel_err", err)
    record("tol", tol)
    assert err < tol, f"max relative discrepancy {err:.3e} exceeds {tol:.1e}"


def pixel_run(name, spec, sched, x, **options):
    """specsched's own sampler on pixels with the exact Gaussian denoiser."""
    den = ss.GaussianDenoiser(spec)
    alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
    return ss.SAMPLERS[name](den, x, alpha, s, process=sched.process, **options)


# ---------------------------------------------------------------- exact models


def vp_level(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VP level of a noise-to-signal ratio, computed as Schedule.from_sigmas(process="vp") does."""
    root = torch.sqrt(1 + sigma**2)
    return 1 / root, sigma / root


class Model:
    """The exact Gaussian denoiser, converted to a scheduler's model output.

    ``model(x, x_in, sigma)``: ``x`` is the scheduler's state, ``x_in`` what
    ``scale_model_input`` made of it, ``sigma`` the level of this call in the scheduler's
    convention. ``kind``:

    - ``"vp_eps"``: VP epsilon-prediction model, input the VP state ``x_in`` at
      ``sigma = s / alpha`` (diffusers' Euler/Heun/DPM-Solver/UniPC schedulers on DDPM models);
    - ``"ve_eps"``: VE epsilon model on the raw state ``x`` at ``s = sigma`` (a VE model ignores
      the VP input scaling: ``x0 = x - sigma eps`` is all the Euler/Heun steps use);
    - ``"flow_v"``: flow-matching velocity ``v = eps - x0`` at ``alpha = 1 - t, s = t``;
    - ``"edm"``: the raw network output ``F`` of EDM's preconditioning,
      ``D = c_skip x + c_out F`` with ``sigma_data``.
    """

    def __init__(self, spec: ss.Spectrum, kind: str, sigma_data: float = 0.5):
        self.den = ss.GaussianDenoiser(spec)
        self.kind = kind
        self.sigma_data = sigma_data
        self.calls = 0

    def __call__(self, x: torch.Tensor, x_in: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        one = torch.ones((), dtype=torch.float64)
        if self.kind == "vp_eps":
            a, s = vp_level(sigma)
            return (x_in - a * self.den(x_in, a, s)) / s
        if self.kind == "ve_eps":
            return (x - self.den(x, one, sigma)) / sigma
        if self.kind == "flow_v":
            a, s = 1 - sigma, sigma
            x0 = self.den(x, a, s)
            return (x - a * x0) / s - x0
        if self.kind == "edm":
            sd2 = self.sigma_data**2
            c_skip = sd2 / (sigma**2 + sd2)
            c_out = sigma * self.sigma_data / torch.sqrt(sigma**2 + sd2)
            return (self.den(x, one, sigma) - c_skip * x) / c_out
        raise AssertionError(self.kind)


def run(sch, model: Model, x: torch.Tensor, *, generator=None) -> torch.Tensor:
    """diffusers' sampling loop; model call ``j`` is at the level ``sch.sigmas[j]``.

    (``step_index`` advances by one per call in every scheduler used here, Heun's included.)
    """
    kw = {} if generator is None else {"generator": generator}
    scale = getattr(sch, "scale_model_input", lambda x, t: x)  # flow schedulers have none
    for j, t in enumerate(sch.timesteps):
        x_in = scale(x, t)
        x = sch.step(model(x, x_in, sch.sigmas[j]), t, x, **kw).prev_sample
    return x


def float64_sigmas(sch) -> np.ndarray:
    """Make the scheduler step on float64 sigmas; return the distinct levels it visits, in order.

    The values are diffusers' own (float32-rounded) levels, so the closed form is built on exactly
    the levels the scheduler uses.
    """
    sch.sigmas = sch.sigmas.to(torch.float64)
    return torch.unique_consecutive(sch.sigmas).numpy()


def vp_scheduler(cls, steps: int, spacing: str = "linspace", **config):
    sch = cls(num_train_timesteps=T, beta_schedule="linear", timestep_spacing=spacing, **config)
    sch.alphas_cumprod = torch.from_numpy(ABAR.copy())  # float64 source for the sigmas
    sch.set_timesteps(steps)
    return sch


VP_GRID = [
    ("leading", 5, False),
    ("trailing", 5, False),
    ("linspace", 10, False),
    ("trailing", 10, False),
    ("leading", 10, True),  # use_karras_sigmas: non-integer levels, still VP
]
VP_IDS = [f"{sp}-{n}{'-karras' if k else ''}" for sp, n, k in VP_GRID]


# ---------------------------------------------------------------- DDIM (and its aliases)


@pytest.mark.parametrize("name", ["ddim", "euler"])
@pytest.mark.parametrize("spacing,steps", [("leading", 5), ("trailing", 10)])
def test_ddim_scheduler(record, name, spacing, steps):
    """DDIMScheduler(eta=0) == ddim == euler (DDIM is Euler on the VP ODE), per sample, float64.

    Only spacings where DDIM's ``prev_timestep = t - T // N`` is the next timestep: with
    ``linspace``, or ``trailing`` when N does not divide T, diffusers' DDIM steps to levels it then
    does not start from (10 linspace steps: 999 -> 899, then a step from 888).
    """
    spec = field(3)
    sch = DDIMScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing=spacing,
    )
    sch.set_timesteps(steps)
    sch.alphas_cumprod = torch.from_numpy(ABAR.copy())
    sch.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sched = ss.Schedule.from_timesteps(sch.timesteps.numpy())
    den = ss.GaussianDenoiser(spec)
    x_T = start_noise(32, 3)
    x = x_T
    for t in sch.timesteps:
        abar = sch.alphas_cumprod[int(t)]
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x = sch.step((x - a * den(x, a, s)) / s, t, x, eta=0.0).prev_sample
    check(record, closed_form_error(x, x_T, 1.0, spec, sched, name), F64)


# ---------------------------------------------------------------- Euler / Heun on VP models


@pytest.mark.parametrize("spacing,steps,karras", VP_GRID, ids=VP_IDS)
def test_euler_discrete_vp(record, spacing, steps, karras):
    """EulerDiscreteScheduler == euler (VP). Float32-limited: step() casts the state."""
    spec = field(3)
    sch = vp_scheduler(EulerDiscreteScheduler, steps, spacing, use_karras_sigmas=karras)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "vp_eps"), x_T * sch.init_noise_sigma)
    start = float(sch.init_noise_sigma) * sched.alpha[0]  # z_T = init_noise_sigma x_T
    err = closed_form_error(out, x_T, start, spec, sched, "euler")
    check(record, err, f32_tol(steps))


@pytest.mark.parametrize("spacing,steps,karras", VP_GRID, ids=VP_IDS)
def test_heun_discrete_vp(record, spacing, steps, karras):
    """HeunDiscreteScheduler == heun (VP), per sample, float64; 2N - 1 model calls."""
    spec = field(3)
    sch = vp_scheduler(HeunDiscreteScheduler, steps, spacing, use_karras_sigmas=karras)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    assert sched.steps == steps and len(sch.timesteps) == 2 * steps - 1
    x_T = start_noise(32, 3)
    model = Model(spec, "vp_eps")
    out = run(sch, model, x_T * sch.init_noise_sigma)
    assert model.calls == 2 * steps - 1
    start = float(sch.init_noise_sigma) * sched.alpha[0]
    check(record, closed_form_error(out, x_T, start, spec, sched, "heun"), F64)


# ---------------------------------------------------------------- DPM-Solver++(2M), UniPC, IPNDM on VP models


@pytest.mark.parametrize("spacing,steps,karras", VP_GRID, ids=VP_IDS)
def test_dpmsolver_2m_vp(record, spacing, steps, karras):
    """DPMSolverMultistepScheduler (dpmsolver++, midpoint, order 2) == dpmpp_2m. Float32-limited."""
    spec = field(3)
    sch = vp_scheduler(DPMSolverMultistepScheduler, steps, spacing, use_karras_sigmas=karras)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "vp_eps"), x_T)  # steps on the VP state, init_noise_sigma = 1
    err = closed_form_error(out, x_T, 1.0, spec, sched, "dpmpp_2m")
    check(record, err, f32_tol(steps))


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("spacing,steps,karras", VP_GRID, ids=VP_IDS)
def test_unipc_vp(record, order, spacing, steps, karras):
    """UniPCMultistepScheduler (bh2, corrector, lower_order_final) == unipc(order), float64."""
    spec = field(3)
    sch = vp_scheduler(
        UniPCMultistepScheduler, steps, spacing, use_karras_sigmas=karras, solver_order=order
    )
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "vp_eps"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "unipc", order=order)
    check(record, err, F64)


def _ipndm_levels(kind: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """VP levels ``(alpha, s)``, ``steps + 1`` of them, ending clean."""
    if kind == "native":
        # IPNDMScheduler's own family, s = sin^2(pi t / 2), t uniform, in float64, without its
        # first level (t = 1: alpha = 0, where the sigma-domain iPNDM is undefined)
        t = torch.linspace(1, 0, steps + 2, dtype=torch.float64)[1:]
        s = torch.sin(t * math.pi / 2) ** 2
        s[-1] = 0.0
        return torch.sqrt(1 - s**2), s
    ts = ss.spaced_timesteps(steps, kind)
    sched = ss.Schedule.from_timesteps(ts)
    return torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())


@pytest.mark.parametrize(
    "kind,steps", [("native", 5), ("native", 10), ("trailing", 10), ("leading", 6)]
)
def test_ipndm_scheduler(record, kind, steps):
    """IPNDMScheduler == ipndm (VP), float64.

    diffusers' IPNDM is a v-prediction VP sampler: ``eps = x sigma + v alpha`` combined by the
    fixed Adams-Bashforth weights (order 1, 2, 3, 4), then a DDIM step; in ``z = x / alpha`` that is
    ``z' = z + (tau' - tau) sum_j b_j eps_j`` with ``eps = (z - D) / tau``: specsched's ipndm. Its
    tables (``betas`` = s, ``alphas`` = alpha) are replaced by float64 VP levels.
    """
    spec = field(3)
    alpha, s = _ipndm_levels(kind, steps)
    sch = IPNDMScheduler(num_train_timesteps=T)
    sch.set_timesteps(steps)
    sch.betas, sch.alphas = s, alpha  # the scheduler's (sigma, alpha) per level
    den = ss.GaussianDenoiser(spec)
    x_T = start_noise(32, 3)
    x = x_T
    for j, t in enumerate(sch.timesteps):
        a, sj = alpha[j], s[j]
        x0 = den(x, a, sj)
        v = a * (x - a * x0) / sj - sj * x0  # v = alpha eps - sigma x0
        x = sch.step(v, t, x).prev_sample
    sched = ss.Schedule(alpha.numpy(), s.numpy(), "vp")
    check(record, closed_form_error(x, x_T, 1.0, spec, sched, "ipndm"), F64)


# ---------------------------------------------------------------- VE models


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7):
    ramp = np.linspace(0, 1, steps)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return np.append(inv**rho, 0.0)


@pytest.mark.parametrize("steps", [5, 10])
def test_euler_discrete_ve(record, steps):
    """EulerDiscreteScheduler(sigmas=EDM's Karras sigmas) run by a VE model == euler (VE)."""
    spec = field(3)
    sch = EulerDiscreteScheduler(num_train_timesteps=T)
    sch.set_timesteps(sigmas=karras_sigmas(steps).tolist())
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="ve")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "ve_eps"), x_T * sch.init_noise_sigma)
    assert float(sch.init_noise_sigma) == sched.s[0]  # the VE start, N(0, sigma_max^2)
    err = closed_form_error(out, x_T, float(sch.init_noise_sigma), spec, sched, "euler")
    check(record, err, f32_tol(steps))


@pytest.mark.parametrize("spacing,steps", [("trailing", 5), ("linspace", 10)])
def test_heun_discrete_ve(record, spacing, steps):
    """HeunDiscreteScheduler (Karras sigmas up to 157) run by a VE model == heun (VE), float64."""
    spec = field(3)
    sch = vp_scheduler(HeunDiscreteScheduler, steps, spacing, use_karras_sigmas=True)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="ve")
    x_T = start_noise(32, 3)
    model = Model(spec, "ve_eps")
    out = run(sch, model, x_T * sch.init_noise_sigma)
    assert model.calls == 2 * steps - 1
    err = closed_form_error(out, x_T, float(sch.init_noise_sigma), spec, sched, "heun")
    check(record, err, F64)


@pytest.mark.parametrize("steps", [5, 10])
def test_edm_euler(record, steps):
    """EDMEulerScheduler (VE, EDM preconditioning) == euler (VE). Float32-limited."""
    spec = field(3)
    sch = EDMEulerScheduler(sigma_min=VE_SIGMAS[1], sigma_max=VE_SIGMAS[0])
    sch.set_timesteps(steps)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="ve")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "edm"), x_T * sch.init_noise_sigma)
    err = closed_form_error(out, x_T, float(sch.init_noise_sigma), spec, sched, "euler")
    check(record, err, f32_tol(steps))


@pytest.mark.parametrize("steps", [5, 10, 16])
def test_edm_dpmsolver_2m(record, steps):
    """EDMDPMSolverMultistepScheduler (VE, dpmsolver++ 2M) == dpmpp_2m (VE), float64.

    Its ``init_noise_sigma`` is ``sqrt(sigma_max^2 + 1)``, not ``sigma_max``: compared per unit of
    start noise.
    """
    spec = field(3)
    sch = EDMDPMSolverMultistepScheduler(sigma_min=VE_SIGMAS[1], sigma_max=VE_SIGMAS[0])
    sch.set_timesteps(steps)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="ve")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "edm"), x_T * sch.init_noise_sigma)
    err = closed_form_error(out, x_T, float(sch.init_noise_sigma), spec, sched, "dpmpp_2m")
    check(record, err, F64)


# ---------------------------------------------------------------- k-diffusion and the iPNDM reference (VE)


def _append_dims(x, target_dims):
    """k_diffusion.utils.append_dims (the one helper k_diffusion.sampling needs from utils)."""
    return x[(...,) + (None,) * (target_dims - x.ndim)]


@functools.lru_cache(maxsize=1)
def k_sampling():
    """k-diffusion's sampling module, or None when it cannot be loaded.

    PyPI's k-diffusion imports its training stack (jsonmerge, clean-fid, kornia, torchvision, ...)
    at the top level; the samplers need only torch, scipy, tqdm, torchsde and torchdiffeq. When
    the package import fails, sampling.py is loaded alone under a private name, with
    ``append_dims`` standing in for its ``from . import utils``.
    """
    try:
        from k_diffusion import sampling

        return sampling
    except Exception:
        pass
    try:
        found = importlib.util.find_spec("k_diffusion")
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / "sampling.py"
    if not path.is_file():
        return None
    pkg_name = "_specsched_test_kdiffusion"
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = []
    utils = types.ModuleType(f"{pkg_name}.utils")
    utils.append_dims = _append_dims
    pkg.utils = utils
    sys.modules.setdefault(pkg_name, pkg)
    sys.modules.setdefault(f"{pkg_name}.utils", utils)
    mod_spec = importlib.util.spec_from_file_location(f"{pkg_name}.sampling", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except ImportError:
        return None
    return module


def need_k_sampling():
    ks = k_sampling()
    if ks is None:
        pytest.skip("k-diffusion (with torchsde, torchdiffeq) is not installed")
    return ks


def ve_model(spec: ss.Spectrum):
    """k-diffusion's model interface: ``model(x, sigma * s_in) -> denoised``, VE."""
    den = ss.GaussianDenoiser(spec)
    one = torch.ones((), dtype=torch.float64)
    return lambda x, sigma: den(x, one, sigma.reshape(-1)[0])


@pytest.mark.parametrize(
    "fn,name", [("sample_euler", "euler"), ("sample_heun", "heun"), ("sample_dpmpp_2m", "dpmpp_2m")]
)
@pytest.mark.parametrize("steps", [5, 10])
def test_k_diffusion_ve(record, fn, name, steps):
    """k-diffusion's sample_euler / sample_heun / sample_dpmpp_2m on EDM's VE sigmas, float64."""
    ks = need_k_sampling()
    spec = field(3)
    sigmas = torch.from_numpy(karras_sigmas(steps))
    sched = ss.Schedule.from_sigmas(sigmas.numpy(), process="ve")
    x_T = start_noise(32, 3)
    out = getattr(ks, fn)(ve_model(spec), x_T * sigmas[0], sigmas, disable=True)
    err = closed_form_error(out, x_T, float(sigmas[0]), spec, sched, name)
    check(record, err, F64)


def reference_ipndm(model, x, sigmas, max_order=4):
    """iPNDM (Zhang & Chen 2023): Adams-Bashforth on dx/dsigma = (x - D) / sigma, transcribed from
    zju-pi/diff-sampler ``ipndm_sampler`` (no special final step)."""
    buf = []
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        d_cur = (x - model(x, t_cur)) / t_cur
        order = min(max_order, i + 1)
        if order == 1:
            x = x + (t_next - t_cur) * d_cur
        elif order == 2:
            x = x + (t_next - t_cur) * (3 * d_cur - buf[-1]) / 2
        elif order == 3:
            x = x + (t_next - t_cur) * (23 * d_cur - 16 * buf[-1] + 5 * buf[-2]) / 12
        else:
            x = x + (t_next - t_cur) * (55 * d_cur - 59 * buf[-1] + 37 * buf[-2] - 9 * buf[-3]) / 24
        buf = [*buf, d_cur][-(max_order - 1) :] if max_order > 1 else []
    return x


@pytest.mark.parametrize("max_order", [2, 3, 4])
@pytest.mark.parametrize("steps", [5, 10])
def test_ipndm_reference_ve(record, max_order, steps):
    """ipndm (VE) against the reference iPNDM on EDM's sigmas (k-diffusion on PyPI has none)."""
    spec = field(3)
    sigmas = torch.from_numpy(karras_sigmas(steps))
    sched = ss.Schedule.from_sigmas(sigmas.numpy(), process="ve")
    x_T = start_noise(32, 3)
    out = reference_ipndm(ve_model(spec), x_T * sigmas[0], sigmas, max_order=max_order)
    err = closed_form_error(out, x_T, float(sigmas[0]), spec, sched, "ipndm", max_order=max_order)
    check(record, err, F64)


# ---------------------------------------------------------------- flow matching


@pytest.mark.parametrize("shift,steps", [(1.0, 5), (3.0, 5), (3.0, 10)])
def test_flow_match_euler(record, shift, steps):
    """FlowMatchEulerDiscreteScheduler (starts at t = 1) == flow_euler. Float32-limited."""
    spec = field(3)
    sch = FlowMatchEulerDiscreteScheduler(shift=shift)
    sch.set_timesteps(steps)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    assert sched.s[0] == 1.0 and sched.steps == steps
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "flow_v"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "flow_euler")
    check(record, err, f32_tol(steps))


def test_flow_match_euler_custom_sigmas(record):
    """FlowMatchEulerDiscreteScheduler(sigmas=...) below t = 1, with the shift applied to them."""
    spec = field(1)
    sch = FlowMatchEulerDiscreteScheduler(shift=2.0)
    sch.set_timesteps(sigmas=[0.95, 0.8, 0.6, 0.4, 0.25, 0.1])
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    x_T = start_noise(32, 1)
    out = run(sch, Model(spec, "flow_v"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "flow_euler")
    check(record, err, f32_tol(sched.steps))


@pytest.mark.parametrize("shift,steps", [(1.0, 5), (3.0, 10)])
def test_flow_match_heun(record, shift, steps):
    """FlowMatchHeunDiscreteScheduler == heun on flow levels (z = x, tau = t); 2N - 1 calls."""
    spec = field(3)
    sch = FlowMatchHeunDiscreteScheduler(shift=shift)
    sch.set_timesteps(steps)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    assert sched.steps == steps and len(sch.timesteps) == 2 * steps - 1
    x_T = start_noise(32, 3)
    model = Model(spec, "flow_v")
    out = run(sch, model, x_T)
    assert model.calls == 2 * steps - 1
    err = closed_form_error(out, x_T, 1.0, spec, sched, "heun")
    check(record, err, f32_tol(steps))


def flow_scheduler(cls, steps: int, **config):
    sch = cls(
        num_train_timesteps=T,
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        flow_shift=3.0,
        **config,
    )
    sch.set_timesteps(steps)
    return sch


@pytest.mark.parametrize("steps", [5, 10])
def test_dpmsolver_2m_flow(record, steps):
    """DPMSolverMultistepScheduler(use_flow_sigmas, flow_prediction) == dpmpp_2m on flow levels."""
    spec = field(3)
    sch = flow_scheduler(DPMSolverMultistepScheduler, steps)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "flow_v"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "dpmpp_2m")
    check(record, err, f32_tol(steps))


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("steps", [5, 10])
def test_unipc_flow(record, order, steps):
    """UniPCMultistepScheduler(use_flow_sigmas, flow_prediction) == unipc on flow levels, float64."""
    spec = field(3)
    sch = flow_scheduler(UniPCMultistepScheduler, steps, solver_order=order)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    x_T = start_noise(32, 3)
    out = run(sch, Model(spec, "flow_v"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "unipc", order=order)
    check(record, err, F64)


# ---------------------------------------------------------------- conventions specsched claims


@pytest.mark.parametrize(
    "config",
    [
        {"lower_order_final": False},
        {"lower_order_final": True},
        {"lower_order_final": False, "euler_at_final": True},
    ],
    ids=["no-lower-order-final", "lower-order-final", "euler-at-final"],
)
def test_dpmpp_2m_final_step_is_first_order(record, config):
    """With final_sigmas_type="zero" the step to sigma = 0 is first order whatever the options.

    16 steps, so that diffusers' ``lower_order_final`` (which only acts below 15 steps) is not what
    makes it so: one specsched sampler, with no such option, matches all three configurations.
    """
    spec = field(1)
    steps = 16
    sch = vp_scheduler(
        DPMSolverMultistepScheduler, steps, "trailing", final_sigmas_type="zero", **config
    )
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    x_T = start_noise(32, 1)
    out = run(sch, Model(spec, "vp_eps"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "dpmpp_2m")
    check(record, err, f32_tol(steps))


def test_two_step_dpmpp_2m_is_ddim():
    """First step and step to the clean level are first order: 2-step DPM-Solver++(2M) is DDIM."""
    spec = field(1)
    sched = ss.Schedule.from_timesteps([999, 499])
    a = ss.response(spec, sched, "dpmpp_2m")
    b = ss.response(spec, sched, "ddim")
    np.testing.assert_allclose(a.transfer, b.transfer, rtol=1e-12)
    np.testing.assert_allclose(a.output_mean, b.output_mean, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("order", [2, 3])
def test_unipc_without_corrector(record, order):
    """UniPC with ``disable_corrector`` at every step == unipc(corrector=False), float64."""
    spec = field(1)
    steps = 8
    sch = vp_scheduler(
        UniPCMultistepScheduler,
        steps,
        "trailing",
        solver_order=order,
        disable_corrector=list(range(steps)),
    )
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    x_T = start_noise(32, 1)
    out = run(sch, Model(spec, "vp_eps"), x_T)
    err = closed_form_error(out, x_T, 1.0, spec, sched, "unipc", order=order, corrector=False)
    check(record, err, F64)
    # and the corrector is not a no-op: with it the result differs by far more than round-off
    with_c = closed_form_error(out, x_T, 1.0, spec, sched, "unipc", order=order)
    assert with_c > 1e-4


@pytest.mark.parametrize("order", [2, 3])
def test_unipc_lower_order_final_false(record, order):
    """``lower_order_final=False``: the same orders as diffusers at every step before the last.

    Compared on the trajectory before the last step (the predictor's state after each step, which
    specsched's callback and diffusers' ``prev_sample`` both report): diffusers' step of order > 1
    to sigma = 0 has an infinite log-SNR step, r_k = 0, and returns Inf (order 2) or fails in a
    singular solve (order 3), where specsched's step to the clean level is ``alpha' D`` (the limit
    of every order, since e^-h = 0).
    """
    spec = field(1)
    steps = 6
    sch = vp_scheduler(
        UniPCMultistepScheduler, steps, "trailing", solver_order=order, lower_order_final=False
    )
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    model = Model(spec, "vp_eps")
    x_T = start_noise(32, 1)
    theirs, x = [], x_T
    for j, t in enumerate(sch.timesteps[:-1]):
        x = sch.step(model(x, x, sch.sigmas[j]), t, x).prev_sample
        theirs.append(x)
    ours = []
    pixel_run(
        "unipc",
        spec,
        sched,
        x_T,
        order=order,
        lower_order_final=False,
        callback=lambda i, xi, x0: ours.append(xi),
    )
    err = max(
        float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, theirs, strict=False)
    )
    check(record, err, F64)
    # the option matters before the last step (order 3 at step N - 2 instead of 2)
    if order == 3:
        ref = []
        pixel_run("unipc", spec, sched, x_T, order=3, callback=lambda i, xi, x0: ref.append(xi))
        assert float((ref[-2] - ours[-2]).abs().max()) > 1e-6


def _counting_denoiser() -> tuple[list[float], Callable[..., torch.Tensor]]:
    """The exact denoiser of a small field, recording the noise level of every call."""
    den = ss.GaussianDenoiser(field(1))
    calls: list[float] = []

    def counted(x, a, s):
        calls.append(float(s))
        return den(x, a, s)

    return calls, counted


def test_heun_calls_the_denoiser_2n_minus_1_times():
    """specsched's heun: 2N - 1 denoiser calls for N steps (the step to sigma = 0 is Euler)."""
    calls, counted = _counting_denoiser()
    for process, sched in (
        ("vp", ss.Schedule.from_timesteps(ss.spaced_timesteps(7, "trailing"))),
        ("ve", ss.Schedule.from_sigmas(karras_sigmas(7), process="ve")),
        ("flow", ss.Schedule.from_sigmas(np.linspace(1, 0, 8), process="flow")),
    ):
        calls.clear()
        alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
        ss.SAMPLERS["heun"](counted, start_noise(4, 1), alpha, s, process=process)
        assert len(calls) == 2 * 7 - 1, process
        assert 0.0 not in calls  # the clean level is never handed to the denoiser


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ddim", {}),
        ("ddpm", {}),
        ("euler", {}),
        ("heun", {}),
        ("dpmpp_2m", {}),
        ("dpmpp_2m_sde", {}),
        ("unipc", {}),
        ("unipc", {"order": 3}),
        ("ipndm", {}),
    ],
)
def test_calls_per_step_bounds_the_denoiser_calls(name, options):
    """``SamplerSpec.calls_per_step`` x N is at least the calls a real run makes (the calibrated
    model allocates one state row per call from it), and tight for the one-call samplers."""
    calls, counted = _counting_denoiser()
    sampler = ss.SAMPLERS[name]
    gen = torch.Generator().manual_seed(0)

    def noise(x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=gen, dtype=x.dtype)

    for steps in (1, 2, 7):
        calls.clear()
        sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(steps, "trailing"))
        alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
        sampler(counted, start_noise(4, 1), alpha, s, noise=noise, **options)
        assert len(calls) <= sampler.calls_per_step * steps
        if sampler.calls_per_step == 1:
            assert len(calls) == steps


@pytest.mark.parametrize("process", ["flow", "vp"])
def test_unipc_order3_from_pure_noise(process):
    """A schedule may start at pure noise (FlowMatchEulerDiscreteScheduler does, at t = 1).

    Order 1-2 UniPC handles it (the pure-noise point's divided difference vanishes); order 3 must
    give a finite answer too, or refuse with a SpecschedError as heun and ipndm do.
    """
    spec = field(1)
    if process == "flow":
        sched = ss.Schedule.from_sigmas(np.linspace(1, 0, 9), process="flow")
    else:
        ac = ss.Schedule.from_timesteps(ss.spaced_timesteps(8, "trailing")).alphas_cumprod
        sched = ss.Schedule.from_alphas_cumprod(np.r_[0.0, ac[1:]])
    assert sched.alpha[0] == 0
    assert np.all(np.isfinite(ss.response(spec, sched, "unipc", order=2).output_var))
    r = ss.response(spec, sched, "unipc", order=3)
    assert np.all(np.isfinite(r.output_var)) and np.all(np.isfinite(r.output_mean))
    # it is the limit of schedules that start ever closer to pure noise; the dropped divided
    # difference scales like 1 / r with r ~ lambda_0 / h, so the gap shrinks like 1 / |lambda_0|
    gaps = []
    for tiny in (1e-20, 1e-200):
        a, s_ = sched.alpha.copy(), sched.s.copy()
        a[0] = tiny * s_[0]
        near = ss.response(spec, ss.Schedule(a, s_, sched.process), "unipc", order=3)
        gaps.append(np.max(np.abs(near.output_var / r.output_var - 1)))
    assert gaps[1] < 0.2 * gaps[0] and gaps[1] < 5e-3


def test_sampler_registry_names_real_diffusers_schedulers():
    """The diffusers counterparts SAMPLERS names exist (these are the ones tested above)."""
    import diffusers

    for spec in ss.SAMPLERS.values():
        for part in filter(None, spec.diffusers.split("/")):
            cls = part.strip().split("(")[0]
            assert hasattr(diffusers, cls), (spec.name, cls)


# ---------------------------------------------------------------- one implementation serves both

SCHEDULES = {
    "vp": lambda: ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing")),
    "ve": lambda: ss.Schedule.from_sigmas(karras_sigmas(10), process="ve"),
    # shifted (shift 3) uniform times from t = 0.999: UniPC of order 3 cannot start at t = 1
    # (test_unipc_order3_from_pure_noise); the flow schedulers' tests start there
    "flow": lambda: ss.Schedule.from_sigmas(
        3 * np.linspace(0.999, 0, 11) / (1 + 2 * np.linspace(0.999, 0, 11)), process="flow"
    ),
}
DETERMINISTIC = [
    ("ddim", {}, ("vp", "ve", "flow")),
    ("euler", {}, ("vp", "ve")),
    ("flow_euler", {}, ("flow",)),
    ("heun", {}, ("vp", "ve", "flow")),
    ("dpmpp_2m", {}, ("vp", "ve", "flow")),
    ("unipc", {"order": 2}, ("vp", "ve", "flow")),
    ("unipc", {"order": 3}, ("vp", "ve", "flow")),
    ("unipc", {"order": 3, "corrector": False}, ("vp",)),
    ("ipndm", {}, ("vp", "ve")),
    ("ipndm", {"max_order": 2}, ("ve",)),
]
PIXEL_CASES = [(n, o, p) for n, o, ps in DETERMINISTIC for p in ps]


@pytest.mark.parametrize(
    "name,options,process",
    PIXEL_CASES,
    ids=[f"{n}{''.join(f'-{k}{v}' for k, v in o.items())}-{p}" for n, o, p in PIXEL_CASES],
)
def test_pixel_run_equals_closed_form(record, name, options, process):
    """The same sampler function on pixels (GaussianDenoiser) and on coefficient states agree."""
    spec = field(3)
    sched = SCHEDULES[process]()
    start = float(start_std(process, sched.s[0]))
    x_T = start_noise(32, 3)
    out = pixel_run(name, spec, sched, x_T * start, **options)
    check(record, closed_form_error(out, x_T, start, spec, sched, name, **options), F64)


# ---------------------------------------------------------------- stochastic samplers: moments


def expected_moments(r, start: float, process: str, s0: float):
    """Closed-form mean and variance when the start state has std ``start`` (not the process's)."""
    c = float(start_std(process, s0))
    return r.output_mean, r.output_var + r.transfer**2 * (start**2 - c**2)


def check_moments(record, out, spec, mean, var, n):
    """Per-mode variance within mode_tolerance (5 SE), mean within 5 SE, of n samples."""
    y = to_modes(out.numpy(), spec)
    emp_var = np.mean(np.abs(y - mean) ** 2, axis=0)
    worst_var = float(np.max(np.abs(emp_var / var - 1) / mode_tolerance(spec, n)))
    worst_mean = float(np.max(np.abs(y.mean(0) - mean) / np.sqrt(var / n)))
    record("var_err_in_tolerances", worst_var)
    record("mean_err_in_se", worst_mean)
    assert worst_var < 1, f"worst mode variance off by {worst_var:.2f} tolerances"
    assert worst_mean < 5, f"worst mode mean off by {worst_mean:.2f} standard errors"
    # the mean is really carried (non-zero data mean): the generated DC mean is far from zero
    assert np.abs(mean).max() > 20 * np.sqrt(var.max() / n)


@pytest.mark.slow
@pytest.mark.parametrize(
    "channels,spacing,steps", [(1, "leading", 10), (3, "trailing", 5), (1, "linspace", 8)]
)
def test_euler_ancestral_moments(record, channels, spacing, steps):
    """EulerAncestralDiscreteScheduler == euler_ancestral (DDPM) in per-mode moments."""
    spec = field(channels)
    sch = vp_scheduler(EulerAncestralDiscreteScheduler, steps, spacing)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    g = torch.Generator().manual_seed(11)
    x_T = torch.randn(N_MC, channels, 8, 8, dtype=torch.float64, generator=g)
    out = run(sch, Model(spec, "vp_eps"), x_T * sch.init_noise_sigma, generator=g)
    start = float(sch.init_noise_sigma) * sched.alpha[0]
    r = ss.response(spec, sched, "euler_ancestral")
    mean, var = expected_moments(r, start, "vp", sched.s[0])
    check_moments(record, out, spec, mean, var, N_MC)


@pytest.mark.slow
@pytest.mark.parametrize(
    "channels,spacing,steps,karras",
    [(1, "trailing", 10, False), (3, "linspace", 5, False), (1, "leading", 8, True)],
)
def test_dpmpp_2m_sde_moments(record, channels, spacing, steps, karras):
    """DPMSolverMultistepScheduler(sde-dpmsolver++) == dpmpp_2m_sde in per-mode moments."""
    spec = field(channels)
    sch = vp_scheduler(
        DPMSolverMultistepScheduler,
        steps,
        spacing,
        algorithm_type="sde-dpmsolver++",
        use_karras_sigmas=karras,
    )
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="vp")
    g = torch.Generator().manual_seed(12)
    x_T = torch.randn(N_MC, channels, 8, 8, dtype=torch.float64, generator=g)
    out = run(sch, Model(spec, "vp_eps"), x_T, generator=g)
    r = ss.response(spec, sched, "dpmpp_2m_sde")
    check_moments(record, out, spec, r.output_mean, r.output_var, N_MC)


@pytest.mark.slow
def test_dpmpp_2m_sde_flow_moments(record):
    """DPMSolverMultistepScheduler(sde-dpmsolver++, flow sigmas) == dpmpp_2m_sde on flow levels."""
    spec = field(3)
    sch = flow_scheduler(DPMSolverMultistepScheduler, 6, algorithm_type="sde-dpmsolver++")
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="flow")
    g = torch.Generator().manual_seed(16)
    x_T = torch.randn(N_MC, 3, 8, 8, dtype=torch.float64, generator=g)
    out = run(sch, Model(spec, "flow_v"), x_T, generator=g)
    r = ss.response(spec, sched, "dpmpp_2m_sde")
    check_moments(record, out, spec, r.output_mean, r.output_var, N_MC)


@pytest.mark.slow
def test_edm_dpmpp_2m_sde_moments(record):
    """EDMDPMSolverMultistepScheduler(sde-dpmsolver++) == dpmpp_2m_sde (VE), float64 throughout.

    It starts from N(0, (sigma_max^2 + 1) I) rather than the VE N(0, sigma_max^2 I): the expected
    variance adds the transfer function times the difference.
    """
    spec = field(1)
    sch = EDMDPMSolverMultistepScheduler(
        sigma_min=VE_SIGMAS[1], sigma_max=VE_SIGMAS[0], algorithm_type="sde-dpmsolver++"
    )
    sch.set_timesteps(8)
    sched = ss.Schedule.from_sigmas(float64_sigmas(sch), process="ve")
    g = torch.Generator().manual_seed(17)
    x_T = torch.randn(N_MC, 1, 8, 8, dtype=torch.float64, generator=g)
    out = run(sch, Model(spec, "edm"), x_T * sch.init_noise_sigma, generator=g)
    r = ss.response(spec, sched, "dpmpp_2m_sde")
    mean, var = expected_moments(r, float(sch.init_noise_sigma), "ve", sched.s[0])
    check_moments(record, out, spec, mean, var, N_MC)


@pytest.mark.slow
def test_ddpm_scheduler_linspace_moments(record):
    """DDPMScheduler (fixed_small) with linspace spacing == ddpm in per-mode moments."""
    spec = field(1)
    sch = DDPMScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        clip_sample=False,
        timestep_spacing="linspace",
        variance_type="fixed_small",
    )
    sch.set_timesteps(7)
    sch.alphas_cumprod = torch.from_numpy(ABAR.copy())
    sch.one = torch.tensor(1.0, dtype=torch.float64)
    sched = ss.Schedule.from_timesteps(sch.timesteps.numpy())
    den = ss.GaussianDenoiser(spec)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(N_MC, 1, 8, 8, dtype=torch.float64, generator=g)
    for t in sch.timesteps:
        abar = sch.alphas_cumprod[int(t)]
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x = sch.step((x - a * den(x, a, s)) / s, t, x, generator=g).prev_sample
    r = ss.response(spec, sched, "ddpm")
    check_moments(record, x, spec, r.output_mean, r.output_var, N_MC)


@pytest.mark.slow
def test_k_diffusion_ve_ancestral_moments(record):
    """k-diffusion's sample_euler_ancestral on EDM's VE sigmas == euler_ancestral (VE)."""
    ks = need_k_sampling()
    spec = field(1)
    sigmas = torch.from_numpy(karras_sigmas(8))
    sched = ss.Schedule.from_sigmas(sigmas.numpy(), process="ve")
    g = torch.Generator().manual_seed(14)
    x_T = torch.randn(N_MC, 1, 8, 8, dtype=torch.float64, generator=g)

    def noise(sigma, sigma_next):
        return torch.randn(x_T.shape, dtype=torch.float64, generator=g)

    out = ks.sample_euler_ancestral(
        ve_model(spec), x_T * sigmas[0], sigmas, disable=True, noise_sampler=noise
    )
    r = ss.response(spec, sched, "euler_ancestral")
    check_moments(record, out, spec, r.output_mean, r.output_var, N_MC)


@pytest.mark.slow
def test_k_diffusion_ve_dpmpp_2m_sde_moments(record):
    """k-diffusion's sample_dpmpp_2m_sde (midpoint, eta = 1) on VE sigmas == dpmpp_2m_sde (VE)."""
    ks = need_k_sampling()
    spec = field(1)
    sigmas = torch.from_numpy(karras_sigmas(8))
    sched = ss.Schedule.from_sigmas(sigmas.numpy(), process="ve")
    g = torch.Generator().manual_seed(15)
    x_T = torch.randn(N_MC, 1, 8, 8, dtype=torch.float64, generator=g)

    def noise(sigma, sigma_next):
        return torch.randn(x_T.shape, dtype=torch.float64, generator=g)

    out = ks.sample_dpmpp_2m_sde(
        ve_model(spec), x_T * sigmas[0], sigmas, disable=True, noise_sampler=noise
    )
    r = ss.response(spec, sched, "dpmpp_2m_sde")
    check_moments(record, out, spec, r.output_mean, r.output_var, N_MC)


@pytest.mark.parametrize("name", list(ss.SAMPLERS))
def test_declared_noise_draws_bound_the_draws(name):
    """``SamplerSpec.noise_draws`` (the rows the closed-form response allocates) bounds the
    ``noise()`` calls of a run, and a stochastic sampler draws on every step but the last."""
    sampler = ss.SAMPLERS[name]
    den = ss.GaussianDenoiser(field(1))
    process = sampler.processes[0]
    if process == "flow":
        sched = ss.Schedule.from_sigmas(np.linspace(0.95, 0, 7), process="flow")
    else:
        sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(6, "trailing"))
    alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
    g = torch.Generator().manual_seed(0)
    for options in [{}, {"eta": 0.5}] if "eta" in sampler.options else [{}]:
        draws = []

        def noise(like, draws=draws):
            draws.append(1)
            return torch.randn(like.shape, generator=g, dtype=like.dtype)

        sampler(den, start_noise(2, 1), alpha, s, noise=noise, process=process, **options)
        declared = sampler.noise_draws(6, **options)
        assert declared in (0, 6), (name, options)  # none, or one per step
        assert len(draws) == (5 if declared else 0), (name, options)  # the clean step draws none
