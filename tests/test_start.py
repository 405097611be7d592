"""A start from pure noise where the first level keeps signal: its closed-form cost
(``Response.value_from_marginal``) against sampling, the data's mean image, and the fit's note."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import specsched as ss
from specsched.denoisers import GaussianDenoiser
from specsched.generation import generate, start_noise
from specsched.heuristics import heuristic_schedule
from specsched.levels import LevelRange, TrainSchedule

SD = TrainSchedule("scaled_linear")  # terminal log-SNR -5.4, as Stable Diffusion 1.x/2.x


def _gaussian_data(n: int, mean: float, seed: int = 0, spread: float = 2.0) -> np.ndarray:
    """Correlated Gaussian signals of length 12 whose mean lies along their strongest mode (as
    images' mean lies in their DC mode), with a mean that is not constant."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((12, 12)) * np.linspace(1.0, 0.1, 12)[:, None]
    profile = np.linspace(0.5, 1.5, 12)
    brightness = mean + spread * rng.standard_normal((n, 1))
    return rng.standard_normal((n, 12)) @ a * 0.4 + brightness * profile


def _mc_w2(spec: ss.Spectrum, x: np.ndarray) -> float:
    """W2 between the generated samples' per-mode moments and the spectrum's (PCA modes)."""
    coef = x.reshape(len(x), -1) @ spec.eigenvectors  # each sample's mode coefficients
    P, mu = coef.var(0), coef.mean(0)
    S, w, m = spec.modes()
    return float(np.sum(w * ((np.sqrt(S) - np.sqrt(P)) ** 2 + (mu - m) ** 2)))


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m"])
def test_the_start_cost_is_what_sampling_from_the_noised_data_measures(sampler):
    """Sampled with the exact denoiser from N(0, I), from N(alpha_0 * mean image, I) and from
    the data noised to the first level, the generated modes' W2 is the response's value and
    ``value_from_marginal`` with the mean moved alone and with the whole marginal."""
    spec = ss.Spectrum.from_array(_gaussian_data(4000, mean=-0.6), layout="NL", kind="pca")
    sched = heuristic_schedule("trailing", 8, LevelRange.discrete(SD))
    r = ss.response(spec, sched, sampler)
    closed = {
        "noise": r.w2,
        "mean moved": r.value_from_marginal("w2", variance=False),
        "marginal": r.value_from_marginal("w2"),
    }
    # here the start costs most of W2, and its mean part alone a quarter
    assert closed["marginal"] < 0.5 * closed["noise"]
    assert closed["marginal"] < closed["mean moved"] < 0.8 * closed["noise"]
    n = 40_000
    z = start_noise(sched, n, (1, 12), seed=5)
    a0, s0 = float(sched.alpha[0]), float(sched.s[0])
    mean_img = torch.from_numpy(spec.mean_image())
    # Gaussian data with the spectrum's moments, noised to the first level
    rng = np.random.default_rng(6)
    coef = rng.standard_normal((n, 12)) * np.sqrt(spec.variances)
    data = torch.from_numpy(coef @ spec.eigenvectors.T).reshape(n, 1, 12) + mean_img
    moved = start_noise(sched, n, (1, 12), seed=5, mean=spec.mean_image())
    assert torch.allclose(moved - z, a0 * mean_img.expand_as(z))
    starts = {"noise": z, "mean moved": moved, "marginal": a0 * data + s0 * z}
    den = GaussianDenoiser(spec)
    for name, xs in starts.items():
        x = generate(den, sched, sampler, num_samples=n, shape=(1, 12), x_start=xs, seed=5)
        # absolute: the sampling noise of 40,000 samples' moments, against W2 ~ 3 from noise
        assert abs(_mc_w2(spec, x) - closed[name]) < 0.03 * closed["noise"], name


def test_the_mean_image_is_the_datas_mean():
    x = _gaussian_data(500, mean=2.0)
    pca = ss.Spectrum.from_array(x, layout="NL", kind="pca")
    np.testing.assert_allclose(pca.mean_image()[0], x.mean(0), atol=1e-12)
    rng = np.random.default_rng(1)
    img = rng.standard_normal((300, 3, 4, 4)) + np.array([1.0, -2.0, 0.5])[None, :, None, None]
    four = ss.Spectrum.from_array(img, kind="fourier")  # shift-invariant: one value per channel
    expect = np.broadcast_to(img.mean((0, 2, 3))[:, None, None], (3, 4, 4))
    np.testing.assert_allclose(four.mean_image(), expect, atol=1e-12)


def test_a_pca_spectrum_without_eigenvectors_has_no_mean_image():
    import dataclasses

    pca = ss.Spectrum.from_array(_gaussian_data(100, mean=1.0), layout="NL", kind="pca")
    bare = dataclasses.replace(pca, eigenvectors=None)
    with pytest.raises(ss.SpecschedError, match="no eigenvectors"):
        bare.mean_image()


def test_a_fit_says_when_the_start_misses_the_datas_mean():
    shifted = ss.Spectrum.from_array(_gaussian_data(2000, mean=-0.6), layout="NL", kind="pca")
    res = ss.fit(shifted, 10, sampler="ddim", train_schedule=SD)
    note = [n for n in res.notes if "is not pure noise" in n]
    assert len(note) == 1
    alpha0 = float(res.schedule.alpha[0])
    assert f"Add {alpha0:.3g} x the data's mean image (Spectrum.mean_image()" in note[0]
    assert "rescale_betas_zero_snr=True" in note[0]
    assert ("no schedule recovers it" in note[0]) == (res.schedule.timesteps[0] == 999)
    # centred data without a strong mode, or a training schedule that ends at log-SNR -10: the
    # start costs little, and no note (a strong mode alone, of variance 50 against the start's
    # 1, also costs: the start misses its variance)
    weak = ss.Spectrum.from_array(
        _gaussian_data(2000, mean=0.0, spread=0.3), layout="NL", kind="pca"
    )
    for spec, train in [(weak, SD), (shifted, TrainSchedule("linear"))]:
        res = ss.fit(spec, 10, sampler="ddim", train_schedule=train, start_at="max")
        assert not any("is not pure noise" in n for n in res.notes)


def test_a_start_mean_of_another_shape_is_refused():
    sched = heuristic_schedule("trailing", 4, LevelRange.discrete(SD))
    with pytest.raises(ss.SpecschedError, match=r"mean has shape \(1, 12\), a sample \(1, 8\)"):
        start_noise(sched, 3, (1, 8), mean=np.zeros((1, 12)))
