"""Plots: valid PNGs written atomically, and the plotted data checked against hand computations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import specsched as ss
from specsched.data import load
from specsched.errors import SpecschedError
from specsched.optimize import fit
from specsched.plots import (
    FITTED_LABEL,
    plot_calibration,
    plot_schedules,
    plot_spectrum,
    plot_trace,
    plot_transfer,
    write_plots,
)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def spec3():
    return ss.Spectrum.from_source("synthetic:powerlaw", n=500, size=8, channels=3)


@pytest.fixture(scope="module")
def fit3(spec3):
    return fit(spec3, steps=5)


@pytest.fixture(scope="module")
def photos():
    return ss.Spectrum.from_source("builtin:photos", size=16, channels=1, n=2000)


@pytest.fixture(scope="module")
def fit_photos(photos):
    return fit(photos, steps=5)


@pytest.fixture(scope="module")
def pca():
    return ss.Spectrum.from_source("builtin:photos", size=6, channels=1, n=1000, kind="pca")


def curves_of(res, k: int = 3):
    return [(FITTED_LABEL, res.response)] + [(s.name, r) for s, r in res.baselines[:k]]


def check_png(path, min_w: int = 400, min_h: int = 300) -> None:
    """A readable, non-blank PNG, with no temporary file left beside it."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert w >= min_w and h >= min_h, (w, h)
    assert pixels.var() > 0, "blank image"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def legend_texts(fig) -> list[str]:
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        if ax.get_legend() is not None:
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return texts


def line(ax, label: str):
    """The one line of ``ax`` labelled ``label``, or ``label`` followed by ``"  ("`` or ``":"``."""
    found = [
        ln
        for ln in ax.get_lines()
        if ln.get_label() == label or ln.get_label().startswith((label + "  (", label + ":"))
    ]
    assert len(found) == 1, [ln.get_label() for ln in ax.get_lines()]
    return found[0]


def check_labels(fig) -> None:
    assert fig.axes
    assert fig.axes[0].get_title().strip()
    for ax in fig.axes:
        assert ax.get_ylabel().strip()
    assert fig.axes[-1].get_xlabel().strip()


def radial_bins_by_hand(spec, values):
    """Weighted mean of values[..., 0] over the non-DC modes in the radial profile's bins."""
    f = spec.frequencies[..., 0].ravel()
    w = spec.weights[..., 0].ravel()
    v = np.asarray(values)[..., 0].ravel()
    nbins = max(4, min(spec.signal_shape) // 2)
    edges = np.linspace(0, 0.5 * np.sqrt(len(spec.signal_shape)), nbins + 1)
    nz = f > 0
    idx = np.minimum(np.searchsorted(edges, f[nz], side="right") - 1, nbins - 1)
    wsum = np.bincount(idx, weights=w[nz], minlength=nbins)
    vsum = np.bincount(idx, weights=w[nz] * v[nz], minlength=nbins)
    keep = wsum > 0
    return vsum[keep] / wsum[keep]


# ------------------------------------------------------------------------------ (a) valid PNGs
@pytest.mark.parametrize("which", ["spectrum", "transfer", "schedules", "trace"])
def test_each_plot_writes_a_valid_png(tmp_path, fit3, spec3, which):
    path = tmp_path / f"{which}.png"
    curves = curves_of(fit3)
    fig = {
        "spectrum": lambda: plot_spectrum(spec3, path),
        "transfer": lambda: plot_transfer(spec3, curves, path),
        "schedules": lambda: plot_schedules([fit3.schedule, fit3.baselines[0][0]], path),
        "trace": lambda: plot_trace(curves, path),
    }[which]()
    check_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{which}.png"]
    check_labels(fig)
    w, h = fig.get_size_inches()
    assert 6 <= w <= 8 and 4 <= h <= 7.5


def test_plots_never_touch_pyplot(tmp_path):
    # pyplot holds the global figure manager and backend; the plots must not import it
    # (matplotlib.get_backend() itself imports pyplot in recent versions, so it is not called)
    code = (
        "import sys, specsched as ss, specsched.plots as sp\n"
        "s = ss.Schedule.from_sigmas([10.0, 1.0], process='ve', name='a')\n"
        f"sp.plot_schedules([s], {str(tmp_path / 'p.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    check_png(tmp_path / "p.png")


# ------------------------------------------------------------------------------ (b) the data
def test_spectrum_lines_are_the_radial_profile(spec3):
    fig = plot_spectrum(spec3)
    ax = fig.axes[0]
    f, power = spec3.radial_profile()
    for c in range(3):
        label = f"channel mode {c + 1}" + (" (largest)" if c == 0 else "")
        xy = line(ax, label).get_xydata()
        np.testing.assert_allclose(xy[:, 0], f)
        np.testing.assert_allclose(xy[:, 1], power[:, c])
    # the fitted power law: its log-log slope is the least-squares slope of channel mode 1
    slope = np.polyfit(np.log(f), np.log(power[:, 0]), 1)[0]
    xy = line(ax, "power-law fit (mode 1)").get_xydata()
    np.testing.assert_allclose(np.polyfit(np.log(xy[:, 0]), np.log(xy[:, 1]), 1)[0], slope)
    assert any(f"{slope:.2f}" in t for t in legend_texts(fig))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_spectrum_pca_plots_eigenvalues_by_rank(pca):
    fig = plot_spectrum(pca)
    xy = fig.axes[0].get_lines()[0].get_xydata()
    x = load("builtin:photos", size=6, channels=1, n=1000).reshape(1000, -1)
    ev = np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True))[::-1]
    np.testing.assert_array_equal(xy[:, 0], np.arange(1, pca.n_modes + 1))
    pos = ev > 1e-9 * ev[0]
    np.testing.assert_allclose(xy[pos, 1], ev[pos], rtol=1e-8)
    assert "rank" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize("which", ["spec3", "photos"])
