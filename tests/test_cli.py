"""The command line, run as a user runs it (a subprocess), for good and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import specsched as ss


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "specsched.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def ok_json(*args: str, cwd: Path | None = None) -> dict:
    p = run(*args, "--json", cwd=cwd)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def assert_user_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr  # one clear line
    assert "Traceback" not in p.stderr
    assert lines[0].startswith("error: ")
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def spectrum_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spec") / "photos16.npz"
    p = run(
        "spectrum",
        "builtin:photos",
        "--size",
        "16",
        "--channels",
        "1",
        "--num-samples",
        "3000",
        "-o",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    return out


def test_spectrum_json_matches_the_api(tmp_path):
    d = ok_json(
        "spectrum", "builtin:photos", "--size", "8", "--channels", "3", "--num-samples", "500"
    )
    spec = ss.Spectrum.from_source("builtin:photos", size=8, channels=3, n=500)
    assert d["n_samples"] == 500 and d["dim"] == 3 * 64
    assert d["total_variance"] == pytest.approx(spec.total_variance, rel=1e-12)


def test_response_with_elided_timesteps_equals_the_api(spectrum_file):
    d = ok_json(
        "response",
        str(spectrum_file),
        "--timesteps",
        "999,899,...,99",
        "--sampler",
        "ddim",
        "--eta",
        "0",
    )
    spec = ss.Spectrum.load(spectrum_file)
    r = ss.response(spec, ss.Schedule.from_timesteps(list(range(999, 98, -100))), "ddim", eta=0.0)
    assert d["schedule"]["timesteps"] == list(range(999, 98, -100))
    assert d["w2"] == pytest.approx(r.w2, rel=1e-12)
    assert d["kl_gen_data"] == pytest.approx(r.kl_gen_data, rel=1e-12)


def test_fit_writes_a_schedule_that_compare_and_load_read_back(spectrum_file, tmp_path):
    sched_path = tmp_path / "sched.json"
    d = ok_json(
        "fit", str(spectrum_file), "--steps", "6", "--sampler", "ddpm", "-o", str(sched_path)
    )
    table = {row["schedule"]: row for row in d["table"]}
    assert all(table["spectral"]["w2"] <= row["w2"] for row in d["table"])
    sched = ss.Schedule.load(sched_path)
    assert sched.timesteps.tolist() == d["schedule"]["timesteps"]
    assert sched.meta["value"] == pytest.approx(d["value"])
    assert sched.meta["command"].startswith("specsched fit")
    c = ok_json("compare", str(spectrum_file), "--schedule", str(sched_path), "--sampler", "ddpm")
    assert c["table"][0]["file"] == str(sched_path)
    assert c["table"][0]["w2"] == pytest.approx(d["value"], rel=1e-12)
    human = run("fit", str(spectrum_file), "--steps", "6")
    assert human.returncode == 0 and "diffusers" in human.stdout and "timesteps" in human.stdout


def test_compare_says_which_heuristics_the_timesteps_do_not_realise(spectrum_file):
    """On a cosine training schedule, logSNR-uniform and Karras spacing crowd the noisiest
    timesteps, where rounding to distinct timesteps moves some of their levels: ``compare`` and
    ``fit`` give the count per row and say so in a note; on the linear schedule nothing moved."""
    args = ("compare", str(spectrum_file), "--steps", "20", "--train-schedule", "cosine")
    rows = {r["schedule"]: r for r in ok_json(*args)["table"]}
    cosine = ss.LevelRange.discrete("cosine")
    lam = np.linspace(cosine.lam_lo, cosine.lam_hi, 20)  # logSNR-uniform, before rounding
    nearest = np.round(cosine.train.timestep_of_log_snr(lam)).astype(int)
    logsnr = rows["logsnr"]
    assert logsnr["moved_levels"] == int(np.sum(nearest != logsnr["timesteps"])) == 6
    assert rows["karras"]["moved_levels"] > 0 and rows["trailing"]["moved_levels"] == 0
    human = run(*args)
    assert human.returncode == 0, human.stderr
    text = " ".join(human.stdout.split())
    assert "note: the model's timesteps do not realise the spacing of" in text
    assert "logsnr (6 levels moved)" in text
    fit_args = ("fit", str(spectrum_file), "--steps", "20", "--train-schedule", "cosine")
    fitted = {r["schedule"]: r for r in ok_json(*fit_args)["table"]}
    assert fitted["logsnr"]["moved_levels"] == 6 and fitted["spectral"]["moved_levels"] == 0
    assert "logsnr (6 levels moved)" in " ".join(run(*fit_args).stdout.split())
    linear = ok_json("compare", str(spectrum_file), "--steps", "20")["table"]
    assert all(r["moved_levels"] == 0 for r in linear)
    assert "do not realise" not in run("compare", str(spectrum_file), "--steps", "20").stdout


def test_long_kl_fit_from_the_command_line(tmp_path):
    """``specsched fit --objective kl --steps 50`` on photos 32x32x3 exited 2 with "noise levels
    must strictly decrease" until 2026-11-30 (levels crowding at the clean end coincided in
    floating point); it now writes a 50-step schedule and says what happened."""
    spec_path = tmp_path / "photos32.npz"
    p = run(
        "spectrum",
        "builtin:photos",
        "--size",
        "32",
        "--channels",
        "3",
        "--num-samples",
        "10000",
        "-o",
        str(spec_path),
    )
    assert p.returncode == 0, p.stderr
    out = tmp_path / "kl50.json"
    d = ok_json("fit", str(spec_path), "--objective", "kl", "--steps", "50", "-o", str(out))
    t = d["schedule"]["timesteps"]
    assert len(t) == 50 and bool(np.all(np.diff(t) < 0)) and t[-1] == 0
    assert d["continuous"] is None
    assert any("same noise level" in n for n in d["notes"])
    assert ss.Schedule.load(out).timesteps.tolist() == t


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    d = ok_json("demo", "-o", str(tmp_path / "demo"))
    for f in d["files"]:
        assert Path(f).stat().st_size > 0
    assert {Path(f).name for f in d["files"]} >= {
        "spectrum.png",
        "transfer.png",
        "schedules.png",
        "trace.png",
        "schedule.json",
        "spectrum.npz",
    }
    assert d["ratio_to_best_uniform"] < 0.8


@pytest.mark.parametrize(
    "args,words",
    [
        (["spectrum", "no/such/path"], ["does not exist"]),
        (["response", "builtin:digits", "--timesteps", "999,1000"], ["0..999"]),
        (["response", "builtin:digits", "--timesteps", "99,199"], ["decrease"]),
        (
            [
                "response",
                "builtin:digits",
                "--spacing",
                "trailing",
                "--steps",
                "5",
                "--sampler",
                "bogus",
            ],
            ["unknown sampler"],
        ),
        (
            [
                "response",
                "builtin:digits",
                "--spacing",
                "trailing",
                "--steps",
                "5",
                "--train-schedule",
                "cubic",
            ],
            ["training schedule"],
        ),
        (["fit", "builtin:digits", "--steps", "0"], ["steps"]),
        (["fit", "builtin:digits", "--steps", "1001"], ["1000"]),
        (["fit", "builtin:digits", "--objective", "l1"], ["objective"]),
        (["spectrum", "builtin:photos", "--num-samples", "1"], ["n=1"]),
        (["spectrum", "builtin:nothing"], ["builtin"]),
        (["spectrum"], ["Missing argument"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words):
    assert_user_error(run(*args), *words)


def test_bad_input_leaves_no_output_file(tmp_path):
    bad = tmp_path / "nan.npy"
    x = np.zeros((10, 8, 8))
    x[3, 2, 2] = np.nan
    np.save(bad, x)
    out = tmp_path / "out.npz"
    assert_user_error(run("spectrum", str(bad), "-o", str(out)), "NaN")
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    sched_out = tmp_path / "s.json"
    assert_user_error(run("fit", str(bad), "-o", str(sched_out)), "NaN")
    assert not sched_out.exists()
    assert_user_error(
        run("spectrum", "builtin:digits", "-o", str(tmp_path / "missing" / "a.npz")),
        "does not exist",
    )


def test_schedule_for_another_process_is_refused(tmp_path, spectrum_file):
    ve = tmp_path / "ve.json"
    ss.Schedule.from_sigmas([80, 5, 0.1], process="ve").save(ve)
    assert_user_error(run("compare", str(spectrum_file), "--schedule", str(ve)), "ve model")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    assert_user_error(
        run("compare", str(spectrum_file), "--schedule", str(junk)), "not a specsched schedule"
    )


def test_fit_for_a_diffusers_scheduler_reads_model_and_sampler(tmp_path, spectrum_file):
    d = ok_json(
        "fit", str(spectrum_file), "--steps", "6", "--for", "diffusers:DPMSolverMultistepScheduler"
    )
    assert d["sampler"] == "dpmpp_2m" and d["schedule"]["train_schedule"]["name"] == "linear"
    from diffusers import UniPCMultistepScheduler

    cfg = dict(UniPCMultistepScheduler(solver_order=3, beta_schedule="scaled_linear").config)
    cfg["_class_name"] = "UniPCMultistepScheduler"
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps(cfg))
    d = ok_json("fit", str(spectrum_file), "--steps", "6", "--scheduler-config", str(path))
    assert (d["sampler"], d["options"]) == ("unipc", {"order": 3})
    assert d["schedule"]["train_schedule"]["name"] == "scaled_linear"
    assert_user_error(
        run("fit", str(spectrum_file), "--for", "diffusers:NoSuchScheduler"), "NoSuchScheduler"
    )
    del cfg["beta_schedule"]
    path.write_text(json.dumps(cfg))
    assert_user_error(
        run("fit", str(spectrum_file), "--scheduler-config", str(path)), "beta_schedule"
    )


def test_samplers_lists_the_registry():
    rows = ok_json("samplers")
    assert {r["name"] for r in rows} == set(ss.SAMPLERS)
    assert next(r for r in rows if r["name"] == "flow_euler")["processes"] == ["flow"]


def test_a_fit_that_keeps_a_heuristic_points_to_verify(spectrum_file):
    # one step from t = 999: every candidate is the same schedule, and the guard keeps the heuristic
    p = run("fit", str(spectrum_file), "--steps", "1", "--start-at", "max", "--guard")
    assert p.returncode == 0, p.stderr
    assert "note: kept the heuristic" in p.stdout and "tip:" in p.stdout
    assert "--verify --pipeline DIR" in p.stdout.replace("\n", " ")
    p = run("fit", str(spectrum_file), "--steps", "6", "--guard")  # a fit it keeps: no tip
    assert p.returncode == 0, p.stderr
    assert "kept the heuristic" not in p.stdout and "tip:" not in p.stdout


def test_fit_max_step_limits_the_steps_and_refuses_bad_values(spectrum_file):
    out = ok_json("fit", str(spectrum_file), "--steps", "8", "--sampler", "dpmpp_2m",
                  "--start-at", "T-1", "--max-step", "1.1")  # fmt: skip
    assert any("steps limited to 1.1x" in n for n in out["notes"])
    lam = np.asarray(out["schedule"]["log_snr"][:-1], dtype=float)
    uniform = (ss.LevelRange.discrete("linear").lam_hi - lam[0]) / 8
    assert np.max(np.diff(lam)[1:]) <= 1.1 * uniform * 1.02  # the first step is not limited
    assert_user_error(run("fit", str(spectrum_file), "--max-step", "0.5"), "max_step")
