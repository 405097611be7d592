"""Shared fixtures; the oracle helpers (true spectra, projections onto modes) are in specsched.testing."""

from __future__ import annotations

import pytest

from specsched.data.builtin import powerlaw
from specsched.testing import MEANS3, true_spectrum


@pytest.fixture(scope="session")
def field_factory():
    """Draws synthetic:powerlaw fields and returns (samples, true spectrum)."""

    def make(n: int, size: int = 8, channels: int = 1, seed: int = 0):
        mean = MEANS3[:channels]
        x = powerlaw(n=n, size=size, channels=channels, mean=list(mean), seed=seed)
        return x, true_spectrum(size, channels, mean)

    return make
