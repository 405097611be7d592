"""Shared fixtures; the oracle helpers (true spectra, projections onto modes) are in specsched.testing."""

from __future__ import annotations

import os

import pytest
import threadpoolctl
import torch

from specsched.data.builtin import powerlaw
from specsched.testing import MEANS3, true_spectrum

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` (the test command) runs two workers on CI's two cores: one thread each (torch
    # and BLAS), here and in the processes the tests start (the CLI, the benchmark), so that
    # threads do not compete for the core the other worker is using, and so that a computation
    # sums in the same order in a test's process and in the CLI process it is compared with
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)


@pytest.fixture(scope="session")
def field_factory():
    """Draws synthetic:powerlaw fields and returns (samples, true spectrum)."""

    def make(n: int, size: int = 8, channels: int = 1, seed: int = 0):
        mean = MEANS3[:channels]
        x = powerlaw(n=n, size=size, channels=channels, mean=list(mean), seed=seed)
        return x, true_spectrum(size, channels, mean)

    return make
