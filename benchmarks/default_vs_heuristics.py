"""The recommended schedule against every heuristic on one model, sampled at a resolving count.

For a model the default's rules were not chosen on: per sampler and step count, the schedule
``specsched fit`` returns with no options on the benchmark's calibration of the model (the
spectrum kind ``--kind``, ``auto`` by default as in ``specsched spectrum``), the plain fit on the
spectrum alone, the calibrated fit alone (``gaussian_design=False``) where the default is the
Gaussian design, and every heuristic of the cell (``real_denoisers.heuristics_for``), each sampled
from one seeded x_T by ``paired_check.py`` and compared with the best heuristic by its paired
bootstrap test (a tie is a difference within 2 sd).

Usage::

    python benchmarks/default_vs_heuristics.py --denoiser sv16 --num-samples 1024 \\
        --out benchmarks/results/sv16                      # 15 cells
    python benchmarks/default_vs_heuristics.py --denoiser sv16 --samplers ddim heun ...

Writes ``defaults_<samplers>.json`` (the schedules and the fits' notes), the cells'
``paired_check_<denoiser>_<sampler><steps>.json`` and ``summary_<samplers>.json`` (each cell's
verdicts) into ``--out``, and prints a table.
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

import paired_check  # noqa: E402
import real_denoisers as rd  # noqa: E402
from _common import stamp, write_json  # noqa: E402

from specsched import fit  # noqa: E402

OUTCOMES = ("win", "tie", "loss")


def verdict(rows: list[dict]) -> tuple[str, str, float]:
    """The default's verdict against the best heuristic of a paired_check run: (verdict, the
    best heuristic, its FD). Each row's ``against_first`` is its result against the first
    schedule, the default, so the default's against it is the opposite."""
    best = min(
        (r for r in rows if r["schedule"] not in ("default", "plain", "calibrated")),
        key=lambda r: r["fd"],
    )
    flip = {"win": "loss", "loss": "win", "tie": "tie"}
    return flip[best["against_first"]], best["schedule"], best["fd"]


