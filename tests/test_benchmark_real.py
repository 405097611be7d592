"""End-to-end: the quick preset of benchmarks/real_denoisers.py, as CI runs it.

The benchmark is the proof that spectral schedules help (or not) on non-Gaussian denoisers, so
its machinery is checked against facts that do not depend on which schedule wins:

- with the exact mixture denoiser, a many-step ODE solution reproduces the mixture's own
  distribution: its Frechet distance to exact mixture samples matches that of independent exact
  samples, within sampling noise;
- that reference solution is far more accurate than any few-step run it is compared with;
- more steps of a deterministic sampler on a heuristic family bring the samples closer to the
  reference solution;
- every output (RESULTS.md tables, JSON, plots) is written and self-consistent.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "real_denoisers.py"
_spec = importlib.util.spec_from_file_location("real_denoisers", SCRIPT)
bench = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("real_denoisers", bench)  # dataclasses look their module up there
_spec.loader.exec_module(bench)


def _run(script: str | Path, *args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """A benchmark script (a file name under benchmarks/, or a path) run with this Python."""
    path = script if isinstance(script, Path) else ROOT / "benchmarks" / script
    cmd = [sys.executable, str(path), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _script(name: str):
    """A benchmark script under benchmarks/ imported as a module (it puts benchmarks/ on the path
    for its own imports)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_denoisers")
    # ~12 min on CI's core; more on a shared machine
    proc = _run(SCRIPT, "--quick", "--out", out, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    payload = json.loads((out / "results" / "real_denoisers.json").read_text())
    return out, payload


def _sd(entry):
    return entry["sd"]


@pytest.mark.slow
def test_outputs_written(quick):
    out, payload = quick
    cfg = payload["config"]
    md = (out / "RESULTS.md").read_text()
    assert "## The recommended schedule against the best heuristic (FD)" in md
    for rel in payload["plots"]:
        assert (out / rel).stat().st_size > 10_000, rel
    keys = {(r["denoiser"], r["sampler"], r["steps"]) for r in payload["records"]}
    assert keys == {
        (d, s, n) for d in ("gmm", "unet") for s in cfg["samplers"] for n in cfg["steps"]
    }
    for den in ("gmm", "unet"):
        cal = payload["timing"][den]["calibration"]
        assert cal["evaluations"] == 24 * (200 + 100) and cal["seconds"] > 0  # data, own paths
    for r in payload["records"]:
        # calibrated fits start at the top of the range (t = 999) unless they fell back or
        # returned the Gaussian design (whose first level is free)
        fit = r.get("fit", {})
        if r["schedule"].startswith("calibrated") and not (
            fit["fallback"] or fit["gaussian_design"]
        ):
            assert r["timesteps"][0] == 999, r
        for name, m in r["metrics"].items():
            assert math.isfinite(m["value"]) and m["sd"] >= 0, (r["schedule"], name)
    # one row per schedule and group; exactly one best per metric
    for key in keys:
        rows = [r for r in payload["records"] if (r["denoiser"], r["sampler"], r["steps"]) == key]
        names = [r["schedule"] for r in rows]
        assert len(names) == len(set(names))
        assert {*bench.SPECTRAL, "trailing", "karras"} <= set(names)
        assert sum(r["best"]["fd"] for r in rows) == 1
        best = min(r["metrics"]["fd"]["value"] for r in rows)
        winner = next(r for r in rows if r["best"]["fd"])
        assert winner["metrics"]["fd"]["value"] == best
        # the FD table shows the best in bold, with its uncertainty
        assert f"**{bench.fmt(best, winner['metrics']['fd']['sd'])}**" in md


@pytest.mark.slow
def test_exact_denoiser_ode_reproduces_the_mixture(quick):
    """Exact denoiser + accurate solver = exact samples: FD equals the data-vs-data floor."""
    _, payload = quick
    base = payload["baselines"]["gmm"]
    for metric in ("fd", "sw2", "spectral_w2"):
        ref, data = base["reference solution"][metric], base["data"][metric]
        assert abs(ref["value"] - data["value"]) < 3 * math.hypot(_sd(ref), _sd(data)), metric
    # while a 5-step DDIM run is clearly worse than that floor
    rows = [
        r
        for r in payload["records"]
        if r["denoiser"] == "gmm" and r["sampler"] == "ddim" and r["steps"] == 5
    ]
    worst = max(r["metrics"]["fd"]["value"] for r in rows)
    assert worst > base["data"]["fd"]["value"] + 5 * _sd(base["data"]["fd"])


@pytest.mark.slow
def test_reference_solution_is_accurate_and_steps_converge(quick):
    _, payload = quick
    steps = payload["config"]["steps"]
    for den in ("gmm", "unet"):
        acc = payload["timing"][den]["reference_solution"]["rmse_vs_double_steps"]
        rows = [r for r in payload["records"] if r["denoiser"] == den and "rmse" in r["metrics"]]
        assert rows
        assert acc < 0.2 * min(r["metrics"]["rmse"]["value"] for r in rows), den
        # refining a heuristic family brings a deterministic sampler closer to the ODE solution
        # (fitted schedules are not refinements of each other: they match distributions, and
        # their trajectory error need not fall with N)
        for sampler in ("ddim", "dpmpp_2m"):
            for name in ("trailing", "karras", "linspace"):
                errs = [
                    next(
                        r["metrics"]["rmse"]["value"]
                        for r in rows
                        if r["sampler"] == sampler and r["steps"] == n and r["schedule"] == name
                    )
                    for n in steps
                ]
                assert np.all(np.diff(errs) < 0), (den, sampler, name, errs)


@pytest.mark.parametrize("name, channels", [("unet", 1), ("rgb16", 3)])
def test_photo_unet_setups_denoise_their_own_data(name, channels):
    """The two photo-patch UNets (tiny16, grey; rgb16, colour): each set-up's reference, floor,
    spectrum and calibration data have the model's channels and the seeds its notes name, and
    at a moderate noise level (sigma 4/3) its network removes most of the noise from those
    patches, which a model loaded into the wrong set-up (or with channels mixed up) does not."""
    import torch

    from specsched.data.builtin import photos

    cfg = dict(bench.PRESETS["quick"])
    setup = bench.SETUPS[name](cfg)
    assert setup.shape == (channels, 16, 16)
    assert setup.spectrum.variances.shape[-1] == channels
    np.testing.assert_array_equal(
        setup.calibration_data,
        photos(size=16, channels=channels, n=bench.CALIBRATION_SAMPLES, seed=4),
    )
    x = torch.from_numpy(setup.floor[:64])
    assert x.shape == (64, channels, 16, 16)
    alpha, s = torch.tensor(0.6, dtype=x.dtype), torch.tensor(0.8, dtype=x.dtype)
    z = alpha * x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x0 = setup.denoise(z, alpha, s)
    assert x0.shape == x.shape and bool(torch.isfinite(x0).all())
    naive = float(torch.mean((z / alpha - x) ** 2))  # sigma^2 = 1.78
    assert float(torch.mean((x0 - x) ** 2)) < 0.1 * naive


@pytest.mark.parametrize("name", ["mn16", "ms16", "mc16"])
def test_mnist16_setups_hold_out_what_they_measure_with(name):
    """The mn16, ms16 and mc16 set-ups (MNIST at 16x16): ``mnist16`` pads each digit with black and
    averages 2x2 blocks (checked on one digit by hand); the floor's digits are ones the model was
    not trained on and the reference is the test split; and its network removes most of the
    noise from held-out digits at sigma 4/3."""
    import torch

    from specsched.data.builtin import mnist

    common = sys.modules["_common"]
    one = mnist(split="train", n=8)[7, 0]
    padded = np.full((32, 32), -1.0)
    padded[2:30, 2:30] = one
    by_hand = np.array(
        [
            [padded[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean() for j in range(16)]
            for i in range(16)
        ]
    )
    np.testing.assert_allclose(common.mnist16("train", 7, 1)[0, 0], by_hand, rtol=0, atol=1e-15)

    cfg = dict(bench.PRESETS["quick"], num_samples=64)
    setup = bench.SETUPS[name](cfg)

    # each floor digit is one of the held-out ones and none of the trained ones
    def digests(x):
        return {hash(row.tobytes()) for row in x.reshape(len(x), -1)}

    floor = digests(setup.floor)
    assert len(floor) == 64
    assert floor <= digests(common.mnist16("train", common.MNIST16_TRAIN))
    assert not floor & digests(common.mnist16("train", 0, common.MNIST16_TRAIN))
    np.testing.assert_array_equal(setup.reference.samples[:5], common.mnist16("test", 0, 5))
    x = torch.from_numpy(setup.floor)
    alpha, s = torch.tensor(0.6, dtype=x.dtype), torch.tensor(0.8, dtype=x.dtype)
    z = alpha * x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x0 = setup.denoise(z, alpha, s)
    naive = float(torch.mean((z / alpha - x) ** 2))
    assert float(torch.mean((x0 - x) ** 2)) < 0.1 * naive


def test_paired_check_compares_schedules_of_one_cell(tmp_path):
    """benchmarks/paired_check.py: a schedule against itself ties with the same FD, a schedule
    that stops at t = 995 (samples still noisy) loses, and the JSON holds what was printed."""
    script = ROOT / "benchmarks" / "paired_check.py"
    same = "999,749,500,250,0"
    args = [sys.executable, str(script), "--denoiser", "gmm", "--sampler", "dpmpp_2m"]
    args += ["--num-samples", "256", "--out", str(tmp_path)]
    args += ["--schedule", f"a={same}", "--schedule", f"b={same}"]
    args += ["--schedule", "noisy=999,998,997,996,995"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "paired_check_gmm_dpmpp_2m5.json").read_text())
    rows = {r["schedule"]: r for r in data["rows"]}
    assert rows["b"]["fd"] == rows["a"]["fd"] and rows["b"]["against_first"] == "tie"
    assert rows["noisy"]["against_first"] == "loss" and rows["noisy"]["fd"] > 2 * rows["a"]["fd"]
    assert f"{rows['a']['fd']:.3f}" in proc.stdout
    # FD's mean term and the FD of the samples moved to the reference's mean add up to FD
    for r in rows.values():
        assert r["fd_mean_term"] + r["fd_cov"] == pytest.approx(r["fd"], rel=1e-6)
    assert rows["noisy"]["against_first_cov"] == "loss" and rows["b"]["against_first_cov"] == "tie"
    bad = subprocess.run(
        [*args[:8], "--schedule", f"a={same}"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "at least two --schedule" in bad.stderr
    few = subprocess.run(
        [*args[:6], "--num-samples", "1", *args[8:]], capture_output=True, text=True, timeout=120
    )
    assert few.returncode == 2 and "--num-samples must be at least 2" in few.stderr


@pytest.mark.slow
def test_default_vs_heuristics_samples_the_default_and_every_heuristic(tmp_path):
    """benchmarks/default_vs_heuristics.py on the mixture: the cell's default, the plain fit and
    every heuristic (names holding "=" included) are sampled, the best heuristic is the one of
    least FD, and the default's verdict is the opposite of that heuristic's against it."""
    proc = _run(
        "default_vs_heuristics.py", "--denoiser", "gmm", "--samplers", "dpmpp_2m", "--steps", 5,
        "--num-samples", 64, "--out", tmp_path, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    defaults = json.loads((tmp_path / "defaults_dpmpp_2m.json").read_text())["rows"]
    summary = json.loads((tmp_path / "summary_dpmpp_2m.json").read_text())
    rows = json.loads((tmp_path / "paired_check_gmm_dpmpp_2m5.json").read_text())["rows"]
    names = [r["schedule"] for r in rows]
    assert names[:2] == ["default", "plain"]
    assert set(names[2:]) == set(defaults[0]["heuristics"])
    assert "shifted_cosine(resolution=16)" in names
    assert rows[0]["timesteps"] == defaults[0]["timesteps"] == summary["rows"][0]["default"]
    best = min(rows[2:], key=lambda r: r["fd"])
    cell = summary["rows"][0]
    assert cell["best_heuristic"] == best["schedule"] and cell["heuristic_fd"] == best["fd"]
    flip = {"win": "loss", "loss": "win", "tie": "tie"}
    assert cell["result"] == flip[best["against_first"]]
    assert sum(summary["counts"].values()) == 1 and summary["counts"][cell["result"]] == 1
    # --resume reuses the cell's samples where the same schedules were sampled, and only there
    again = _run(
        "default_vs_heuristics.py", "--denoiser", "gmm", "--samplers", "dpmpp_2m", "--steps", 5,
        "--num-samples", 64, "--out", tmp_path, "--resume", timeout=900,
    )  # fmt: skip
    assert again.returncode == 0 and "reused" in again.stdout and "FD" not in again.stdout
    assert json.loads((tmp_path / "summary_dpmpp_2m.json").read_text())["rows"] == summary["rows"]
    other = _run(
        "default_vs_heuristics.py", "--denoiser", "gmm", "--samplers", "dpmpp_2m", "--steps", 5,
        "--num-samples", 32, "--out", tmp_path, "--resume", timeout=900,
    )  # fmt: skip
    assert other.returncode == 0 and "reused" not in other.stdout and "FD" in other.stdout
    # --heuristics samples only the heuristics named; an unknown name is one line, exit 2
    some = _run(
        "default_vs_heuristics.py", "--denoiser", "gmm", "--samplers", "dpmpp_2m", "--steps", 5,
        "--num-samples", 32, "--out", tmp_path / "some", "--heuristics", "ays", "logsnr",
        timeout=900,
    )  # fmt: skip
    assert some.returncode == 0, some.stdout[-2000:] + some.stderr[-2000:]
    rows = json.loads((tmp_path / "some" / "paired_check_gmm_dpmpp_2m5.json").read_text())["rows"]
    assert [r["schedule"] for r in rows] == ["default", "plain", "logsnr", "ays"]
    bad = _run(
        "default_vs_heuristics.py", "--denoiser", "gmm", "--samplers", "dpmpp_2m", "--steps", 5,
        "--num-samples", 32, "--out", tmp_path / "bad", "--heuristics", "aysx", timeout=900,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown heuristics ['aysx']" in bad.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_paired_check_measures_the_excess_over_the_converged_solution(tmp_path):
    """--converged: a schedule that is the converged solution's own (the same sampler, steps and
    x_T) has excess exactly 0 with paired sd 0; another's excess is its FD minus the converged
    FD, and the first schedule's excess ratio to it is reported."""
    from specsched.schedules import spaced_timesteps

    script = ROOT / "benchmarks" / "paired_check.py"
    conv = ",".join(str(t) for t in spaced_timesteps(20, "trailing"))
    lead = ",".join(str(t) for t in spaced_timesteps(20, "leading"))
    args = [sys.executable, str(script), "--denoiser", "gmm", "--sampler", "dpmpp_2m"]
    args += ["--num-samples", "128", "--out", str(tmp_path), "--converged", "20"]
    args += ["--schedule", f"own={conv}", "--schedule", f"leading={lead}"]
    args += ["--schedule", f"again={conv}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "paired_check_gmm_dpmpp_2m20.json").read_text())
    own, other, again = data["rows"]
    assert own["excess"] == 0.0 and own["excess_sd"] == 0.0 and own["fd"] == data["converged"]["fd"]
    assert other["excess"] == pytest.approx(other["fd"] - data["converged"]["fd"], abs=1e-12)
    assert other["excess_sd"] > 0 and data["converged"]["steps"] == 20
    assert data["converged"]["excess_ratios"]["leading"] == 0.0
    assert again["excess"] == 0.0 and data["converged"]["excess_ratios"]["again"] is None
    bad = [a if a != "20" else "0" for a in args]  # --converged 0
    p = subprocess.run(bad, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--converged must be at least 1" in p.stderr


def test_fallback_choice_rules_pick_by_their_definitions():
    """benchmarks/fallback_choice.py's rules on a table where the two models disagree."""
    module = _script("fallback_choice")
    picks = module.picks

    # columns: calibrated, Gaussian, calibrated-against-converged W2 of four heuristics
    w2 = np.array([[1.0, 9.0, 5.0], [1.5, 2.0, 4.0], [2.0, 1.0, 6.0], [8.0, 1.1, 0.5]])
    got = picks(w2, 2, 1)
    assert got["calibrated"] == 0 and got["gaussian"] == 2 and got["converged"] == 3
    # the rules that need the calibration's draws are computed apart and passed through
    assert got["regular"] == 2 and got["logsnr_within"] == 1
    # worse ranks 3, 1, 2, 3: heuristic 1 is ranked 2nd by both models
    assert got["worse_rank"] == 1
    # worse ratios 9, 2, 2, 8: a tie between 1 and 2, the first taken
    assert got["worse_ratio"] == 1
    # equal worse ranks fall to the better calibrated rank
    assert picks(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0]]), 0, 0)["worse_rank"] == 0


@pytest.mark.slow
def test_fallback_choice_reproduces_the_stored_fallbacks(tmp_path):
    """On the stored mixture fits, the guard's rule run offline (``logsnr_within``: the
    calibrated model's best heuristic, rated by the recomputed calibration (each heuristic built
    by the library and checked against the stored timesteps), or logSNR-uniform spacing where the
    model cannot rank the best above it) is the
    fallback `fit` returned in every cell, the calibrated model's best wherever that is not
    logSNR-uniform, and each rule's measured ratio is the stored FD of its pick over the best
    heuristic's."""
    proc = _run("fallback_choice.py", "--denoiser", "gmm", "--out", tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "fallback_choice_gmm.json").read_text())
    stored = json.loads((ROOT / "benchmarks" / "results" / "real_denoisers.json").read_text())
    fd = {
        (r["sampler"], r["steps"], r["schedule"]): r["metrics"]["fd"]["value"]
        for r in stored["records"]
        if r["denoiser"] == "gmm"
    }
    assert data["rows"] and "stored fallback is not" not in proc.stdout
    for row in data["rows"]:
        assert row["rules"]["logsnr_within"]["heuristic"] == row["fallback"]
        if row["fallback"] != "logsnr":
            assert row["rules"]["calibrated"]["heuristic"] == row["fallback"]
        for c in row["rules"].values():
            want = fd[(row["sampler"], row["steps"], c["heuristic"])]
            assert c["fd"] == want and c["ratio"] == pytest.approx(want / row["best_fd"])
            assert c["ratio"] >= 1.0
    # the stored runs include cells where the rule kept logSNR-uniform over the model's best
    assert any(r["rules"]["calibrated"]["heuristic"] != r["fallback"] for r in data["rows"])
    missing = tmp_path / "none.json"
    bad = _run("fallback_choice.py", "--denoiser", "gmm", "--pair", missing, missing)
    assert bad.returncode == 2 and f"no such file {missing}" in bad.stderr
    assert "Traceback" not in bad.stderr
    # a stored heuristic row whose timesteps are not the library's (a stale run), in a cell the
    # script reads (a fallback cell): one line, exit 2
    fits = ROOT / "benchmarks" / "results" / "calibrated_fits_gmm.json"
    cell = next(
        (r["sampler"], r["steps"])
        for r in json.loads(fits.read_text())["rows"]
        if r["fit"] == "calibrated" and r["fallback"] is not None
    )
    stale = json.loads(json.dumps(stored))
    row = next(
        r
        for r in stale["records"]
        if (r["denoiser"], r["sampler"], r["steps"], r["schedule"]) == ("gmm", *cell, "logsnr")
    )
    row["timesteps"] = [t + 1 if t < 900 else t for t in row["timesteps"]]
    stale_path = tmp_path / "stale.json"
    stale_path.write_text(json.dumps(stale))
    bad = _run(
        "fallback_choice.py",
        "--denoiser",
        "gmm",
        "--pair",
        stale_path,
        fits,
        "--out",
        tmp_path,
        timeout=900,
    )
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "Traceback" not in bad.stderr
    assert "'logsnr' row" in lines[0] and "is not the library's heuristic" in lines[0]


def test_reproduce_fits_bad_input_is_one_line(tmp_path):
    """reproduce_fits.py: --fits without --calibrated, and a missing --fits file, exit 2 with
    one line naming the problem."""
    missing = tmp_path / "none.json"
    for argv, want in [
        (["--fits", str(missing)], "--fits needs --calibrated"),
        (["--calibrated", "gmm", "--fits", str(missing)], f"no such file {missing}"),
        (["--polish"], "--polish needs --calibrated"),
    ]:
        proc = _run("reproduce_fits.py", *argv)
        assert proc.returncode == 2 and want in proc.stderr
        assert "Traceback" not in proc.stderr


def test_mn16_scripts_bad_input_is_one_line(tmp_path):
    """train_tiny.py --data mnist with colour, and rank_agreement.py on a folder without the
    model's paired_check files, exit 2 with one line naming the problem and write nothing."""
    out = tmp_path / "model"
    for script, argv, want in [
        ("train_tiny.py", ["--data", "mnist", "--image-channels", "3", "--out", out],
         "--data mnist is grey: leave --image-channels at 1"),
        ("rank_agreement.py", ["--denoiser", "mn16", "--stored", tmp_path],
         f"no paired_check_mn16_*.json in {tmp_path}"),
    ]:  # fmt: skip
        proc = _run(script, *argv)
        assert proc.returncode == 2 and want in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_reproduce_fits_counts_the_integer_polishes():
    """reproduce_fits.PolishCount: one entry per polish of a calibrated fit, each at least one
    batch per free level (a polish ends after evaluating every level's moves without a gain) and
    all of them within the fit's evaluations; the library's function is restored on exit."""
    import specsched as ss
    from specsched import optimize

    speed = _script("calibrated_speed")
    module = _script("reproduce_fits")
    cal, _, train = speed.photos32(size=8, n=600)
    original = optimize._polish_integers
    with module.PolishCount() as count:
        count.polishes.append([])
        # the calibrated optimiser alone: the Gaussian design is another (plain) fit's polish
        res = ss.fit(cal, 6, sampler="ddim", train_schedule=train, gaussian_design=False)
        count.calibrated.append(res.calibrated)
    assert optimize._polish_integers is original
    runs = count.polishes[-1]
    assert len(runs) == 2  # the optimum's and the best heuristic's
    assert all(n >= 5 for n, _ in runs)  # 5 free levels below the pinned first one
    assert sum(n for n, _ in runs) <= res.evaluations
    assert count.line().startswith(f"polishes: {runs[0][0]} batches to ")
    assert count.summary().startswith("fits with a polish from the best heuristic: 1;")


def test_calibrated_speed_splits_a_fit_into_its_stages():
    """benchmarks/calibrated_speed.py: the stage times of one fit cover the whole call (they are
    consecutive intervals from its start to its end), every stage of a calibrated discrete fit
    is there, and the fit is the one `fit` returns; bad counts are refused with exit status 2."""
    import time

    import specsched as ss

    module = _script("calibrated_speed")
    cal, _, train = module.photos32(size=8, n=600)  # its 32x32x3 calibration, made small
    t = time.perf_counter()
    split, res = module.stages(cal, 5, "ddim", train)
    wall = time.perf_counter() - t
    assert set(split) == {"setup + heuristics", "optimiser", "polish", "guard", "Gaussian design"}
    assert all(v >= 0 for v in split.values())
    assert 0.9 * wall <= sum(split.values()) <= wall
    direct = ss.fit(cal, 5, sampler="ddim", train_schedule=train)
    np.testing.assert_array_equal(res.schedule.timesteps, direct.schedule.timesteps)
    bad = _run("calibrated_speed.py", "--repeats", "0")
    assert bad.returncode == 2 and "--repeats and --steps must be at least 1" in bad.stderr


def test_calibration_draw_reports_the_draw_and_the_converged_power(tmp_path):
    """benchmarks/calibration_draw.py on the mixture: the JSON's draw is the calibration's, the
    gain deviations are the calibration's against the Gaussian gain, and with the Gaussian gain
    in place the converged samplers give the exact posterior mean's answer, about the data's
    power in every band (DDIM's last step to the clean end loses a little in the smallest
    modes); a negative --draws is refused."""
    proc = _run("calibration_draw.py", "--draws", "1", "--out", tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "calibration_draw_gmm.json").read_text())
    setup = bench.SETUPS["gmm"](dict(bench.PRESETS["full"]))
    cal = bench.calibrate_setup(setup).calibration
    assert data["power"] == pytest.approx(1 + cal.meta["draw"], rel=1e-9)
    _, gg = cal.gaussian_gain(setup.spectrum.variances)
    want = np.median((cal.gain / gg - 1).reshape(len(cal.log_snr), -1), 1)
    np.testing.assert_allclose(data["gain_deviation"], want, rtol=0, atol=1e-9)
    for row in data["converged"].values():
        assert all(0.85 < p < 1.05 for p in row["calibrated, Gaussian gain"])
    assert len(data["subsets"]) == 1 and data["subsets"][0]["power"] > 0
    bad = _run("calibration_draw.py", "--draws", "-1")
    assert bad.returncode == 2 and "--draws must be at least 0" in bad.stderr


def test_fid_agreement_reads_every_schedule_with_an_fid():
    """benchmarks/fid_agreement.py's rows of a cell, from the stored MNIST run and the calibrated
    fits paired with it: every distinct schedule of the run (its heuristics, then its fits; one
    row where two share their timesteps, as a fit that fell back to a heuristic does), then the
    paired fits not among them, each with its stored FID and FD."""
    module = _script("fid_agreement")
    run_path, fit_paths = module.RUNS[0]
    stored = json.loads(run_path.read_text())
    fits = [json.loads(p.read_text()) for p in fit_paths]
    rows = module.cell_rows(stored, fits, "dpmpp_2m", 10)
    first: dict[tuple, dict] = {}
    for r in sorted(stored["records"], key=lambda r: r["kind"] != "heuristic"):
        if (r["sampler"], r["steps"]) == ("dpmpp_2m", 10):
            first.setdefault(tuple(r["timesteps"]), r)
    assert len(first) < sum(
        (r["sampler"], r["steps"]) == ("dpmpp_2m", 10) for r in stored["records"]
    )  # some do share their timesteps here
    n = len(first)
    assert [tuple(r["timesteps"]) for r in rows[:n]] == list(first)
    for row, rec in zip(rows[:n], first.values(), strict=True):
        assert row["name"] == rec["schedule"] and row["heuristic"] == (rec["kind"] == "heuristic")
        assert (row["fid"], row["fd"]) == (
            rec["metrics"]["fid"]["value"],
            rec["metrics"]["fd"]["value"],
        )
    fitted = {
        tuple(r["timesteps"]): r
        for f in fits
        for r in f["rows"]
        if (r["sampler"], r["steps"]) == ("dpmpp_2m", 10) and tuple(r["timesteps"]) not in first
    }
    assert [tuple(r["timesteps"]) for r in rows[n:]] == list(fitted)
    assert [(r["fid"], r["fd"]) for r in rows[n:]] == [(f["fid"], f["fd"]) for f in fitted.values()]
    assert not any(r["heuristic"] for r in rows[n:])


def test_rank_agreement_rates_each_schedule_by_each_model():
    """benchmarks/rank_agreement.py's cell: where the measured FD is a model's own W2, that
    model's Spearman is 1 and its best heuristic is the measured best; a schedule without a
    finite FD is left out. The two models rank these schedules differently, so a swap of them
    would fail."""
    import dataclasses

    speed = _script("calibrated_speed")
    rank = _script("rank_agreement")
    cal, _, train = speed.photos32(size=8, n=600)
    tr = bench.TrainSchedule(train, 1000)
    heur = bench.heuristics_for(cal, 5, tr)
    rows = [{"schedule": h.name, "timesteps": [int(t) for t in h.timesteps]} for h in heur]
    common = sys.modules["_common"]
    w2 = {
        "calibrated": common.predicted_w2(cal, rows, "ddim", tr),
        "gaussian": common.predicted_w2(
            dataclasses.replace(cal, calibration=None), rows, "ddim", tr
        ),
    }
    assert not np.array_equal(np.argsort(w2["calibrated"]), np.argsort(w2["gaussian"]))
    for name, values in w2.items():
        measured = [dict(r, fd=float(v)) for r, v in zip(rows, values, strict=True)]
        measured.append({"schedule": "default", "timesteps": rows[0]["timesteps"], "fd": math.inf})
        got = rank.cell_agreement(cal, measured, "ddim", tr)
        assert got["schedules"] == len(rows)
        assert got[f"{name}_spearman"] == pytest.approx(1.0)
        assert (
            got[f"{name}_best"] == got["best_measured"] == rows[int(np.argmin(values))]["schedule"]
        )
