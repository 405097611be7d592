"""What every benchmark script writes the same way: the stamp of its JSON and the JSON itself.

``stamp()`` is the date, machine and versions a result was measured with; ``write_json`` writes a
result file whole or not at all (a temporary file renamed into place); ``predicted_w2`` rates
stored result rows (their ``timesteps``) under a spectrum model; ``mnist16`` is MNIST at 16x16
(the data of the mn16 model). The scripts import this
module from their own folder (``sys.path`` holds a script's folder when it is run).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import specsched


def versions() -> dict[str, str]:
    """Versions of specsched, Python, numpy and, where this run imported them, torch and scipy."""
    out = {"specsched": specsched.__version__, "python": platform.python_version()}
    out["numpy"] = np.__version__
    for name in ("torch", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = module.__version__
    return out


def stamp(threads: str | None = None) -> dict[str, Any]:
    """``{"date", "machine", "versions"}`` of a benchmark result.

    Parameters
    ----------
    threads : str, optional
        How the run used the CPUs (e.g. ``"2 processes x 1 torch thread(s)"``); default: torch's
        thread count, where torch is imported.
    """
    if threads is None and "torch" in sys.modules:
        threads = f"torch threads {sys.modules['torch'].get_num_threads()}"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs" + (f", {threads}" if threads else "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions(),
    }


def machine_details() -> dict[str, Any]:
    """The machine in detail, for timing benchmarks: CPU model, usable cores, load, threads, git.

    ``stamp()`` is the short form every result carries; a speed figure also needs what else the
    machine was doing (``load_average``) and which code ran (``git_commit``, ``git_dirty``).
    """
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    cpu_model = platform.processor() or platform.machine()
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu_model = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=here, check=False)
        return done.stdout.strip()

    try:
        commit, dirty = git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain"))
    except OSError:
        commit, dirty = "", None
    torch = sys.modules.get("torch")
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        **versions(),
        "specsched_path": str(Path(specsched.__file__).parent),
        "git_commit": commit or None,
        "git_dirty": dirty,
    }


def write_json(path: Path, payload: Any, indent: int = 1) -> None:
    """Write ``payload`` as JSON to ``path`` (its folder created), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=indent) + "\n")
    os.replace(tmp, path)


def save_result(
    path: Path, script: str, argv: list[str] | None, payload: dict, threads: str | None = None
) -> int:
    """Write a benchmark's JSON to ``path``: the command line that made it (``script`` with
    ``argv``, or the process's arguments), :func:`stamp`, then ``payload``; print where, and
    return 0 (the script's exit code)."""
    args = " ".join(argv or sys.argv[1:])
    write_json(path, {"command": f"python benchmarks/{script} {args}", **stamp(threads), **payload})
    print(f"wrote {path}")
    return 0


def predicted_w2(
    model: Any, rows: list[dict], sampler: str, train: Any, target: Any = None
) -> np.ndarray:
    """W2 that the spectrum ``model`` (plain or calibrated) predicts for each stored row's
    ``timesteps`` under ``sampler``, on the training schedule ``train``; against ``target``
    (per-mode variances and means, as :func:`specsched.response` takes) instead of the data."""
    from specsched import response
    from specsched.schedules import Schedule

    return np.array(
        [
            response(
                model,
                Schedule.from_timesteps(r["timesteps"], train_schedule=train),
                sampler,
                target=target,
            ).w2
            for r in rows
        ]
    )


#: MNIST training images the mn16 model trains on (the first 50,000; the last 10,000 are its floor's)
MNIST16_TRAIN = 50_000


def mnist16(split: str = "train", start: int = 0, n: int | None = None) -> np.ndarray:
    """MNIST at 16x16: images ``start .. start + n`` of ``split``, each padded from 28x28 to 32x32
    with black (-1) and averaged over 2x2 blocks, float64 in [-1, 1], shape ``(n, 1, 16, 16)``.

    The data of the mn16 model (``train_tiny.py --data mnist``): centred digits, not stationary,
    with most pixels at the black background, far from a Gaussian's histogram.
    """
    from specsched.data.builtin import mnist

    x = mnist(split=split, n=None if n is None else start + n)[start:]  # not the whole split
    x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return x.reshape(len(x), 1, 16, 2, 16, 2).mean((3, 5))
