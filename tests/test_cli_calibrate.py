"""``specsched calibrate`` on the committed tiny16 pipeline, then ``specsched fit`` on its file."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_user_error, ok_json, run

import specsched as ss

TINY16 = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "tiny16"
DATA = ("builtin:photos", "--size", "16", "--channels", "1", "--data-samples", "400")


@pytest.mark.slow
def test_calibrate_then_fit_from_the_file_alone(tmp_path):
    out = tmp_path / "tiny16.npz"
    rep = ok_json(
        "calibrate", *DATA, "--pipeline", str(TINY16), "-o", str(out),
        "--levels", "5", "--num-samples", "40", "--batch-size", "100",
    )  # fmt: skip
    cal = rep["calibration"]
    # 40 noised samples a level, and 40 of the network's own paths through the 5 levels
    assert cal["evaluations"] == 5 * (40 + 40) and cal["levels"] == 5
    assert cal["trajectories"] == 40 and len(cal["own_paths_power_by_level"]) == 5
    spec = ss.Spectrum.load(out)
    assert spec.calibration is not None and spec.signal_shape == (16, 16)
    assert spec.calibration.model["prediction"] == "epsilon"
    # the network is no exact Gaussian denoiser: it adds non-linear power somewhere
    assert max(cal["residual_over_variance_by_level"]) > 0.01
    # and it fails at its noisiest level (17x the data's power at t = 999 with the benchmark's
    # calibration), which no exact denoiser does
    assert cal["output_over_data_by_level"][0] > 3 and cal["fails_up_to_log_snr"] is not None
    assert cal["output_over_data_by_level"][-1] < 1.01
    text = run(
        "calibrate", *DATA, "--pipeline", str(TINY16), "-o", str(tmp_path / "again.npz"),
        "--levels", "5", "--num-samples", "40", "--batch-size", "100",
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "fails at its noisiest levels" in text.stdout and "output power" in text.stdout
    assert "own paths'" in text.stdout  # the column of the paths' power
    # the samples' draw: reported, and said in words where it is more than 5 %
    drawn = cal["samples_power_over_spectrum"]
    assert drawn > 0 and ("calibration samples carry" in text.stdout) == (abs(drawn - 1) > 0.05)
    assert cal["fails_up_to"].startswith("log-SNR ") and "(t = " in cal["fails_up_to"]
    fit = ok_json("fit", str(out), "--sampler", "dpmpp_2m", "--steps", "5")
    assert fit["calibrated"] is True and len(fit["schedule"]["timesteps"]) == 5
    assert fit["levels"]["train_schedule"]["name"] == "linear"
    assert np.isfinite(fit["uncertainty"]) and fit["uncertainty"] > 0
    # the table's first row is what was returned: a fit, or the heuristic it could not beat
    first = fit["table"][0]["schedule"]
    assert first == "spectral" or first == f"{fit['fallback']} (fallback)"


@pytest.mark.slow
def test_verify_on_a_calibration_file_samples_the_model_it_was_calibrated_on(tmp_path):
    """``fit FILE --verify`` needs no --pipeline: the file records the model's folder (resolved,
    so the fit may run from elsewhere); a folder that has gone is one clear error."""
    model = tmp_path / "copy of tiny16"
    shutil.copytree(TINY16, model)
    out = tmp_path / "c.npz"
    p = run(
        "calibrate", *DATA, "--pipeline", model.name, "-o", str(out),
        "--levels", "4", "--num-samples", "24", "--batch-size", "100", cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert ss.Spectrum.load(out).calibration.model["pipeline"] == str(model.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ("fit", str(out), "--steps", "3", "--verify", "--verify-samples", "16")
    fit = ok_json(*args, cwd=elsewhere)
    ver = fit["verification"]
    assert ver["num_samples"] == 16 and ver["metric"] == "sampled w2"
    assert sum(r["chosen"] for r in ver["candidates"]) == 1
    # every heuristic of the table whose levels differ from the others' was sampled (the default)
    names = [r["schedule"] for r in ver["candidates"]]
    assert len(names) == len(set(names)) > 3
    # the fit returned the Gaussian design of the file's spectrum here (both models rate it
    # better), so the other design sampled beside it is the calibrated fit it replaced
    spec = ss.Spectrum.load(out)
    gauss = ss.fit(dataclasses.replace(spec, calibration=None), 3)
    alone = ss.fit(spec, 3, gaussian_design=False)
    assert ver["candidates"][0]["role"] == "fit"
    assert ver["candidates"][0]["timesteps"] == gauss.schedule.timesteps.tolist()
    design = ver["candidates"][1]
    assert design["role"] == "design" and design["schedule"] == "calibrated"
    assert design["timesteps"] == alone.schedule.timesteps.tolist()
    assert alone.schedule.timesteps.tolist() != gauss.schedule.timesteps.tolist()
    assert set(names[2:]) <= {r["schedule"] for r in fit["table"]}
    # one step from t = 999 (asked, so the Gaussian design starts there too): every candidate
    # is the same schedule and the guard keeps the heuristic; the tip then points to --verify
    # without asking for the folder
    text = run("fit", str(out), "--steps", "1", "--start-at", "max", cwd=elsewhere)
    assert text.returncode == 0, text.stderr
    tip = text.stdout.replace("\n", " ")
    assert "kept the heuristic" in tip and "--verify samples it and the Gaussian fit" in tip
    assert "--pipeline DIR" not in tip
    # a calibrated fit, kept or not, points there too; this one is the Gaussian design, and
    # the tip names the calibrated fit as the other design
    text = run("fit", str(out), "--steps", "3", cwd=elsewhere)
    assert text.returncode == 0, text.stderr
    assert "tip: " in text.stdout and "--verify samples it and the calibrated fit it replaced" in (
        " ".join(text.stdout.split())
    )
    model.rename(tmp_path / "moved")
    assert_user_error(run(*args), "calibrated on the model", str(model.resolve()), "--pipeline")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--size", "8", "--channels", "1"), ("shape", "--size")),
        (("--size", "16", "--channels", "1", "--num-samples", "4"), ("--num-samples",)),
        (("--size", "16", "--channels", "1", "--data-samples", "20"), ("fewer than",)),
        (("--size", "16", "--channels", "1", "--trajectories", "300"), ("--trajectories",)),
        (("--size", "16", "--channels", "1", "--trajectories", "1"), ("--trajectories",)),
    ],
)
def test_calibrate_bad_input(tmp_path, args, words):
    out = tmp_path / "c.npz"
    p = run("calibrate", "builtin:photos", *args, "--pipeline", str(TINY16), "-o", str(out))
    assert_user_error(p, *words)
    assert not out.exists()


def test_calibrate_needs_a_pipeline_folder(tmp_path):
    out = tmp_path / "c.npz"
    p = run("calibrate", "builtin:photos", "--pipeline", str(tmp_path), "-o", str(out))
    assert_user_error(p, "pipeline")
    assert not out.exists()
    p = run(
        "calibrate", "builtin:photos", "--pipeline", str(TINY16), "-o", str(tmp_path / "c.json")
    )
    assert_user_error(p, ".npz")
    # the device and folder checks every pipeline command shares (cli.check_model_inputs)
    p = run(
        "calibrate", "builtin:photos", "--pipeline", str(TINY16), "-o", str(out), "--device", "tpu"
    )
    assert_user_error(p, "--device", "not understood")
    p = run("calibrate", "builtin:photos", "--pipeline", str(tmp_path / "none"), "-o", str(out))
    assert_user_error(p, "does not exist")
    assert not out.exists()


def test_json_is_strict(tmp_path):
    out = tmp_path / "c.npz"
    p = run(
        "calibrate", *DATA, "--pipeline", str(TINY16), "-o", str(out),
        "--levels", "2", "--num-samples", "16", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    json.loads(p.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
