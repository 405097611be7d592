"""Heuristic schedule families against independent implementations.

diffusers' schedulers are the oracle where they implement a family (spacings, Karras, log-SNR
uniform, SD3 shift, AYS); the other families are checked against their defining formulas, written
here from the papers. Schedulers that compute from alphas_cumprod get a float64 copy of the same
training table, so that the comparison is limited only by their final float32 cast (rtol 1e-6).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.special import expit

from specsched.errors import SpecschedError
from specsched.heuristics import (
    HEURISTICS,
    all_heuristics,
    applicable,
    distinct_timesteps,
    heuristic_schedule,
)
from specsched.levels import LevelRange, TrainSchedule

HAS_DIFFUSERS = importlib.util.find_spec("diffusers") is not None
needs_diffusers = pytest.mark.skipif(not HAS_DIFFUSERS, reason="diffusers not installed")
# diffusers calls np.array(tensor) on torch tensors, which numpy 2 flags; not ours to fix
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

T = 1000
LR_DISCRETE = LevelRange.discrete("linear", T)
SIG_LO, SIG_HI = LR_DISCRETE.sigma_range
# the continuous VP model with the discrete model's range: the real-valued levels before rounding
LR_VP_SAME = LevelRange.continuous("vp", sigma_min=SIG_LO, sigma_max=SIG_HI)
RANGES = {
    "discrete_vp": LR_DISCRETE,
    "continuous_vp": LevelRange.continuous("vp"),
    "ve": LevelRange.continuous("ve"),
    "flow": LevelRange.continuous("flow"),
    "flow_below_1": LevelRange.continuous("flow", sigma_min=0.01, sigma_max=0.98),
}


def _float64_table(scheduler):
    scheduler.alphas_cumprod = torch.from_numpy(TrainSchedule("linear", T).alphas_cumprod.copy())
    return scheduler


# --------------------------------------------------------------------------- timestep spacings
@needs_diffusers
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_spacings_equal_ddim_scheduler(spacing, steps):
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", timestep_spacing=spacing)
    sch.set_timesteps(steps)
    ours = heuristic_schedule(spacing, steps, LR_DISCRETE)
    np.testing.assert_array_equal(ours.timesteps, sch.timesteps.numpy())
    assert ours.name == spacing


@needs_diffusers
def test_leading_offset_equals_steps_offset():
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(num_train_timesteps=T, timestep_spacing="leading", steps_offset=1)
    sch.set_timesteps(10)
    ours = heuristic_schedule("leading", 10, LR_DISCRETE, offset=1)
    np.testing.assert_array_equal(ours.timesteps, sch.timesteps.numpy())
    assert ours.name == "leading(offset=1)"


@needs_diffusers
def test_trailing_does_not_inherit_diffusers_extra_timestep():
    """diffusers' float arange gives 62 timesteps ending in -1 at N = 61; the first 61 agree."""
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(num_train_timesteps=T, timestep_spacing="trailing")
    sch.set_timesteps(61)
    theirs = sch.timesteps.numpy()
    ours = heuristic_schedule("trailing", 61, LR_DISCRETE)
    assert theirs.size == 62 and theirs[-1] == -1
    assert ours.steps == 61
    np.testing.assert_array_equal(ours.timesteps, theirs[:61])


def _ddim_official_quad(steps: int) -> np.ndarray:
    """ermongroup/ddim runners/diffusion.py, skip_type == "quad", iterated in reverse."""
    seq = np.linspace(0, np.sqrt(T * 0.8), steps) ** 2
    return np.array([int(s) for s in list(seq)])[::-1]


@pytest.mark.parametrize("steps", [2, 5, 10, 20, 29])
def test_quadratic_equals_ddim_official_code(steps):
    ours = heuristic_schedule("quadratic", steps, LR_DISCRETE)
    np.testing.assert_array_equal(ours.timesteps, _ddim_official_quad(steps))
    assert ours.timesteps[0] in (799, 800)