def test_transfer_lines_are_binned_powers_and_their_ratio(request, which):
    spec = request.getfixturevalue(which)
    res = request.getfixturevalue("fit3" if which == "spec3" else "fit_photos")
    curves = curves_of(res, 4)
    fig = plot_transfer(spec, curves)
    top, bottom = fig.axes[:2]
    S_b = radial_bins_by_hand(spec, spec.variances)
    data = line(top, "data S").get_xydata()
    np.testing.assert_allclose(data[:, 1], S_b, rtol=1e-12)
    np.testing.assert_allclose(data[:, 1], spec.radial_profile()[1][:, 0], rtol=1e-12)
    np.testing.assert_allclose(data[:, 0], spec.radial_profile()[0])
    for label, r in curves:
        P_b = radial_bins_by_hand(spec, r.output_var)
        np.testing.assert_allclose(line(top, label).get_xydata()[:, 1], P_b, rtol=1e-12)
        np.testing.assert_allclose(line(bottom, label).get_xydata()[:, 1], P_b / S_b, rtol=1e-12)
    # the reference line at 1 and the legend with every W2
    assert any(np.allclose(ln.get_ydata(), 1.0) for ln in bottom.get_lines())
    texts = legend_texts(fig)
    for label, r in curves:
        assert any(t.startswith(label) and f"{r.w2:.3g}" in t for t in texts), (label, texts)
    if spec.channels > 1:
        assert "eigen-channel 1 of 3" in top.get_ylabel()


def test_transfer_pca_uses_mode_rank(pca):
    res = fit(pca, steps=3)
    fig = plot_transfer(pca, [("spectral", res.response)])
    xy = line(fig.axes[1], FITTED_LABEL).get_xydata()
    np.testing.assert_array_equal(xy[:, 0], np.arange(1, pca.n_modes + 1))
    pos = pca.variances > 0
    np.testing.assert_allclose(xy[pos, 1], res.response.output_var[pos] / pca.variances[pos])
    assert "rank" in fig.axes[1].get_xlabel()


def test_transfer_rejects_a_response_of_another_spectrum(spec3, fit_photos):
    with pytest.raises(SpecschedError):
        plot_transfer(spec3, [("x", fit_photos.response)])


def test_schedules_lines_are_log_snr_and_timesteps(fit_photos):
    scheds = [fit_photos.schedule] + [s for s, _ in fit_photos.baselines[:5]]
    fig = plot_schedules(scheds)
    top, bottom = fig.axes[:2]
    for sch in scheds:
        name = FITTED_LABEL if sch.name == "spectral" else sch.name
        xy = line(top, name).get_xydata()
        np.testing.assert_array_equal(xy[:, 0], np.arange(sch.steps))
        np.testing.assert_allclose(xy[:, 1], sch.log_snr[:-1])
        np.testing.assert_array_equal(line(bottom, name).get_ydata(), sch.timesteps)
    texts = legend_texts(fig)
    assert FITTED_LABEL in texts
    assert all(s.name in texts for s in scheds[1:])
    fitted = line(top, FITTED_LABEL)
    assert fitted.get_color() == "black"
    assert all(fitted.get_linewidth() > ln.get_linewidth() for ln in top.get_lines()[1:])


def test_schedules_without_timesteps_have_one_panel():
    a = ss.Schedule.from_sigmas([80.0, 10.0, 1.0, 0.1], process="ve", name="ve")
    b = ss.Schedule.from_sigmas([1.0, 0.6, 0.2], process="flow", name="flow")
    fig = plot_schedules([a, b])
    assert len(fig.axes) == 1
    np.testing.assert_allclose(line(fig.axes[0], "ve").get_ydata(), a.log_snr[:-1])
    y = line(fig.axes[0], "flow").get_ydata()
    assert np.isnan(y[0]) and np.allclose(y[1:], b.log_snr[1:-1])  # t = 1 is lambda = -inf


