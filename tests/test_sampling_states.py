"""benchmarks/sampling_states.py: what a denoiser does on the states a sampler visits.

Checked against facts that do not depend on the script: a linear denoiser is what the calibrated
model describes exactly, so the state powers the script measures from real sampling must be the
calibrated model's predictions (and not the Gaussian model's: the denoiser is not the data's);
and at the first call, whose state is noise as in the calibration, a non-linear denoiser's
residual has the calibrated power.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_calibrate import LR, _NoiseUnderestimate

import specsched as ss
from specsched.calibrate import calibrate
from specsched.data.builtin import photos
from specsched.denoisers import GaussianDenoiser
from specsched.heuristics import heuristic_schedule

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location(
    "sampling_states", ROOT / "benchmarks" / "sampling_states.py"
)
states = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(states)


@pytest.fixture(scope="module")
def rgb():
    x = photos(size=8, channels=3, n=3000, seed=1)
    return x, ss.Spectrum.from_array(x, layout="NCHW")


@pytest.mark.parametrize(("sampler", "calls"), [("ddim", 5), ("heun", 9)])
def test_measured_states_are_the_calibrated_model_for_a_linear_denoiser(rgb, sampler, calls):
    x, spec = rgb
    bad = _NoiseUnderestimate(spec)
    cal = calibrate(spec, bad, x, levels=LR, num_samples=200)
    sched = heuristic_schedule("trailing", 5, LR)
    n = 3000
    res = states.measure(cal, bad, sched, sampler, num_samples=n, shape=(3, 8, 8), seed=3)
    assert len(res["levels"]) == 6 and len(res["calls"]) == calls
    assert res["levels"][0]["t"] == 999 and res["levels"][-1]["t"] is None
    worst_gauss = 0.0
    for row in res["levels"]:
        for group in ("all", "dc", "rest"):
            cell = row[group]
            # 3 DC modes of n samples: a power's sd is about sqrt(2 / (3 n)); 5 sd, and the
            # interpolation of the calibration between its 24 levels
            assert abs(cell["measured"] / cell["calibrated"] - 1) < 5 * np.sqrt(2 / (3 * n)) + 0.02
            worst_gauss = max(worst_gauss, abs(cell["gaussian"] / cell["measured"] - 1))
    assert worst_gauss > 0.5  # the data's own model is far off: the script tells them apart


def test_the_first_calls_residual_has_the_calibrated_power(rgb):
    x, spec = rgb
    gauss = GaussianDenoiser(spec)

    def denoise(v: torch.Tensor, alpha: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return gauss(v, alpha, s) + 5 * alpha * torch.tanh(3 * v)  # changes with the level

    cal = calibrate(spec, denoise, x, levels=LR, num_samples=400)
    sched = heuristic_schedule("trailing", 5, LR)
    res = states.measure(cal, denoise, sched, "ddim", num_samples=3000, shape=(3, 8, 8), seed=3)
    first = res["calls"][0]
    # (interpolated one unit of log-SNR off, the calibrated power would be 2.7x off)
    assert first["log_snr"] == pytest.approx(float(cal.calibration.log_snr[0]))
    assert abs(first["residual_over_calibrated"] - 1) < 0.1
    assert abs(first["correlation_with_state"]) < 0.05  # a regression residual, on its own data
    assert first["correlation_with_previous"] is None
    assert all(-1 <= c["correlation_with_previous"] <= 1 for c in res["calls"][1:])


def test_the_gain_on_the_samplers_states_is_the_denoisers(rgb):
    """A denoiser with 0.8 of the Gaussian gain in every mode has 0.8 of it on any states: the
    regression on the sampler's states must give it exactly, and the calibrated gain too (up to
    its interpolation between grid levels)."""
    x, spec = rgb
    gauss = GaussianDenoiser(spec)
    mu = torch.from_numpy(spec.channel_means.reshape(1, -1, 1, 1))

    def shrunk(v: torch.Tensor, alpha: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return mu + 0.8 * (gauss(v, alpha, s) - mu)

    cal = calibrate(spec, shrunk, x, levels=LR, num_samples=200)
    sched = heuristic_schedule("logsnr", 6, LR)
    res = states.measure(cal, shrunk, sched, "dpmpp_2m", num_samples=500, shape=(3, 8, 8), seed=3)
    grid = cal.calibration.log_snr
    on_grid = 0
    for row in res["calls"]:
        assert row["gain_over_gaussian"] == pytest.approx(0.8, rel=1e-6)
        # exact at the grid's levels; between them the deviation from the Gaussian gain is
        # interpolated linearly in log-SNR while the Gaussian gain is not (up to 2 % off here)
        if np.min(np.abs(grid - row["log_snr"])) < 1e-9:
            on_grid += 1
            assert row["calibrated_gain_over_gaussian"] == pytest.approx(0.8, rel=1e-9)
        else:
            assert row["calibrated_gain_over_gaussian"] == pytest.approx(0.8, rel=0.03)
    assert on_grid == 2  # the first and the last level are the grid's ends
