"""Tests for the built-in datasets (specsched.data.builtin)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import skimage.data
import skimage.io

from specsched.data import builtin
from specsched.data.builtin import (
    BUILTIN_SOURCES,
    PHOTO_NAMES,
    digits,
    faces,
    is_builtin,
    load_builtin,
    photos,
    powerlaw,
    powerlaw_spectrum,
)
from specsched.errors import SpecschedError

DATA_DIR = os.path.dirname(skimage.data.__file__)
SYNTHETIC_IMAGES = {
    "logo.png",
    "color.png",
    "chessboard_GRAY.png",
    "chessboard_RGB.png",
    "phantom.png",
    "horse.png",
    "text.png",
    "page.png",
    "clock_motion.png",
}


def _read_photo(name: str) -> np.ndarray:
    """Independent reading of a bundled photograph: (C, H, W) uint8."""
    image = skimage.io.imread(os.path.join(DATA_DIR, name))
    assert image.dtype == np.uint8
    if image.ndim == 2:
        return image[None]
    return np.moveaxis(image[..., :3], -1, 0)


def _colour_names() -> list[str]:
    return [name for name in PHOTO_NAMES if _read_photo(name).shape[0] == 3]


# ------------------------------------------------------------------------------------------
# photos
# ------------------------------------------------------------------------------------------


def test_photo_list_is_real_photographs_bundled_locally():
    assert len(PHOTO_NAMES) >= 10
    assert not SYNTHETIC_IMAGES & set(PHOTO_NAMES)
    for name in PHOTO_NAMES:
        assert os.path.isfile(os.path.join(DATA_DIR, name)), name
    # enough colour photographs for channels=3
    assert len(_colour_names()) >= 5


@pytest.mark.parametrize("channels", [3, 1])
def test_photos_shape_dtype_range(channels):
    x = photos(size=32, channels=channels, n=3000, seed=0)
    assert x.shape == (3000, channels, 32, 32)
    assert x.dtype == np.float64
    assert x.min() >= -1.0 and x.max() <= 1.0
    # real image content spans most of the range and is not constant
    assert x.min() < -0.9 and x.max() > 0.9
    assert x.std() > 0.2


def test_photos_defaults_are_the_documented_ones():
    """``photos()`` is the demo's data: 10,000 32x32 RGB patches, seed 0 (README, demo.py)."""
    import inspect

    from specsched.demo import run_demo

    p = {k: v.default for k, v in inspect.signature(photos).parameters.items()}
    assert p == {"size": 32, "channels": 3, "n": 10_000, "seed": 0}
    d = inspect.signature(run_demo).parameters
    assert (d["size"].default, d["n"].default) == (p["size"], p["n"])


