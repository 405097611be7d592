"""Shared test helpers: exact Gaussian fields and their true spectra, projections onto modes."""

from __future__ import annotations

import numpy as np
import pytest

import specsched as ss
from specsched.data.builtin import powerlaw, powerlaw_spectrum

MEANS3 = (0.3, -0.2, 0.1)


def true_spectrum(size: int, channels: int, mean: tuple[float, ...], exponent: float = 2.0):
    """The exact spectrum of synthetic:powerlaw fields (no estimation error)."""
    S, M = powerlaw_spectrum(size=size, channels=channels, exponent=exponent)
    sigma = S[..., None, None] * (M @ M.T)
    return ss.Spectrum.from_cross_spectrum(sigma, np.array(mean[:channels]), (size, size))


def mode_basis(spec: ss.Spectrum) -> np.ndarray:
    """Eigenvectors of each frequency's cross-spectrum, columns ordered like spec.variances."""
    _, u = np.linalg.eigh(spec.cross_spectrum)
    return u[..., ::-1]


def to_modes(x: np.ndarray, spec: ss.Spectrum) -> np.ndarray:
    """Project pixel samples (n, C, H, W) onto the spectrum's modes: (n, *freq, C) complex."""
    X = np.fft.rfft2(x, norm="ortho")  # (n, C, *F)
    X = np.moveaxis(X, 1, -1)  # (n, *F, C)
    u = mode_basis(spec)
    return np.einsum("...ij,n...i->n...j", u.conj(), X)


def mode_tolerance(spec: ss.Spectrum, n: int, z: float = 5.0) -> np.ndarray:
    """z standard errors of a per-mode variance estimate from n samples, relative.

    A complex mode (weight 2) has |Y|^2 ~ P * Exp(1): relative SE 1/sqrt(n). A real mode (weight 1)
    has Y^2 ~ P * chi2_1: relative SE sqrt(2/n). z = 5 keeps the family-wise false alarm rate
    below 1e-4 for a few hundred modes (Bonferroni with a normal tail).
    """
    return z * np.where(spec.weights == 2, 1.0, np.sqrt(2.0)) / np.sqrt(n)


@pytest.fixture(scope="session")
def field_factory():
    """Draws synthetic:powerlaw fields and returns (samples, true spectrum)."""

    def make(n: int, size: int = 8, channels: int = 1, seed: int = 0):
        mean = MEANS3[:channels]
        x = powerlaw(n=n, size=size, channels=channels, mean=list(mean), seed=seed)
        return x, true_spectrum(size, channels, mean)

    return make
