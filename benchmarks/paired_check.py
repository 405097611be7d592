"""Schedules of one benchmark cell compared at a larger sample count than the benchmark's.

`real_denoisers.py` and `calibrated_fits.py` score 640 samples (256 on MNIST) per schedule, which
cannot resolve differences of 15-50 % in pixel FD on the learned denoisers. This script samples
the given schedules from one shared, seeded x_T with as many samples as asked, scores each against
the set-up's reference (pixel FD, bootstrap over the generated samples) and compares every
schedule with the first one by the paired bootstrap test of the benchmark (a tie is a difference
within 2 sd of the paired bootstrap differences).

Usage::

    python benchmarks/paired_check.py --denoiser unet --sampler dpmpp_2m --num-samples 2560 \\
        --seed 11 --schedule logsnr=999,886,757,603,410,202,73,22,5,0 \\
        --schedule regular=999,817,646,449,314,199,108,51,21,7

``--converged STEPS`` also samples the denoiser's own converged solution from the same x_T (the
benchmark's reference solution: DPM-Solver++(2M), STEPS trailing steps, checked against twice the
steps on 64 samples) and reports each schedule's *excess* FD over it, with the paired bootstrap sd
of the excess, and the first schedule's excess as a ratio of each other's (issue 12's 10-step DDIM
target: the default's excess at most half the best heuristic's).

Writes ``results/paired_check_<denoiser>_<sampler><steps>.json`` (``--out`` for another folder)
and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402

from specsched.generation import generate  # noqa: E402
from specsched.schedules import Schedule  # noqa: E402


def parse_schedule(text: str) -> tuple[str, list[int]]:
    """``name=t0,t1,...`` -> ``(name, [t0, t1, ...])`` (a name may hold "=" itself, as
    ``shifted_cosine(resolution=16)`` does)."""
    name, _, ts = text.rpartition("=")
    try:
        steps = [int(t) for t in ts.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--schedule {text!r}: give NAME=T0,T1,... with integer timesteps"
        ) from None
    if not name or len(steps) < 1:
        raise argparse.ArgumentTypeError(f"--schedule {text!r}: give NAME=T0,T1,...")
    return name, steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--sampler", required=True)
    ap.add_argument("--schedule", type=parse_schedule, action="append", required=True)
    ap.add_argument("--num-samples", type=int, default=2560)
    ap.add_argument("--seed", type=int, default=11, help="x_T (the benchmark's is 0)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument(
        "--converged",
        type=int,
        metavar="STEPS",
        help="also sample the converged solution (DPM-Solver++(2M), STEPS steps) and report "
        "each schedule's excess FD over it",
    )
    args = ap.parse_args(argv)
    if args.num_samples < 2:
        ap.error(f"--num-samples must be at least 2 (got {args.num_samples})")
    if args.converged is not None and args.converged < 1:
        ap.error(f"--converged must be at least 1 step (got {args.converged})")
    if len(args.schedule) < 2:
        ap.error("give at least two --schedule NAME=T0,T1,... to compare")
    if len({len(ts) for _, ts in args.schedule}) != 1:
        ap.error("the schedules must have the same number of steps")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg = {**rd.PRESETS["full"], "num_samples": args.num_samples, "kind": "fourier", "fid": False}
    setup = rd.SETUPS[args.denoiser](cfg)
    rows, scores, cov_scores = [], {}, {}

    def fd_of(x: np.ndarray) -> tuple[float, np.ndarray]:
        # one bootstrap seed for every sample set: the resamples are paired
        return rd.score(x, setup.reference, ["fd"], n_boot=cfg["n_boot"], seed=rd.SEED)["fd"]

    converged = None
    if args.converged is not None:
        t1 = time.perf_counter()
        x_conv, info = rd.reference_solution(
            setup, {**cfg, "ref_steps": args.converged}, seed=args.seed
        )
        conv = fd_of(x_conv)
        converged = {
            **info,
            "fd": conv[0],
            "fd_sd": float(np.std(conv[1], ddof=1)),
            "seconds": time.perf_counter() - t1,
        }
        print(
            f"{'converged':>16}: FD {conv[0]:.3f} ± {converged['fd_sd']:.3f}  "
            f"({args.converged}-step DPM-Solver++(2M); RMSE {info['rmse_vs_double_steps']:.1e} "
            f"to twice the steps; {converged['seconds']:.0f} s)",
            flush=True,
        )
    for name, ts in args.schedule:
        t1 = time.perf_counter()
        sched = Schedule.from_timesteps(np.array(ts), train_schedule=setup.train)
        x = generate(
            setup.denoise,
            sched,
            args.sampler,
            num_samples=args.num_samples,
            shape=setup.shape,
            seed=args.seed,
        )
        fd = fd_of(x)
        # FD without its mean term: the samples moved to the reference's mean (the paired
        # bootstrap of the covariance part alone)
        flat = x.reshape(len(x), -1)
        shift = (setup.reference.mean - flat.mean(0)).reshape(x.shape[1:])
        fd_cov = fd_of(x + shift.astype(x.dtype))
        scores[name], cov_scores[name] = fd, fd_cov
        base = args.schedule[0][0]
        result = "-" if name == base else rd.outcome(fd, scores[base])
        result_cov = "-" if name == base else rd.outcome(fd_cov, cov_scores[base])
        rows.append(
            {
                "schedule": name,
                "timesteps": ts,
                "fd": fd[0],
                "fd_sd": float(np.std(fd[1], ddof=1)),
                # FD's mean term, |m_x - m_ref|^2: where the start is not pure noise (sv16) it
                # can be most of FD, set by the mean modes alone
                "fd_mean_term": float(np.sum(shift**2)),
                "fd_cov": fd_cov[0],
                "fd_cov_sd": float(np.std(fd_cov[1], ddof=1)),
                "against_first": result,
                "against_first_cov": result_cov,
                "seconds": time.perf_counter() - t1,
            }
        )
        excess = ""
        if converged is not None:  # the same bootstrap resamples: the excess's paired sd
            rows[-1]["excess"] = fd[0] - conv[0]
            rows[-1]["excess_sd"] = float(np.std(fd[1] - conv[1], ddof=1))
            excess = f"  excess {rows[-1]['excess']:.3f} ± {rows[-1]['excess_sd']:.3f}"
        print(
            f"{name:>16}: FD {fd[0]:.3f} ± {rows[-1]['fd_sd']:.3f}  {result} against {base}; "
            f"mean term {rows[-1]['fd_mean_term']:.3f}, the rest {fd_cov[0]:.3f} ± "
            f"{rows[-1]['fd_cov_sd']:.3f} ({result_cov})"
            f"{excess}  ({rows[-1]['seconds']:.0f} s)",
            flush=True,
        )
    if converged is not None:
        first = rows[0]
        converged["excess_ratios"] = {}
        for r in rows[1:]:
            # undefined (None) where the other schedule is at the converged solution or past it
            ratio = first["excess"] / r["excess"] if r["excess"] > 0 else None
            converged["excess_ratios"][r["schedule"]] = ratio
            text = "undefined (its excess is not positive)" if ratio is None else f"{ratio:.2f}"
            print(f"excess of {first['schedule']} / excess of {r['schedule']}: {text}")
    steps = len(args.schedule[0][1])
    path = args.out / f"paired_check_{args.denoiser}_{args.sampler}{steps}.json"
    payload = {
        "denoiser": args.denoiser,
        "sampler": args.sampler,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "rows": rows,
        "converged": converged,
        "wall_seconds": time.perf_counter() - t0,
    }
    return save_result(path, "paired_check.py", argv, payload)


if __name__ == "__main__":
    raise SystemExit(main())
