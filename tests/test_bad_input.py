"""Issue 13: every bad or edge input a new user tried, as they tried it.

The promise (README): an error a user can cause prints one line naming the problem and the fix,
exits with status 2, and leaves no partial file; results never hold NaN. Each test names the
issue's item it reproduces. Most call ``specsched.cli.main`` in this process (the same code path
as the command, without a Python start per case); Ctrl-C, permissions and start-up need a real
process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import specsched as ss
from specsched import SpecschedError
from specsched.cli import main, to_json

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``specsched ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_user_error(rc: int, stderr: str, *words: str) -> None:
    assert rc == 2, (rc, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr  # one clear line
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for w in words:
        assert w in lines[0], lines[0]


def python(code: str, *, cwd: Path | None = None, unprivileged: bool = False):
    """Run ``code`` in a fresh interpreter with this worktree's sources first."""
    cmd = [sys.executable, "-c", textwrap.dedent(code)]
    if unprivileged and os.geteuid() == 0:
        # root reads and writes everything: drop the capabilities that bypass file permissions
        if shutil.which("setpriv") is None:  # pragma: no cover - util-linux is everywhere
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        preexec_fn=_as_in_a_terminal,
    )


def _as_in_a_terminal() -> None:
    """A terminal delivers Ctrl-C; a runner started in the background may ignore SIGINT, and a
    child that starts with it ignored would never see the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, unprivileged: bool = False):
    return python(
        f"import sys; from specsched.cli import main; sys.exit(main({list(args)!r}))",
        cwd=cwd,
        unprivileged=unprivileged,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Small inputs, good and bad."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 8, 8))
    np.save(d / "x.npy", x)
    np.savez(d / "x.npz", x=x)
    spec = ss.Spectrum.from_source("builtin:photos", size=8, channels=1, n=400)
    spec.save(d / "spec.npz")
    ss.Schedule.from_timesteps([999, 666, 333]).save(d / "sched.json")
    return {"dir": d, "x.npy": d / "x.npy", "x.npz": d / "x.npz", "spec": d / "spec.npz"}


# ------------------------------------------------------------------------------------------
# 1, 16: corrupt .npz files, 2: truncated .npy
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["truncated", "json", "garbage", "empty"])
@pytest.mark.parametrize("command", ["spectrum", "response", "fit"])
def test_corrupt_npz_is_one_line_for_every_command(kind, command, data, tmp_path, capsys):
    good = data["x.npz"].read_bytes()
    content = {
        "truncated": good[: len(good) // 2],
        "json": b'{"variances": [1, 2, 3]}',
        "garbage": bytes(range(256)) * 4,
        "empty": b"",  # item 16: was "interrupted", exit 130
    }[kind]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    extra = {"spectrum": [], "response": ["--timesteps", "999,500"], "fit": ["--steps", "2"]}
    rc, _, err = cli(capsys, command, str(bad), *extra[command])
    assert_user_error(rc, err, "bad.npz")
    assert files_in(tmp_path) == ["bad.npz"]


def test_truncated_npy_is_named_in_cli_and_api(data, tmp_path, capsys):
    good = data["x.npy"].read_bytes()
    bad = tmp_path / "trunc.npy"
    bad.write_bytes(good[: len(good) - 100])
    rc, _, err = cli(capsys, "spectrum", str(bad), "-o", str(tmp_path / "s.npz"))
    assert_user_error(rc, err, "trunc.npy", "truncated")
    with pytest.raises(SpecschedError, match="truncated"):
        ss.Spectrum.from_source(bad)
    with pytest.raises(SpecschedError, match="truncated"):
        ss.data.load(str(bad))
    assert files_in(tmp_path) == ["trunc.npy"]


# ------------------------------------------------------------------------------------------
# 3, 10: output locations: existing folders and files, inputs, unwritable folders
# ------------------------------------------------------------------------------------------
def test_output_that_is_a_folder_or_a_file_is_refused_before_work(data, tmp_path, capsys):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "file").write_text("keep")
    spec = str(data["spec"])
    cases = [
        (["spectrum", str(data["x.npy"]), "-o", str(tmp_path / "dir.npz")], "existing folder"),
        (["fit", spec, "--steps", "2", "-o", str(tmp_path / "dir.npz")], "existing folder"),
        (["fit", spec, "--steps", "2", "--plots", str(tmp_path / "file")], "is a file"),
        (["plot", spec, "-o", str(tmp_path / "file")], "is a file"),
        (["demo", "-o", str(tmp_path / "file")], "is a file"),
        (["demo", "-o", str(tmp_path / "file" / "sub")], "is a file"),
        (["spectrum", str(data["x.npy"]), "-o", str(tmp_path / "file" / "s.npz")], "file"),
    ]
    for args, words in cases:
        rc, out, err = cli(capsys, *args)
        assert_user_error(rc, err, words)
        assert out == ""
    assert files_in(tmp_path) == ["dir.npz", "file"]
    assert not any((tmp_path / "dir.npz").iterdir())
    assert (tmp_path / "file").read_text() == "keep"


def test_output_equal_to_an_input_is_refused(data, tmp_path, capsys):
    """Item 10: `spectrum same.npz -o same.npz` replaced the data; `fit spec.npz -o spec.npz`
    wrote JSON over the spectrum."""
    same = tmp_path / "same.npz"
    shutil.copy(data["x.npz"], same)
    before = same.read_bytes()
    rc, _, err = cli(capsys, "spectrum", str(same), "-o", str(same))
    assert_user_error(rc, err, "also an input")
    spec = tmp_path / "spec.npz"
    shutil.copy(data["spec"], spec)
    rc, _, err = cli(capsys, "fit", str(spec), "--steps", "2", "-o", str(spec))
    assert_user_error(rc, err, "also an input")
    # the same file under another spelling
    rc, _, err = cli(
        capsys, "spectrum", str(same), "-o", str(tmp_path / "." / ".." / tmp_path.name / "same.npz")
    )
    assert_user_error(rc, err, "also an input")
    assert same.read_bytes() == before
    assert ss.Spectrum.load(spec).n_samples == 400
    assert files_in(tmp_path) == ["same.npz", "spec.npz"]


def test_unwritable_output_folder_fails_before_any_work(data, tmp_path):
    """Item 3: a read-only folder failed after the whole fit (and after sampling)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    tiny16 = Path(__file__).resolve().parents[1] / "benchmarks" / "models" / "tiny16"
    code = f"""
        import sys, time
        import specsched.generation, specsched.optimize
        from specsched.cli import main
        def boom(*a, **k):
            raise AssertionError("the work started before the output was checked")
        specsched.optimize._fit = boom
        specsched.generation.generate = boom
        for args in [
            ["spectrum", {str(data["x.npy"])!r}, "-o", {str(ro / "s.npz")!r}],
            ["fit", {str(data["spec"])!r}, "--steps", "2", "-o", {str(ro / "s.json")!r}],
            ["fit", {str(data["spec"])!r}, "--steps", "2", "--plots", {str(ro / "plots")!r}],
            ["plot", {str(data["spec"])!r}, "-o", {str(ro / "plots")!r}],
            ["demo", "-o", {str(ro / "demo")!r}],
            ["evaluate", "--pipeline", {str(tiny16)!r}, "--reference", "builtin:photos",
             "--heuristics", "--out", {str(ro / "e.json")!r}],
        ]:
            rc = main(args)
            print("rc", rc, flush=True)
    """
    try:
        p = python(code, unprivileged=True)
    finally:
        ro.chmod(0o755)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stdout.split() == ["rc", "2"] * 6, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 6 and all(
        ln.startswith("error: cannot write to the folder") for ln in lines
    )
    assert files_in(ro) == []