def test_quadratic_many_steps_repairs_only_the_repeated_bottom():
    official = _ddim_official_quad(50)
    assert np.any(np.diff(official) == 0)  # the official code repeats 0 at 50 steps
    ours = heuristic_schedule("quadratic", 50, LR_DISCRETE).timesteps
    assert np.all(np.diff(ours) < 0) and ours[-1] == 0
    changed = np.flatnonzero(ours != official)
    assert changed.size > 0 and changed.min() >= 45  # only the last few levels move
    assert np.max(np.abs(ours - official)) <= 1


# --------------------------------------------------------------------------- Karras, log-SNR
@needs_diffusers
@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_karras_equals_euler_karras_sigmas_and_timesteps(steps):
    """EulerDiscreteScheduler(use_karras_sigmas) takes sigma_min/max at t = 0 and t = T-1 (its
    default 'linspace' spacing) and maps sigmas to real timesteps by log-sigma interpolation."""
    from diffusers import EulerDiscreteScheduler

    sch = _float64_table(EulerDiscreteScheduler(beta_schedule="linear", use_karras_sigmas=True))
    sch.set_timesteps(steps)
    real = heuristic_schedule("karras", steps, LR_VP_SAME)
    np.testing.assert_allclose(real.sigmas, sch.sigmas.numpy(), rtol=1e-6)  # float32 cast
    # real-valued timesteps: float32 of values up to 999
    t_real = LR_DISCRETE.train.timestep_of_log_snr(real.log_snr[:-1])
    np.testing.assert_allclose(t_real, sch.timesteps.numpy(), atol=1e-3)
    # rounded: equal wherever rounding gives distinct values (all of these cases), else within 1
    ours = heuristic_schedule("karras", steps, LR_DISCRETE).timesteps
    theirs = np.round(sch.timesteps.numpy()).astype(np.int64)
    assert np.max(np.abs(ours - theirs)) <= 1
    if np.all(np.diff(theirs) < 0):
        np.testing.assert_array_equal(ours, theirs)


@needs_diffusers
@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_karras_discrete_equals_dpmsolver_rounded_timesteps(steps):
    from diffusers import DPMSolverMultistepScheduler

    sch = DPMSolverMultistepScheduler(beta_schedule="linear", use_karras_sigmas=True)
    _float64_table(sch).set_timesteps(steps)
    ours = heuristic_schedule("karras", steps, LR_DISCRETE)
    np.testing.assert_array_equal(ours.timesteps, sch.timesteps.numpy())


def test_karras_rho_and_explicit_ends():
    lr = LevelRange.continuous("ve")
    s = heuristic_schedule("karras", 6, lr, rho=1, sigma_min=1.0, sigma_max=11.0)
    np.testing.assert_allclose(s.sigmas, [11, 9, 7, 5, 3, 1, 0], rtol=1e-13)  # rho=1: uniform
    assert s.name == "karras(rho=1, sigma_min=1, sigma_max=11)"
    assert heuristic_schedule("karras", 6, lr, rho=7).name == "karras"


