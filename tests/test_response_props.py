"""Properties of the closed-form response, and the VE form against an independent pixel sampler."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.data.builtin import powerlaw, powerlaw_spectrum
from specsched.response import ModeDenoiser
from specsched.samplers import ddim
from specsched.testing import mode_tolerance, to_modes, true_spectrum


def _one_ddim_step_var(S, a, s, a2, s2):
    """Variance after one deterministic DDIM step, starting from the correct variance a^2 S + s^2."""
    St = torch.as_tensor(S)
    x = torch.stack([torch.zeros_like(St), torch.sqrt(a**2 * St + s**2)])  # rows: const, xi
    out = ddim(
        ModeDenoiser(St, torch.zeros_like(St)),
        x,
        torch.tensor([a, a2], dtype=torch.float64),
        torch.tensor([s, s2], dtype=torch.float64),
    )
    return (out[1:] ** 2).sum(0).numpy()


def test_deterministic_step_under_disperses():
    """DESIGN §2: from the correct variance, a DDIM step lands below the correct variance."""
    rng = np.random.default_rng(0)
    S = 10 ** rng.uniform(-4, 3, 200)
    for _ in range(50):
        lam1, lam2 = np.sort(rng.uniform(-10, 10, 2))
        lam = np.array([lam1, lam2])
        (a, a2), (s, s2) = np.sqrt(1 / (1 + np.exp(-lam))), np.sqrt(1 / (1 + np.exp(lam)))
        P = _one_ddim_step_var(S, a, s, a2, s2)
        target = a2**2 * S + s2**2
        # hand derivation: x' = A x with A = a' g + s' (1 - a g) / s, g = a S / (a^2 S + s^2)
        g = a * S / (a**2 * S + s**2)
        A = a2 * g + s2 * (1 - a * g) / s
        np.testing.assert_allclose(P, A**2 * (a**2 * S + s**2), rtol=1e-12)
        assert np.all(P <= target * (1 + 1e-12))
        assert np.all(P < target) or lam2 - lam1 < 1e-9
    # equality in the limit of coinciding levels: the deficit shrinks like the squared gap
    gaps = [1.0, 0.1, 0.01]
    deficits = []
    for gap in gaps:
        a, s = np.sqrt(0.5), np.sqrt(0.5)
        a2, s2 = np.sqrt(1 / (1 + np.exp(-gap))), np.sqrt(1 / (1 + np.exp(gap)))
        deficits.append(np.max(1 - _one_ddim_step_var(S, a, s, a2, s2) / (a2**2 * S + s2**2)))
    assert deficits[0] > deficits[1] > deficits[2] > 0
    assert deficits[2] < 1e-3 * deficits[0] * 1.5


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_output_converges_to_data_spectrum_as_steps_grow(sampler):
    spec = true_spectrum(8, 3, (0.3, -0.2, 0.1))
    w2 = []
    for steps in (5, 10, 50, 250, 1000):
        sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(steps, "trailing"))
        w2.append(ss.response(spec, sched, sampler=sampler).w2)
    assert all(b < a for a, b in itertools.pairwise(w2)), w2
    # at 1000 steps what is left is the O(1/N) discretisation error: a tiny fraction of the data
    assert w2[-1] < 1e-3 * spec.total_variance
    assert w2[-1] < 0.05 * w2[0]


def test_deterministic_output_is_below_data_variance_for_every_mode():
    """Few-step DDIM under-disperses every high-variance mode (consequence of the step property)."""
    spec = true_spectrum(16, 1, (0.0,))
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(10, "trailing"))
    r = ss.response(spec, sched, sampler="ddim")
    big = spec.variances > 1.0
    assert np.all(r.output_var[big] < spec.variances[big])


def test_divergences_match_hand_formulas():
    spec = true_spectrum(8, 3, (0.3, -0.2, 0.1))
    sched = ss.Schedule.from_timesteps([999, 700, 400, 100])
    r = ss.response(spec, sched, sampler="ddim")
    S, w, m = spec.modes()
    P, mu = r.output_var.ravel(), r.output_mean.ravel()
    w2 = np.sum(w * ((np.sqrt(S) - np.sqrt(P)) ** 2 + (mu - m) ** 2))
    kl = 0.5 * np.sum(w * (P / S - 1 - np.log(P / S) + (mu - m) ** 2 / S))
    kld = 0.5 * np.sum(w * (S / P - 1 - np.log(S / P) + (mu - m) ** 2 / P))
    assert r.w2 == pytest.approx(w2, rel=1e-12)
    assert r.kl_gen_data == pytest.approx(kl, rel=1e-12)
    assert r.kl_data_gen == pytest.approx(kld, rel=1e-12)
    assert r.contributions("w2").sum() == pytest.approx(r.w2, rel=1e-12)
    # the trace starts from N(0, I) and ends at the output
    np.testing.assert_allclose(r.trace_var[0], 1.0)
    np.testing.assert_allclose(r.trace_var[-1], r.output_var)
    np.testing.assert_allclose(r.target_var[-1], spec.variances)


# ----------------------------------------------------------------------------------------- VE
def _dense_model(size: int):
    """Dense pixel covariance of a 1-channel powerlaw field, built column by column (no modes)."""
    S, _ = powerlaw_spectrum(size=size, channels=1)
    d = size * size
    eye = np.eye(d).reshape(d, size, size)
    cols = np.fft.irfft2(S * np.fft.rfft2(eye, norm="ortho"), s=(size, size), norm="ortho")
    return cols.reshape(d, d)


def _ve_sampler(x, sigmas, cov, mu, rng=None):
    """EDM / k-diffusion VE sampling written from the papers, with the dense posterior mean.

    Deterministic: Euler on dx/dsigma = (x - D(x)) / sigma (Karras et al. 2022, Alg. 1 without the
    Heun correction). Ancestral (rng given): k-diffusion's sample_euler_ancestral, eta = 1.
    """
    d = cov.shape[0]
    for sig, nxt in itertools.pairwise(sigmas):
        D = mu + (x - mu) @ np.linalg.solve(cov + sig**2 * np.eye(d), cov).T
        if rng is None:
            x = x + (nxt - sig) * (x - D) / sig
        else:
            up = min(nxt, np.sqrt(nxt**2 * (sig**2 - nxt**2) / sig**2))
            down = np.sqrt(nxt**2 - up**2)
            x = x + (down - sig) * (x - D) / sig + up * rng.standard_normal(x.shape)
    return x


def _karras(n, smin=0.01, smax=40.0, rho=7.0):
    ramp = np.linspace(0, 1, n)
    return (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho


def test_ve_deterministic_matches_independent_dense_sampler():
    size, mu0 = 6, 0.25
    cov = _dense_model(size)
    spec = true_spectrum(size, 1, (mu0,))
    sigmas = np.append(_karras(8), 0.0)
    sched = ss.Schedule.from_sigmas(sigmas, process="ve")
    r = ss.response(spec, sched, sampler="ddim")
    rng = np.random.default_rng(3)
    x_T = sigmas[0] * rng.standard_normal((32, size * size))
    out = _ve_sampler(x_T, sigmas, cov, mu0)
    got = to_modes(out.reshape(-1, 1, size, size), spec)
    want = r.transfer * to_modes(x_T.reshape(-1, 1, size, size), spec) + r.output_mean
    assert np.max(np.abs(got - want)) < 1e-8 * np.abs(want).max()
    # VE starts from N(0, sigma_max^2): the closed form's start variance says so
    np.testing.assert_allclose(r.trace_var[0], sigmas[0] ** 2)


@pytest.mark.slow
def test_ve_ancestral_moments_match_independent_dense_sampler():
    size, mu0, n = 6, 0.25, 20_000
    cov = _dense_model(size)
    spec = true_spectrum(size, 1, (mu0,))
    sigmas = np.append(_karras(6, smax=20.0), 0.0)
    r = ss.response(spec, ss.Schedule.from_sigmas(sigmas, process="ve"), sampler="ddpm")
    rng = np.random.default_rng(11)
    out = _ve_sampler(sigmas[0] * rng.standard_normal((n, size * size)), sigmas, cov, mu0, rng)
    y = to_modes(out.reshape(-1, 1, size, size), spec)
    emp_var = np.mean(np.abs(y - r.output_mean) ** 2, axis=0)
    assert np.all(np.abs(emp_var / r.output_var - 1) < mode_tolerance(spec, n))
    assert np.all(np.abs(y.mean(0) - r.output_mean) < 5 * np.sqrt(r.output_var / n))


def test_pixel_gaussian_denoiser_equals_dense_posterior_mean():
    """The library's Fourier-domain denoiser against the dense-matrix formula (3 channels)."""
    size, C = 4, 3
    x = powerlaw(n=4000, size=size, channels=C, mean=[0.3, -0.2, 0.1], seed=5)
    spec = ss.Spectrum.from_array(x)
    # dense covariance of the circularly symmetrised estimate: average over all cyclic shifts
    dense = np.zeros((C * size * size,) * 2)
    for dy in range(size):
        for dx in range(size):
            sh = np.roll(x, (dy, dx), axis=(2, 3))
            f = (sh - x.mean(axis=(0, 2, 3), keepdims=True)).reshape(len(x), -1)
            dense += f.T @ f / len(x)
    dense /= size * size
    mu = np.repeat(spec.channel_means, size * size)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, C * size * size))
    for a, s in ((0.9, 0.3), (0.2, 0.98), (1.0, 2.0)):
        want = (
            mu
            + (xs - a * mu) @ (a * dense @ np.linalg.inv(a**2 * dense + s**2 * np.eye(len(mu)))).T
        )
        got = ss.GaussianDenoiser(spec)(
            torch.from_numpy(xs.reshape(5, C, size, size)),
            torch.tensor(a, dtype=torch.float64),
            torch.tensor(s, dtype=torch.float64),
        )
        np.testing.assert_allclose(got.numpy().reshape(5, -1), want, atol=1e-10)