def test_photos_deterministic_per_seed_and_different_across_seeds():
    a = photos(size=16, n=500, seed=7)
    b = photos(size=16, n=500, seed=7)
    c = photos(size=16, n=500, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # different patches, not merely a permutation of the same ones
    assert np.abs(a.mean(axis=(1, 2, 3)) - c.mean(axis=(1, 2, 3))).max() > 0.1


def test_photo_images_match_files():
    images3 = builtin._photo_images(3)
    names3 = _colour_names()
    assert len(images3) == len(names3)
    for name, image in zip(names3, images3, strict=True):
        np.testing.assert_array_equal(image, _read_photo(name) / 127.5 - 1.0)
    images1 = builtin._photo_images(1)
    assert len(images1) == len(PHOTO_NAMES)
    for name, image in zip(PHOTO_NAMES, images1, strict=True):
        raw = _read_photo(name).astype(np.float64)
        if raw.shape[0] == 3:
            raw = (0.299 * raw[0] + 0.587 * raw[1] + 0.114 * raw[2])[None]
        assert image.shape == raw.shape
        np.testing.assert_allclose(image, raw / 127.5 - 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("channels", [3, 1])
def test_photo_patches_are_crops_of_the_photographs(channels):
    size = 24
    patches, index, rows, cols = builtin._photo_patches(size, channels, 400, 3)
    images = builtin._photo_images(channels)
    assert patches.shape == (400, channels, size, size)
    assert index.min() >= 0 and index.max() < len(images)
    for p, i, r, c in zip(patches, index, rows, cols, strict=True):
        image = images[i]
        assert 0 <= r <= image.shape[1] - size and 0 <= c <= image.shape[2] - size
        np.testing.assert_array_equal(p, image[:, r : r + size, c : c + size])
    np.testing.assert_array_equal(patches, photos(size=size, channels=channels, n=400, seed=3))
    positions = builtin._photo_positions(size, channels, 400, 3)
    for got, want in zip((index, rows, cols), positions, strict=True):
        np.testing.assert_array_equal(got, want)


def test_grey_patches_are_luma_of_rgb_patches():
    # the grey version of a colour photograph is the 601 luma of its RGB version
    names1 = list(PHOTO_NAMES)
    names3 = _colour_names()
    grey, index, rows, cols = builtin._photo_patches(16, 1, 300, 11)
    rgb_images = builtin._photo_images(3)
    checked = 0
    for p, i, r, c in zip(grey, index, rows, cols, strict=True):
        name = names1[i]
        if name not in names3:
            continue
        rgb = (rgb_images[names3.index(name)][:, r : r + 16, c : c + 16] + 1.0) * 127.5
        luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
        np.testing.assert_allclose(p[0], luma / 127.5 - 1.0, rtol=0, atol=1e-12)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("channels", [3, 1])
def test_photo_positions_are_uniform_over_valid_positions(channels):
    size, n = 64, 40_000
    index, rows, cols = builtin._photo_positions(size, channels, n, 5)
    images = builtin._photo_images(channels)
    valid = np.array([(im.shape[1] - size + 1) * (im.shape[2] - size + 1) for im in images])
    p = valid / valid.sum()
    counts = np.bincount(index, minlength=len(images))
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) <= 5 * sd + 1), (counts, n * p)
    # within the largest image, rows and columns are spread over the whole valid range
    big = int(np.argmax(valid))
    r, c = rows[index == big], cols[index == big]
    h, w = images[big].shape[1] - size, images[big].shape[2] - size
    assert r.min() < 0.02 * h and r.max() > 0.98 * h
    assert c.min() < 0.02 * w and c.max() > 0.98 * w
    assert abs(r.mean() - h / 2) < 0.05 * h and abs(c.mean() - w / 2) < 0.05 * w


