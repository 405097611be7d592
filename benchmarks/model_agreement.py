"""Would a schedule that both models rate better than the heuristics have avoided the losses?

Offline, on schedules already measured: for every cell of a ``calibrated_fits.py`` result (its
calibrated and plain fits, paired with the heuristic rows of the stored ``real_denoisers.py`` run),
each candidate (the two fits and every heuristic) is rated by the Gaussian model (the plain
spectrum) and by the calibrated model, as the ratio of its W2 to the best heuristic's under that
model. The rule tried: among the candidates whose worse ratio is below 1 (better than every
heuristic under both models), take the one with the smallest worse ratio; where there is none,
keep what ``fit`` returns today (the calibrated default). No sampling: each chosen schedule's
FD and its class against the best heuristic are the ones already measured (the fits' from
``calibrated_fits.py``, the heuristics' from the stored run, ties by the same paired test).

Usage::

    python benchmarks/model_agreement.py --denoiser gmm
    python benchmarks/model_agreement.py --denoiser unet
    python benchmarks/model_agreement.py --denoiser mnist --stored benchmarks/results/real_denoisers_mnist.json \
        --fits benchmarks/results/calibrated_fits_mnist_auto.json --kind auto

A few minutes each (the calibration is recomputed, deterministically, as in the stored runs).
Writes ``results/model_agreement_<denoiser>.json`` and prints a table. The rule was chosen after
seeing these models' results, so on them it is a description, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import predicted_w2, save_result  # noqa: E402

from specsched.evaluate import paired_tie  # noqa: E402


def measured(row: dict, best_h: dict) -> tuple[float, str]:
    """FD of a candidate and its class against the best heuristic (heuristic rows: paired test)."""
    if "fit" in row:  # a calibrated_fits.py row: already classed against the best heuristic
        return row["fd"], row["result"]
    if row is best_h:
        return row["metrics"]["fd"]["value"], "tie"
    a, b = row["metrics"]["fd"], best_h["metrics"]["fd"]
    same = paired_tie(
        (a["value"], np.array(a["bootstrap"])), (b["value"], np.array(b["bootstrap"]))
    )
    return a["value"], "tie" if same else ("win" if a["value"] < b["value"] else "loss")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--stored", type=Path, default=HERE / "results" / "real_denoisers.json")
    ap.add_argument("--fits", type=Path, default=None, help="calibrated_fits.py result")
    ap.add_argument("--kind", choices=["fourier", "auto", "pca"], default="fourier")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    fits_path = args.fits or HERE / "results" / f"calibrated_fits_{args.denoiser}.json"
    stored = json.loads(args.stored.read_text())
    fitted = json.loads(fits_path.read_text())
    setup = rd.SETUPS[args.denoiser]({**stored["config"], "kind": args.kind, "fid": False})
    calibrated = rd.calibrate_setup(setup)
    rows = []
    for sampler, steps in sorted({(r["sampler"], r["steps"]) for r in fitted["rows"]}):
        heur = [
            r
            for r in stored["records"]
            if (r["denoiser"], r["sampler"], r["steps"], r["kind"])
            == (args.denoiser, sampler, steps, "heuristic")
        ]
        best_h = min(heur, key=lambda r: r["metrics"]["fd"]["value"])
        fits = {
            r["fit"]: r for r in fitted["rows"] if (r["sampler"], r["steps"]) == (sampler, steps)
        }
        cands = [("calibrated fit", fits["calibrated"]), ("plain fit", fits["plain"])]
        cands += [(h["schedule"], h) for h in heur]
        rated = [r for _, r in cands]
        w2 = np.stack(
            [predicted_w2(m, rated, sampler, setup.train) for m in (setup.spectrum, calibrated)], 1
        )
        ratio = w2 / w2[2:].min(0)  # to the best heuristic under each model
        worst = ratio.max(1)
        k = int(np.argmin(worst))
        pick = k if worst[k] < 1 else 0  # none better under both: today's calibrated default
        fd, outcome = measured(cands[pick][1], best_h)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "chosen": cands[pick][0],
                "worst_ratio": float(worst[pick]),
                "fd": fd,
                "result": outcome,
                "calibrated_fit": {
                    "ratios": ratio[0].tolist(),
                    "result": fits["calibrated"]["result"],
                },
                "plain_fit": {"ratios": ratio[1].tolist(), "result": fits["plain"]["result"]},
                "best_heuristic": best_h["schedule"],
            }
        )
        print(
            f"{sampler:9s} {steps:2d}: {cands[pick][0]:28s} worst ratio {worst[pick]:5.2f} FD "
            f"{fd:7.3f} {outcome:5s} | calibrated fit {fits['calibrated']['result']:5s} "
            f"(Gaussian / calibrated ratios {ratio[0, 0]:.2f} / {ratio[0, 1]:.2f}) | plain fit "
            f"{fits['plain']['result']:5s} ({ratio[1, 0]:.2f} / {ratio[1, 1]:.2f})",
            flush=True,
        )
    counts = {
        "rule": dict(Counter(r["result"] for r in rows)),
        "calibrated fit": dict(Counter(r["calibrated_fit"]["result"] for r in rows)),
        "plain fit": dict(Counter(r["plain_fit"]["result"] for r in rows)),
    }
    print(f"wins / ties / losses: {counts}")
    path = args.out / f"model_agreement_{args.denoiser}.json"
    payload = {
        "stored_run": str(args.stored.name),
        "fits": str(fits_path.name),
        "kind": args.kind,
        "counts": counts,
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    return save_result(path, "model_agreement.py", argv, payload, threads="1")


if __name__ == "__main__":
    sys.exit(main())