def test_unreadable_source_folder_and_file(data, tmp_path):
    """Item 4 (and 1's unreadable file): PermissionError tracebacks."""
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a.png")
    locked = tmp_path / "locked.npz"
    shutil.copy(data["spec"], locked)
    folder.chmod(0o000)
    locked.chmod(0o000)
    try:
        p1 = run_cli("spectrum", str(folder), unprivileged=True)
        p2 = run_cli("fit", str(locked), "--steps", "2", unprivileged=True)
    finally:
        folder.chmod(0o755)
        locked.chmod(0o644)
    assert_user_error(p1.returncode, p1.stderr, "cannot read the folder", str(folder))
    assert_user_error(p2.returncode, p2.stderr, "locked.npz")


def test_path_the_system_rejects_is_one_line(capsys):
    rc, _, err = cli(capsys, "spectrum", "x" * 5000)
    assert_user_error(rc, err, "cannot read")


# ------------------------------------------------------------------------------------------
# 5, 12: constant data
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, 0.25, -1.0])
def test_constant_data_are_refused_with_a_reason(value, tmp_path, capsys):
    x = np.full((30, 3, 8, 8), value)
    x[:, 1] = 0.5  # channels may differ: still constant
    np.save(tmp_path / "c.npy", x)
    for args in (
        ["response", str(tmp_path / "c.npy"), "--timesteps", "999,500"],  # item 5
        ["fit", str(tmp_path / "c.npy"), "--steps", "3", "-o", str(tmp_path / "s.json")],
        ["compare", str(tmp_path / "c.npy"), "--steps", "3"],
    ):
        rc, _, err = cli(capsys, *args)
        assert_user_error(rc, err, "zero variance")
    # the spectrum itself is exact: zero variances, the channel means
    spec = ss.Spectrum.from_array(x)
    assert np.all(spec.variances == 0)
    np.testing.assert_allclose(spec.channel_means, [value, 0.5, value], atol=1e-15)
    assert np.all(ss.Spectrum.from_array(x[:, :, :4, :4], kind="pca").variances == 0)
    with pytest.raises(SpecschedError, match="zero variance"):
        ss.fit(spec, 3)
    assert files_in(tmp_path) == ["c.npy"]


