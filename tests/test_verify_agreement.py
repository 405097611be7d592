"""benchmarks/verify_agreement.py: pixel FD and the sampled objective scored on the same samples.

On the exact mixture denoiser (the benchmark's quick set-up), a 3-step schedule is far worse than a
30-step one by any measure: both scores must say so, from one paired sampling, and the sampled
objective must be what `spectral_objective` gives for samples drawn again from the same noise.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from specsched import Schedule, generate, spaced_timesteps
from specsched.evaluate import spectral_objective

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location(
    "verify_agreement", ROOT / "benchmarks" / "verify_agreement.py"
)
va = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(va)


def test_fd_and_the_sampled_objective_agree_on_a_clear_case():
    setup = va.rd.SETUPS["gmm"](dict(va.rd.PRESETS["quick"]))
    few = Schedule.from_timesteps(spaced_timesteps(3, "trailing"), name="3 steps")
    many = Schedule.from_timesteps(spaced_timesteps(30, "trailing"), name="30 steps")
    res = va.agreement(setup, setup.spectrum, "ddim", [few, many], num_samples=256, seed=4)
    assert res["fd_pick"] == res["sampled_w2_pick"] == "30 steps" and res["same"]
    rows = {r["name"]: r for r in res["schedules"]}
    assert rows["3 steps"]["fd"] > 2 * rows["30 steps"]["fd"]
    assert rows["3 steps"]["sampled_w2"] > 2 * rows["30 steps"]["sampled_w2"]
    x = generate(setup.denoise, many, "ddim", num_samples=256, shape=setup.shape, seed=4)
    assert rows["30 steps"]["sampled_w2"] == pytest.approx(
        spectral_objective(x, setup.spectrum), rel=1e-12
    )
