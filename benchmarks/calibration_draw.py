"""The calibration samples' draw: how much the measured gains follow it (RESULTS.md, "The samples' draw").

A calibration regresses the network's output on its input over ``num_samples`` (200) samples.
Those samples carry more or less power than the data (their *draw*), and every mode's gain can
follow it at once. On the exact mixture denoiser (``gmm``) the population gain is the Gaussian
gain, so any common deviation is the draw's. This script prints and writes:

1. the benchmark calibration's draw (``Calibration.meta["draw"]``) and its gain's median relative
   deviation from the Gaussian gain at every grid level;
2. the calibrated model's predicted output power, per band (DC + 5 bands by variance), for
   logSNR-uniform DDIM (200 steps) and UniPC (100 steps): converged samplers, which for the exact
   posterior mean give the data's power; then the same with the Gaussian gain put in place of the
   measured one, and the Gaussian model's;
3. over ``--draws`` other 200-sample subsets, each subset's draw and the median relative gain
   deviation at a few levels (one regression per level, the same as ``calibrate``'s).

Usage::

    python benchmarks/calibration_draw.py            # the mixture, about a minute
    python benchmarks/calibration_draw.py --draws 4

Writes ``results/calibration_draw_<denoiser>.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402

import specsched as ss  # noqa: E402
from specsched.calibrate import calibrate  # noqa: E402
from specsched.heuristics import logsnr  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402


def band_power(spec: ss.Spectrum, var: np.ndarray) -> list[float]:
    """Weighted power over the data's in the DC mode and 5 bands of the other modes by variance."""
    S, w = spec.variances.ravel(), np.broadcast_to(spec.weights, spec.variances.shape).ravel()
    order = np.argsort(-S)
    bands = [order[:1], *np.array_split(order[1:], 5)]
    v = var.ravel()
    return [float(np.sum(w[b] * v[b]) / np.sum(w[b] * S[b])) for b in bands]


def median_deviation(c, spec: ss.Spectrum) -> np.ndarray:
    """Median over modes of the gain's relative deviation from the Gaussian gain, per level."""
    _, gg = c.gaussian_gain(spec.variances)
    return np.median((c.gain / gg - 1).reshape(len(c.log_snr), -1), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=["gmm"], default="gmm")
    ap.add_argument("--draws", type=int, default=8, help="other 200-sample subsets")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    if args.draws < 0:
        ap.error(f"--draws must be at least 0 (got {args.draws})")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    setup = rd.SETUPS[args.denoiser](dict(rd.PRESETS["full"]))
    spec = setup.spectrum
    cal = rd.calibrate_setup(setup)
    c = cal.calibration
    dev = median_deviation(c, spec)
    print(f"benchmark calibration: samples' power over the spectrum's {1 + c.meta['draw']:.3f}")
    print("  log-SNR " + " ".join(f"{v:6.2f}" for v in c.log_snr[::2]))
    print("  gain    " + " ".join(f"{v:+6.3f}" for v in dev[::2]) + "  (median relative deviation)")

    lr = LevelRange.discrete(setup.train)
    _, gg = c.gaussian_gain(spec.variances)
    gauss_gain = dataclasses.replace(cal, calibration=dataclasses.replace(c, gain=gg.copy()))
    converged = {}
    for sampler, steps in (("ddim", 200), ("unipc", 100)):
        sched = logsnr(steps, lr)
        row = {
            name: band_power(spec, ss.response(model, sched, sampler).output_var)
            for name, model in (
                ("calibrated", cal),
                ("calibrated, Gaussian gain", gauss_gain),
                ("Gaussian model", spec),
            )
        }
        converged[f"{sampler}{steps}"] = row
        print(f"{sampler}-{steps} (logSNR-uniform): predicted power over the data's, DC + 5 bands")
        for name, p in row.items():
            print(f"  {name:>26}: " + " ".join(f"{v:.3f}" for v in p))

    levels = [j for j in range(len(c.log_snr)) if -2 <= c.log_snr[j] <= 7][::2]
    draws = []
    for seed in range(1, args.draws + 1):
        sub = calibrate(
            spec, setup.denoise, setup.calibration_data, levels=lr, seed=seed, trajectories=0
        ).calibration
        d = median_deviation(sub, spec)
        draws.append({"seed": seed, "power": 1 + sub.meta["draw"], "gain": d[levels].tolist()})
        print(
            f"subset seed {seed}: power {1 + sub.meta['draw']:.3f}, median gain deviation at "
            "log-SNR " + ", ".join(f"{c.log_snr[j]:.1f}: {d[j]:+.3f}" for j in levels)
        )
    payload = {
        "denoiser": args.denoiser,
        "log_snr": c.log_snr.tolist(),
        "power": 1 + c.meta["draw"],
        "gain_deviation": dev.tolist(),
        "converged": converged,
        "subset_levels": [float(c.log_snr[j]) for j in levels],
        "subsets": draws,
        "wall_seconds": time.perf_counter() - t0,
    }
    return save_result(
        args.out / f"calibration_draw_{args.denoiser}.json", "calibration_draw.py", argv, payload
    )


if __name__ == "__main__":
    raise SystemExit(main())
