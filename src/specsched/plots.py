"""Plots that show what a schedule does to the data's spectrum, and why the fitted one is shaped so.

Every function builds a :class:`matplotlib.figure.Figure` directly, on the non-interactive Agg
canvas (pyplot is never imported, so no global state or backend changes), and returns it. Each
takes ``path`` (str or Path, optional): when given, the figure is saved there as PNG atomically (a
temporary file beside the target, then a rename; the folder must exist); and ``title`` (str,
optional), which replaces the default title.

=========================  ===========================================================================
:func:`plot_spectrum`      the data's radial power profile (or PCA eigenvalues) with its power-law slope
:func:`plot_transfer`      generated power ``P`` against data power ``S`` per frequency, and ``P / S``
:func:`plot_schedules`     the noise levels (log-SNR, and integer timesteps) of each schedule per step
:func:`plot_trace`         generated / target variance after every step, all modes and the largest one
:func:`write_plots`        all four for a :class:`~specsched.optimize.FitResult`
=========================  ===========================================================================

The fitted schedule (a curve labelled ``"spectral"`` or ``"spectral (fitted)"``, or a schedule
named ``"spectral"``) is drawn thick and black and labelled ``"spectral (fitted)"``; other
schedules take the Okabe-Ito colour-blind-safe palette with distinct line styles and markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, MultipleLocator, NullFormatter

from ._io import atomic_path
from .errors import SpecschedError, check_int
from .response import Response
from .schedules import Schedule
from .spectrum import Spectrum

if TYPE_CHECKING:
    from .optimize import FitResult

__all__ = [
    "FITTED_LABEL",
    "plot_calibration",
    "plot_schedules",
    "plot_spectrum",
    "plot_trace",
    "plot_transfer",
    "write_plots",
]

#: Legend label of the fitted schedule.
FITTED_LABEL = "spectral (fitted)"
_FITTED_NAMES = frozenset({"spectral", FITTED_LABEL})

_DPI = 120
_WIDTH = 7.0
_HEIGHT = 4.5  # one panel
_HEIGHT2 = 6.5  # two stacked panels
# Okabe-Ito, without black (the fitted schedule and the data) and yellow (too pale on white)
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999")
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X")
_CHANNEL_COLOURS = ("#000000", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00")


# ------------------------------------------------------------------------------ helpers
def _new_figure(nrows: int = 1, *, sharex: bool = True) -> tuple[Figure, list[Any]]:
    """A figure on its own Agg canvas with ``nrows`` stacked axes (constrained layout)."""
    height = _HEIGHT if nrows == 1 else _HEIGHT2
    fig = Figure(figsize=(_WIDTH, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    return fig, list(axes)


def _save(fig: Figure, path: str | Path | None) -> Figure:
    """Save ``fig`` as PNG to ``path`` atomically (when given) and return it."""
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=_DPI)
    return fig


def _tick_text(v: float, _pos: Any = None) -> str:
    """Log-axis tick label: plain numbers in [1e-3, 1e4), else ``m x 10^e``."""
    if not np.isfinite(v) or v <= 0:
        return ""
    if 1e-3 <= v < 1e4:
        return f"{v:g}"
    e = int(np.floor(np.log10(v) + 1e-9))
    m = v / 10.0**e
    return f"$10^{{{e}}}$" if abs(m - 1) < 1e-6 else f"${m:g}\\times10^{{{e}}}$"


def _tidy_log(ax: Any, which: str = "xy") -> None:
    """Readable log axes: ticks at 1, 2, 5 per decade on short ranges, none on minor ticks."""
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "log":
            continue
        lo, hi = ax.get_xlim() if name == "x" else ax.get_ylim()
        decades = np.log10(max(hi, lo) / max(min(hi, lo), 1e-300))
        subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
        axis.set_major_formatter(FuncFormatter(_tick_text))
        axis.set_minor_formatter(NullFormatter())


def _ratio_scale(ax: Any, values: Sequence[np.ndarray]) -> None:
    """Log y for ratios that span a decade or more, linear otherwise (with 1 in view)."""
    finite = np.concatenate([np.asarray(v, float).ravel() for v in values])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size and finite.max() / finite.min() >= 10:
        ax.set_yscale("log")
        _tidy_log(ax, "y")


def _integer_ticks(ax: Any, count: int) -> None:
    """Every index as an x tick when there are few, else a few integer ticks."""
    if count <= 16:
        ax.xaxis.set_major_locator(MultipleLocator(1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _is_fitted(label: str) -> bool:
    return label in _FITTED_NAMES


def _styles(labels: Sequence[str]) -> list[dict[str, Any]]:
    """Line properties per curve: the fitted one thick and black, the others cycled."""
    out, k = [], 0
    for label in labels:
        if _is_fitted(label):
            out.append(
                {
                    "color": "black",
                    "linewidth": 2.8,
                    "linestyle": "-",
                    "marker": "o",
                    "markersize": 5,
                    "zorder": 10,
                }
            )
        else:
            out.append(
                {
                    "color": _COLOURS[k % len(_COLOURS)],
                    "linewidth": 1.5,
                    "linestyle": _LINESTYLES[k % len(_LINESTYLES)],
                    "marker": _MARKERS[k % len(_MARKERS)],
                    "markersize": 4,
                    "zorder": 5,
                }
            )
            k += 1
    return out


def _display(label: str) -> str:
    return FITTED_LABEL if _is_fitted(label) else label


def _legend(ax: Any, *, loc: str = "best", fontsize: float = 8.5) -> None:
    ax.legend(loc=loc, fontsize=fontsize, framealpha=0.85)


def _legend_below(fig: Figure, ax: Any) -> None:
    """The legend of ``ax`` as a figure legend under the panels, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    longest = max((len(lab) for lab in labels), default=0)
    ncol = min(len(labels), 3 if longest <= 24 else 2)
    fig.legend(
        handles, labels, loc="outside lower center", ncol=max(ncol, 1), fontsize=8.5, frameon=False
    )