def _sampled(
    path: Path, schedules: list[tuple[str, list[int]]], n: int, seed: int
) -> list[dict] | None:
    """The rows of the paired_check JSON at ``path`` if it sampled exactly ``schedules`` (in
    order) with ``n`` samples from x_T seed ``seed``; else None."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    done = [(r["schedule"], r["timesteps"]) for r in data["rows"]]
    ok = data["num_samples"] == n and data["seed"] == seed and done == schedules
    return data["rows"] if ok else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--samplers", nargs="+", default=list(rd.PRESETS["full"]["samplers"]))
    ap.add_argument("--steps", nargs="+", type=int, default=list(rd.PRESETS["full"]["steps"]))
    ap.add_argument("--num-samples", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=11, help="x_T of every schedule")
    ap.add_argument("--kind", choices=["auto", "fourier", "pca"], default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="reuse a cell's paired_check JSON in --out where it sampled the same schedules with "
        "the same sample count and seed (a run stopped part-way)",
    )
    ap.add_argument(
        "--heuristics",
        nargs="+",
        metavar="NAME",
        help="sample only these heuristics (default: all of the cell's); for a model where "
        "some diverge, as every schedule starting at t = 999 does on cc16",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg = {**rd.PRESETS["full"], "kind": args.kind, "fid": False}
    setup = rd.SETUPS[args.denoiser](cfg)
    known = {h.name for n in args.steps for h in rd.heuristics_for(setup.spectrum, n, setup.train)}
    unknown = sorted(set(args.heuristics or []) - known)
    if unknown:  # before the calibration: a bad name costs nothing
        ap.error(f"unknown heuristics {unknown}: use names from {sorted(known)}")
    cal = rd.calibrate_setup(setup)
    cal_s = time.perf_counter() - t0
    print(
        f"{setup.title}: spectrum {setup.spectrum.kind} ({args.kind} asked); calibrated with "
        f"{cal.calibration.evaluations:,} evaluations in {cal_s:.0f} s",
        flush=True,
    )
    tag = "_".join(args.samplers)
    defaults, summary = [], []
    for sampler in args.samplers:
        for steps in args.steps:
            res = fit(cal, steps, sampler=sampler, train_schedule=setup.train)
            # where the default is the Gaussian design, the calibrated fit it replaced
            alone = (
                fit(cal, steps, sampler=sampler, train_schedule=setup.train, gaussian_design=False)
                if res.gaussian_design
                else None
            )
            plain = fit(setup.spectrum, steps, sampler=sampler, train_schedule=setup.train)
            heur = {
                h.name: [int(t) for t in h.timesteps]
                for h in rd.heuristics_for(setup.spectrum, steps, setup.train)
            }
            if args.heuristics:
                heur = {k: v for k, v in heur.items() if k in args.heuristics}
            row = {
                "sampler": sampler,
                "steps": steps,
                "fallback": res.fallback,
                "timesteps": [int(t) for t in res.schedule.timesteps],
                "notes": list(res.notes),
                "plain": [int(t) for t in plain.schedule.timesteps],
                "gaussian_design": res.gaussian_design,
                "calibrated": None if alone is None else [int(t) for t in alone.schedule.timesteps],
                "heuristics": heur,
            }
            defaults.append(row)
            schedules = [("default", row["timesteps"]), ("plain", row["plain"])]
            if alone is not None:
                schedules.append(("calibrated", row["calibrated"]))
            schedules += list(heur.items())
            argv_pc = [
                "--denoiser",
                args.denoiser,
                "--sampler",
                sampler,
                "--num-samples",
                str(args.num_samples),
                "--seed",
                str(args.seed),
                "--threads",
                str(args.threads),
                "--out",
                str(args.out),
            ]
            for name, ts in schedules:
                argv_pc += ["--schedule", f"{name}={','.join(map(str, ts))}"]
            print(f"--- {sampler} {steps}: default {row['timesteps']}"
                  f"{' (fallback ' + res.fallback + ')' if res.fallback else ''}", flush=True)  # fmt: skip
            path = args.out / f"paired_check_{args.denoiser}_{sampler}{steps}.json"
            pc = _sampled(path, schedules, args.num_samples, args.seed) if args.resume else None
            if pc is None:
                paired_check.main(argv_pc)
                pc = json.loads(path.read_text())["rows"]
            else:
                print(f"(reused {path})", flush=True)
            result, best, best_fd = verdict(pc)
            fd = {r["schedule"]: r for r in pc}
            summary.append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "default": row["timesteps"],
                    "fallback": res.fallback,
                    "fd": fd["default"]["fd"],
                    "fd_sd": fd["default"]["fd_sd"],
                    "plain_fd": fd["plain"]["fd"],
                    "plain_against_default": fd["plain"]["against_first"],
                    "gaussian_design": res.gaussian_design,
                    "calibrated_fd": fd["calibrated"]["fd"] if alone is not None else None,
                    "calibrated_against_default": (
                        fd["calibrated"]["against_first"] if alone is not None else None
                    ),
                    "best_heuristic": best,
                    "heuristic_fd": best_fd,
                    "result": result,
                }
            )
    counts = {k: sum(r["result"] == k for r in summary) for k in OUTCOMES}
    print(f"\n{'cell':14s} {'default':>16s} {'best heuristic':>28s}  verdict")
    for r in summary:
        name = "default" if r["fallback"] is None else f"({r['fallback']})"
        print(
            f"{r['sampler']:9s} {r['steps']:3d}  {name:>9s} {r['fd']:7.3f}  "
            f"{r['best_heuristic']:>18s} {r['heuristic_fd']:8.3f}  {r['result']}"
        )
    print(f"default against the best heuristic: {counts}")
    command = "python benchmarks/default_vs_heuristics.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    common = {"command": command, **stamp(), "denoiser": args.denoiser, "title": setup.title}
    write_json(args.out / f"defaults_{tag}.json", {**common, "rows": defaults})
    write_json(
        args.out / f"summary_{tag}.json",
        {
            **common,
            "num_samples": args.num_samples,
            "seed": args.seed,
            "kind": setup.spectrum.kind,
            "calibration": {"evaluations": cal.calibration.evaluations, "seconds": cal_s},
            "counts": counts,
            "wall_seconds": time.perf_counter() - t0,
            "rows": summary,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