def _mapped_with_collisions(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Ours equal diffusers' rounded timesteps, except that diffusers keeps repeats and we move
    the levels next to a repeat by one timestep."""
    assert np.all(np.diff(ours) < 0)
    assert np.max(np.abs(ours - theirs)) <= 1
    if np.all(np.diff(theirs) < 0):
        np.testing.assert_array_equal(ours, theirs)


@needs_diffusers
@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_logsnr_equals_dpmsolver_lu_lambdas(steps):
    """use_lu_lambdas spaces log sigma uniformly between t = T-1 and t = 0 (its 'lambdas' are
    log sigmas), which is uniform log-SNR; timesteps are rounded and may repeat (N = 50)."""
    from diffusers import DPMSolverMultistepScheduler

    sch = DPMSolverMultistepScheduler(beta_schedule="linear", use_lu_lambdas=True)
    _float64_table(sch).set_timesteps(steps)
    real = heuristic_schedule("logsnr", steps, LR_VP_SAME)
    np.testing.assert_allclose(real.sigmas, sch.sigmas.numpy(), rtol=1e-6)
    ours = heuristic_schedule("logsnr", steps, LR_DISCRETE).timesteps
    _mapped_with_collisions(ours, sch.timesteps.numpy())


@pytest.mark.parametrize("steps", [1, 5, 10, 20])
def test_logsnr_equals_k_diffusion_exponential(steps):
    """k-diffusion get_sigmas_exponential: linspace(log sigma_max, log sigma_min, n).exp()."""
    lr = LevelRange.continuous("ve", sigma_min=0.03, sigma_max=50.0)
    expected = torch.linspace(math.log(50.0), math.log(0.03), steps, dtype=torch.float64).exp()
    ours = heuristic_schedule("logsnr", steps, lr)
    np.testing.assert_allclose(ours.sigmas[:-1], expected.numpy(), rtol=1e-12)


def test_logsnr_flow_from_t_one():
    lr = LevelRange.continuous("flow", sigma_min=0.002)
    s = heuristic_schedule("logsnr", 6, lr)
    assert s.sigmas[0] == 1.0
    lam = s.log_snr[1:-1]
    lam_hi = 2 * math.log(0.998 / 0.002)
    np.testing.assert_allclose(lam, np.linspace(-lam_hi, lam_hi, 5), atol=1e-9)
    np.testing.assert_allclose(s.sigmas[1], 0.998, rtol=1e-12)  # the mirrored end 1 - t_min


def test_logsnr_flow_below_one_is_plain_uniform():
    lr = RANGES["flow_below_1"]
    s = heuristic_schedule("logsnr", 7, lr)
    np.testing.assert_allclose(s.log_snr[:-1], np.linspace(lr.lam_lo, lr.lam_hi, 7), atol=1e-12)


# --------------------------------------------------------------------------- flow shift
@needs_diffusers
@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("steps", [5, 10, 20, 50])
def test_flow_shift_equals_flow_match_euler(shift, steps):
    """diffusers' grid is linspace(sigma_max, sigma_min, N) with its own sigma_min = s(1/T),
    already shifted; with that t_min the schedules agree to float32."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sch = FlowMatchEulerDiscreteScheduler(shift=shift)
    sch.set_timesteps(steps)
    lr = LevelRange.continuous("flow", sigma_min=sch.sigma_min, sigma_max=sch.sigma_max)
    ours = heuristic_schedule("flow_shift", steps, lr, shift=shift)
    np.testing.assert_allclose(ours.sigmas, sch.sigmas.numpy(), rtol=1e-6, atol=1e-7)
    assert ours.name == ("flow_shift" if shift == 3.0 else "flow_shift(shift=1)")


def test_flow_shift_stays_inside_a_range_below_one():
    lr = RANGES["flow_below_1"]
    for shift in (0.3, 1.0, 3.0):
        t = heuristic_schedule("flow_shift", 8, lr, shift=shift).sigmas[:-1]
        assert t.max() <= 0.98 + 1e-12 and t.min() >= 0.01 - 1e-12
        u = t / (shift - (shift - 1) * t)  # undo the shift: uniform
        np.testing.assert_allclose(np.diff(u), np.diff(u)[0], rtol=1e-9)
    np.testing.assert_allclose(heuristic_schedule("flow_shift", 8, lr, shift=3.0).sigmas[0], 0.98)


# --------------------------------------------------------------------------- AYS
@needs_diffusers
def test_ays_discrete_is_the_published_timesteps():
    from diffusers.schedulers.scheduling_utils import AysSchedules

    s = heuristic_schedule("ays", 10, LR_DISCRETE)
    np.testing.assert_array_equal(s.timesteps, AysSchedules["StableDiffusionTimesteps"])
    sx = heuristic_schedule("ays", 10, LR_DISCRETE, table="StableDiffusionXLTimesteps")
    np.testing.assert_array_equal(sx.timesteps, AysSchedules["StableDiffusionXLTimesteps"])
    assert (s.name, sx.name) == ("ays", "ays(table=StableDiffusionXLTimesteps)")


@needs_diffusers
def test_ays_sigmas_and_clipping():
    from diffusers.schedulers.scheduling_utils import AysSchedules

    video = np.array(AysSchedules["StableDiffusionVideoSigmas"])
    wide = LevelRange.continuous("ve", sigma_min=0.002, sigma_max=700.0)
    np.testing.assert_allclose(heuristic_schedule("ays", 10, wide).sigmas, video, rtol=1e-12)
    # the default EDM range tops out at 80: 700 is clipped to it
    clipped = heuristic_schedule("ays", 10, LevelRange.continuous("ve")).sigmas
    np.testing.assert_allclose(clipped, np.minimum(video, 80.0), rtol=1e-12)
    sd = np.array(AysSchedules["StableDiffusionSigmas"])
    vp = heuristic_schedule("ays", 10, LevelRange.continuous("vp"))
    np.testing.assert_allclose(vp.sigmas, sd, rtol=1e-12)
    # interpolated levels above 80 would be clipped onto one another: a clear error
    with pytest.raises(SpecschedError, match="distinct"):
        heuristic_schedule("ays", 20, LevelRange.continuous("ve"))


@needs_diffusers
def test_ays_loglinear_interpolation():
    """At 19 steps the normalised index of the 10-step list lands on every second level; the
    levels between are geometric means (log sigma linear in the index)."""
    from diffusers.schedulers.scheduling_utils import AysSchedules

    video = np.array(AysSchedules["StableDiffusionVideoSigmas"][:-1])
    wide = LevelRange.continuous("ve", sigma_min=0.002, sigma_max=700.0)
    sig = heuristic_schedule("ays", 19, wide).sigmas[:-1]
    np.testing.assert_allclose(sig[::2], video, rtol=1e-12)
    np.testing.assert_allclose(sig[1::2], np.sqrt(video[:-1] * video[1:]), rtol=1e-12)
    # discrete: the knots are the published timesteps again, the levels between are rounded
    ts = heuristic_schedule("ays", 19, LR_DISCRETE).timesteps
    np.testing.assert_array_equal(ts[::2], AysSchedules["StableDiffusionTimesteps"])
    assert np.all(np.diff(ts) < 0)


@needs_diffusers
def test_ays_tables_are_diffusers_lists():
    """The tables kept as data in specsched are exactly diffusers' ``AysSchedules``, key for key."""
    from typing import get_args

    from diffusers.schedulers.scheduling_utils import AysSchedules

    from specsched.heuristics import AYS_TABLES, AysTable

    assert set(AYS_TABLES) == set(AysSchedules) == set(get_args(AysTable))
    for key, values in AysSchedules.items():
        assert list(AYS_TABLES[key]) == values, key


def test_ays_works_without_diffusers(monkeypatch):
    """The lists are data: hiding diffusers changes nothing."""
    before = heuristic_schedule("ays", 10, LR_DISCRETE).timesteps
    for mod in [m for m in sys.modules if m == "diffusers" or m.startswith("diffusers.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises
    np.testing.assert_array_equal(heuristic_schedule("ays", 10, LR_DISCRETE).timesteps, before)
    names = [s.name for s in all_heuristics(10, LR_DISCRETE)]
    assert "ays" in names and "karras" in names


# --------------------------------------------------------------------------- formula families
@pytest.mark.parametrize("lr", [LevelRange.continuous("ve"), LevelRange.continuous("vp")])
@pytest.mark.parametrize("steps", [2, 5, 10, 20])
def test_kl_optimal_is_uniform_in_arctan_sigma(lr, steps):
    sig = heuristic_schedule("kl_optimal", steps, lr).sigmas[:-1]
    lo, hi = lr.sigma_range
    np.testing.assert_allclose(
        np.arctan(sig), np.linspace(np.arctan(hi), np.arctan(lo), steps), atol=1e-14
    )
    np.testing.assert_allclose(sig[[0, -1]], [hi, lo], rtol=1e-12)


def _paper_cosine_shifted(t, logsnr_min, logsnr_max, image_d, noise_d=64):
    """simple diffusion (Hoogeboom et al. 2023), logsnr_schedule_cosine(_shifted)."""
    t_min = math.atan(math.exp(-0.5 * logsnr_max))
    t_max = math.atan(math.exp(-0.5 * logsnr_min))
    return -2 * np.log(np.tan(t_min + t * (t_max - t_min))) + 2 * np.log(noise_d / image_d)


@pytest.mark.parametrize("resolution", [32, 64, 256, 1024])
@pytest.mark.parametrize("lr", [LevelRange.continuous("ve"), LevelRange.continuous("vp")])
def test_shifted_cosine_equals_simple_diffusion_code(lr, resolution):
    shift = 2 * math.log(64 / resolution)
    steps = 10
    ours = heuristic_schedule("shifted_cosine", steps, lr, resolution=resolution)
    paper = _paper_cosine_shifted(
        np.linspace(1, 0, steps), lr.lam_lo - shift, lr.lam_hi - shift, resolution
    )
    np.testing.assert_allclose(ours.log_snr[:-1], paper, atol=1e-9)
    np.testing.assert_allclose(ours.log_snr[[0, -2]], [lr.lam_lo, lr.lam_hi], atol=1e-9)
    assert ours.name == f"shifted_cosine(resolution={resolution})"


@pytest.mark.parametrize("resolution", [16, 128, 512])
def test_shifted_cosine_shift_moves_every_log_snr(resolution):
    """The resolution moves each level by exactly 2 log(64/res) relative to the 64-pixel schedule
    of the range moved the other way (no level is clipped: both span their whole range)."""
    shift = 2 * math.log(64 / resolution)
    lr = LevelRange.continuous("ve", sigma_min=0.01, sigma_max=50.0)
    moved = LevelRange("ve", lr.lam_lo - shift, lr.lam_hi - shift)
    ours = heuristic_schedule("shifted_cosine", 12, lr, resolution=resolution).log_snr[:-1]
    base = heuristic_schedule("shifted_cosine", 12, moved, resolution=64).log_snr[:-1]
    np.testing.assert_allclose(ours - base, shift, atol=1e-9)
    # and the base parameter is the same shift seen from the other side
    same = heuristic_schedule(
        "shifted_cosine", 12, lr, resolution=64 * 4, base=64 * 4 * 64 // resolution
    )
    np.testing.assert_allclose(same.log_snr[:-1], ours, atol=1e-9)


def _chen_sigmoid_abar(t, start=-3.0, end=3.0, tau=1.0):
    """Chen 2023, Algorithm 1 (without its clip)."""
    v_start, v_end = expit(start / tau), expit(end / tau)
    return (v_end - expit((t * (end - start) + start) / tau)) / (v_end - v_start)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "sigmoid"),
        ({"start": 0.0, "end": 3.0, "tau": 0.3}, "sigmoid(start=0, tau=0.3)"),
        ({"tau": 1.1}, "sigmoid(tau=1.1)"),
    ],
)
@pytest.mark.parametrize("lr", [LevelRange.continuous("vp"), LevelRange.continuous("ve")])
def test_sigmoid_abar_at_uniform_t(lr, params, name):
    s = heuristic_schedule("sigmoid", 9, lr, **params)
    abar = s.alphas_cumprod[:-1]
    # the t of each level, found by root-finding on the paper's formula
    t = np.array(
        [brentq(lambda x, a=a: _chen_sigmoid_abar(x, **params) - a, 0, 1, xtol=1e-15) for a in abar]
    )
    np.testing.assert_allclose(np.diff(t), np.diff(t)[0], rtol=1e-6)
    np.testing.assert_allclose(s.log_snr[[0, -2]], [lr.lam_lo, lr.lam_hi], atol=1e-8)
    assert s.name == name


