"""The README's Python example runs as written, and deploys exactly the fitted schedule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> str:
    """The first ```python block under the README's ``## heading``."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_use_it_from_python_example_runs(monkeypatch):
    pytest.importorskip("diffusers")
    monkeypatch.chdir(ROOT)
    code = readme_block("Use it from Python")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    pipe, res, images = scope["pipe"], scope["res"], scope["images"]
    # the pipeline ran the fitted timesteps, not its own 1000 or a uniform spacing
    assert list(pipe.scheduler.timesteps.tolist()) == [int(t) for t in res.schedule.timesteps]
    assert images.shape == (4, 16, 16, 1)
    assert np.all(np.isfinite(images)) and images.min() >= 0 and images.max() <= 1