def test_photos_largest_size():
    smallest = min(min(im.shape[1:]) for im in builtin._photo_images(3))
    assert smallest == 300
    x = photos(size=smallest, channels=3, n=2)
    assert x.shape == (2, 3, 300, 300)
    with pytest.raises(SpecschedError, match="size"):
        photos(size=smallest + 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 1}, "size"),
        ({"size": 10_000}, "size"),
        ({"size": 8.5}, "size"),
        ({"channels": 2}, "channels"),
        ({"channels": 4}, "channels"),
        ({"channels": 3.0}, "channels"),
        ({"n": 1}, "n"),
        ({"n": 0}, "n"),
        ({"seed": -1}, "seed"),
    ],
)
def test_photos_bad_input(kwargs, match):
    with pytest.raises(SpecschedError, match=match) as info:
        photos(**kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------
# digits and faces
# ------------------------------------------------------------------------------------------


def test_digits():
    from sklearn.datasets import load_digits

    x = digits()
    assert x.shape == (1797, 1, 8, 8)
    assert x.dtype == np.float64
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(x[:, 0], load_digits().images / 8.0 - 1.0)


def test_faces():
    x = faces()
    assert x.shape == (200, 1, 25, 25)
    assert x.dtype == np.float64
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.min() < -0.9 and x.max() > 0.9
    raw = np.load(os.path.join(DATA_DIR, "lfw_subset.npy"))
    np.testing.assert_allclose(x[:, 0], 2.0 * raw - 1.0)


# ------------------------------------------------------------------------------------------
# powerlaw
# ------------------------------------------------------------------------------------------


def _self_conjugate(size: int) -> np.ndarray:
    """Mask of the rfft2 bins that are their own conjugate (real for real input)."""
    mask = np.zeros((size, size // 2 + 1), dtype=bool)
    special = [0, size // 2] if size % 2 == 0 else [0]
    for ky in special:
        for kx in special:
            mask[ky, kx] = True
    return mask


@pytest.mark.parametrize("size", [8, 7, 16])
@pytest.mark.parametrize("exponent", [2.0, 0.0, 3.5])
def test_powerlaw_spectrum_formula(size, exponent):
    S, M = powerlaw_spectrum(size=size, exponent=exponent)
    assert S.shape == (size, size // 2 + 1)
    assert M.shape == (1, 1) and M[0, 0] == 1.0
    f = np.fft.fftfreq(size)
    full = (f[:, None] ** 2 + f[None, :] ** 2 + size**-2.0) ** (-exponent / 2)
    full /= full.mean()
    np.testing.assert_allclose(S, full[:, : size // 2 + 1], rtol=1e-12)
    # neighbouring bin at |f| = f0 has (2 f0^2)^(-e/2) / (f0^2)^(-e/2) = 2^(-e/2) of the DC power
    np.testing.assert_allclose(S[0, 1] / S[0, 0], 2.0 ** (-exponent / 2), rtol=1e-12)
    if exponent == 0.0:
        np.testing.assert_allclose(S, 1.0)


def test_powerlaw_spectrum_unit_variance_from_half_grid():
    size = 8
    S, _ = powerlaw_spectrum(size=size, exponent=2.0)
    weights = np.full(S.shape, 2.0)
    weights[:, 0] = 1.0
    weights[:, -1] = 1.0  # Nyquist column of an even size
    np.testing.assert_allclose((weights * S).sum() / size**2, 1.0, rtol=1e-12)


def test_mixing_matrix():
    _, M = powerlaw_spectrum(size=8, channels=3)
    np.testing.assert_array_equal(M, [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.5, 0.5, 1.0]])
    _, M = powerlaw_spectrum(size=8, channels=16)
    assert np.linalg.cond(M) < 50
    assert np.allclose(np.diag(M), 1.0) and np.allclose(np.triu(M, 1), 0.0)


def test_powerlaw_empirical_spectrum_one_channel():
    n, size, mean = 20_000, 8, 0.75
    x = powerlaw(n=n, size=size, channels=1, exponent=2.0, mean=mean, seed=1)
    assert x.shape == (n, 1, size, size) and x.dtype == np.float64
    S, _ = powerlaw_spectrum(size=size, channels=1, exponent=2.0)
    X = np.fft.rfft2(x[:, 0] - mean, norm="ortho")
    power = (np.abs(X) ** 2).mean(axis=0)
    se = np.where(_self_conjugate(size), np.sqrt(2 / n), np.sqrt(1 / n)) * S
    assert np.all(np.abs(power - S) <= 5 * se), np.abs(power - S) / se
    # a tighter aggregate check: the average relative error over bins
    assert abs((power / S).mean() - 1.0) < 5 * np.sqrt(2 / n / S.size)
    # mean applied: the sample mean is within 5 standard errors of the DC-bin variance
    sample_mean = x.mean()
    assert abs(sample_mean - mean) <= 5 * np.sqrt(S[0, 0] / size**2 / n)


def test_powerlaw_empirical_cross_spectrum_three_channels():
    n, size = 20_000, 8
    means = np.array([0.5, -1.0, 2.0])
    x = powerlaw(n=n, size=size, channels=3, exponent=2.0, mean=means, seed=2)
    assert x.shape == (n, 3, size, size)
    S, M = powerlaw_spectrum(size=size, channels=3, exponent=2.0)
    cov = M @ M.T
    X = np.fft.rfft2(x - means[None, :, None, None], norm="ortho")  # (n, 3, size, size//2+1)
    real_bin = _self_conjugate(size)
    for c in range(3):
        for d in range(3):
            cross = (X[:, c] * np.conj(X[:, d])).mean(axis=0)
            expected = S * cov[c, d]
            scale = S * np.sqrt(cov[c, c] * cov[d, d] + np.where(real_bin, cov[c, d] ** 2, 0))
            se = scale / np.sqrt(n)
            assert np.all(np.abs(cross - expected) <= 5 * se), (c, d)
    # the per-channel means are applied
    for c in range(3):
        se = np.sqrt(S[0, 0] * cov[c, c] / size**2 / n)
        assert abs(x[:, c].mean() - means[c]) <= 5 * se
    # channels really are mixed (correlated), as M @ M.T says
    corr = np.corrcoef(x[:, 0].ravel(), x[:, 1].ravel())[0, 1]
    assert abs(corr - cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) < 0.02


def test_powerlaw_white_noise_when_exponent_zero():
    x = powerlaw(n=2000, size=8, exponent=0.0, seed=4)
    assert abs(x.var() - 1.0) < 0.02
    # neighbouring pixels uncorrelated
    assert abs(np.mean(x[..., 1:] * x[..., :-1])) < 0.02


def test_powerlaw_deterministic_and_chunking_invariant(monkeypatch):
    a = powerlaw(n=300, size=8, channels=2, seed=5)
    b = powerlaw(n=300, size=8, channels=2, seed=5)
    c = powerlaw(n=300, size=8, channels=2, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    monkeypatch.setattr(builtin, "_CHUNK_VALUES", 7 * 2 * 8 * 8)  # chunks of 7 fields
    np.testing.assert_allclose(powerlaw(n=300, size=8, channels=2, seed=5), a, rtol=0, atol=1e-12)


def test_powerlaw_defaults():
    x = powerlaw()
    assert x.shape == (10_000, 1, 32, 32)
    assert abs(x.var() - 1.0) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n"),
        ({"size": 1}, "size"),
        ({"channels": 0}, "channels"),
        ({"exponent": float("nan")}, "exponent"),
        ({"exponent": "steep"}, "exponent"),
        ({"channels": 3, "mean": [0.0, 1.0]}, "mean"),
        ({"mean": "zero"}, "mean"),
        ({"seed": -3}, "seed"),
    ],
)
def test_powerlaw_bad_input(kwargs, match):
    with pytest.raises(SpecschedError, match=match) as info:
        powerlaw(**kwargs)
    assert "\n" not in str(info.value)


def test_powerlaw_spectrum_bad_input():
    with pytest.raises(SpecschedError, match="size"):
        powerlaw_spectrum(size=0)


# ------------------------------------------------------------------------------------------
# source strings
# ------------------------------------------------------------------------------------------


def test_builtin_sources_and_is_builtin():
    assert set(BUILTIN_SOURCES) == {
        "builtin:photos",
        "builtin:digits",
        "builtin:faces",
        "builtin:mnist",
        "synthetic:powerlaw",
    }
    for source in BUILTIN_SOURCES:
        assert is_builtin(source)
    assert is_builtin("builtin:nothing") and is_builtin("synthetic:other")
    assert not is_builtin("photos") and not is_builtin("data/*.png")
    assert not is_builtin("/tmp/builtin:photos")


def test_load_builtin_dispatch():
    np.testing.assert_array_equal(
        load_builtin("builtin:photos", size=8, n=20, seed=2), photos(size=8, n=20, seed=2)
    )
    np.testing.assert_array_equal(load_builtin("builtin:digits"), digits())
    np.testing.assert_array_equal(load_builtin("builtin:faces"), faces())
    np.testing.assert_array_equal(
        load_builtin("synthetic:powerlaw", n=10, size=4, channels=2, mean=1.0, seed=3),
        powerlaw(n=10, size=4, channels=2, mean=1.0, seed=3),
    )


def test_load_builtin_unknown_source_lists_sources():
    with pytest.raises(SpecschedError) as info:
        load_builtin("builtin:cats")
    message = str(info.value)
    assert "builtin:cats" in message
    for source in BUILTIN_SOURCES:
        assert source in message


def test_load_builtin_unknown_option_names_accepted_ones():
    with pytest.raises(SpecschedError) as info:
        load_builtin("builtin:photos", sise=8)
    message = str(info.value)
    assert "sise" in message
    for name in ("size", "channels", "n", "seed"):
        assert name in message
    with pytest.raises(SpecschedError, match="none"):
        load_builtin("builtin:digits", n=5)
    with pytest.raises(SpecschedError, match="exponent"):
        load_builtin("synthetic:powerlaw", exponant=2.0)


def test_load_builtin_bad_option_value():
    with pytest.raises(SpecschedError, match="channels"):
        load_builtin("builtin:photos", channels=2)