# --------------------------------------------------------------------------- discrete mapping
@pytest.mark.parametrize("name", ["karras", "logsnr", "kl_optimal", "shifted_cosine", "sigmoid"])
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_discrete_is_the_continuous_schedule_rounded(name, steps):
    cont = heuristic_schedule(name, steps, LR_VP_SAME, resolution=256)
    t_real = LR_DISCRETE.train.timestep_of_log_snr(cont.log_snr[:-1])
    ours = heuristic_schedule(name, steps, LR_DISCRETE, resolution=256).timesteps
    _mapped_with_collisions(ours, np.round(t_real).astype(np.int64))


@pytest.mark.parametrize(
    ("rounded", "T", "expected"),
    [
        ([5, 5, 5], 10, [5, 4, 3]),  # the cleaner one moves down, repeatedly
        ([9, 9, 5], 10, [9, 8, 5]),
        ([8, 3, 1, 1, 0], 10, [8, 3, 2, 1, 0]),  # no room below 0: the noisier one moves up
        ([3, 2, 1, 1, 0], 10, [4, 3, 2, 1, 0]),
        ([9, 9, 9, 0, 0], 5, [4, 3, 2, 1, 0]),
        ([7, 4, 2], 10, [7, 4, 2]),  # already distinct: untouched
    ],
)
def test_distinct_timesteps(rounded, T, expected):
    np.testing.assert_array_equal(distinct_timesteps(np.array(rounded), T), expected)


