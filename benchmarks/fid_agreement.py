"""Which objective ranks schedules as FID does? The spectral models against measured FID on MNIST.

By pixel FD the default W2 fits win or tie most MNIST cells; by FID (Inception features, the
field's metric) they lose to Align Your Steps in most (benchmarks/RESULTS.md, "MNIST"). This
script asks, offline, which of the library's objectives (``w2``, ``kl``: KL(generated || data),
``kl-data``: KL(data || generated)), under which model (the Gaussian model of the spectrum, or the
calibrated model of the network), ranks the schedules of a cell in the order FID measures them.
Every schedule of the stored MNIST runs that carries an FID is used: every heuristic and the
plain fits of ``real_denoisers.py``, and the fits of the ``calibrated_fits.py --fid`` results
paired with each run (same x_T, same reference). No sampling; the calibration is recomputed,
deterministically, as in the stored runs (``kind="auto"``: PCA, what ``fit`` uses by default).

For each cell (sampler x steps) and each (model, objective), it reports Kendall's tau between
the predicted objective and the measured FID (and, for comparison, the measured pixel FD), and
the FID of the heuristic the objective rates best, over the best heuristic's FID: the fallback
that objective would keep. Rows that diverge (FD above 1,000) are left out of the rank
correlations: every model predicts them, and they would inflate every tau alike.

Usage::

    python benchmarks/fid_agreement.py

A few minutes (one calibration, then a few hundred exact responses). Writes
``results/fid_agreement.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402

from specsched import response  # noqa: E402
from specsched.divergence import OBJECTIVES  # noqa: E402
from specsched.schedules import Schedule  # noqa: E402

RESULTS = HERE / "results"
#: (stored real_denoisers.py run, calibrated_fits.py --fid results paired with it)
RUNS: list[tuple[Path, list[Path]]] = [
    (RESULTS / "real_denoisers_mnist.json", [RESULTS / "calibrated_fits_mnist_auto_fid.json"]),
    *(
        (
            RESULTS / f"mnist{n}" / pair / "results" / "real_denoisers.json",
            [RESULTS / f"mnist{n}" / f"calibrated_fits_mnist_auto_fid_{pair}.json"],
        )
        for n in (5, 20)
        for pair in ("ddim_dpmpp_2m", "unipc_heun")
    ),
]
#: FD above which a row diverged (FID saturates near pure noise's)
DIVERGED_FD = 1000.0


def cell_rows(stored: dict, fits: list[dict], sampler: str, steps: int) -> list[dict[str, Any]]:
    """Every schedule of one cell with an FID: ``name``, ``timesteps``, ``fd``, ``fid`` and
    whether it is a heuristic (the heuristics of the run, then its fits, then the fits of the
    paired results; a schedule measured twice is kept once, as the heuristic where a fit fell
    back to one)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, ...]] = set()
    records = sorted(stored["records"], key=lambda r: r["kind"] != "heuristic")  # stable
    for r in records:
        if (r["sampler"], r["steps"]) != (sampler, steps) or "fid" not in r["metrics"]:
            continue
        key = tuple(r["timesteps"])
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "name": r["schedule"],
                "timesteps": list(r["timesteps"]),
                "fd": r["metrics"]["fd"]["value"],
                "fid": r["metrics"]["fid"]["value"],
                "heuristic": r["kind"] == "heuristic",
            }
        )
    for f in fits:
        for r in f["rows"]:
            if (r["sampler"], r["steps"]) != (sampler, steps) or r.get("fid") is None:
                continue
            key = tuple(r["timesteps"])
            if key in seen:
                continue
            seen.add(key)
            name = f"{r['fit']}-fit ({r['kind']})"
            out.append(
                {
                    "name": name,
                    "timesteps": list(r["timesteps"]),
                    "fd": r["fd"],
                    "fid": r["fid"],
                    "heuristic": False,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS / "fid_agreement.json")
    args = ap.parse_args(argv)
    missing = [str(p) for run, fits in RUNS for p in (run, *fits) if not p.is_file()]
    if missing:
        ap.error(f"no such stored run {missing[0]}: the MNIST runs of benchmarks/RESULTS.md")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    loaded = [
        (json.loads(r.read_text()), [json.loads(f.read_text()) for f in fs]) for r, fs in RUNS
    ]
    setup = rd.SETUPS["mnist"]({**loaded[0][0]["config"], "kind": "auto", "fid": False})
    models = {"gaussian": setup.spectrum, "calibrated": rd.calibrate_setup(setup)}
    print(
        f"mnist: spectrum kind {setup.spectrum.kind}, calibrated in {time.perf_counter() - t0:.0f} s"
    )
    combos = [(m, o) for m in models for o in OBJECTIVES]
    cells = []
    for stored, fits in loaded:
        for sampler in stored["config"]["samplers"]:
            for steps in stored["config"]["steps"]:
                rows = cell_rows(stored, fits, sampler, steps)
                if not rows:
                    continue
                scheds = [
                    Schedule.from_timesteps(r["timesteps"], train_schedule=setup.train)
                    for r in rows
                ]
                for m, o in combos:
                    for r, sch in zip(rows, scheds, strict=True):
                        r[f"{m}_{o}"] = float(response(models[m], sch, sampler).value(o))
                ok = [r for r in rows if r["fd"] < DIVERGED_FD]
                heur = [r for r in rows if r["heuristic"]]
                best_fid = min(r["fid"] for r in heur)
                stats = {}
                for m, o in combos:
                    pred = [r[f"{m}_{o}"] for r in ok]
                    pick = min(heur, key=lambda r, k=f"{m}_{o}": r[k])
                    stats[f"{m}_{o}"] = {
                        "tau_fid": float(kendalltau(pred, [r["fid"] for r in ok]).statistic),
                        "tau_fd": float(kendalltau(pred, [r["fd"] for r in ok]).statistic),
                        "heuristic": pick["name"],
                        "heuristic_fid_ratio": pick["fid"] / best_fid,
                    }
                tau_fd_fid = float(
                    kendalltau([r["fd"] for r in ok], [r["fid"] for r in ok]).statistic
                )
                cells.append(
                    {
                        "sampler": sampler,
                        "steps": steps,
                        "schedules": len(rows),
                        "diverged": len(rows) - len(ok),
                        "best_heuristic_fid": min(heur, key=lambda r: r["fid"])["name"],
                        "tau_fd_fid": tau_fd_fid,
                        "stats": stats,
                        "rows": rows,
                    }
                )
                print(
                    f"{sampler:9s} {steps:2d}: {len(ok):2d} schedules, FD~FID tau {tau_fd_fid:+.2f}; "
                    + "  ".join(f"{k} {v['tau_fid']:+.2f}" for k, v in stats.items()),
                    flush=True,
                )
    cells.sort(key=lambda c: (c["steps"], c["sampler"]))
    summary = {}
    for m, o in combos:
        k = f"{m}_{o}"
        ratios = [c["stats"][k]["heuristic_fid_ratio"] for c in cells]
        summary[k] = {
            "mean_tau_fid": float(np.mean([c["stats"][k]["tau_fid"] for c in cells])),
            "mean_tau_fd": float(np.mean([c["stats"][k]["tau_fd"] for c in cells])),
            "picks_best_fid_heuristic": int(sum(r == 1.0 for r in ratios)),
            "geomean_fid_ratio_of_pick": float(np.exp(np.mean(np.log(ratios)))),
        }
    summary["measured_fd"] = {
        "mean_tau_fid": float(np.mean([c["tau_fd_fid"] for c in cells])),
    }
    print()
    print(
        f"{'model / objective':24s} {'tau(FID)':>9s} {'tau(FD)':>8s} {'best-FID pick':>14s} {'FID ratio':>10s}"
    )
    for k, v in summary.items():
        if k == "measured_fd":
            print(f"{'measured pixel FD':24s} {v['mean_tau_fid']:+9.2f}")
            continue
        print(
            f"{k:24s} {v['mean_tau_fid']:+9.2f} {v['mean_tau_fd']:+8.2f} "
            f"{v['picks_best_fid_heuristic']:>8d} / {len(cells)} {v['geomean_fid_ratio_of_pick']:10.3f}"
        )
    payload = {
        "runs": [[str(r), [str(f) for f in fs]] for r, fs in RUNS],
        "kind": setup.spectrum.kind,
        "summary": summary,
        "wall_seconds": time.perf_counter() - t0,
        "cells": cells,
    }
    return save_result(args.out, "fid_agreement.py", argv, payload, threads="1")


if __name__ == "__main__":
    sys.exit(main())
