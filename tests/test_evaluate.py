"""Sample-quality metrics: closed forms, invariances, bootstrap and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from specsched.data.builtin import powerlaw
from specsched.errors import SpecschedError
from specsched.evaluate import (
    Reference,
    best_and_ties,
    bootstrap,
    evaluate_schedules,
    frechet_distance,
    paired_tie,
    rmse,
    score,
    sliced_wasserstein,
    spectral_w2,
    tie,
    with_uncertainty,
)


def _gaussian_set(rng, n, mean, cov):
    """n samples of N(mean, cov) shaped (n, 1, 2, 2)."""
    flat = rng.multivariate_normal(mean, cov, size=n)
    return flat.reshape(n, 1, 2, 2)


@pytest.fixture
def params():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4))
    b = rng.standard_normal((4, 4))
    cov1 = a @ a.T / 4 + 0.5 * np.eye(4)
    cov2 = b @ b.T / 4 + 0.3 * np.eye(4)
    return np.array([0.0, 0.5, -0.2, 1.0]), cov1, np.array([0.3, 0.0, 0.1, 0.4]), cov2


def test_frechet_matches_closed_form(params):
    m1, c1, m2, c2 = params
    rng = np.random.default_rng(0)
    x = _gaussian_set(rng, 40_000, m1, c1)
    y = _gaussian_set(rng, 30_000, m2, c2)
    root = scipy.linalg.sqrtm(c1 @ c2).real
    exact = np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(root)
    assert frechet_distance(x, y) == pytest.approx(exact, rel=0.03, abs=0.01)


def test_frechet_identity_symmetry_translation(params):
    m1, c1, m2, c2 = params
    rng = np.random.default_rng(2)
    x = _gaussian_set(rng, 2000, m1, c1)
    y = _gaussian_set(rng, 1500, m2, c2)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(y, x), rel=1e-8)
    c = 0.7
    d = x[0].size
    assert frechet_distance(x + c, x) == pytest.approx(c**2 * d, rel=1e-8)
    shift = np.array([0.1, -0.4, 0.3, 0.2]).reshape(1, 1, 2, 2)
    assert frechet_distance(x + shift, x) == pytest.approx(np.sum(shift**2), rel=1e-8)


def test_frechet_pca_at_most_full():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((800, 1, 4, 4))
    mix = rng.standard_normal((16, 16)) / 4
    y = (base.reshape(800, 16) @ mix).reshape(800, 1, 4, 4)
    x = 1.3 * y[::-1] + 0.1
    full = frechet_distance(x, y)
    for k in (1, 4, 16):
        assert frechet_distance(x, y, pca=k) <= full * (1 + 1e-9) + 1e-12
    assert frechet_distance(x, y, pca=16) == pytest.approx(full, rel=1e-6)


def test_sliced_wasserstein_shift():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((300, 1, 4, 4))
    c = rng.standard_normal((1, 1, 4, 4))
    d = y[0].size
    value = sliced_wasserstein(y + c, y, projections=4000, seed=1)
    assert value == pytest.approx(np.sum(c**2) / d, rel=0.08)
    assert sliced_wasserstein(y, y) == pytest.approx(0.0, abs=1e-12)
    # different sample counts
    z = rng.standard_normal((170, 1, 4, 4))
    assert 0.0 <= sliced_wasserstein(z, y) < 0.1


def test_spectral_w2_powerlaw():
    a = powerlaw(n=400, size=16, exponent=2.0, seed=0)
    b = powerlaw(n=400, size=16, exponent=2.0, seed=1)
    c = powerlaw(n=400, size=16, exponent=3.5, seed=2)
    same = spectral_w2(a, b)
    diff = spectral_w2(a, c)
    assert same >= 0.0
    assert diff > 10 * same
    assert spectral_w2(a, a) == pytest.approx(0.0, abs=1e-10)
    # the mean term: a constant shift of every pixel adds |c|^2 * d
    assert spectral_w2(a + 0.5, a) == pytest.approx(0.25 * a[0].size, rel=1e-8)


def test_rmse_exact():
    x = np.zeros((3, 1, 2, 2))
    ref = np.full((3, 1, 2, 2), 2.0)
    assert rmse(x, ref) == 2.0
    ref2 = ref.copy()
    ref2[0] = 0.0
    assert rmse(x, ref2) == pytest.approx(np.sqrt(8.0 / 3.0))


def test_bootstrap_sd_shrinks_with_n():
    rng = np.random.default_rng(5)
    y = rng.standard_normal((2000, 1, 2, 2))
    small = rng.standard_normal((50, 1, 2, 2)) + 0.3
    large = rng.standard_normal((1600, 1, 2, 2)) + 0.3
    v_s, sd_s = with_uncertainty(frechet_distance, small, y, n_boot=30)
    _, sd_l = with_uncertainty(frechet_distance, large, y, n_boot=30)
    assert sd_l < sd_s / 2
    assert v_s == frechet_distance(small, y)
    _, sd_sw = with_uncertainty(sliced_wasserstein, large, y, n_boot=5, projections=32)
    assert sd_sw > 0.0


def test_tie():
    assert tie((1.0, 0.1), (1.1, 0.1))
    assert not tie((1.0, 0.01), (1.1, 0.01))
    assert tie((1.0, 0.01), (1.1, 0.01), z=20.0)


def test_errors():
    x = np.zeros((10, 1, 4, 4))
    with pytest.raises(SpecschedError, match="different shape"):
        frechet_distance(x, np.zeros((10, 1, 4, 5)))
    with pytest.raises(SpecschedError, match="different shape"):
        sliced_wasserstein(x, np.zeros((10, 3, 4, 4)))
    with pytest.raises(SpecschedError, match="different shape"):
        spectral_w2(x, np.zeros((10, 1, 8, 8)))
    with pytest.raises(SpecschedError, match="different shapes"):
        rmse(x, np.zeros((9, 1, 4, 4)))
    with pytest.raises(SpecschedError, match="pca"):
        frechet_distance(x, x, pca=17)
    with pytest.raises(SpecschedError, match="NaN"):
        frechet_distance(np.full((10, 1, 4, 4), np.nan), x)
    with pytest.raises(SpecschedError, match="at least 2"):
        frechet_distance(x[:1], x)
    with pytest.raises(SpecschedError, match="projections"):
        sliced_wasserstein(x, x, projections=0)
    with pytest.raises(SpecschedError, match="n_boot"):
        with_uncertainty(rmse, x, x, n_boot=1)
    with pytest.raises(SpecschedError):
        spectral_w2(x.reshape(10, 16), x.reshape(10, 16))


# ------------------------------------------------------------------ best and ties, evaluation
def test_paired_tie_equal_values_tie_even_without_spread():
    """The same samples twice (a fit that fell back to a heuristic): equal values and equal
    bootstrap arrays, whose differences have no spread. Indistinguishable, so tied."""
    boot = np.array([1.0, 1.2, 0.8, 1.1])
    assert paired_tie((1.0, boot), (1.0, boot.copy()))
    assert not paired_tie((1.0, boot), (1.0 + 1e-12, boot + 1e-12))  # a resolved shift


def test_best_and_ties_on_a_constructed_case():
    rng = np.random.default_rng(0)
    common = rng.standard_normal(50)  # sampling noise shared by paired results
    own = 0.01 * rng.standard_normal((4, 50))
    rows = [
        {"fd": (2.0, 2.0 + common + own[0]), "rmse": (0.5, 0.5 + own[0])},
        {"fd": (1.0, 1.0 + common + own[1]), "rmse": (0.3, 0.3 + own[1])},  # best fd
        {"fd": (1.01, 1.01 + common + own[2]), "rmse": (0.1, 0.1 + own[2])},  # ~ within noise
        {"fd": (1.0, 1.0 + common + own[1])},  # the best's samples again; no rmse
    ]
    best, tied = best_and_ties(rows)
    assert [b["fd"] for b in best] == [False, True, False, False]  # the first of equal values
    # the best ties with itself; 1.01 is inside the paired noise (sd of the difference ~0.014)
    # while 2.0 is not, although the unpaired spread (~1) would call it a tie
    assert [t["fd"] for t in tied] == [False, True, True, True]
    assert tie((2.0, float(np.std(rows[0]["fd"][1]))), (1.0, float(np.std(rows[1]["fd"][1]))))
    # a metric some rows lack is compared among the rows that have it
    assert [b.get("rmse") for b in best] == [False, False, True, None]
    assert [t.get("rmse") for t in tied] == [False, False, True, None]
    assert best_and_ties(rows, z=1000.0)[1][0]["fd"]  # z widens the test


@pytest.fixture(scope="module")
def gaussian_model():
    from specsched import Spectrum
    from specsched.denoisers import GaussianDenoiser

    data = powerlaw(size=8, n=400, seed=0)
    return GaussianDenoiser(Spectrum.from_array(data, layout="NCHW")), data


def test_evaluate_schedules_pairs_schedules_and_marks_one_best(gaussian_model):
    from specsched import Schedule, spaced_timesteps
    from specsched.generation import generate

    den, data = gaussian_model
    two = Schedule.from_timesteps(spaced_timesteps(2), name="two")
    twenty = Schedule.from_timesteps(spaced_timesteps(20), name="twenty")
    ref = Reference(data)
    calls = []

    def half_mean(x):  # a scorer outside METRICS, with its own reference
        calls.append(len(x))
        return bootstrap(rmse, x, np.zeros_like(x), n_boot=5, seed=3, paired=True)

    rows = evaluate_schedules(
        den,
        [two, twenty, twenty],
        ref,
        shape=data.shape[1:],
        metrics=["rmse0", "fd"],
        scorers={"rmse0": half_mean},
        num_samples=128,
        batch_size=50,
        seed=2,
        n_boot=5,
        names=["two", "twenty", "twenty again"],
        keep_samples=True,
    )
    assert [r.name for r in rows] == ["two", "twenty", "twenty again"] and calls == [128] * 3
    assert [list(r.scores) for r in rows] == [["rmse0", "fd"]] * 3
    # every schedule starts from the same noise: the samples are generate()'s with that seed
    x = generate(den, twenty, num_samples=128, shape=data.shape[1:], batch_size=50, seed=2)
    np.testing.assert_array_equal(rows[1].samples, x)
    np.testing.assert_array_equal(rows[2].samples, x)
    assert rows[1].scores["fd"][0] == score(x, ref, ["fd"], n_boot=5, seed=2)["fd"][0]
    # 20 DDIM steps on the exact Gaussian denoiser are far better than 2; the repeated schedule
    # ties with the best (the first of the two) and is not a second best
    assert rows[1].scores["fd"][0] < 0.5 * rows[0].scores["fd"][0]
    assert [r.best["fd"] for r in rows] == [False, True, False]
    assert [r.tie["fd"] for r in rows] == [False, True, True]
    assert all(r.sd("fd") > 0 and r.sampling_seconds > 0 for r in rows)
    assert all(r.calls is None for r in rows)  # the Gaussian denoiser does not count calls


def test_evaluate_schedules_refuses_bad_requests(gaussian_model):
    from specsched import Schedule, spaced_timesteps

    den, data = gaussian_model
    sched = Schedule.from_timesteps(spaced_timesteps(3))
    kw = dict(shape=data.shape[1:], num_samples=8, n_boot=2)
    with pytest.raises(SpecschedError, match="unknown metric fid"):
        evaluate_schedules(den, [sched], data, metrics=["fid"], **kw)
    with pytest.raises(SpecschedError, match="2 names for 1 schedules"):
        evaluate_schedules(den, [sched], data, names=["a", "b"], **kw)
    with pytest.raises(SpecschedError, match="shape"):
        evaluate_schedules(den, [sched], data[:, :, :4, :4], **kw)


@pytest.mark.parametrize("kind", ["fourier", "pca"])
def test_spectral_objective_of_samples_is_the_predicted_objective(kind):
    """Samples of the exact Gaussian denoiser measure the objective that the closed-form
    response predicts for their schedule (Monte-Carlo), in Fourier and in PCA modes; the data
    themselves measure about 0 against their own spectrum."""
    import specsched as ss
    from specsched.data.builtin import photos
    from specsched.denoisers import GaussianDenoiser
    from specsched.evaluate import spectral_objective

    x = photos(size=8, channels=1 if kind == "pca" else 3, n=3000, seed=1)
    spec = ss.Spectrum.from_array(x, layout="NCHW", kind=kind)
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(5, "trailing"))
    gen = ss.generate(GaussianDenoiser(spec), sched, "ddim", num_samples=20_000,
                      shape=x.shape[1:], seed=2)  # fmt: skip
    r = ss.response(spec, sched, "ddim")
    for objective, predicted in (("w2", r.w2), ("kl", r.kl_gen_data)):
        assert abs(spectral_objective(gen, spec, objective) / predicted - 1) < 0.03
    assert spectral_objective(x, spec) < 1e-3 * r.w2
    with pytest.raises(SpecschedError, match="shape"):
        spectral_objective(gen[:, :, :4, :4], spec)


def test_evaluate_schedules_without_reference_data_needs_its_own_scorers():
    from specsched import Schedule, Spectrum, spaced_timesteps
    from specsched.denoisers import GaussianDenoiser

    data = np.random.default_rng(0).standard_normal((256, 1, 4, 4))
    den = GaussianDenoiser(Spectrum.from_array(data))
    sched = [Schedule.from_timesteps(spaced_timesteps(3))]
    with pytest.raises(SpecschedError, match="fd needs reference samples"):
        evaluate_schedules(den, sched, None, shape=(1, 4, 4), metrics=["fd"], num_samples=8)

    def mean_power(x):
        return bootstrap(lambda xs, _: float(np.mean(xs**2)), x, None, n_boot=4)

    rows = evaluate_schedules(den, sched, None, shape=(1, 4, 4), metrics=["power"],
                              scorers={"power": mean_power}, num_samples=64)  # fmt: skip
    assert rows[0].best["power"] and rows[0].scores["power"][0] > 0
