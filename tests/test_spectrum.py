"""Tests for the spectrum estimator (specsched.spectrum; DESIGN §2, "Modes" and "Estimator").

Every expectation is derived independently of the estimator: by hand (the rfft conjugate
symmetry, the exact spectrum of synthetic:powerlaw fields), by brute force on the full FFT grid,
or from dense d x d covariances built with plain numpy.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import specsched as ss
from specsched.data.builtin import powerlaw, powerlaw_spectrum
from specsched.errors import SpecschedError
from specsched.spectrum import (
    PCA_MAX_DIM,
    Spectrum,
    SpectrumAccumulator,
    as_channels_first,
    infer_layout,
)
from specsched.testing import MEANS3

# ------------------------------------------------------------------------------------------
# independent helpers
# ------------------------------------------------------------------------------------------


def _stored_index(idx: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The rfft-grid bin that holds full-grid bin ``idx`` (itself, or its conjugate partner)."""
    if idx[-1] <= shape[-1] // 2:
        return idx
    return tuple((-i) % m for i, m in zip(idx, shape, strict=True))


def _bruteforce_weights(shape: tuple[int, ...]) -> np.ndarray:
    """How many full-FFT-grid bins each rfft-grid bin stands for."""
    freq = (*shape[:-1], shape[-1] // 2 + 1)
    w = np.zeros(freq)
    for idx in itertools.product(*(range(m) for m in shape)):
        w[_stored_index(idx, shape)] += 1
    return w


def _self_conjugate(shape: tuple[int, ...]) -> np.ndarray:
    """True on the rfft bins equal to their own conjugate (the coefficient there is real)."""
    freq = (*shape[:-1], shape[-1] // 2 + 1)
    out = np.zeros(freq, dtype=bool)
    for idx in itertools.product(*(range(m) for m in freq)):
        out[idx] = tuple((-i) % m for i, m in zip(idx, shape, strict=True)) == idx
    return out


def _bruteforce_radius(shape: tuple[int, ...]) -> np.ndarray:
    """Radial frequency |f| (cycles per sample) of each rfft bin, from the index arithmetic."""
    freq = (*shape[:-1], shape[-1] // 2 + 1)
    r = np.zeros(freq)
    for idx in itertools.product(*(range(m) for m in freq)):
        r[idx] = np.sqrt(sum((min(i, m - i) / m) ** 2 for i, m in zip(idx, shape, strict=True)))
    return r


def _explicit_dft(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Orthonormal DFT of ``x`` (n, C, *shape) on the rfft grid, as an explicit sum of exponentials."""
    freq = (*shape[:-1], shape[-1] // 2 + 1)
    pos = np.array(list(itertools.product(*(range(m) for m in shape))))  # (P, ndim)
    ks = np.array(list(itertools.product(*(range(m) for m in freq))))  # (F, ndim)
    phase = np.exp(-2j * np.pi * (ks / np.array(shape)) @ pos.T) / np.sqrt(len(pos))  # (F, P)
    X = x.reshape(*x.shape[:2], -1) @ phase.T  # (n, C, F)
    return X.reshape(*x.shape[:2], *freq)


def _shift_permutations(channels: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Index permutations of the flattened (C, *shape) vector for every cyclic shift."""
    grid = np.arange(channels * int(np.prod(shape))).reshape(channels, *shape)
    axes = tuple(range(1, 1 + len(shape)))
    return [
        np.roll(grid, s, axis=axes).ravel() for s in itertools.product(*(range(m) for m in shape))
    ]


def _dense_centred_cov(x: np.ndarray) -> np.ndarray:
    """(1/n) sum (x - mu)(x - mu)^T, mu the per-channel mean over samples and positions."""
    mu = x.mean(axis=tuple(i for i in range(x.ndim) if i != 1))
    xc = x - mu.reshape(1, -1, *([1] * (x.ndim - 2)))
    flat = xc.reshape(len(x), -1)
    return flat.T @ flat / len(x)


def _nonstationary(rng: np.random.Generator, n: int, channels: int, shape: tuple[int, ...]):
    """Correlated, non-stationary samples with a non-constant per-pixel mean."""
    d = channels * int(np.prod(shape))
    A = rng.standard_normal((d, d)) * rng.uniform(0.2, 2.0, d)
    b = rng.normal(0.5, 1.0, d)
    return (rng.standard_normal((n, d)) @ A.T + b).reshape(n, channels, *shape)


def _layout(channels_first_ndim: int) -> str:
    return "NCL" if channels_first_ndim == 3 else "NCHW"


def _assert_same_spectrum(a: Spectrum, b: Spectrum, rtol: float = 1e-12) -> None:
    scale = float(np.abs(a.variances).max())
    np.testing.assert_allclose(a.variances, b.variances, rtol=rtol, atol=rtol * scale)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_allclose(a.channel_means, b.channel_means, rtol=rtol, atol=rtol)
    # Eigenvector signs are a convention of the eigensolver: compare the means up to sign.
    mscale = float(np.abs(a.means).max()) + 1.0
    np.testing.assert_allclose(np.abs(a.means), np.abs(b.means), rtol=1e-9, atol=1e-9 * mscale)
    assert a.n_samples == b.n_samples
    if a.cross_spectrum is not None:
        np.testing.assert_allclose(a.cross_spectrum, b.cross_spectrum, atol=rtol * scale)


# ------------------------------------------------------------------------------------------
# 1. recovery of a known spectrum
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_recovers_exact_powerlaw_spectrum(channels):
    """Every mode within 5 standard errors of the exact eigenvalues of S[k] * M @ M.T.

    Standard errors, derived: a mode on a self-conjugate bin is real Gaussian, so its sample
    variance has relative SE sqrt(2/n); every other bin (including (ky, 0) with ky != 0, which
    has weight 1 but a complex coefficient) is circular complex, relative SE 1/sqrt(n). For
    distinct eigenvalues of a (complex) Wishart matrix the asymptotic eigenvalue variance equals
    that of the variance along the true eigenvector, so the same SE holds for every eigen-mode.
    """
    n, size = 20000, 8
    mean = MEANS3[:channels]
    x = powerlaw(n=n, size=size, channels=channels, mean=list(mean), seed=1)
    spec = Spectrum.from_array(x)

    S, M = powerlaw_spectrum(size=size, channels=channels)
    lam = np.linalg.eigvalsh(M @ M.T)[::-1]
    expected = S[..., None] * lam  # (size, size // 2 + 1, C), largest first
    assert spec.variances.shape == expected.shape
    real = _self_conjugate((size, size))[..., None]
    rel_se = np.where(real, np.sqrt(2.0 / n), 1.0 / np.sqrt(n))
    rel_err = np.abs(spec.variances / expected - 1)
    assert np.all(rel_err < 5 * rel_se), float(np.max(rel_err / rel_se))
    # ... and not trivially: the estimate is noisy at roughly the predicted level.
    assert 0.3 < np.sqrt(np.mean((rel_err / rel_se) ** 2)) < 2.0

    # Channel means: the per-sample spatial mean of channel c has variance
    # E|X_c(0)|^2 / P = S[0, 0] (M M^T)_cc / P, so the grand mean has SE sqrt(that / n).
    P = size * size
    se_mu = np.sqrt(S[0, 0] * np.diag(M @ M.T) / (P * n))
    assert np.all(np.abs(spec.channel_means - np.array(mean)) < 5 * se_mu)

    # Total variance: sum_k w_k S_k estimates P * tr(M M^T) (unit-variance components).
    var_total = np.sum(spec.weights**2 * expected**2 * rel_se**2)
    assert abs(spec.total_variance - P * np.trace(M @ M.T)) < 5 * np.sqrt(var_total)
    assert spec.n_samples == n and spec.channels == channels and spec.signal_shape == (8, 8)


# ------------------------------------------------------------------------------------------
# 2. weights and frequencies
# ------------------------------------------------------------------------------------------

SHAPES = [(1,), (2,), (7,), (8,), (4, 4), (5, 5), (4, 7), (7, 4), (6, 5), (3, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_weights_count_conjugate_partners(shape, channels):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, channels, *shape))
    spec = Spectrum.from_array(x, layout=_layout(x.ndim))

    dim = channels * int(np.prod(shape))
    assert spec.weights.sum() == dim and spec.dim == dim
    expected = _bruteforce_weights(shape)
    np.testing.assert_array_equal(spec.weights, np.repeat(expected[..., None], channels, -1))
    # Weight 1 exactly where the last-axis index is 0 or N/2 (N even), 2 elsewhere.
    last = np.arange(shape[-1] // 2 + 1)
    one = (last == 0) | (2 * last == shape[-1])
    assert set(np.unique(spec.weights[..., ~one, :])) <= {2.0}
    assert set(np.unique(spec.weights[..., one, :])) == {1.0}
    np.testing.assert_allclose(
        spec.frequencies, np.repeat(_bruteforce_radius(shape)[..., None], channels, -1), atol=1e-15
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_weighted_rfft_power_equals_full_grid_power(shape):
    """Parseval on the rfft grid: sum_k w_k |X(k)|^2 over rfft bins == sum over the full grid."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((3, 1, *shape))
    spec = Spectrum.from_array(x0, layout=_layout(x0.ndim))
    w = spec.weights[..., 0]
    axes = tuple(range(-len(shape), 0))
    for _ in range(3):
        x = rng.standard_normal((4, *shape))
        full = np.sum(np.abs(np.fft.fftn(x, axes=axes, norm="ortho")) ** 2, axis=axes)
        half = np.sum(w * np.abs(np.fft.rfftn(x, axes=axes, norm="ortho")) ** 2, axis=axes)
        np.testing.assert_allclose(half, full, rtol=1e-12)
        np.testing.assert_allclose(full, np.sum(x**2, axis=axes), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# 3. exact merging and streaming
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fourier", "pca"])
@pytest.mark.parametrize("channels,shape", [(3, (4, 6)), (2, (5,))])
def test_merge_and_batches_equal_one_pass(kind, channels, shape):
    rng = np.random.default_rng(2)
    a = _nonstationary(rng, 37, channels, shape)
    b = _nonstationary(rng, 51, channels, shape) + 0.3
    both = np.concatenate([a, b])
    layout = _layout(both.ndim)
    one_pass = Spectrum.from_array(both, layout=layout, kind=kind, batch_size=10_000)
    assert one_pass.n_samples == 88

    acc = SpectrumAccumulator(shape, channels, kind=kind)
    acc.update(a).update(b)
    acc_a = SpectrumAccumulator(shape, channels, kind=kind).update(a)
    acc_b = SpectrumAccumulator(shape, channels, kind=kind).update(b)
    candidates = [
        acc.finalize(),
        acc_a.merge(acc_b).finalize(),
        (acc_a + acc_b).finalize(),
        (acc_b + acc_a).finalize(),
        Spectrum.from_array(both, layout=layout, kind=kind, batch_size=1),
        Spectrum.from_array(both, layout=layout, kind=kind, batch_size=7),
    ]
    for spec in candidates:
        _assert_same_spectrum(one_pass, spec)
    # Merging makes a new accumulator: the inputs are untouched.
    assert (acc_a.n, acc_b.n) == (37, 51)
    _assert_same_spectrum(acc_a.finalize(), Spectrum.from_array(a, layout=layout, kind=kind))


def test_finalize_leaves_accumulator_usable():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 20, 2, 4, 4))
    acc = SpectrumAccumulator((4, 4), 2).update(a)
    first = acc.finalize()
    state = acc.sum_xx.copy()
    acc.finalize()
    np.testing.assert_array_equal(acc.sum_xx, state)
    acc.update(b)
    _assert_same_spectrum(acc.finalize(), Spectrum.from_array(np.concatenate([a, b])))
    assert first.n_samples == 20


# ------------------------------------------------------------------------------------------
# 4. multichannel modes against a dense covariance
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels,shape", [(3, (4, 4)), (3, (6,)), (2, (3, 5)), (1, (4, 6))])
def test_modes_equal_eigenvalues_of_shift_symmetrised_dense_covariance(channels, shape):
    """The Fourier modes are the eigenvalues of the cyclic-shift average of the dense covariance.

    Averaging (1/n) sum (x - mu)(x - mu)^T over all cyclic shifts kills every coupling between
    distinct frequencies, leaving a block-circulant matrix whose eigenvalues are those of the
    per-frequency C x C cross-spectra, each full-grid bin once, i.e. each rfft mode repeated by
    its weight. The data are deliberately non-stationary (and have a per-pixel mean) so that
    subtracting the wrong mean or mis-weighting a bin would show.
    """
    rng = np.random.default_rng(4)
    n = 40
    x = _nonstationary(rng, n, channels, shape)
    spec = Spectrum.from_array(x, layout=_layout(x.ndim))

    dense = _dense_centred_cov(x)
    perms = _shift_permutations(channels, shape)
    sym = sum(dense[np.ix_(p, p)] for p in perms) / len(perms)
    expected = np.sort(np.linalg.eigvalsh(sym))
    got = np.sort(np.repeat(spec.variances.ravel(), spec.weights.ravel().astype(int)))
    assert got.size == dense.shape[0]
    scale = expected.max()
    np.testing.assert_allclose(got, np.clip(expected, 0, None), rtol=1e-10, atol=1e-10 * scale)
    # Total variance is the trace of the dense covariance (no symmetrisation needed).
    np.testing.assert_allclose(spec.total_variance, np.trace(dense), rtol=1e-12)

    # The cross-spectra themselves: mean of X X^H with X the explicit DFT of x - mu.
    mu = x.mean(axis=tuple(i for i in range(x.ndim) if i != 1))
    X = _explicit_dft(x - mu.reshape(1, -1, *([1] * len(shape))), shape)
    X = np.moveaxis(X, 1, -1)  # (n, *freq, C)
    cross = np.einsum("n...i,n...j->...ij", X, X.conj()) / n
    np.testing.assert_allclose(spec.cross_spectrum, cross, atol=1e-12 * scale)


# ------------------------------------------------------------------------------------------
# 5. the DC mean
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels,shape", [(3, (4, 4)), (2, (6,)), (3, (5, 3))])
def test_means_live_on_dc_modes(channels, shape):
    rng = np.random.default_rng(5)
    n = 60
    mu_true = np.array([0.5, -1.0, 2.0])[:channels]
    x = rng.standard_normal((n, channels, *shape)) * rng.uniform(0.5, 2, channels).reshape(
        1, -1, *([1] * len(shape))
    )
    x += mu_true.reshape(1, -1, *([1] * len(shape)))
    spec = Spectrum.from_array(x, layout=_layout(x.ndim))
    P = int(np.prod(shape))

    spatial = x.reshape(n, channels, P).mean(-1)  # per-sample channel means
    mu = spatial.mean(0)
    np.testing.assert_allclose(spec.channel_means, mu, rtol=1e-13)

    dc = (0,) * len(shape)
    off_dc = np.ones(spec.means.shape[:-1], dtype=bool)
    off_dc[dc] = False
    assert np.all(spec.means[off_dc] == 0)
    np.testing.assert_allclose(np.sum(spec.weights * spec.means**2), P * mu @ mu, rtol=1e-12)

    # DC cross-spectrum = P * (biased) covariance of the per-sample channel means.
    sigma_dc = P * np.cov(spatial, rowvar=False, bias=True).reshape(channels, channels)
    evals, U = np.linalg.eigh(sigma_dc)
    evals, U = evals[::-1], U[:, ::-1]
    np.testing.assert_allclose(spec.variances[dc], evals, rtol=1e-11)
    np.testing.assert_allclose(np.abs(spec.means[dc]), np.abs(U.T @ mu * np.sqrt(P)), rtol=1e-9)
    # Basis-free pairing of means with variances: sum m^2 / S = P mu^T Sigma_dc^-1 mu.
    np.testing.assert_allclose(
        np.sum(spec.means[dc] ** 2 / spec.variances[dc]),
        P * mu @ np.linalg.solve(sigma_dc, mu),
        rtol=1e-10,
    )


@pytest.mark.parametrize("shape", [(4, 4), (6,)])
def test_single_channel_dc_mean_has_the_sign_of_the_data(shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, *shape)) - 0.8
    spec = Spectrum.from_array(x, layout="NHW" if len(shape) == 2 else "NL")
    dc = (0,) * len(shape)
    np.testing.assert_allclose(spec.means[dc], [np.sqrt(np.prod(shape)) * x.mean()], rtol=1e-12)


# ------------------------------------------------------------------------------------------
# 6. PCA kind
# ------------------------------------------------------------------------------------------


def test_pca_modes_are_eigenvalues_of_the_dense_covariance():
    rng = np.random.default_rng(7)
    n, C, shape = 300, 2, (3, 3)
    x = _nonstationary(rng, n, C, shape)
    spec = Spectrum.from_array(x, kind="pca")
    flat = x.reshape(n, -1)
    cov = np.cov(flat, rowvar=False, bias=True)
    mean = flat.mean(0)

    expected = np.linalg.eigvalsh(cov)[::-1]
    scale = expected[0]
    np.testing.assert_allclose(spec.variances, expected, rtol=1e-10, atol=1e-12 * scale)
    assert spec.kind == "pca" and spec.variances.shape == (18,)
    np.testing.assert_array_equal(spec.weights, np.ones(18))
    assert np.all(np.isnan(spec.frequencies)) and spec.cross_spectrum is None
    np.testing.assert_allclose(spec.channel_means, x.mean(axis=(0, 2, 3)), rtol=1e-13)
    # Means projected onto the eigenbasis; checked through basis-free invariants.
    np.testing.assert_allclose(np.sum(spec.means**2), mean @ mean, rtol=1e-12)
    np.testing.assert_allclose(
        np.sum(spec.means**2 * spec.variances), mean @ cov @ mean, rtol=1e-10
    )
    np.testing.assert_allclose(
        np.sum(spec.means**2 / spec.variances), mean @ np.linalg.solve(cov, mean), rtol=1e-8
    )
    assert spec.total_variance == pytest.approx(np.trace(cov), rel=1e-12)


def test_pca_rank_deficient_covariance_is_clipped_at_zero():
    """n centred samples span n - 1 dimensions: the rest of the modes are (clipped) zeros."""
    rng = np.random.default_rng(8)
    spec = Spectrum.from_array(rng.standard_normal((10, 4, 4)), kind="pca")
    assert np.all(spec.variances >= 0)
    assert np.sum(spec.variances > 1e-10 * spec.variances[0]) == 9


def test_pca_dimension_limit():
    side = int(np.sqrt(PCA_MAX_DIM))
    SpectrumAccumulator((side, side), 1, kind="pca")  # exactly at the limit: allowed
    with pytest.raises(SpecschedError, match="pca"):
        SpectrumAccumulator((side, side + 1), 1, kind="pca")
    with pytest.raises(SpecschedError, match="pca"):
        Spectrum.from_array(np.zeros((2, 3, 40, 40)), kind="pca")
    with pytest.raises(SpecschedError, match="kind"):
        Spectrum.from_array(np.zeros((2, 4, 4)), kind="dct")


# ------------------------------------------------------------------------------------------
# 7. layouts and scaling
# ------------------------------------------------------------------------------------------


def test_layouts_give_the_same_spectrum():
    rng = np.random.default_rng(9)
    x = _nonstationary(rng, 25, 3, (6, 6))  # NCHW
    ref = Spectrum.from_array(x)
    _assert_same_spectrum(ref, Spectrum.from_array(np.ascontiguousarray(x.transpose(0, 2, 3, 1))))
    _assert_same_spectrum(ref, Spectrum.from_array(x.transpose(0, 2, 3, 1), layout="NHWC"))
    # Channels-last batches straight into the accumulator.
    acc = SpectrumAccumulator((6, 6), 3).update(x.transpose(0, 2, 3, 1), channels_first=False)
    _assert_same_spectrum(ref, acc.finalize())

    g = x[:, 0]
    grey = Spectrum.from_array(g)  # NHW
    _assert_same_spectrum(grey, Spectrum.from_array(g[:, None]))  # NCHW
    _assert_same_spectrum(grey, Spectrum.from_array(g[..., None]))  # NHWC

    s = x[:, :, 0]  # (n, 3, 6): multichannel 1-D signals
    ncl = Spectrum.from_array(s, layout="NCL")
    assert ncl.signal_shape == (6,) and ncl.channels == 3
    # A 1-D signal is a 1 x L image.
    as_image = Spectrum.from_array(s[:, :, None, :], layout="NCHW")
    np.testing.assert_allclose(as_image.variances[0], ncl.variances, rtol=1e-12)
    np.testing.assert_array_equal(as_image.weights[0], ncl.weights)
    nl = Spectrum.from_array(s[:, 1])  # NL
    _assert_same_spectrum(nl, Spectrum.from_array(s[:, 1:2], layout="NCL"))


@pytest.mark.parametrize(
    "shape,layout",
    [
        ((10, 6), "NL"),
        ((10, 8, 8), "NHW"),
        ((10, 3, 8, 8), "NCHW"),
        ((10, 8, 8, 3), "NHWC"),
        ((10, 1, 8, 8), "NCHW"),
        ((10, 8, 8, 1), "NHWC"),
        ((10, 3, 5, 7), "NCHW"),  # non-square: the small axis is the channel axis
        ((10, 5, 7, 3), "NHWC"),
    ],
)
def test_infer_layout(shape, layout):
    assert infer_layout(shape) == layout
    xc = as_channels_first(np.zeros(shape))
    assert xc.ndim == len(layout) + (1 if layout in ("NL", "NHW") else 0)


@pytest.mark.parametrize("shape", [(10, 5, 7), (10, 3, 6), (10, 4, 4, 4), (10, 8, 8, 8), (10,)])
def test_ambiguous_or_bad_shapes_raise(shape):
    with pytest.raises(SpecschedError, match="layout"):
        infer_layout(shape)
    with pytest.raises(SpecschedError, match="layout"):
        Spectrum.from_array(np.zeros(shape))


def test_explicit_layout_resolves_ambiguity():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((12, 5, 7))
    as_images = Spectrum.from_array(x, layout="NHW")
    assert (as_images.signal_shape, as_images.channels) == ((5, 7), 1)
    assert as_images.variances.shape == (5, 4, 1)
    as_signals = Spectrum.from_array(x, layout="NCL")
    assert (as_signals.signal_shape, as_signals.channels) == ((7,), 5)
    assert as_signals.variances.shape == (4, 5)
    cube = rng.standard_normal((12, 4, 4, 4))
    a = Spectrum.from_array(cube, layout="NCHW")
    b = Spectrum.from_array(np.moveaxis(cube, 1, -1), layout="NHWC")
    _assert_same_spectrum(a, b)
    with pytest.raises(SpecschedError, match="layout"):
        Spectrum.from_array(x, layout="NCHW")  # wrong number of axes
    with pytest.raises(SpecschedError, match="layout"):
        Spectrum.from_array(x, layout="HWN")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_integer_images_are_scaled_to_unit_range(dtype):
    rng = np.random.default_rng(11)
    u8 = rng.integers(0, 256, size=(20, 3, 6, 6)).astype(dtype)
    u8[0, 0, 0, 0], u8[0, 0, 0, 1] = 0, 255
    spec = Spectrum.from_array(u8, batch_size=6)
    ref = Spectrum.from_array(u8.astype(np.float64) / 127.5 - 1.0)
    _assert_same_spectrum(ref, spec)
    np.testing.assert_allclose(
        spec.channel_means, u8.mean(axis=(0, 2, 3)) / 127.5 - 1.0, rtol=1e-12
    )
    assert spec.meta["scaling"] != ref.meta["scaling"]


@pytest.mark.parametrize("bad", [-1, 256, 1000])
def test_integer_data_outside_byte_range_raise(bad):
    x = np.zeros((4, 6, 6), dtype=np.int32)
    x[2, 1, 1] = bad
    with pytest.raises(SpecschedError, match=r"0, 255"):
        Spectrum.from_array(x)


def test_memmap_streams_to_the_same_spectrum(tmp_path):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((50, 8, 8, 3))
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=x.shape)
    mm[:] = x
    mm.flush()
    streamed = Spectrum.from_array(np.load(tmp_path / "x.npy", mmap_mode="r"), batch_size=8)
    _assert_same_spectrum(Spectrum.from_array(x), streamed)


# ------------------------------------------------------------------------------------------
# 8. bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data_raise(value):
    x = np.zeros((4, 6, 6))
    x[1, 2, 3] = value
    with pytest.raises(SpecschedError, match="NaN or Inf"):
        Spectrum.from_array(x)
    acc = SpectrumAccumulator((6, 6), 1).update(np.random.default_rng(0).random((3, 1, 6, 6)))
    before = acc.finalize()
    with pytest.raises(SpecschedError, match="NaN or Inf"):
        acc.update(x[:, None])
    assert acc.n == 3  # a rejected batch leaves no trace
    _assert_same_spectrum(before, acc.finalize())


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_samples_raise(n):
    with pytest.raises(SpecschedError, match="at least 2 samples"):
        Spectrum.from_array(np.zeros((n, 4, 4)))
    with pytest.raises(SpecschedError, match="at least 2 samples"):
        Spectrum.from_array(np.zeros((n, 4, 4)), kind="pca")


@pytest.mark.parametrize("batch", [(3, 1, 4, 5), (3, 2, 4, 4), (3, 4, 4), (3, 1, 4, 4, 1)])
def test_mismatched_sample_shape_on_update_raises(batch):
    acc = SpectrumAccumulator((4, 4), 1).update(np.zeros((2, 1, 4, 4)))
    with pytest.raises(SpecschedError, match="sample shape"):
        acc.update(np.zeros(batch))
    assert acc.n == 2


@pytest.mark.parametrize(
    "other",
    [((4, 5), 1, "fourier"), ((4, 4), 2, "fourier"), ((4, 4), 1, "pca"), ((16,), 1, "fourier")],
)
def test_merging_different_estimates_raises(other):
    acc = SpectrumAccumulator((4, 4), 1)
    shape, channels, kind = other
    with pytest.raises(SpecschedError, match="merge"):
        acc.merge(SpectrumAccumulator(shape, channels, kind=kind))
    with pytest.raises(SpecschedError, match="merge"):
        _ = SpectrumAccumulator(shape, channels, kind=kind) + acc


@pytest.mark.parametrize("args", [((), 1), ((4, 4, 4), 1), ((4, 0), 1), ((4, 4), 0)])
def test_accumulator_rejects_bad_geometry(args):
    with pytest.raises(SpecschedError):
        SpectrumAccumulator(*args)


@pytest.mark.parametrize("dtype", [np.complex128, object])
def test_non_numeric_data_raise(dtype):
    with pytest.raises(SpecschedError, match="dtype"):
        Spectrum.from_array(np.zeros((3, 4, 4), dtype=dtype))


@pytest.mark.parametrize("batch_size", [0, -3])
def test_non_positive_batch_size_raises_specsched_error(batch_size):
    with pytest.raises(SpecschedError):
        Spectrum.from_array(np.zeros((10, 4, 4)), batch_size=batch_size)


# ------------------------------------------------------------------------------------------
# 9. persistence
# ------------------------------------------------------------------------------------------

_ARRAYS = ("variances", "weights", "means", "frequencies", "channel_means", "cross_spectrum")


@pytest.mark.parametrize("kind", ["fourier", "pca"])
@pytest.mark.parametrize("name", ["spec.npz", "spec.bin"])
def test_save_load_round_trip(tmp_path, kind, name):
    rng = np.random.default_rng(13)
    spec = Spectrum.from_array(
        _nonstationary(rng, 30, 3, (4, 4)), kind=kind, source="unit test: ünïcode"
    )
    path = tmp_path / name
    spec.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    back = Spectrum.load(str(path))
    for attr in _ARRAYS:
        a, b = getattr(spec, attr), getattr(back, attr)
        if a is None:
            assert b is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, attr
        np.testing.assert_array_equal(a, b, err_msg=attr)
    for attr in ("kind", "signal_shape", "channels", "n_samples", "meta"):
        assert getattr(back, attr) == getattr(spec, attr), attr
    assert isinstance(back.signal_shape, tuple)
    assert back.meta["source"] == "unit test: ünïcode"
    assert back.summary() == spec.summary()


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(SpecschedError, match="does not exist"):
        Spectrum.load(tmp_path / "nope.npz")


def _write_other_npz(path: Path, what: str) -> None:
    if what == "no header":
        np.savez(path, variances=np.ones(3))
    elif what == "other format":
        np.savez(path, header=np.array(json.dumps({"format": "something/2"})), a=np.ones(2))
    elif what == "header not json":
        np.savez(path, header=np.array("not json {"))
    elif what == "text file":
        path.write_text("hello")
    elif what == "npy file":
        with open(path, "wb") as fh:
            np.save(fh, np.arange(4))
    elif what == "pickled header":
        np.savez(path, header=np.array([{"format": "specsched.spectrum/1"}], dtype=object))


@pytest.mark.parametrize(
    "what",
    ["no header", "other format", "header not json", "text file", "npy file", "pickled header"],
)
def test_load_non_spectrum_file_raises(tmp_path, what):
    path = tmp_path / "other.npz"
    _write_other_npz(path, what)
    with pytest.raises(SpecschedError, match="not a specsched spectrum"):
        Spectrum.load(path)


@pytest.mark.parametrize("header", ["[1, 2]", '{"format": "specsched.spectrum/1"}'])
def test_load_malformed_spectrum_file_raises(tmp_path, header):
    path = tmp_path / "bad.npz"
    np.savez(path, header=np.array(header))
    with pytest.raises(SpecschedError):
        Spectrum.load(path)


def test_save_into_missing_folder_raises_and_writes_nothing(tmp_path):
    spec = Spectrum.from_array(np.random.default_rng(14).standard_normal((5, 4, 4)))
    with pytest.raises(SpecschedError, match="does not exist"):
        spec.save(tmp_path / "missing" / "spec.npz")
    assert list(tmp_path.rglob("*")) == []


def test_failed_save_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    rng = np.random.default_rng(15)
    old = Spectrum.from_array(rng.standard_normal((5, 4, 4)))
    path = tmp_path / "spec.npz"
    old.save(path)
    content = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        Path(file).write_bytes(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    new = Spectrum.from_array(rng.standard_normal((7, 4, 4)))
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["spec.npz"]
    assert path.read_bytes() == content


# ------------------------------------------------------------------------------------------
# 10. radial profile and summary
# ------------------------------------------------------------------------------------------


def _bruteforce_radial_profile(power_full: np.ndarray, bins: int):
    """Mean of the power over full-grid bins (DC excluded) in equal radial bins up to sqrt(2)/2."""
    shape = power_full.shape
    edges = np.linspace(0, 0.5 * np.sqrt(len(shape)), bins + 1)
    sums, counts = np.zeros(bins), np.zeros(bins)
    for idx in itertools.product(*(range(m) for m in shape)):
        r = np.sqrt(sum((min(i, m - i) / m) ** 2 for i, m in zip(idx, shape, strict=True)))
        if r == 0:
            continue
        b = min(int(np.searchsorted(edges, r, side="right")) - 1, bins - 1)
        sums[b] += power_full[idx]
        counts[b] += 1
    keep = counts > 0
    return 0.5 * (edges[1:] + edges[:-1])[keep], sums[keep] / counts[keep]


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_radial_profile_of_powerlaw(exponent):
    size = 32
    S_half, M = powerlaw_spectrum(size=size, channels=2, exponent=exponent)
    spec = Spectrum.from_cross_spectrum(
        S_half[..., None, None] * (M @ M.T), [0.1, 0.2], (size,) * 2
    )
    f, p = spec.radial_profile()
    assert p.shape == (f.size, 2)

    # Independent: the same power law evaluated on the full grid and binned by brute force.
    fy = np.fft.fftfreq(size)
    full = (fy[:, None] ** 2 + fy[None, :] ** 2 + size**-2.0) ** (-exponent / 2)
    full /= full.mean()
    lam = np.linalg.eigvalsh(M @ M.T)[::-1]
    f_ref, p_ref = _bruteforce_radial_profile(full, size // 2)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(p, p_ref[:, None] * lam, rtol=1e-10)

    assert np.all(np.diff(p[:, 0]) < 0) and np.all(np.diff(p[:, 1]) < 0)
    slope = np.polyfit(np.log(f), np.log(p[:, 0]), 1)[0]
    # The f0 = 1/size roll-off flattens the low end: the fitted slope is a bit above -exponent.
    assert -exponent < slope < -0.75 * exponent
    assert spec.summary()["radial_slope"] == pytest.approx(slope, rel=1e-9)


def test_radial_profile_of_sampled_powerlaw_tracks_the_truth():
    size, n = 16, 400
    x = powerlaw(n=n, size=size, channels=1, exponent=2.0, seed=2)
    spec = Spectrum.from_array(x)
    exact = Spectrum.from_cross_spectrum(
        powerlaw_spectrum(size=size, exponent=2.0)[0], [0.0], (size, size)
    )
    f, p = spec.radial_profile(bins=6)
    f_true, p_true = exact.radial_profile(bins=6)
    np.testing.assert_array_equal(f, f_true)
    # Each bin averages >= 12 modes of >= 400 samples: relative SE <= 1/sqrt(12 * 400) ~ 1.4%.
    np.testing.assert_allclose(p, p_true, rtol=0.1)
    assert np.all(np.diff(p[:, 0]) < 0)
    assert -2.0 < spec.summary()["radial_slope"] < -1.2


@pytest.mark.parametrize("kind", ["fourier", "pca"])
@pytest.mark.parametrize("shape", [(8, 8), (12,), (3, 3)])
def test_summary_is_json_serialisable(kind, shape):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((20, 2, *shape)) + 0.5
    spec = Spectrum.from_array(x, layout=_layout(x.ndim), kind=kind)
    out = spec.summary()
    assert json.loads(json.dumps(out)) == out
    d = 2 * int(np.prod(shape))
    assert out["dim"] == d and out["n_samples"] == 20 and out["kind"] == kind
    assert out["channels"] == 2 and out["signal_shape"] == list(shape)
    # Fourier subtracts the per-channel mean (stationarity); PCA the per-position mean.
    axes = (0,) if kind == "pca" else tuple(i for i in range(x.ndim) if i != 1)
    xc = x - x.mean(axis=axes, keepdims=True)
    trace = float(np.sum(xc**2) / len(x))
    assert out["total_variance"] == pytest.approx(trace, rel=1e-12)
    assert out["per_pixel_variance"] == pytest.approx(trace / d, rel=1e-12)
    assert out["channel_means"] == pytest.approx(list(x.mean(axis=(0, *range(2, x.ndim)))))
    assert ("radial_slope" in out) == (kind == "fourier" and min(shape) >= 4)
    if kind == "pca":
        with pytest.raises(SpecschedError, match="fourier"):
            spec.radial_profile()


def test_summary_of_constant_data_is_finite_json():
    spec = Spectrum.from_array(np.full((5, 8, 8), 0.25))
    out = spec.summary()
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["total_variance"] == pytest.approx(0.0, abs=1e-12)


def test_public_names():
    """Every name of ``specsched.__all__`` resolves (the lazy export table has no stale entry)
    and is listed by ``dir``; errors users can cause are ValueErrors."""
    for name in ss.__all__:
        assert getattr(ss, name) is not None, name
    assert set(ss.__all__) <= set(dir(ss))
    assert issubclass(SpecschedError, ValueError)