def _marks(n_points: int) -> dict[str, Any]:
    """Thin the markers of long curves (PCA spectra, long 1-D signals)."""
    return {"markevery": 0.04} if n_points > 40 else {}


def _check_curves(curves: Sequence[tuple[str, Response]]) -> list[tuple[str, Response]]:
    out = []
    for item in curves:
        try:
            label, r = item
        except (TypeError, ValueError):
            r = None
        if not isinstance(r, Response):
            raise SpecschedError(
                "curves must be (label, Response) pairs, e.g. [('trailing', ss.response(spec, s))]"
            )
        out.append((str(label), r))
    if not out:
        raise SpecschedError("nothing to plot: give at least one (label, Response) pair")
    return out


def _two_panels(
    curves: Sequence[tuple[str, Response]],
) -> tuple[list[tuple[str, Response]], Figure, list[Any], list[dict[str, Any]]]:
    """The checked curves, a figure of two panels sharing x, and a line style per curve."""
    curves = _check_curves(curves)
    fig, axes = _new_figure(2, sharex=True)
    return curves, fig, axes, _styles([label for label, _ in curves])


def _sampler_text(r: Response) -> str:
    opts = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.options.items()
    )
    return f"{r.sampler.upper()}" + (f" ({opts})" if opts else "")


def _freq_unit(spec: Spectrum) -> str:
    return "cycles/pixel" if len(spec.signal_shape) >= 2 else "cycles/sample"


def _channel_note(spec: Spectrum) -> str:
    if spec.kind == "fourier" and spec.channels > 1:
        return f", eigen-channel 1 of {spec.channels} (largest)"
    return ""


