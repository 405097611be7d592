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
    python benchmarks/calibrated_fits.py --denoiser mnist --stored results/real_denoisers_mnist.json \
        --steps 10 --samplers ddim dpmpp_2m unipc heun --kind auto --fits calibrated plain

``--stored`` names the run whose heuristic rows (and config: sample count, seeds) the fits pair
with; ``--fid`` (MNIST, with a stored run that has FID) scores FID too and pairs it with the
stored FID rows, ``--fid-cache DIR`` reads back Inception features computed before; ``--kind`` the spectrum kind the fits use (the stored runs used ``fourier``; ``auto`` is
``specsched``'s default); ``--fits plain`` adds the fit on the plain spectrum (no calibration).
Writes ``results/calibrated_fits_<denoiser>[_<kind>][_fid].json`` and prints a table.
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
from specsched.generation import generate  # noqa: E402

OUTCOMES = ("win", "tie", "loss")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument(
        "--stored",
        type=Path,
        default=HERE / "results" / "real_denoisers.json",
        help="the real_denoisers.py run to pair with (its heuristic rows and config)",
    )
    ap.add_argument("--kind", choices=["fourier", "auto", "pca"], default="fourier")
    ap.add_argument(
        "--fits",
        nargs="+",
        choices=["calibrated", "plain"],
        default=["calibrated"],
        help="calibrated: fit on the calibration; plain: fit on the spectrum alone",
    )
    ap.add_argument("--samplers", nargs="+", default=list(rd.PRESETS["full"]["samplers"]))
    ap.add_argument("--steps", nargs="+", type=int, default=list(rd.PRESETS["full"]["steps"]))
    ap.add_argument(
        "--fid",
        action="store_true",
        help="also score FID and pair it with the stored run's FID rows (MNIST; the stored run "
        "must have FID)",
    )
    ap.add_argument(
        "--fid-cache",
        type=Path,
        default=None,
        help="folder for Inception features (see real_denoisers.py)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    stored = json.loads(args.stored.read_text())
    if args.fid and "fid" not in stored["metrics"]:
        ap.error(f"--fid: the stored run {args.stored} has no FID rows to pair with")
    cfg = {**stored["config"], "kind": args.kind, "fid": args.fid}
    if args.fid_cache is not None:
        cfg["fid_cache"] = str(args.fid_cache)
    setup = rd.SETUPS[args.denoiser](cfg)
    print(f"spectrum: {setup.spectrum.kind} ({args.kind} asked)", flush=True)
    cal, cal_info = None, None
    if "calibrated" in args.fits:
        cal = rd.calibrate_setup(setup)
        cal_info = {
            "evaluations": cal.calibration.evaluations,
            "seconds": time.perf_counter() - t0,
        }
        print(f"calibrated: {cal_info['evaluations']:,} evaluations, {cal_info['seconds']:.0f} s")
    rows = []
    cells = [(a, b, c) for a in args.samplers for b in args.steps for c in args.fits]
    for sampler, steps, which in cells:
        t1 = time.perf_counter()
        source = cal if which == "calibrated" else setup.spectrum
        res = fit(source, steps, sampler=sampler, train_schedule=setup.train)
        t_fit = time.perf_counter() - t1
        x = generate(
            setup.denoise,
            res.schedule,
            sampler,
            num_samples=cfg["num_samples"],
            shape=setup.shape,
            seed=rd.SEED,
        )
        m = rd.scored(x, setup, cfg, None)
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
            "fit": which,
            "kind": setup.spectrum.kind,
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
        if "fid" in m:
            hf = min(
                (r for r in group if r["kind"] == "heuristic"),
                key=lambda r: r["metrics"]["fid"]["value"],
            )
            fb = (hf["metrics"]["fid"]["value"], np.array(hf["metrics"]["fid"]["bootstrap"]))
            row |= {
                "fid": m["fid"][0],
                "fid_sd": float(np.std(m["fid"][1], ddof=1)),
                "best_heuristic_fid": hf["schedule"],
                "heuristic_fid": fb[0],
                "fid_result": rd.outcome(m["fid"], fb),
            }
        rows.append(row)
        print(
            f"{sampler:9s} {steps:2d}: {which} {row['fd']:.3f} ± {row['fd_sd']:.3f}"
            f"{' (fallback ' + res.fallback + ')' if res.fallback else ''} vs "
            f"{heur['schedule']} {hb[0]:.3f}: {result}; Gaussian fit {gb[0]:.3f} "
            f"({row['gaussian_fit_result']}); fit {t_fit:.0f} s"
            + (
                f"; FID {row['fid']:.2f} vs {row['best_heuristic_fid']} "
                f"{row['heuristic_fid']:.2f}: {row['fid_result']}"
                if "fid" in row
                else ""
            ),
            flush=True,
        )

    def tally(key: str, which: str) -> dict[str, int]:
        """Wins / ties / losses in ``key`` of the rows of one fit."""
        return {k: sum(r[key] == k for r in rows if r["fit"] == which) for k in OUTCOMES}

    counts = {which: tally("result", which) for which in args.fits}
    gcounts = tally("gaussian_fit_result", args.fits[0])
    print(f"fits ({setup.spectrum.kind} spectrum): {counts}; Gaussian fit (stored run): {gcounts}")
    fid_counts = None
    if args.fid:
        fid_counts = {which: tally("fid_result", which) for which in args.fits}
        print(f"by FID: {fid_counts}")
    payload = {
        "command": "python benchmarks/calibrated_fits.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        **stamp(),
        "stored_run": stored["date"],
        "kind": setup.spectrum.kind,
        "calibration": cal_info,
        "counts": counts,
        "gaussian_counts": gcounts,
        "fid_counts": fid_counts,
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    suffix = ("" if args.kind == "fourier" else f"_{args.kind}") + ("_fid" if args.fid else "")
    path = args.out / f"calibrated_fits_{args.denoiser}{suffix}.json"
    write_json(path, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
