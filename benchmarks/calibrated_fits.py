"""The recommended calibrated schedule against the heuristics of the last full real_denoisers.py run.

`specsched fit model.npz` with no options on a calibration file (`specsched.calibrate`), per
denoiser, sampler and step count, sampled from the same seeded x_T and scored against the same
reference as `benchmarks/real_denoisers.py` (its set-ups and scoring are imported), so that its
FD pairs with the heuristic rows stored in ``results/real_denoisers.json``: a tie is a paired
bootstrap difference within 2 sd (``specsched.evaluate.paired_tie``). A full rerun of
real_denoisers.py (which has these rows as ``calibrated-w2``) takes hours on this 2-core machine;
this script reruns only the fitted rows.

Usage::

    python benchmarks/calibrated_fits.py --denoiser unet            # 15 cells, ~25 min
    python benchmarks/calibrated_fits.py --denoiser gmm --samplers ddim --steps 5 10

Writes ``results/calibrated_fits_<denoiser>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import stamp, write_json  # noqa: E402

from specsched import fit  # noqa: E402
from specsched.calibrate import calibrate  # noqa: E402
from specsched.generation import generate  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402
from specsched.samplers import get_sampler  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=["gmm", "unet"], required=True)
    ap.add_argument("--samplers", nargs="+", default=list(rd.PRESETS["full"]["samplers"]))
    ap.add_argument("--steps", nargs="+", type=int, default=list(rd.PRESETS["full"]["steps"]))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    stored = json.loads((HERE / "results" / "real_denoisers.json").read_text())
    cfg = dict(stored["config"])
    setup = rd.SETUPS[args.denoiser](cfg)
    cal = calibrate(
        setup.spectrum,
        setup.denoise,
        setup.calibration_data,
        levels=LevelRange.discrete(setup.train),
        seed=rd.SEED,
    )
    t_cal = time.perf_counter() - t0
    print(f"calibrated: {cal.calibration.evaluations:,} evaluations, {t_cal:.0f} s", flush=True)
    ref_sol, _ = rd.reference_solution(setup, cfg)
    rows = []
    for sampler in args.samplers:
        deterministic = get_sampler(sampler).noise_draws(10) == 0
        for steps in args.steps:
            t1 = time.perf_counter()
            res = fit(cal, steps, sampler=sampler, train_schedule=setup.train)
            t_fit = time.perf_counter() - t1
            x = generate(
                setup.denoise,
                res.schedule,
                sampler,
                num_samples=cfg["num_samples"],
                shape=setup.shape,
                seed=rd.SEED,
            )
            m = rd.scored(x, setup, cfg, ref_sol if deterministic else None)
            group = [
                r
                for r in stored["records"]
                if (r["denoiser"], r["sampler"], r["steps"]) == (args.denoiser, sampler, steps)
            ]
            heur = min(
                (r for r in group if r["kind"] == "heuristic"),
                key=lambda r: r["metrics"]["fd"]["value"],
            )
            gauss = next(r for r in group if r["schedule"] == "spectral-w2")
            hb = (heur["metrics"]["fd"]["value"], np.array(heur["metrics"]["fd"]["bootstrap"]))
            gb = (gauss["metrics"]["fd"]["value"], np.array(gauss["metrics"]["fd"]["bootstrap"]))
            result = rd.outcome(m["fd"], hb)
            row = {
                "sampler": sampler,
                "steps": steps,
                "timesteps": [int(t) for t in res.schedule.timesteps],
                "fallback": res.fallback,
                "uncertainty": res.uncertainty,
                "fit_seconds": t_fit,
                "fd": m["fd"][0],
                "fd_sd": float(np.std(m["fd"][1], ddof=1)),
                "best_heuristic": heur["schedule"],
                "heuristic_fd": hb[0],
                "gaussian_fit_fd": gb[0],
                "result": result,
                "gaussian_fit_result": rd.outcome(gb, hb),
            }
            rows.append(row)
            print(
                f"{sampler:9s} {steps:2d}: calibrated {row['fd']:.3f} ± {row['fd_sd']:.3f}"
                f"{' (fallback ' + res.fallback + ')' if res.fallback else ''} vs "
                f"{heur['schedule']} {hb[0]:.3f}: {result}; Gaussian fit {gb[0]:.3f} "
                f"({row['gaussian_fit_result']}); fit {t_fit:.0f} s",
                flush=True,
            )
    counts = {k: sum(r["result"] == k for r in rows) for k in ("win", "tie", "loss")}
    gcounts = {k: sum(r["gaussian_fit_result"] == k for r in rows) for k in ("win", "tie", "loss")}
    print(f"calibrated fit: {counts}; Gaussian fit (stored run): {gcounts}")
    payload = {
        "command": "python benchmarks/calibrated_fits.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        **stamp(),
        "stored_run": stored["date"],
        "calibration": {"evaluations": cal.calibration.evaluations, "seconds": t_cal},
        "counts": counts,
        "gaussian_counts": gcounts,
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    path = args.out / f"calibrated_fits_{args.denoiser}.json"
    write_json(path, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