def _positive(a: np.ndarray) -> np.ndarray:
    """``a`` with non-positive entries as NaN (log axes)."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(a > 0, a, np.nan)


def _bin_modes(spec: Spectrum, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mode ``values`` reduced to one curve: radial bins (Fourier) or mode rank (PCA).

    Fourier spectra: the weighted mean (weights ``spec.weights``) of ``values`` over the modes of
    eigen-channel 0 (the largest eigenvalue of each frequency) in the radial-frequency bins of
    :meth:`Spectrum.radial_profile` (DC excluded, empty bins dropped), so that
    ``_bin_modes(spec, spec.variances)`` is that profile's first column. PCA spectra: ``values``
    in the spectrum's order (largest variance first) against rank ``1..d``.

    Returns
    -------
    x : ndarray
        Bin centres in cycles per sample, or mode ranks.
    binned : ndarray
        The reduced values, same length as ``x``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != spec.variances.shape:
        raise SpecschedError(
            f"per-mode values of shape {values.shape} do not match the spectrum's modes "
            f"{spec.variances.shape}: use a response computed on this spectrum"
        )
    if spec.kind != "fourier":
        v = values.ravel()
        return np.arange(1, v.size + 1, dtype=np.float64), v
    f = spec.frequencies[..., 0].ravel()
    w = spec.weights[..., 0].ravel()
    v = values[..., 0].ravel()
    nz = f > 0
    nbins = max(4, min(spec.signal_shape) // 2)
    edges = np.linspace(0.0, 0.5 * np.sqrt(len(spec.signal_shape)), nbins + 1)
    idx = np.clip(np.digitize(f[nz], edges) - 1, 0, nbins - 1)
    wsum = np.bincount(idx, weights=w[nz], minlength=nbins)
    vsum = np.bincount(idx, weights=w[nz] * v[nz], minlength=nbins)
    keep = wsum > 0
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres[keep], vsum[keep] / wsum[keep]


# ------------------------------------------------------------------------------ spectrum
def plot_spectrum(
    spec: Spectrum, path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """The data's spectrum: radial power profile on log-log axes (PCA: eigenvalues by rank).

    Parameters
    ----------
    spec : Spectrum
        The data's spectrum. Fourier spectra show the weighted mean mode variance in radial
        frequency bins (:meth:`Spectrum.radial_profile`), one line per eigen-channel (largest
        first), and the power-law fit of the largest one (slope from ``spec.summary()``). PCA
        spectra show the sorted covariance eigenvalues against their rank.

    Returns
    -------
    Figure
    """
    fig, (ax,) = _new_figure(1)
    source = spec.meta.get("source", "data")
    shape = "x".join(str(v) for v in spec.signal_shape)
    default_title = (
        f"Data spectrum: {source}, {shape}, {spec.channels} channel"
        f"{'s' if spec.channels > 1 else ''}, {spec.n_samples} samples"
    )
    if spec.kind == "fourier":
        f, power = spec.radial_profile()
        for c in range(spec.channels):
            label = (
                f"channel mode {c + 1}" + (" (largest)" if c == 0 else "")
                if spec.channels > 1
                else "radial power"
            )
            ax.plot(
                f,
                _positive(power[:, c]),
                color=_CHANNEL_COLOURS[c % len(_CHANNEL_COLOURS)],
                linewidth=2.0 if c == 0 else 1.4,
                marker="o",
                markersize=3.5,
                label=label,
                **_marks(f.size),
            )
        slope = spec.summary().get("radial_slope")
        if slope is not None:
            sel = (f > 0) & (power[:, 0] > 0)
            intercept = float(np.mean(np.log(power[sel, 0]) - slope * np.log(f[sel])))
            fl = f[sel]
            which = " (mode 1)" if spec.channels > 1 else ""
            ax.plot(
                fl,
                np.exp(intercept) * fl**slope,
                color="#999999",
                linestyle="--",
                linewidth=1.4,
                zorder=1,
                label=f"power-law fit{which}: slope {slope:.2f}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _tidy_log(ax)
        ax.set_xlabel(f"radial frequency |f| ({_freq_unit(spec)}; DC not shown)")
        ax.set_ylabel("mean mode variance S (data units²)")
        dc = float(spec.variances.reshape(-1, spec.channels)[0, 0])
        ax.text(
            0.02,
            0.03,
            f"DC mode variance S = {dc:.3g}" + (" (mode 1)" if spec.channels > 1 else ""),
            transform=ax.transAxes,
            fontsize=8.5,
            color="#444444",
        )
    else:
        ev = spec.variances.ravel()
        rank = np.arange(1, ev.size + 1)
        ax.plot(rank, _positive(ev), color="black", linewidth=1.8, label="covariance eigenvalues")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _tidy_log(ax)
        ax.set_xlabel("mode rank (1 = largest variance)")
        ax.set_ylabel("eigenvalue S (data units²)")
        default_title = default_title.replace("Data spectrum", "Data spectrum (PCA)")
    ax.set_title(title or default_title, fontsize=11)
    _legend(ax, loc="upper right")
    return _save(fig, path)


# ------------------------------------------------------------------------------ transfer
def plot_transfer(
    spec: Spectrum,
    curves: Sequence[tuple[str, Response]],
    path: str | Path | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """The transfer picture: generated power against data power, per frequency.

    Top panel: the data power ``S`` (black, dashed) and the generated power ``P`` of each
    schedule, both as weighted means over the modes in the same radial-frequency bins
    (multichannel spectra: eigen-channel 0, the largest, only). Bottom panel: ``P / S`` per bin on a
    log axis with a line at 1; below 1 the sampler under-disperses those frequencies. The legend
    gives each schedule's squared W2. PCA spectra use the mode rank as x axis instead of bins.

    Parameters
    ----------
    spec : Spectrum
        The data's spectrum (the one the responses were computed on).
    curves : sequence of (label, Response)
        One entry per schedule; the label ``"spectral"`` or ``"spectral (fitted)"`` marks the
        fitted schedule.

    Returns
    -------
    Figure
    """
    curves, fig, (top, bottom), styles = _two_panels(curves)
    x, S_b = _bin_modes(spec, spec.variances)
    top.plot(x, _positive(S_b), color="black", linestyle=(0, (5, 3)), linewidth=2.2,
             label="data S", zorder=11)  # fmt: skip
    ratios = []
    for (label, r), st in zip(curves, styles, strict=True):
        _, P_b = _bin_modes(spec, r.output_var)
        full = f"{_display(label)}  ($W_2^2$ = {r.w2:.3g})"
        top.plot(x, _positive(P_b), label=full, **st, **_marks(x.size))
        ratio = np.where(S_b > 0, P_b / np.where(S_b > 0, S_b, 1.0), np.nan)
        ratios.append(ratio)
        bottom.plot(x, _positive(ratio), label=full, **st, **_marks(x.size))
    bottom.axhline(1.0, color="#444444", linewidth=1.0, label="_nolegend_", zorder=2)
    top.set_xscale("log")
    top.set_yscale("log")
    _ratio_scale(bottom, ratios)
    _tidy_log(top)
    note = _channel_note(spec)
    if spec.kind == "fourier":
        bottom.set_xlabel(f"radial frequency |f| ({_freq_unit(spec)}; DC not shown)")
        top.set_ylabel(f"mean mode variance (data units²)\n(radial bins{note})", fontsize=9)
        bottom.set_ylabel("generated / data\nP / S per bin", fontsize=9)
    else:
        bottom.set_xlabel("mode rank (1 = largest variance)")
        top.set_ylabel("mode variance (data units²)", fontsize=9)
        bottom.set_ylabel("generated / data\nP / S per mode", fontsize=9)
    r0 = curves[0][1]
    top.set_title(
        title or f"Generated vs data spectrum: {_sampler_text(r0)}, {r0.schedule.steps} steps",
        fontsize=11,
    )
    _legend_below(fig, top)
    return _save(fig, path)


# ------------------------------------------------------------------------------ schedules
def plot_schedules(
    schedules: Sequence[Schedule], path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """The noise levels of each schedule, step by step.

    Top panel: log-SNR ``lambda = 2 ln(alpha / s)`` of the level each step starts from, against the
    step index ``0 .. N-1`` (the clean end, ``+inf``, is left out). When every schedule has integer
    timesteps a second panel shows them against the step index.

    Parameters
    ----------
    schedules : sequence of Schedule
        A schedule named ``"spectral"`` is drawn as the fitted one.

    Returns
    -------
    Figure
    """
    schedules = list(schedules)
    if not schedules or not all(isinstance(s, Schedule) for s in schedules):
        raise SpecschedError("give at least one Schedule to plot")
    with_t = all(s.timesteps is not None for s in schedules)
    fig, axes = _new_figure(2 if with_t else 1, sharex=True)
    styles = _styles([s.name for s in schedules])
    hidden = []
    for sch, st in zip(schedules, styles, strict=True):
        lam = sch.log_snr[:-1]
        if not np.all(np.isfinite(lam)):
            hidden.append(_display(sch.name))
        steps = np.arange(sch.steps)
        axes[0].plot(steps, np.where(np.isfinite(lam), lam, np.nan), label=_display(sch.name), **st)
        if with_t:
            axes[1].plot(steps, sch.timesteps, label=_display(sch.name), **st)
    axes[0].set_ylabel("log-SNR  λ = 2 ln(α/s)")
    axes[0].set_title(
        title or f"Noise schedules, {max(s.steps for s in schedules)} steps (noisiest first)",
        fontsize=11,
    )
    if hidden:
        axes[0].text(
            0.98,
            0.03,
            "not shown (λ = −∞, pure noise): first level of "
            + ("every schedule" if len(hidden) == len(schedules) else ", ".join(hidden)),
            transform=axes[0].transAxes,
            ha="right",
            fontsize=8,
            color="#444444",
        )
    if with_t:
        T = {s.train.T for s in schedules if s.train is not None}
        axes[1].set_ylabel("timestep t" + (f" (of {T.pop()})" if len(T) == 1 else ""))
    axes[-1].set_xlabel("step index i (0 = first, noisiest level)")
    _integer_ticks(axes[-1], max(s.steps for s in schedules))
    axes[-1].set_xlim(-0.4, max(s.steps for s in schedules) - 0.6)
    _legend_below(fig, axes[0])
    return _save(fig, path)


# ------------------------------------------------------------------------------ trace
def plot_trace(
    curves: Sequence[tuple[str, Response]],
    path: str | Path | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Generated against target variance after every step of the sampler.

    Top panel: ``sum_k w_k trace_var[i, k] / sum_k w_k target_var[i, k]`` against the level index
    ``i`` (0 = the start, ``N`` = the output), the weighted total variance of the state relative to
    the variance it should have at that level. Bottom panel: the same ratio for the mode of largest
    data variance alone (the DC / lowest-frequency mode), where few-step DDIM under-disperses most.
    Weights and variances come from each response's spectrum.

    Parameters
    ----------
    curves : sequence of (label, Response)
        As in :func:`plot_transfer`.

    Returns
    -------
    Figure
    """
    curves, fig, (top, bottom), styles = _two_panels(curves)
    top_mode = None
    totals, singles = [], []
    for (label, r), st in zip(curves, styles, strict=True):
        spec = r.spectrum
        levels = r.trace_var.shape[0]
        w = spec.weights.ravel()
        tv = r.trace_var.reshape(levels, -1)
        gv = r.target_var.reshape(levels, -1)
        total = (tv @ w) / (gv @ w)
        k = int(np.argmax(spec.variances.ravel()))
        top_mode = (float(spec.variances.ravel()[k]), float(spec.frequencies.ravel()[k]))
        single = tv[:, k] / gv[:, k]
        i = np.arange(levels)
        totals.append(total)
        singles.append(single)
        top.plot(i, total, label=_display(label), **st)
        bottom.plot(i, single, label=_display(label), **st)
    for ax, vals in ((top, totals), (bottom, singles)):
        ax.axhline(1.0, color="#444444", linewidth=1.0, label="_nolegend_", zorder=2)
        _ratio_scale(ax, vals)
    top.set_ylabel("generated / target variance\n(all modes, weighted sum)", fontsize=9)
    assert top_mode is not None
    S_k, f_k = top_mode
    where = "" if np.isnan(f_k) else f", |f| = {f_k:.3g}"
    bottom.set_ylabel(
        f"generated / target variance\n(largest mode: S = {S_k:.3g}{where})", fontsize=9
    )
    bottom.set_xlabel("level index i (0 = start, N = output)")
    _integer_ticks(bottom, max(r.schedule.steps for _, r in curves) + 1)
    r0 = curves[0][1]
    top.set_title(
        title or f"Variance trace: {_sampler_text(r0)}, {r0.schedule.steps} steps", fontsize=11
    )
    _legend_below(fig, top)
    return _save(fig, path)