def test_constant_channel_beside_a_varying_one_gives_exact_zero_modes():
    rng = np.random.default_rng(1)
    x = np.stack([np.full((50, 8, 8), 0.3), rng.standard_normal((50, 8, 8))], axis=1)
    spec = ss.Spectrum.from_array(x)
    assert np.all(spec.variances[..., 1] == 0) and np.all(spec.variances[..., 0] > 0)
    res = ss.fit(spec, 3, starts=1)
    assert np.isfinite(res.value) and all(np.isfinite(r.kl_gen_data) for _, r in res.baselines)


# ------------------------------------------------------------------------------------------
# 6, 11, 19: damaged spectrum and schedule files
# ------------------------------------------------------------------------------------------
def _damaged_spectra(src: Path, d: Path) -> dict[str, Path]:
    z = dict(np.load(src))
    header = json.loads(str(z["header"]))
    out = {}

    def save(name, **changes):
        out[name] = d / f"{name}.npz"
        np.savez(out[name], **{**z, **changes})

    v = z["variances"].copy()
    v[0, 0, 0] = np.nan
    save("nan", variances=v)
    save("negative", variances=-z["variances"])
    save("n_samples", header=np.array(json.dumps({**header, "n_samples": -5})))
    save("shapes", weights=z["weights"][:2])
    save("channels", channel_means=np.zeros(3))
    save("text", variances=np.array(["a", "b"]))
    return out


@pytest.mark.parametrize("name", ["nan", "negative", "n_samples", "shapes", "channels", "text"])
def test_damaged_spectrum_file_is_refused(name, data, tmp_path, capsys):
    bad = _damaged_spectra(data["spec"], tmp_path)[name]
    out = tmp_path / "s.json"
    for args in (["fit", str(bad), "--steps", "2", "-o", str(out)], ["spectrum", str(bad)]):
        rc, _, err = cli(capsys, *args)
        if args[0] == "spectrum":  # a spectrum file is not data either
            assert rc == 2 and "Traceback" not in err
            continue
        assert_user_error(rc, err, bad.name, "damaged spectrum")
    with pytest.raises(SpecschedError, match="damaged spectrum"):
        ss.Spectrum.load(bad)
    assert not out.exists()