def test_distinct_timesteps_impossible():
    with pytest.raises(SpecschedError, match="at most 3 steps"):
        distinct_timesteps(np.array([2, 1, 0, 0]), 3)


# --------------------------------------------------------------------------- every family
def _expected_names(range_name: str, steps: int) -> set[str]:
    lr = RANGES[range_name]
    names = set(applicable(lr))
    if "flow_shift" in names:
        names.add("flow_shift(shift=1)")
    if "shifted_cosine" in names:
        names = (names - {"shifted_cosine"}) | {"shifted_cosine(resolution=256)"}
    if not HAS_DIFFUSERS or (range_name == "ve" and steps == 20):
        names.discard("ays")  # the default EDM range clips interpolated 700s onto 80
    return names


@pytest.mark.parametrize("steps", [5, 10, 20])
@pytest.mark.parametrize("range_name", list(RANGES))
def test_every_family_is_a_valid_schedule_of_the_range(range_name, steps):
    lr = RANGES[range_name]
    scheds = all_heuristics(steps, lr, resolution=256)
    names = [s.name for s in scheds]
    assert set(names) == _expected_names(range_name, steps)
    assert len(set(names)) == len(names)
    for s in scheds:
        assert s.steps == steps, s.name
        assert s.process == lr.process, s.name
        assert np.all(np.diff(s.log_snr) > 0), s.name  # strictly less noise at every step
        assert s.s[-1] == 0 and s.alpha[-1] > 0
        lam = s.log_snr[:-1]
        assert np.all(lam >= lr.lam_lo - 1e-9) and np.all(lam <= lr.lam_hi + 1e-9), s.name
        if lr.train is not None:
            assert s.timesteps is not None and s.timesteps.dtype == np.int64
            assert s.timesteps.min() >= 0 and s.timesteps.max() <= T - 1
            np.testing.assert_allclose(s.alphas_cumprod[:-1], lr.train.alphas_cumprod[s.timesteps])
        json.dumps(s.to_dict())  # names and meta are JSON-ready
    for i, a in enumerate(scheds):
        for b in scheds[:i]:
            same = a.log_snr.shape == b.log_snr.shape and np.allclose(
                a.log_snr[:-1], b.log_snr[:-1], rtol=0, atol=1e-12
            )
            assert not same, (a.name, b.name)