def plot_calibration(
    spec: Spectrum, path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """What a calibrated network does at each noise level, against log-SNR.

    Top panel: the power of the network's output about the data's mean over the data's variance
    (:meth:`~specsched.calibrate.Calibration.output_power`, with 2 standard errors), against
    the 1x that no exact denoiser exceeds; the levels where the network fails
    (:meth:`~specsched.calibrate.Calibration.failing_levels`) are shaded; and, for a calibration
    that measured them, the power of the network's own sampling paths over noised data's at each
    level (1 where the paths look like noised data). Bottom panel: the
    power it adds beyond its linear part over the data's variance (``residual_over_variance``)
    and its gain's relative deviation from the exact Gaussian gain (``gain_deviation``), from
    :meth:`~specsched.calibrate.Calibration.summary`.

    Parameters
    ----------
    spec : Spectrum
        A calibrated spectrum (:func:`specsched.calibrate.calibrate`, or a calibration file).

    Returns
    -------
    Figure

    Raises
    ------
    SpecschedError
        If ``spec`` has no calibration.
    """
    cal = spec.calibration
    if cal is None:
        raise SpecschedError(
            "this spectrum has no calibration: calibrate it on a network with `specsched "
            "calibrate` first"
        )
    lam = np.asarray(cal.log_snr)
    ratio, se = cal.output_power(spec.variances, spec.weights)
    failing = cal._failing(ratio, se)
    summ = cal.summary(spec.variances, spec.weights)
    fig, (top, bottom) = _new_figure(2)
    if failing.any():
        edge = float(lam[failing].max())
        nxt = lam[lam > edge]
        hi = 0.5 * (edge + float(nxt.min())) if nxt.size else edge
        for ax in (top, bottom):
            ax.axvspan(float(lam.min()), hi, color="#D55E00", alpha=0.12, linewidth=0,
                       label="_nolegend_")  # fmt: skip
    top.errorbar(lam, ratio, yerr=2 * se, color=_COLOURS[0], marker="o", markersize=3.5,
                 linewidth=1.6, label="network output")  # fmt: skip
    top.axhline(1.0, color="#444444", linewidth=1.0, linestyle="--",
                label="exact denoiser: at most 1x")  # fmt: skip
    ratios = [ratio]
    if summ["own_paths_power_by_level"] is not None:
        paths = np.asarray(summ["own_paths_power_by_level"])
        top.plot(lam, paths, color=_COLOURS[3], marker="D", markersize=3.0, linewidth=1.2,
                 label="its own sampling paths: power / noised data's")  # fmt: skip
        ratios.append(paths)
    _ratio_scale(top, ratios)
    top.set_ylabel("output power / data variance", fontsize=9)
    fail_text = (
        f"; fails (shaded) down to {summ['fails_up_to']}, "
        f"{summ['fails_worst_output_over_data']:.3g}x"
        if failing.any()
        else ""
    )
    model = cal.model.get("pipeline", "the network")
    top.set_title(title or f"Calibration of {model}: {cal.evaluations:,} evaluations{fail_text}",
                  fontsize=10)  # fmt: skip
    _legend(top)
    resid = np.asarray(summ["residual_over_variance_by_level"])
    gain = np.asarray(summ["gain_deviation_by_level"])
    bottom.plot(lam, _positive(resid), color=_COLOURS[1], marker="s", markersize=3.5,
                label="non-linear power / variance")  # fmt: skip
    bottom.plot(lam, _positive(gain), color=_COLOURS[2], marker="^", markersize=3.5,
                label="gain deviation (relative)")  # fmt: skip
    bottom.set_yscale("log")
    _tidy_log(bottom, "y")
    bottom.set_xlabel("log-SNR (noisiest left)")
    _legend(bottom)
    return _save(fig, path)


# ------------------------------------------------------------------------------ all of them
def write_plots(result: FitResult, directory: str | Path, *, max_baselines: int = 4) -> list[Path]:
    """Write the plots of a fit into ``directory`` (created if needed).

    Writes ``spectrum.png`` (:func:`plot_spectrum`), ``transfer.png`` (:func:`plot_transfer`),
    ``schedules.png`` (:func:`plot_schedules`) and ``trace.png`` (:func:`plot_trace`) for the
    fitted schedule and the best ``max_baselines`` heuristics of ``result``, and for a fit on a
    calibration ``calibration.png`` (:func:`plot_calibration`).

    Parameters
    ----------
    result : FitResult
        What :func:`specsched.fit` returned.
    directory : str or Path
        Output folder; created with its parents when missing.
    max_baselines : int, default 4
        How many heuristics (best first) to draw beside the fitted schedule.

    Returns
    -------
    list of Path
        The files, in the order above.

    Examples
    --------
    >>> import specsched as ss
    >>> from specsched.plots import write_plots
    >>> spec = ss.Spectrum.from_source("builtin:photos", size=16, channels=1, n=2000)
    >>> result = ss.fit(spec, steps=10)
    >>> [p.name for p in write_plots(result, "plots")]  # doctest: +SKIP
    ['spectrum.png', 'transfer.png', 'schedules.png', 'trace.png']
    """
    check_int("max_baselines", max_baselines, 0)
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise SpecschedError(f"{out} is a file, not a folder: choose another output folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecschedError(
            f"cannot create the folder {out} ({exc.strerror}): choose another"
        ) from None
    spec = result.response.spectrum
    base = list(result.baselines[: int(max_baselines)])
    curves = [(FITTED_LABEL, result.response)] + [(s.name, r) for s, r in base]
    schedules = [result.schedule] + [s for s, _ in base]
    paths = [out / name for name in ("spectrum.png", "transfer.png", "schedules.png", "trace.png")]
    plot_spectrum(spec, paths[0])
    plot_transfer(spec, curves, paths[1])
    plot_schedules(schedules, paths[2])
    plot_trace(curves, paths[3])
    if spec.calibration is not None:
        paths.append(out / "calibration.png")
        plot_calibration(spec, paths[4])
    return paths
