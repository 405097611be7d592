"""How well do the Gaussian and the calibrated response models predict real sampling?

For each denoiser (the Gaussian-mixture oracle ``gmm`` and the tiny16 UNet ``unet`` of
``real_denoisers.py``), ``specsched.calibrate`` measures the denoiser once (cost reported); then, for
ddim, dpmpp_2m, unipc and heun at 5, 10 and 20 steps on heuristic schedules (leading, logsnr,
karras in turn: schedules the calibration never saw), the denoiser samples 256 images from seeded
noise and the generated power per radial frequency band (DC on its own, power about the data mean)
is compared with each model's prediction. The error of a model is the root mean square of
``log(predicted / measured)`` over bands and cases.

Second, the ranking that matters for schedule design: for every sampler x steps cell of the last
full ``real_denoisers.py`` run (``results/real_denoisers.json``, 13 schedules a cell, measured FD),
the Spearman correlation between each model's predicted W2 and the measured FD, and the FD of the
schedule each model would pick relative to the best measured ("regret").

Usage::

    python benchmarks/calibration.py            # ~10 min on 2 idle cores
    python benchmarks/calibration.py --quick    # unet only, 4 cases, 128 samples

Writes ``benchmarks/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_denoisers as bench
from _common import predicted_w2, stamp, write_json

from specsched import Spectrum
from specsched.calibrate import calibrate
from specsched.data.builtin import photos
from specsched.generation import generate
from specsched.heuristics import heuristic_schedule
from specsched.levels import LevelRange
from specsched.mixture import GaussianMixture
from specsched.response import response
from specsched.schedules import Schedule

HERE = Path(__file__).resolve().parent
BANDS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.71)  # radial frequency, cycles per pixel (as diagnose_real)
LR = LevelRange.discrete(bench.TRAIN)


def band_index(spec: Spectrum) -> np.ndarray:
    f = spec.frequencies[..., 0]
    idx = np.digitize(f, BANDS[1:-1])
    idx[f == 0] = -1
    return idx


def bands(spec: Spectrum, power: np.ndarray) -> np.ndarray:
    """Weighted power per band (DC first) of per-mode ``power`` (layout of ``spec.variances``)."""
    idx, v = band_index(spec), (power * spec.weights)[..., 0]
    return np.array([v[idx == -1].sum()] + [v[idx == b].sum() for b in range(len(BANDS) - 1)])


def measured_power(x: np.ndarray, spec: Spectrum) -> np.ndarray:
    """Per-mode power of samples about the data's mean (the DC mode carries the mean error)."""
    X = np.fft.rfft2(x[:, 0] - spec.channel_means[0], norm="ortho")
    return np.mean(np.abs(X) ** 2, axis=0)[..., None]


def predicted_power(spec: Spectrum, sched: Schedule, sampler: str) -> np.ndarray:
    r = response(spec, sched, sampler)
    return r.output_var + (r.output_mean - spec.means) ** 2


def data_for(name: str, n: int) -> tuple[np.ndarray, object]:
    if name == "gmm":
        gm = GaussianMixture.load(bench.GMM_PATH)
        return gm.sample(n, seed=101), bench.MixtureDenoiser(gm)
    from specsched.integrations.diffusers import UNetDenoiser

    den, _ = UNetDenoiser.from_pipeline(bench.UNET_PATH)
    return photos(size=16, channels=1, n=n, seed=1), den


def run(name: str, cfg: dict, log) -> dict:
    x, den = data_for(name, cfg["spectrum_n"])
    spec = Spectrum.from_array(x, layout="NCHW", kind="fourier")
    t0 = time.perf_counter()
    cal = calibrate(spec, den, x, levels=LR, num_levels=cfg["levels"], num_samples=cfg["cal_n"])
    cal_seconds = time.perf_counter() - t0
    log(f"{name}: calibrated in {cal_seconds:.1f} s, {cal.calibration.evaluations} evaluations")
    data_b = bands(spec, spec.variances)
    cases = []
    for i, (sampler, steps) in enumerate(itertools.product(cfg["samplers"], cfg["steps"])):
        hname = ("leading", "logsnr", "karras")[i % 3]
        sched = heuristic_schedule(hname, steps, LR)
        xs = generate(den, sched, sampler, num_samples=cfg["n"], shape=bench.SHAPE, seed=0)
        meas = bands(spec, measured_power(xs, spec)) / data_b
        pred = {
            "gaussian": bands(spec, predicted_power(spec, sched, sampler)) / data_b,
            "calibrated": bands(cal, predicted_power(cal, sched, sampler)) / data_b,
        }
        err = {k: float(np.sqrt(np.mean(np.log(v / meas) ** 2))) for k, v in pred.items()}
        cases.append(
            {
                "sampler": sampler,
                "steps": steps,
                "schedule": hname,
                "measured": meas.tolist(),
                **{k: v.tolist() for k, v in pred.items()},
                "error": err,
            }
        )
        log(
            f"  {sampler:9s} {steps:3d} {hname:8s} "
            + " ".join(f"{k} {v:.3f}" for k, v in err.items())
        )
    total = {
        k: float(np.sqrt(np.mean([c["error"][k] ** 2 for c in cases])))
        for k in ("gaussian", "calibrated")
    }
    return {
        "denoiser": name,
        "calibration_seconds": cal_seconds,
        "evaluations": cal.calibration.evaluations,
        "cases": cases,
        "rms_log_error": total,
        "ranking": ranking(name, spec, cal) if cfg["ranking"] else None,
    }