@pytest.mark.parametrize(
    "change,words",
    [
        ({"alpha": "abc"}, "alpha must be a list of numbers"),
        ({"alpha": ["abc", 1.0]}, "alpha must be numbers"),
        ({"s": None}, "s must be numbers"),
        ({"alpha": [[1, 2], [3]]}, "flat list"),
        ({"process": 7}, "unknown noise process"),
        ({"meta": 5}, "malformed"),
        ({"s": [0.9, 0.0]}, "alpha has 4 levels but s has 2"),  # item 19
    ],
)
def test_malformed_schedule_json_is_one_line(change, words, data, tmp_path, capsys):
    d = ss.Schedule.from_timesteps([999, 666, 333]).to_dict()
    d.update(timesteps=None, **change)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    rc, _, err = cli(capsys, "response", str(data["spec"]), "--schedule", str(bad))
    assert_user_error(rc, err, words, "bad.json")
    with pytest.raises(SpecschedError, match=words.split()[0]):
        ss.Schedule.from_dict(d)


def test_mismatched_alpha_and_s_lengths_say_so():
    with pytest.raises(SpecschedError, match="alpha has 3 levels but s has 2"):
        ss.Schedule(np.array([0.1, 0.5, 1.0]), np.array([0.9, 0.0]))


# ------------------------------------------------------------------------------------------
# 7, 21: the Python API with wrong types
# ------------------------------------------------------------------------------------------
def test_api_takes_the_obvious_conversions(data):
    spec = ss.Spectrum.load(data["spec"])
    sched = ss.Schedule.from_timesteps([999, 500])
    base = ss.response(spec, sched)
    # a path to a saved spectrum, a list of timesteps
    assert ss.response(str(data["spec"]), [999, 500]).w2 == pytest.approx(base.w2, rel=1e-12)
    assert ss.response(data["spec"], np.array([999, 500])).w2 == pytest.approx(base.w2, rel=1e-12)
    x = np.load(data["x.npy"])
    by_array = ss.response(x, sched).w2
    assert by_array == pytest.approx(ss.response(ss.Spectrum.from_array(x), sched).w2, rel=1e-12)
    assert ss.fit(str(data["spec"]), 2, starts=1).schedule.steps == 2
    # torch tensors: requires-grad and bfloat16 are read like arrays
    t = torch.from_numpy(x).requires_grad_()
    assert ss.Spectrum.from_array(t).n_samples == 40
    bf = torch.from_numpy(x).to(torch.bfloat16)
    ref = ss.Spectrum.from_array(bf.float().numpy())
    np.testing.assert_allclose(ss.Spectrum.from_array(bf).variances, ref.variances, rtol=1e-12)
    assert ss.Spectrum.from_source(bf).n_samples == 40


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda spec, s: ss.response(None, s), "spec must be a Spectrum"),
        (lambda spec, s: ss.response(42, s), "got int"),
        (lambda spec, s: ss.response(spec, None), "sched must be a Schedule"),
        (lambda spec, s: ss.response(spec, "999,500"), "sched must be a Schedule"),
        (lambda spec, s: ss.response(spec, ["999", "500"]), "timesteps must be numbers"),
        (lambda spec, s: ss.response(spec, [999.5, 500]), "integers"),
        (lambda spec, s: ss.response(spec, s, eta="0.5"), "eta must be a number"),
        (lambda spec, s: ss.response(spec, s, eta=True), "eta must be a number"),
        (lambda spec, s: ss.response(spec, s, sampler=3), "sampler must be a name"),
        (lambda spec, s: ss.response(spec, s, sampler="unipc", order="2"), "order"),
        (lambda spec, s: ss.fit(spec, "3"), "steps must be a positive whole number"),
        (lambda spec, s: ss.fit(spec, 2.5), "2.5"),
        (lambda spec, s: ss.fit(None, 3), "spec must be a Spectrum"),
        (lambda spec, s: ss.fit(spec, 3, eta="0.5"), "eta must be a number"),
        (lambda spec, s: ss.compare(spec, [[999, 500]]), "Schedule objects"),
        (lambda spec, s: ss.spaced_timesteps(2.5), "positive integer (got 2.5)"),  # item 21
        (lambda spec, s: ss.spaced_timesteps("3"), "got '3'"),
        (lambda spec, s: ss.spaced_timesteps(True), "positive integer"),
        (lambda spec, s: ss.Schedule.from_sigmas("80,1"), "not the text"),
        (lambda spec, s: ss.Schedule.from_timesteps(torch.tensor([True])), "numbers"),
        (lambda spec, s: ss.Spectrum.from_array([[["a"]]]), "not numeric"),
    ],
)
def test_api_wrong_types_raise_specsched_error(call, words, data):
    spec = ss.Spectrum.load(data["spec"])
    sched = ss.Schedule.from_timesteps([999, 500])
    with pytest.raises(SpecschedError) as exc:
        call(spec, sched)
    assert words in str(exc.value)


