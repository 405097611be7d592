"""The Gaussian-mixture oracle denoiser: exactness against closed forms, quadrature and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specsched.errors import SpecschedError
from specsched.mixture import GaussianMixture, MixtureDenoiser


def random_spd(rng: np.random.Generator, d: int, scale: float = 1.0) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def random_mixture(seed: int, k: int, shape: tuple[int, ...], spread: float = 3.0):
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    w = rng.uniform(0.5, 1.5, k)
    w /= w.sum()
    mu = spread * rng.standard_normal((k, d))
    covs = np.stack([random_spd(rng, d, 0.5) for _ in range(k)])
    return GaussianMixture(w, mu, covs, shape)


def t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


@pytest.mark.parametrize(("alpha", "s"), [(0.9, 0.3), (0.4, 1.2), (1.0, 0.0)])
def test_single_component_equals_gaussian_posterior(alpha, s):
    gm = random_mixture(0, 1, (1, 4, 4))
    den = MixtureDenoiser(gm)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 1, 4, 4))
    mu, sigma = gm.means[0], gm.covs[0]
    A = alpha**2 * sigma + s**2 * np.eye(16)
    y = x.reshape(5, 16) - alpha * mu
    expected = mu + (alpha * sigma @ np.linalg.solve(A, y.T)).T
    out = den(t(x), t(alpha), t(s))
    assert out.shape == (5, 1, 4, 4) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy().reshape(5, 16), expected, rtol=1e-10, atol=1e-10)


def test_alpha_zero_returns_mixture_mean_and_calls_are_deterministic():
    gm = random_mixture(2, 3, (6,))
    den = MixtureDenoiser(gm)
    x = t(np.random.default_rng(0).standard_normal((4, 6)))
    out = den(x, t(0.0), t(1.0))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(gm.mean(), (4, 6)), atol=1e-14)
    a, s = t(0.7), t(0.5)
    first = den(x, a, s)
    second = den.denoise(x, a, s)
    assert torch.equal(first, second)
    r = den.responsibilities(x, a, s)
    np.testing.assert_allclose(r.sum(1).numpy(), 1.0, atol=1e-12)


def _orthogonality_zscores(den, x0, x, alpha, s):
    """z-scores of the sample means of (x0 - x0_hat) * f(x), f in {1, x_j, x_j^2}."""
    err = x0 - den(t(x), t(alpha), t(s)).numpy()  # (n, d)
    n = x.shape[0]
    feats = np.concatenate([np.ones((n, 1)), x, x**2], axis=1)  # (n, 1 + 2d)
    prod = err[:, :, None] * feats[:, None, :]  # (n, d, F)
    return prod.mean(0) / (prod.std(0, ddof=1) / np.sqrt(n))


@pytest.mark.parametrize(("alpha", "s"), [(0.95, 0.3), (0.5, 0.9)])
def test_orthogonality_monte_carlo(alpha, s):
    """E[(x0 - E[x0|x]) f(x)] = 0 for every f; check f = 1, x_j, x_j^2 within 5 standard errors."""
    gm = random_mixture(3, 3, (6,), spread=2.0)
    n = 40_000
    x0 = gm.sample(n, seed=4)
    x = alpha * x0 + s * np.random.default_rng(5).standard_normal(x0.shape)
    z = _orthogonality_zscores(MixtureDenoiser(gm), x0, x, alpha, s)
    assert np.abs(z).max() < 5.0, np.abs(z).max()


def test_orthogonality_has_power_against_linear_denoiser():
    """The best linear (moment-matched Gaussian) denoiser fails the x_j^2 check: the test is not vacuous."""
    gm = random_mixture(3, 3, (6,), spread=2.0)
    alpha, s, n = 0.5, 0.9, 40_000
    gauss = GaussianMixture(np.ones(1), gm.mean()[None], gm.covariance()[None], gm.shape)
    x0 = gm.sample(n, seed=4)
    x = alpha * x0 + s * np.random.default_rng(5).standard_normal(x0.shape)
    z = _orthogonality_zscores(MixtureDenoiser(gauss), x0, x, alpha, s)
    # linear features are still orthogonal for the LMMSE estimator ...
    assert np.abs(z[:, : 1 + 6]).max() < 5.0
    # ... but the quadratic ones are not
    assert np.abs(z[:, 7:]).max() > 10.0


def test_matches_quadrature_1d():
    gm = GaussianMixture(
        np.array([0.2, 0.5, 0.3]),
        np.array([[-2.0], [0.3], [2.5]]),
        np.array([[[0.2]], [[0.5]], [[0.1]]]),
        (1,),
    )
    den = MixtureDenoiser(gm)
    grid = np.linspace(-12.0, 12.0, 400_001)
    dens = sum(
        w * np.exp(-0.5 * (grid - m[0]) ** 2 / c[0, 0]) / np.sqrt(2 * np.pi * c[0, 0])
        for w, m, c in zip(gm.weights, gm.means, gm.covs, strict=True)
    )
    for alpha, s in [(0.9, 0.2), (0.3, 1.0), (1.0, 0.05)]:
        xs = np.array([-2.5, -0.7, 0.0, 0.4, 1.9, 3.0])
        lik = np.exp(-0.5 * ((xs[:, None] - alpha * grid[None]) / s) ** 2)
        p = lik * dens
        expected = np.trapezoid(p * grid, grid, axis=1) / np.trapezoid(p, grid, axis=1)
        out = den(t(xs[:, None]), alpha, s).numpy()[:, 0]
        np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)


def test_matches_quadrature_2d():
    gm = random_mixture(7, 2, (2,), spread=1.5)
    den = MixtureDenoiser(gm)
    g = np.linspace(-9.0, 9.0, 1201)
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], 1)  # (G, 2)
    dens = np.zeros(len(pts))
    for w, m, c in zip(gm.weights, gm.means, gm.covs, strict=True):
        r = pts - m
        q = np.einsum("gi,ij,gj->g", r, np.linalg.inv(c), r)
        dens += w * np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    alpha, s = 0.8, 0.5
    xs = np.array([[0.0, 0.0], [1.0, -1.5], [-2.0, 0.7]])
    out = den(t(xs), alpha, s).numpy()
    for i, xi in enumerate(xs):
        p = dens * np.exp(-0.5 * ((xi - alpha * pts) ** 2).sum(1) / s**2)
        expected = (p[:, None] * pts).sum(0) / p.sum()  # uniform-grid trapezoid (tails vanish)
        np.testing.assert_allclose(out[i], expected, atol=1e-6, rtol=0)


def test_sample_moments():
    gm = random_mixture(11, 3, (2, 3))
    n = 200_000
    x = gm.sample(n, seed=12)
    assert x.shape == (n, 2, 3)
    flat = x.reshape(n, -1)
    cov = gm.covariance()
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(flat.mean(0) - gm.mean()) < 5 * se_mean)
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.abs(np.cov(flat.T) - cov).max() / scale.max() < 0.02
    np.testing.assert_array_equal(gm.sample(10, seed=3), gm.sample(10, seed=3))


def test_fit_recovers_weights():
    true = GaussianMixture(
        np.array([0.3, 0.7]),
        np.array([[-3.0, 0.0, 1.0], [3.0, 1.0, -1.0]]),
        np.stack([0.5 * np.eye(3), np.diag([0.3, 0.8, 0.4])]),
        (3,),
    )
    x = true.sample(4000, seed=0)
    fit = GaussianMixture.fit(x, k=2, seed=0)
    assert fit.shape == (3,)
    order = np.argsort(fit.means[:, 0])
    np.testing.assert_allclose(fit.weights[order], true.weights, atol=0.03)
    np.testing.assert_allclose(fit.means[order], true.means, atol=0.15)


def test_bad_input():
    with pytest.raises(SpecschedError):
        GaussianMixture(np.array([0.5, 0.6]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2), (2,))
    gm = random_mixture(0, 2, (4,))
    with pytest.raises(SpecschedError):
        MixtureDenoiser(gm)(torch.zeros(3, 5, dtype=torch.float64), 0.5, 0.5)
