"""kind='auto': the stationarity figures, the choice they make, and where the choice is recorded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import ok_json, run

import specsched as ss
from specsched import divergence
from specsched.data.builtin import mnist, photos, powerlaw
from specsched.spectrum import PCA_MAX_DIM, SpectrumAccumulator, choose_kind

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "stationarity.py"
_spec = importlib.util.spec_from_file_location("stationarity_bench", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize(
    "make",
    [
        lambda: powerlaw(size=16, n=500, seed=3),
        lambda: powerlaw(size=16, n=50, seed=4),  # few samples: noise must not look centred
        lambda: photos(size=8, n=2000, seed=2),
    ],
)
def test_auto_picks_fourier_on_stationary_data(make):
    spec = ss.Spectrum.from_array(make(), layout="NCHW")
    assert spec.kind == "fourier"
    choice = spec.meta["kind_choice"]
    assert choice == {"requested": "auto", "chosen": "fourier", "reason": choice["reason"]}
    assert choice["reason"].startswith("close to stationary")


@pytest.mark.parametrize(
    "make", [lambda: mnist(n=1000), lambda: bench.centred_discs(n=400, size=16)]
)
def test_auto_picks_pca_on_centred_data(make):
    spec = ss.Spectrum.from_array(make(), layout="NCHW")
    assert spec.kind == "pca" and spec.eigenvectors is not None
    st = spec.meta["stationarity"]
    assert st["mean_image_share"] > 0.1 and st["variance_spread"] > 0.5
    assert spec.summary()["kind_reason"].startswith("not stationary")


def test_the_choice_survives_save_and_load(tmp_path):
    spec = ss.Spectrum.from_array(bench.centred_discs(n=300, size=8), layout="NCHW")
    spec.save(tmp_path / "s.npz")
    back = ss.Spectrum.load(tmp_path / "s.npz")
    assert back.kind == "pca" and back.meta["kind_choice"] == spec.meta["kind_choice"]
    assert back.meta["stationarity"] == spec.meta["stationarity"]
    np.testing.assert_array_equal(back.eigenvectors, spec.eigenvectors)
    assert back.summary()["kind_reason"] == spec.summary()["kind_reason"]


def test_a_requested_kind_is_kept_and_auto_s_view_reported():
    spec = ss.Spectrum.from_array(mnist(n=300), layout="NCHW", kind="fourier")
    assert spec.kind == "fourier"
    assert "auto would choose pca" in spec.summary()["kind_reason"]
    with pytest.raises(ss.SpecschedError, match="'auto', 'fourier' or 'pca'"):
        ss.Spectrum.from_array(mnist(n=10), layout="NCHW", kind="pcaa")


def test_no_pca_where_it_cannot_be_made():
    centred = {"mean_image_share": 0.3, "variance_spread": 1.0, "n_samples": 1000}
    assert choose_kind(centred, 784)[0] == "pca"
    kind, why = choose_kind(centred, PCA_MAX_DIM + 1)
    assert kind == "fourier" and "too large" in why
    kind, why = choose_kind(centred, 784, can_reread=False)
    assert kind == "fourier" and "kind='pca'" in why


def test_stationarity_figures_merge_exactly():
    x = bench.centred_discs(n=60, size=8)
    whole = SpectrumAccumulator((8, 8), 1).update(x).finalize()
    a = SpectrumAccumulator((8, 8), 1).update(x[:25])
    b = SpectrumAccumulator((8, 8), 1).update(x[25:])
    parts = (a + b).finalize()
    for k, v in whole.meta["stationarity"].items():
        assert parts.meta["stationarity"][k] == pytest.approx(v, rel=1e-12)


def test_one_count_of_zero_variance_modes():
    # 1,000 samples in 1,024 dimensions: rank 999, so 25 modes have no variance; the summary and
    # the fit's note used to count 12 and 25 (rounding left some eigenvalues at +1e-16)
    spec = ss.Spectrum.from_array(powerlaw(size=32, n=1000, seed=5), kind="pca")
    S = spec.modes()[0]
    assert spec.summary()["zero_variance_modes"] == 25
    assert int(divergence.zero_variance_mask(torch.from_numpy(S)).sum()) == 25
    assert np.sum(S == 0) == 25  # exact zeros


def test_cli_prints_the_choice(tmp_path):
    rep = ok_json("spectrum", "builtin:mnist", "--num-samples", "300")
    assert rep["kind"] == "pca" and rep["kind_requested"] == "auto"
    assert rep["kind_reason"].startswith("not stationary") and rep["mean_image_share"] > 0.1
    p = run("spectrum", "synthetic:powerlaw", "--size", "8", "--num-samples", "200")
    assert p.returncode == 0, p.stderr
    assert "kind reason" in p.stdout and "close to stationary" in p.stdout.replace("\n", " ")
