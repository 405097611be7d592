"""Does today's `fit` give the schedules of the stored runs?

Usage::

    python benchmarks/reproduce_fits.py                      # plain fits, 30 cells, ~2 min
    python benchmarks/reproduce_fits.py --calibrated unet    # calibrated fits, ~4 min
    python benchmarks/reproduce_fits.py --calibrated mnist \\
        --fits benchmarks/results/calibrated_fits_mnist_auto_fid.json  # one stored result

Without ``--calibrated``: refits the plain (``spectral-w2``) rows of
``results/real_denoisers.json``. With ``--calibrated DENOISER``: recomputes the benchmark's
calibration of that denoiser (deterministic, as ``calibrated_fits.py`` does) and refits every
``"fit": "calibrated"`` row of the stored ``calibrated_fits.py`` results (``--fits``; default
``results/calibrated_fits_<denoiser>.json``; their spectrum kind and data set-up are read from
each file and the run it was paired with). Prints each cell that differs from the stored
timesteps, the time of every fit and a count; exit status 1 if any differ. Fits on flat
objectives move with the CPU's rounding (benchmarks/README.md, "A rough optimum is made
regular"), so a difference on another machine is not by itself a regression: compare the old
and the new code on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402

from specsched import fit  # noqa: E402


def plain() -> tuple[int, int]:
    """Refit the stored run's plain rows; (same, different)."""
    stored = json.loads((HERE / "results" / "real_denoisers.json").read_text())
    cfg = dict(stored["config"])
    same = differ = 0
    for name in stored["denoisers"]:
        setup = rd.SETUPS[name](cfg)
        for r in stored["records"]:
            if r["denoiser"] != name or r["schedule"] != "spectral-w2":
                continue
            res = fit(setup.spectrum, r["steps"], sampler=r["sampler"], train_schedule=setup.train)
            ts = [int(t) for t in res.schedule.timesteps]
            if ts == r["timesteps"]:
                same += 1
            else:
                differ += 1
                print(f"{name} {r['sampler']} {r['steps']}: stored {r['timesteps']}, now {ts}")
    return same, differ


def calibrated(denoiser: str, files: list[Path]) -> tuple[int, int]:
    """Refit the calibrated rows of stored calibrated_fits.py results; (same, different)."""
    same = differ = 0
    cached: dict[tuple[str, int], tuple[rd.Setup, object]] = {}
    for path in files:
        result = json.loads(path.read_text())
        args = result["command"].split()
        stored_run = (
            Path(args[args.index("--stored") + 1])
            if "--stored" in args
            else HERE / "results" / "real_denoisers.json"
        )
        # a run stored on another machine: the full preset's data set-up, as the stored runs'
        config = (
            json.loads(stored_run.read_text())["config"]
            if stored_run.is_file()
            else dict(rd.PRESETS["full"])
        )
        key = (result["kind"], config["spectrum_n"])
        if key not in cached:
            setup = rd.SETUPS[denoiser]({**config, "kind": result["kind"], "fid": False})
            cached[key] = (setup, rd.calibrate_setup(setup))
        setup, cal = cached[key]
        for row in result["rows"]:
            if row["fit"] != "calibrated":
                continue
            t0 = time.perf_counter()
            res = fit(cal, row["steps"], sampler=row["sampler"], train_schedule=setup.train)
            seconds = time.perf_counter() - t0
            ts = [int(t) for t in res.schedule.timesteps]
            cell = f"{denoiser} {row['sampler']} {row['steps']}"
            if ts == row["timesteps"]:
                same += 1
                print(f"{cell}: same ({seconds:.1f} s)", flush=True)
            else:
                differ += 1
                print(f"{cell}: stored {row['timesteps']}, now {ts} ({seconds:.1f} s)", flush=True)
    return same, differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--calibrated",
        choices=list(rd.SETUPS),
        help="refit the calibrated rows of this denoiser's stored calibrated_fits.py results",
    )
    ap.add_argument(
        "--fits",
        nargs="+",
        type=Path,
        help="stored calibrated_fits.py results (default results/calibrated_fits_<denoiser>.json)",
    )
    args = ap.parse_args(argv)
    if args.fits and not args.calibrated:
        ap.error("--fits needs --calibrated DENOISER")
    torch.set_num_threads(1)
    if args.calibrated:
        files = args.fits or [HERE / "results" / f"calibrated_fits_{args.calibrated}.json"]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            ap.error(f"--fits: no such file {missing[0]}: give calibrated_fits.py results")
        same, differ = calibrated(args.calibrated, files)
    else:
        same, differ = plain()
    print(f"same timesteps: {same}; different: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
