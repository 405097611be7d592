"""How the ``specsched`` command ends: after the command, exit handlers run and output is complete
even though the interpreter's teardown is skipped (``cli.entry``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import specsched as ss


@pytest.fixture(scope="module")
def spectrum_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exit") / "spec.npz"
    ss.Spectrum.from_source("synthetic:powerlaw", size=8, n=200, seed=0).save(path)
    return path


def entry(tmp_path: Path, args: list[str], before: str = "") -> subprocess.CompletedProcess:
    """Run ``cli.entry()`` as the console script does, after ``before`` (Python source)."""
    argv = f"sys.argv = ['specsched', *{args!r}]"
    code = "\n".join(["import sys", "import specsched.cli as cli", before, argv, "cli.entry()"])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )


def test_exit_handlers_run_and_piped_output_is_complete(tmp_path, spectrum_file):
    mark = tmp_path / "atexit-ran"
    p = entry(
        tmp_path,
        ["fit", str(spectrum_file), "--steps", "4", "--json"],
        before=f"import atexit; atexit.register(lambda: open({str(mark)!r}, 'w').write('x'))",
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # the whole JSON arrived through the pipe
    assert len(out["schedule"]["timesteps"]) == 4
    assert mark.read_text() == "x"  # a normal exit's handlers ran


def test_user_error_keeps_exit_code_2(tmp_path):
    p = entry(tmp_path, ["fit", str(tmp_path / "missing.npz")])
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr


def test_a_running_thread_gets_a_normal_exit(tmp_path, spectrum_file):
    # a non-daemon thread still working when the command ends is waited for, as Python would
    mark = tmp_path / "thread-done"
    before = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: (time.sleep(3), open({str(mark)!r}, 'w').write('x')))"
        ".start()"
    )
    p = entry(tmp_path, ["fit", str(spectrum_file), "--steps", "2"], before=before)
    assert p.returncode == 0, p.stderr
    assert mark.read_text() == "x"