def ranking(name: str, spec: Spectrum, cal: Spectrum) -> list[dict]:
    path = HERE / "results" / "real_denoisers.json"
    if not path.exists():
        return []
    records = json.loads(path.read_text())["records"]
    out = []
    for (sampler, steps), group in itertools.groupby(
        sorted(
            (r for r in records if r["denoiser"] == name),
            key=lambda r: (r["sampler"], r["steps"]),
        ),
        key=lambda r: (r["sampler"], r["steps"]),
    ):
        group = list(group)
        fd = np.array([r["metrics"]["fd"]["value"] for r in group])
        row = {"sampler": sampler, "steps": steps}
        for label, model in (("gaussian", spec), ("calibrated", cal)):
            w2 = predicted_w2(model, group, sampler, bench.TRAIN)
            ok = np.isfinite(w2)
            row[label] = {
                "spearman": float(scipy.stats.spearmanr(w2[ok], fd[ok]).statistic),
                "regret": float(fd[int(np.nanargmin(w2))] / fd.min()),
                "pick": group[int(np.nanargmin(w2))]["schedule"],
            }
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--denoisers", nargs="+", choices=["gmm", "unet"], default=None)
    ap.add_argument("--samplers", nargs="+", default=None, help="default: ddim dpmpp_2m unipc heun")
    ap.add_argument("--no-ranking", action="store_true", help="skip the FD-ranking part")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "calibration.json")
    args = ap.parse_args(argv)
    cfg = dict(
        denoisers=("gmm", "unet"),
        samplers=("ddim", "dpmpp_2m", "unipc", "heun"),
        steps=(5, 10, 20),
        n=256,
        levels=24,
        cal_n=200,
        spectrum_n=20_000,
        ranking=True,
    )
    if args.quick:
        cfg.update(denoisers=("unet",), samplers=("ddim", "dpmpp_2m"), steps=(5, 10), n=128,
                   levels=12, cal_n=64, spectrum_n=3000, ranking=False)  # fmt: skip
    if args.denoisers:
        cfg["denoisers"] = tuple(args.denoisers)
    if args.samplers:
        cfg["samplers"] = tuple(args.samplers)
    if args.no_ranking:
        cfg["ranking"] = False
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    results = [run(name, cfg, log) for name in cfg["denoisers"]]
    print("\nrms log error of the predicted power per band (DC + 5 bands):")
    print(f"{'denoiser':10s} {'Gaussian':>9s} {'calibrated':>10s} {'ratio':>6s}")
    for r in results:
        g, c = r["rms_log_error"]["gaussian"], r["rms_log_error"]["calibrated"]
        print(f"{r['denoiser']:10s} {g:9.3f} {c:10.3f} {c / g:6.2f}")
    for r in results:
        if r["ranking"]:
            print(f"\n{r['denoiser']}: Spearman(predicted W2, measured FD) / regret of the pick")
            for row in r["ranking"]:
                print(
                    f"  {row['sampler']:9s} {row['steps']:3d}  Gaussian "
                    f"{row['gaussian']['spearman']:5.2f} / {row['gaussian']['regret']:7.2f}   "
                    f"calibrated {row['calibrated']['spearman']:5.2f} / "
                    f"{row['calibrated']['regret']:5.2f}"
                )
    payload = {
        "command": "python benchmarks/calibration.py " + " ".join(argv or sys.argv[1:]),
        **stamp(),
        "config": cfg,
        "wall_seconds": time.perf_counter() - t0,
        "results": results,
    }
    write_json(args.out, payload)
    print(f"\nwrote {args.out} ({payload['wall_seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