def test_trace_ratios_by_hand(photos):
    sched = ss.Schedule.from_timesteps(ss.spaced_timesteps(5, "leading"), name="leading")
    r = ss.response(photos, sched)
    fig = plot_trace([("leading", r)])
    top, bottom = fig.axes[:2]
    S, w, _ = photos.modes()
    a0, s0 = sched.alpha[0], sched.s[0]
    total = line(top, "leading").get_xydata()
    np.testing.assert_array_equal(total[:, 0], np.arange(sched.steps + 1))
    # VP starts from N(0, I): variance 1 against the target a0^2 S + s0^2, weighted mean over modes
    np.testing.assert_allclose(total[0, 1], 1.0 / (np.sum(w * (a0**2 * S + s0**2)) / np.sum(w)))
    P = r.output_var.ravel()
    np.testing.assert_allclose(total[-1, 1], np.sum(w * P) / np.sum(w * S))
    k = int(np.argmax(S))
    assert photos.frequencies.ravel()[k] == 0  # the largest mode is the DC mode
    dc = line(bottom, "leading").get_ydata()
    np.testing.assert_allclose(dc[0], 1.0 / (a0**2 * S[k] + s0**2))
    assert dc[0] < 1  # leading starts at t = 800, where the DC mode should have variance > 1
    np.testing.assert_allclose(dc[-1], P[k] / S[k])
    assert dc[-1] < 1  # few-step DDIM under-disperses the DC mode


# ------------------------------------------------------------------------------ (c), (d)
def test_trace_and_transfer_legends_name_every_schedule(fit3, spec3):
    curves = curves_of(fit3, 5)
    for fig in (plot_trace(curves), plot_transfer(spec3, curves)):
        check_labels(fig)
        texts = " | ".join(legend_texts(fig))
        for label, _ in curves:
            assert label in texts


@pytest.mark.parametrize("which", ["spectrum", "transfer", "schedules", "trace"])
def test_missing_folder_is_a_clean_error(tmp_path, fit3, spec3, which):
    path = tmp_path / "no" / "such" / "folder" / "plot.png"
    curves = curves_of(fit3, 1)
    call = {
        "spectrum": lambda: plot_spectrum(spec3, path),
        "transfer": lambda: plot_transfer(spec3, curves, path),
        "schedules": lambda: plot_schedules([fit3.schedule], path),
        "trace": lambda: plot_trace(curves, path),
    }[which]
    with pytest.raises(SpecschedError, match="does not exist"):
        call()
    assert list(tmp_path.iterdir()) == []


def test_write_plots_creates_its_folder(tmp_path, fit3):
    out = tmp_path / "a" / "b"
    paths = write_plots(fit3, out, max_baselines=2)
    assert [p.name for p in paths] == ["spectrum.png", "transfer.png", "schedules.png", "trace.png"]
    assert all(p.parent == out for p in paths)
    for p in paths:
        check_png(p)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)


def test_write_plots_bad_arguments(tmp_path, fit3):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpecschedError):
        write_plots(fit3, blocker)
    with pytest.raises(SpecschedError):
        write_plots(fit3, tmp_path / "x", max_baselines=-1)
    with pytest.raises(SpecschedError):
        plot_trace([])
    with pytest.raises(SpecschedError):
        plot_schedules([])


def test_calibration_plot_shows_output_power_and_where_the_network_fails(tmp_path):
    """A linear denoiser that underestimates the noise fails at the noisiest levels: the plotted
    output power is the calibration's, the failing levels are shaded, and a calibrated fit's
    plots include it."""
    from test_calibrate import LR, _NoiseUnderestimate

    from specsched.calibrate import calibrate
    from specsched.data.builtin import photos

    x = photos(size=8, channels=1, n=1500, seed=1)
    spec = ss.Spectrum.from_array(x, layout="NCHW")
    cal = calibrate(spec, _NoiseUnderestimate(spec), x, levels=LR, num_levels=8, num_samples=100)
    fig = plot_calibration(cal)
    top = fig.axes[0]
    ratio, _ = cal.calibration.output_power(cal.variances, cal.weights)
    plotted = top.lines[0].get_xydata()
    np.testing.assert_allclose(plotted[:, 0], cal.calibration.log_snr)
    np.testing.assert_allclose(plotted[:, 1], ratio)
    # and the power of the network's own paths over noised data's, per level
    own = cal.calibration.summary(cal.variances, cal.weights)["own_paths_power_by_level"]
    drawn = [ln for ln in top.lines if "own sampling paths" in str(ln.get_label())]
    assert len(drawn) == 1
    np.testing.assert_allclose(drawn[0].get_xydata()[:, 1], own)
    np.testing.assert_allclose(drawn[0].get_xydata()[:, 0], cal.calibration.log_snr)
    failing = cal.calibration.failing_levels(cal.variances, cal.weights)
    assert failing[0] and len(top.patches) == 1  # the shaded failing levels
    patch = top.patches[0]
    lo, hi = patch.get_x(), patch.get_x() + patch.get_width()
    assert lo <= cal.calibration.log_snr[0] < cal.calibration.log_snr[failing].max() < hi
    assert "fails" in top.get_title()
    paths = write_plots(fit(cal, steps=5, sampler="ddim"), tmp_path / "plots", max_baselines=1)
    assert paths[-1].name == "calibration.png"
    check_png(paths[-1])
    with pytest.raises(SpecschedError, match="no calibration"):
        plot_calibration(spec)
