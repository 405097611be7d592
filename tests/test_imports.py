"""What ``import specsched``, ``fit`` and the ``fit`` command load (issue 14: start-up time).

Behaviour, not timing: each case runs in a fresh interpreter (a subprocess, as a user runs it) and
reports which heavy optional packages ended up in ``sys.modules``. ``fit`` needs none of them;
diffusers alone costs seconds at start-up, for the Align Your Steps lists that are data here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import specsched as ss

SRC = str(Path(ss.__file__).resolve().parents[1])  # the sources under test, first on the path
HEAVY = ("diffusers", "datasets", "dask", "matplotlib", "sklearn", "skimage", "transformers")

REPORT = f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def loaded_after(code: str, *args: str) -> list[str]:
    """The heavy packages in ``sys.modules`` once ``code`` has run in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(
        [sys.executable, "-c", code + REPORT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_import_specsched_loads_no_heavy_package():
    assert loaded_after("import specsched") == []


def test_deployment_exports_load_no_heavy_package():
    """``ss.diffusers_kwargs`` and ``ss.generate`` are exported, and diffusers loads only when a
    scheduler is made (the helpers take the user's scheduler)."""
    code = "import specsched as ss; ss.diffusers_kwargs, ss.pinned_scheduler, ss.generate"
    assert loaded_after(code) == []


def test_fit_with_every_baseline_loads_no_heavy_package():
    code = """
import numpy as np
import specsched as ss
from specsched.heuristics import AYS_TABLES
f = np.fft.fftfreq(16)
S = 1.0 / (f[:, None] ** 2 + np.fft.rfftfreq(16)[None, :] ** 2 + 1e-2)
spec = ss.Spectrum.from_cross_spectrum(S[..., None, None], np.zeros(1), (16, 16))
res = ss.fit(spec, 10)
names = [b.name for b, _ in res.baselines]
assert "ays" in names, names  # the AYS lists are evaluated, without diffusers
assert list(res.baselines[names.index("ays")][0].timesteps) == list(
    AYS_TABLES["StableDiffusionTimesteps"]
)
"""
    assert loaded_after(code) == []


def test_fit_command_loads_no_heavy_package(tmp_path):
    spec = ss.Spectrum.from_cross_spectrum(
        np.linspace(2.0, 0.1, 8 * 5)[:, None, None].reshape(8, 5, 1, 1), np.zeros(1), (8, 8)
    )
    path = tmp_path / "spectrum.npz"
    spec.save(path)
    code = """
import sys
from specsched.cli import main
code = main(sys.argv[1:])
assert code == 0, code
"""
    assert loaded_after(code, "fit", str(path), "--steps", "5", "--json") == []
