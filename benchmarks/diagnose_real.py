"""Where does a schedule's error sit? FD split into mean and covariance, W2 per frequency band.

A companion of ``real_denoisers.py`` for the cases its table raises questions about. For each
``denoiser:sampler:steps`` case it regenerates the best spectral schedule, the best heuristic and
the many-step reference solution from the same seeded x_T (the same set-up and seeds as the
benchmark), and reports

- the Frechet distance split into its mean term ``|m_x - m_y|^2`` and its covariance term;
- the spectral W2^2 (``specsched.evaluate.spectral_w2``) split over radial frequency bands, for the
  generated samples against the reference data, next to the Gaussian prediction of the same
  split (``specsched.response``) and the error of the schedule's samples against the reference
  solution per band (the RMSE^2 per band, from the same x_T);
- a plot of the generated/data power ratio per band, measured and predicted.

Usage::

    python benchmarks/diagnose_real.py unet:ddim:20 unet:dpmpp_2m:5 gmm:ddim:20

The schedules are taken from ``benchmarks/results/real_denoisers.json`` (run the benchmark first).
Writes ``benchmarks/results/diagnose_real.json`` and ``benchmarks/results/diagnose_real.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

import real_denoisers as bench

from specsched import Spectrum
from specsched.evaluate import frechet_distance
from specsched.generation import generate
from specsched.response import response
from specsched.schedules import Schedule

BANDS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.71)  # radial frequency, cycles per pixel


def band_of(spec: Spectrum) -> np.ndarray:
    f = spec.frequencies[..., 0]
    idx = np.digitize(f, BANDS[1:-1])
    idx[f == 0] = -1  # DC: its own row (the mean lives there)
    return idx


def per_band(spec: Spectrum, values: np.ndarray) -> list[float]:
    """Sum of weighted per-mode ``values`` in each band, DC first."""
    idx, w = band_of(spec), spec.weights[..., 0]
    v = values[..., 0] * w
    return [float(v[idx == -1].sum())] + [float(v[idx == b].sum()) for b in range(len(BANDS) - 1)]


def w2_per_band(gen: Spectrum, data: Spectrum) -> list[float]:
    return per_band(data, (np.sqrt(gen.variances) - np.sqrt(data.variances)) ** 2)


def power_ratio(gen_var: np.ndarray, data: Spectrum) -> list[float]:
    num = per_band(data, gen_var)
    den = per_band(data, data.variances)
    return [a / b for a, b in zip(num, den, strict=True)]


def rmse2_per_band(x: np.ndarray, ref: np.ndarray, data: Spectrum) -> list[float]:
    """Mean squared error per pixel carried by each band (sums to the RMSE^2)."""
    err = np.fft.rfft2(x - ref, norm="ortho")  # (n, 1, H, W//2+1)
    power = np.mean(np.abs(err) ** 2, axis=0)[0][..., None]  # (H, W//2+1, 1)
    return [v / x[0].size for v in per_band(data, power)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="+", help="denoiser:sampler:steps, e.g. unet:ddim:20")
    ap.add_argument("--results", type=Path, default=bench.HERE / "results" / "real_denoisers.json")
    ap.add_argument("--out", type=Path, default=bench.HERE / "results")
    args = ap.parse_args(argv)
    payload = json.loads(args.results.read_text())
    cfg = dict(payload["config"])
    n = cfg["num_samples"]
    setups: dict[str, bench.Setup] = {}
    refsol: dict[str, np.ndarray] = {}
    out = []
    t0 = time.perf_counter()
    for case in args.cases:
        den, sampler, steps = case.split(":")
        steps = int(steps)
        if den not in setups:
            setups[den] = bench.SETUPS[den](cfg)
            refsol[den], _ = bench.reference_solution(setups[den], cfg)
        setup = setups[den]
        data = setup.reference.spectrum()
        rows = [
            r
            for r in payload["records"]
            if (r["denoiser"], r["sampler"], r["steps"]) == (den, sampler, steps)
        ]
        spec_best, heur_best = bench.best(rows, "spectral"), bench.best(rows, "heuristic")
        entries = []
        for label, x, sched in [("reference solution", refsol[den], None)] + [
            (
                r["schedule"],
                None,
                Schedule.from_timesteps(
                    r["timesteps"], train_schedule=bench.TRAIN, name=r["schedule"]
                ),
            )
            for r in (spec_best, heur_best)
        ]:
            if x is None:
                x = generate(
                    setup.denoise, sched, sampler, num_samples=n, shape=bench.SHAPE, seed=0
                )
            fd = frechet_distance(x, setup.reference)
            mean_term = float(np.sum((x.reshape(n, -1).mean(0) - setup.reference.mean) ** 2))
            gen = Spectrum.from_array(x, layout="NCHW", kind="fourier")
            e = {
                "schedule": label,
                "timesteps": None if sched is None else [int(t) for t in sched.timesteps],
                "fd": fd,
                "fd_mean_term": mean_term,
                "fd_covariance_term": fd - mean_term,
                "w2_per_band": w2_per_band(gen, data),
                "power_ratio": power_ratio(gen.variances, data),
                "rmse2_per_band": rmse2_per_band(x, refsol[den], data),
            }
            if sched is not None:
                pred = response(setup.spectrum, sched, sampler)
                train = setup.spectrum
                e["predicted_w2_per_band"] = per_band(
                    train, (np.sqrt(pred.output_var) - np.sqrt(train.variances)) ** 2
                )
                e["predicted_power_ratio"] = power_ratio(np.asarray(pred.output_var), train)
            entries.append(e)
        out.append({"case": case, "entries": entries})
        print(f"\n== {case} ({time.perf_counter() - t0:.0f} s)")
        bands = ["DC"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(BANDS)]
        print(
            f"{'schedule':22s} {'FD':>7s} {'mean':>7s} {'cov':>7s} | power ratio per band: "
            + " ".join(f"{b:>8s}" for b in bands)
        )
        for e in entries:
            print(
                f"{e['schedule']:22s} {e['fd']:7.3f} {e['fd_mean_term']:7.3f} "
                f"{e['fd_covariance_term']:7.3f} | measured               "
                + " ".join(f"{v:8.3f}" for v in e["power_ratio"])
            )
            if "predicted_power_ratio" in e:
                print(
                    f"{'':46s} | predicted              "
                    + " ".join(f"{v:8.3f}" for v in e["predicted_power_ratio"])
                )
            print(
                f"{'':46s} | W2 per band            "
                + " ".join(f"{v:8.3f}" for v in e["w2_per_band"])
            )
            print(
                f"{'':46s} | RMSE^2 to ref. x 1e3   "
                + " ".join(f"{1e3 * v:8.3f}" for v in e["rmse2_per_band"])
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "diagnose_real.json").write_text(
        json.dumps({"bands": BANDS, "cases": out}, indent=1)
    )
    plot(out, args.out / "diagnose_real.png")
    print(f"\nwrote {args.out / 'diagnose_real.json'} and {args.out / 'diagnose_real.png'}")
    return 0


def plot(cases: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6 * len(cases), 3.2), layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    labels = ["DC"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(BANDS)]
    xs = np.arange(len(labels))
    for ax, case in zip(axes, cases, strict=True):
        for i, e in enumerate(case["entries"]):
            color = f"C{i}"
            ax.plot(xs, e["power_ratio"], marker="o", color=color, label=e["schedule"])
            if "predicted_power_ratio" in e:
                ax.plot(xs, e["predicted_power_ratio"], ls="--", color=color, alpha=0.8)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(xs, labels, fontsize=7, rotation=30)
        ax.set_title(case["case"] + " (dashed: Gaussian prediction)", fontsize=8)
        ax.set_ylabel("generated / data power", fontsize=8)
        ax.legend(fontsize=6)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
