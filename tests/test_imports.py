"""What ``import specsched``, ``fit`` and the ``fit`` command load (issue 14: start-up time).

Behaviour, not timing: each case runs in a fresh interpreter (a subprocess, as a user runs it) and
reports which heavy optional packages ended up in ``sys.modules``. ``fit`` needs none of them;
diffusers alone costs seconds at start-up, for the Align Your Steps lists that are data here.
"""

from __future__ import annotations

import ast
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


SPECTRUM = "specsched.spectrum"


def _imported_modules(path: Path, package: str, runtime: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports (anywhere in it: lazy imports too), for a
    module of ``package``; with ``runtime``, not those of ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            # ``from .. import spectrum`` imports a module by name
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_data_sources_do_not_import_the_spectrum_module():
    """One-way dependency (issue 10): ``specsched.spectrum`` uses ``specsched.data`` (to estimate
    from a source), never the reverse; the shared array helpers live in ``specsched._arrays``."""
    data = Path(ss.__file__).resolve().parent / "data"
    files = sorted(data.glob("*.py"))
    assert len(files) >= 5
    back_edges = {
        f.name: sorted(m for m in _imported_modules(f, "specsched.data") if m.startswith(SPECTRUM))
        for f in files
    }
    assert {name: mods for name, mods in back_edges.items() if mods} == {}


def test_import_scan_sees_relative_and_lazy_imports(tmp_path):
    """The scan above catches the circle as it was: relative imports inside functions."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from ..spectrum import to_float\n    from .. import spectrum\n"
    )
    found = _imported_modules(module, "specsched.data")
    assert {"specsched.spectrum", "specsched.spectrum.to_float"} <= found
    module.write_text("from .._arrays import to_float\nfrom .sources import Source\n")
    assert not any(m.startswith(SPECTRUM) for m in _imported_modules(module, "specsched.data"))


def _runtime_import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at run time (lazy imports included, the
    ``if TYPE_CHECKING:`` blocks left out); package ``__init__`` files are not nodes."""
    root = Path(ss.__file__).resolve().parent
    modules = {
        ".".join(("specsched", *f.relative_to(root).with_suffix("").parts)): f
        for f in root.rglob("*.py")
        if f.name != "__init__.py"
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = _imported_modules(path, name.rsplit(".", 1)[0], runtime=True)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_package_has_no_import_circle():
    """Issue 10: every runtime import between specsched's modules goes one way."""
    graph = _runtime_import_graph()
    assert len(graph) > 25 and "specsched.spectrum" in graph["specsched.optimize"]
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert circles == []