# ------------------------------------------------------------------------------------------
# 8: no diffusers one-liner is a note, continuous models get k-diffusion sigmas
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,words",
    [
        (["--process", "ve", "--sigma-min", "0.002", "--sigma-max", "80"], "sample_euler"),
        (
            ["--train-schedule", "none", "--sigma-min", "0.002", "--sigma-max", "80"],
            "sample_euler",
        ),
        (
            ["--process", "ve", "--sigma-min", "0.002", "--sigma-max", "80", "--sampler", "ipndm"],
            "no k-diffusion function",
        ),
        (["--sampler", "unipc"], "note: no diffusers one-liner"),
        (["--sampler", "euler_ancestral"], "note: no diffusers one-liner"),
        (["--for", "diffusers:UniPCMultistepScheduler"], "note: no diffusers one-liner"),
    ],
)
def test_fit_without_a_one_liner_succeeds_with_a_note(args, words, data, tmp_path, capsys):
    out = tmp_path / "s.json"
    rc, stdout, err = cli(capsys, "fit", str(data["spec"]), "--steps", "3", *args, "-o", str(out))
    assert rc == 0, err
    assert words in stdout and "wrote" in stdout
    sched = ss.Schedule.load(out)
    if "sample_" in words:  # the sigmas printed are the schedule's, in k-diffusion's convention
        line = next(ln for ln in stdout.splitlines() if ln.startswith("sigmas = "))
        printed = json.loads(line.removeprefix("sigmas = torch.tensor(").removesuffix(")"))
        np.testing.assert_allclose(printed, sched.s / sched.alpha, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# 9, 13: extreme scales, strict JSON
# ------------------------------------------------------------------------------------------
def test_extreme_scales_are_estimated_exactly_or_refused(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((30, 1, 8, 8))
    ref = ss.Spectrum.from_array(x)
    for k in (-480, -300, 300, 480):  # powers of two: the scaled data are exact
        spec = ss.Spectrum.from_array(np.ldexp(x, k))
        np.testing.assert_allclose(spec.variances, np.ldexp(ref.variances, 2 * k), rtol=1e-12)
        np.testing.assert_allclose(spec.channel_means, np.ldexp(ref.channel_means, k), rtol=1e-9)
    with pytest.raises(SpecschedError, match="too large"):
        ss.Spectrum.from_array(x * 1e200)
    with pytest.raises(SpecschedError, match="too small"):
        ss.Spectrum.from_array(x * 1e-200)
    np.save(tmp_path / "big.npy", x * 1e200)
    out = tmp_path / "s.json"
    for cmd in (["spectrum", "-o", str(tmp_path / "s.npz")], ["fit", "-o", str(out)]):
        rc, _, err = cli(capsys, cmd[0], str(tmp_path / "big.npy"), *cmd[1:])
        assert_user_error(rc, err, "too large")
    assert files_in(tmp_path) == ["big.npy"]


def test_response_of_a_representable_but_absurd_scale_is_refused_not_nan():
    x = np.random.default_rng(0).standard_normal((30, 1, 8, 8))
    assert np.isfinite(ss.response(ss.Spectrum.from_array(np.ldexp(x, 508)), [999, 500]).w2)
    spec = ss.Spectrum.from_array(np.ldexp(x, 511))  # variances held, but the W2 sum overflows
    with pytest.raises(SpecschedError, match="rescale"):
        ss.response(spec, [999, 500])
    with pytest.raises(SpecschedError, match="rescale"):
        ss.fit(spec, 3)


def test_json_is_strict_null_for_non_finite_numbers(data, capsys):
    text = to_json({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float64("-inf")})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None}

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    rc, out, err = cli(capsys, "compare", str(data["spec"]), "--steps", "3", "--json")
    assert rc == 0, err
    table = json.loads(out, parse_constant=no_constants)["table"]
    assert all(np.isfinite(row["w2"]) for row in table)


# ------------------------------------------------------------------------------------------
# 14, 20: progress and Ctrl-C
# ------------------------------------------------------------------------------------------
def test_fit_reports_its_stages(data):
    calls = []
    ss.fit(str(data["spec"]), 3, progress=lambda *a: calls.append(a))
    done = [c[1] for c in calls]
    total = {c[2] for c in calls}
    assert len(total) == 1 and done == sorted(done) and calls[-1] == ("done", *total, *total)
    assert any(c[0].startswith("optimiser start") for c in calls)


def test_fit_progress_bar_on_request(data, capsys):
    rc, out, err = cli(capsys, "fit", str(data["spec"]), "--steps", "3", "--progress", "--json")
    assert rc == 0 and "fit: done" in err and "stages" in err
    json.loads(out)  # the bar never touches stdout


def test_ctrl_c_during_a_fit_stops_cleanly(data, tmp_path):
    """Item 14: a real SIGINT while the optimiser runs: exit 130, one line, no file."""
    out = tmp_path / "s.json"
    code = f"""
        import os, signal, sys
        import specsched.optimize as opt
        real = opt._Problem.minimise
        def minimise(self, *a, **k):
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C now
            return real(self, *a, **k)
        opt._Problem.minimise = minimise
        from specsched.cli import main
        sys.exit(main(["fit", {str(data["spec"])!r}, "--steps", "3", "-o", {str(out)!r}]))
    """
    p = python(code, cwd=tmp_path)
    assert p.returncode == 130, p.stderr
    assert p.stderr.strip() == "interrupted"
    assert files_in(tmp_path) == []


def test_ctrl_c_while_the_command_line_starts_is_quiet(data, tmp_path):
    """Item 20: a SIGINT while torch is being imported (the longest part of start-up)."""
    code = f"""
        import importlib.abc, os, signal, sys
        class CtrlC(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    os.kill(os.getpid(), signal.SIGINT)
                return None
        sys.meta_path.insert(0, CtrlC())
        from specsched.cli import main  # what the `specsched` script does
        sys.exit(main(["fit", {str(data["spec"])!r}, "--steps", "3"]))
    """
    p = python(code, cwd=tmp_path)
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.strip() == "interrupted"


def test_package_import_does_not_load_torch():
    p = python("import sys, specsched, specsched.cli; print('torch' in sys.modules)")
    assert p.stdout.strip() == "False", p.stderr


# ------------------------------------------------------------------------------------------
# 15: a mistyped --vae path
# ------------------------------------------------------------------------------------------
def test_missing_vae_folder_fails_at_once_without_the_hub(tmp_path):
    p = python(
        """
        import sys
        from specsched.cli import main
        rc = main(["spectrum", "builtin:photos", "--size", "8", "--vae", "sd15/vea"])
        print(rc, "diffusers" in sys.modules, "huggingface_hub" in sys.modules)
        """,
        cwd=tmp_path,
    )
    assert p.stdout.split() == ["2", "False", "False"], p.stderr
    assert_user_error(2, p.stderr, "sd15/vea", "does not exist")


# ------------------------------------------------------------------------------------------
# 17, 18, 22: image folders, array shapes, binary data, option names
# ------------------------------------------------------------------------------------------
def test_float_tiff_in_a_folder_is_skipped_and_named(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    Image.fromarray(rng.random((8, 8)).astype(np.float32)).save(tmp_path / "f.tif")
    rc, out, err = cli(capsys, "spectrum", str(tmp_path), "--json")
    assert rc == 0, err
    assert "skipped 1" in err and "f.tif" in err and "32-bit float" in err
    assert json.loads(out)["n_samples"] == 4
    rc, _, err = cli(capsys, "spectrum", str(tmp_path), "--strict")
    assert_user_error(rc, err, "f.tif", "32-bit float")


def test_array_shape_is_reported_as_it_is(tmp_path, capsys):
    np.save(tmp_path / "five.npy", np.zeros((10, 2, 3, 8, 8)))
    rc, _, err = cli(capsys, "spectrum", str(tmp_path / "five.npy"))
    assert_user_error(rc, err, "(10, 2, 3, 8, 8)")
    np.save(tmp_path / "amb.npy", np.zeros((10, 3, 8)))
    rc, _, err = cli(capsys, "spectrum", str(tmp_path / "amb.npy"))
    assert_user_error(rc, err, "(10, 3, 8)", "--layout")


def test_binary_data(tmp_path, capsys):
    """Item 22: bool arrays are binary data at full range (-1, +1); 0/1 integers are refused
    because integers mean [0, 255] images."""
    rng = np.random.default_rng(0)
    b = rng.random((50, 1, 8, 8)) > 0.3
    spec = ss.Spectrum.from_array(b)
    ref = ss.Spectrum.from_array(np.where(b, 1.0, -1.0))
    np.testing.assert_allclose(spec.variances, ref.variances, rtol=1e-12)
    assert spec.channel_means[0] == pytest.approx(2 * b.mean() - 1)
    np.save(tmp_path / "bin.npy", b.astype(np.uint8))
    rc, _, err = cli(capsys, "spectrum", str(tmp_path / "bin.npy"))
    assert_user_error(rc, err, "0 and 1", "bool")
    ok = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)  # real 8-bit images are unchanged
    assert ss.Spectrum.from_array(ok).meta["scaling"] == "uint8 [0, 255] -> [-1, 1]"


def test_builtin_sample_count_has_the_command_lines_name_too(capsys):
    a = ss.Spectrum.from_source("builtin:photos", size=8, channels=1, n=300)
    b = ss.Spectrum.from_source("builtin:photos", size=8, channels=1, num_samples=300)
    np.testing.assert_array_equal(a.variances, b.variances)
    with pytest.raises(SpecschedError, match="not both"):
        ss.Spectrum.from_source("builtin:photos", size=8, n=300, num_samples=300)
    rc, out, _ = cli(
        capsys, "spectrum", "builtin:photos", "--size", "8", "--channels", "1",
        "--num-samples", "300", "--json",
    )  # fmt: skip
    assert rc == 0 and json.loads(out)["total_variance"] == pytest.approx(a.total_variance)


def test_sigterm_and_signals_leave_no_temporary_file(data, tmp_path):
    """What held in the issue, kept: a killed run leaves no partial or temporary file."""
    out = tmp_path / "s.npz"
    code = f"""
        import os, signal, sys
        import specsched.spectrum as sp
        real = sp.SpectrumAccumulator.finalize
        def finalize(self, **meta):
            os.kill(os.getpid(), signal.SIGINT)
            return real(self, **meta)
        sp.SpectrumAccumulator.finalize = finalize
        from specsched.cli import main
        sys.exit(main(["spectrum", {str(data["x.npy"])!r}, "-o", {str(out)!r}]))
    """
    p = python(code, cwd=tmp_path)
    assert p.returncode == 130 and "Traceback" not in p.stderr, p.stderr
    assert files_in(tmp_path) == []
