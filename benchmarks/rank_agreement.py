"""How well each model ranks the schedules of a sampled cell: offline, on a stored run.

For every deterministic cell of a ``default_vs_heuristics.py`` run (its ``paired_check_*.json``
in ``--stored``), every schedule sampled there (the default, the plain fit, the calibrated fit
where sampled, every heuristic) is rated by W2 under the calibrated model (the benchmark's
calibration of the model, recomputed deterministically as the run made it) and under the Gaussian
model of the same spectrum, and each rating is compared with the measured FD: Spearman's rank
correlation over the cell's schedules with a finite FD, and which heuristic each model rates best
against the one that measured best. No sampling.

Usage::

    python benchmarks/rank_agreement.py --denoiser mn16 --stored benchmarks/results/mn16

Writes ``rank_agreement_<denoiser>.json`` into ``--stored`` and prints a table (a minute or two).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import predicted_w2, save_result  # noqa: E402

FITTED = ("default", "plain", "calibrated")


def cell_agreement(cal, rows: list[dict], sampler: str, train) -> dict:
    """Spearman's rho of each model's W2 with the measured FD over ``rows`` (finite FD only),
    and the best heuristic by each model and by FD."""
    from scipy.stats import spearmanr

    rows = [r for r in rows if np.isfinite(r["fd"])]
    fd = np.array([r["fd"] for r in rows])
    out: dict = {"schedules": len(rows)}
    heur = [i for i, r in enumerate(rows) if r["schedule"] not in FITTED]
    out["best_measured"] = rows[heur[int(np.argmin(fd[heur]))]]["schedule"]
    plain = dataclasses.replace(cal, calibration=None)
    for name, model in (("calibrated", cal), ("gaussian", plain)):
        w2 = predicted_w2(model, rows, sampler, train)
        out[f"{name}_spearman"] = float(spearmanr(w2, fd).statistic)
        out[f"{name}_best"] = rows[heur[int(np.argmin(w2[heur]))]]["schedule"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--stored", type=Path, required=True, help="a default_vs_heuristics.py --out")
    ap.add_argument("--kind", choices=["auto", "fourier", "pca"], default="auto")
    args = ap.parse_args(argv)
    paths = sorted(args.stored.glob(f"paired_check_{args.denoiser}_*.json"))
    if not paths:
        ap.error(f"no paired_check_{args.denoiser}_*.json in {args.stored}")
    torch.set_num_threads(1)
    setup = rd.SETUPS[args.denoiser]({**rd.PRESETS["full"], "kind": args.kind, "fid": False})
    cal = rd.calibrate_setup(setup)
    cells = []
    for p in paths:
        data = json.loads(p.read_text())
        sampler, steps = data["sampler"], len(data["rows"][0]["timesteps"])
        if rd.get_sampler(sampler).noise_draws(steps):
            continue  # stochastic: fitted on the Gaussian model, not ranked by the calibration
        cell = {"sampler": sampler, "steps": steps}
        cell.update(cell_agreement(cal, data["rows"], sampler, setup.train))
        cells.append(cell)
        print(
            f"{sampler:9s}{steps:3d}  Spearman with FD: calibrated {cell['calibrated_spearman']:5.2f}"
            f", Gaussian {cell['gaussian_spearman']:5.2f}  |  best heuristic: calibrated "
            f"{cell['calibrated_best']}, Gaussian {cell['gaussian_best']}, measured "
            f"{cell['best_measured']}",
            flush=True,
        )
    payload = {"denoiser": args.denoiser, "cells": cells}
    out = args.stored / f"rank_agreement_{args.denoiser}.json"
    return save_result(out, "rank_agreement.py", argv, payload)


if __name__ == "__main__":
    sys.exit(main())