def test_all_heuristics_drops_duplicates_keeping_the_first():
    # one step: leading and linspace are both [0]; karras, logsnr, kl_optimal ... all [999]
    scheds = all_heuristics(1, LR_DISCRETE)
    assert [s.name for s in scheds] == ["leading", "trailing"]
    assert [s.timesteps.tolist() for s in scheds] == [[0], [999]]
    ve = all_heuristics(1, LevelRange.continuous("ve", sigma_min=0.01, sigma_max=50.0))
    assert ve[0].name == "karras" and "logsnr" not in [s.name for s in ve]


def test_registry_is_consistent():
    for name, h in HEURISTICS.items():
        assert h.name == name and h.description and set(h.processes) <= {"vp", "ve", "flow"}
    assert HEURISTICS["karras"].defaults == {"rho": 7.0, "sigma_min": None, "sigma_max": None}
    assert HEURISTICS["flow_shift"].defaults == {"shift": 3.0}
    # logsnr is uniform in log sigma as its description says: a constant ratio of sigmas
    sig = heuristic_schedule("logsnr", 6, LevelRange.continuous("ve", sigma_min=0.01)).sigmas[:-1]
    np.testing.assert_allclose(sig[1:] / sig[:-1], sig[1] / sig[0], rtol=1e-12)
    assert applicable(LevelRange.continuous("flow")) == ["logsnr", "flow_shift"]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: heuristic_schedule("cosine_v2", 10, LR_DISCRETE), "unknown heuristic"),
        (lambda: heuristic_schedule("karras", 10, RANGES["flow"]), "does not apply to flow"),
        (lambda: heuristic_schedule("flow_shift", 10, RANGES["ve"]), "does not apply to ve"),
        (lambda: heuristic_schedule("trailing", 10, RANGES["continuous_vp"]), "discrete-time"),
        (lambda: heuristic_schedule("shifted_cosine", 10, RANGES["ve"]), "resolution"),
        (lambda: heuristic_schedule("karras", 0, RANGES["ve"]), "positive integer"),
        (lambda: heuristic_schedule("karras", -3, RANGES["ve"]), "positive integer"),
        (lambda: heuristic_schedule("karras", 2.5, RANGES["ve"]), "positive integer"),
        (lambda: heuristic_schedule("karras", True, RANGES["ve"]), "positive integer"),
        (lambda: heuristic_schedule("karras", 10, RANGES["ve"], beta=2), "no parameter beta"),
        (lambda: heuristic_schedule("karras", 10, RANGES["ve"], sigma_max=500.0), "inside"),
        (lambda: heuristic_schedule("karras", 10, RANGES["ve"], rho=0), "rho"),
        (lambda: heuristic_schedule("sigmoid", 10, RANGES["ve"], tau=-1), "tau"),
        (lambda: heuristic_schedule("leading", 10, LR_DISCRETE, offset=-1), "offset"),
        (lambda: heuristic_schedule("ays", 10, RANGES["ve"], table="Nope"), "unknown AYS"),
        (lambda: heuristic_schedule("ays", 5, LevelRange.discrete("linear", 500)), "1000-step"),
        (lambda: all_heuristics(0, LR_DISCRETE), "positive integer"),
    ],
)
def test_bad_input_raises_one_line(call, match):
    with pytest.raises(SpecschedError, match=match) as exc:
        call()
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", applicable(LR_DISCRETE))
def test_too_many_steps_for_a_discrete_model(name):
    with pytest.raises(SpecschedError, match="at most 1000"):
        heuristic_schedule(name, T + 1, LR_DISCRETE, resolution=256)
    small = LevelRange.discrete("linear", 20)
    if name != "ays":
        assert heuristic_schedule(name, 20, small, resolution=256).timesteps.tolist() == list(
            range(19, -1, -1)
        )
