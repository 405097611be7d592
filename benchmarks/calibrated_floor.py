"""Where a calibrated fit's prediction sits against the calibrated model's own converged output.

For each row of ``results/calibrated_fits_<denoiser>.json`` (the default calibrated fit per
sampler and step count, with its measured FD and verdict), this recalibrates the denoiser as that
script does and prints the W2 the calibrated model predicts for the fit and for the best
heuristic, and their ratio to the *floor*: the W2 between the data and the calibrated model's
converged output (``response.converged_moments``, a 100-step DPM-Solver++(2M) run of the model).
A fit predicted below the floor improves on a solution no schedule can beat: it fits the model's
error (and, for a real network, possibly the network's).

Usage::

    python benchmarks/calibrated_floor.py --denoiser gmm unet     # ~1 min

Writes ``results/calibrated_floor.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import stamp, write_json  # noqa: E402

from specsched import divergence  # noqa: E402
from specsched.calibrate import ModeTables  # noqa: E402
from specsched.response import converged_moments, response  # noqa: E402
from specsched.schedules import Schedule  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", nargs="+", default=["gmm", "unet"], choices=list(rd.SETUPS))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    stored = json.loads((HERE / "results" / "real_denoisers.json").read_text())
    payload: dict = {"command": "python benchmarks/calibrated_floor.py", **stamp(), "denoisers": {}}
    for name in args.denoiser:
        fits = json.loads((HERE / "results" / f"calibrated_fits_{name}.json").read_text())
        setup = rd.SETUPS[name](dict(stored["config"]))
        cal = rd.calibrate_setup(setup)
        S, w, m = (torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in cal.modes())
        conv_var, conv_mean = converged_moments(S, m, ModeTables(cal.calibration, S.numpy()), "vp")
        floor = float(divergence.total("w2", S, w, m, conv_var, conv_mean))
        print(f"{name}: floor (W2 of the calibrated model's converged output) {floor:.4f}")
        rows = []
        for r in fits["rows"]:
            heur = next(
                x
                for x in stored["records"]
                if (x["denoiser"], x["sampler"], x["steps"], x["schedule"])
                == (name, r["sampler"], r["steps"], r["best_heuristic"])
            )
            v_fit, v_heur = (
                response(
                    cal,
                    Schedule.from_timesteps(np.array(ts), train_schedule=setup.train),
                    sampler=r["sampler"],
                ).value("w2")
                for ts in (r["timesteps"], heur["timesteps"])
            )
            rows.append(
                {
                    "sampler": r["sampler"],
                    "steps": r["steps"],
                    "fit_w2": v_fit,
                    "heuristic_w2": v_heur,
                    "fit_over_floor": v_fit / floor,
                    "result": r["result"],
                }
            )
            print(
                f"  {r['sampler']:9s}{r['steps']:3d}  fit {v_fit:.4f} ({v_fit / floor:5.2f}x floor)"
                f"  {r['best_heuristic']} {v_heur:.4f}  measured: {r['result']}"
            )
        payload["denoisers"][name] = {"floor": floor, "rows": rows}
    write_json(args.out / "calibrated_floor.json", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
