"""What `specsched fit --verify` keeps, judged like the default, on the cells of a stored run.

For each cell of a stored ``default_vs_heuristics.py`` run (its ``defaults_*.json`` and
``paired_check_*.json`` in ``--stored``): the fit on the benchmark's calibration (checked to be
the stored default), then :func:`specsched.verify.verify` on it as ``fit --verify`` runs it (the
fit's choice and the ``--candidates`` - 1 best heuristics by the fit's objective,
``--verify-samples`` samples each from x_T seed ``--verify-seed``), scored against the
calibration's spectrum (what ``fit FILE --verify`` does without ``--reference``: "sampled w2")
and/or against the calibration's own data (training samples, pixel FD: ``--reference``).
Neither uses the judge's held-out reference or its x_T. Two picks are judged: the schedule
verify keeps and the one that measured lowest in its first round. They differ where verify's
final round (twenty-fifth session) picked another of the first round's tied lowest; in
``results/verify24``, made under earlier rules with one round, where a tie kept the fit's
choice. ``--first-round-from`` takes a stored one-round run as the first round and samples
only the final round (``verify`` itself, run on the finalists with the final round's count and
seed: the same numbers as a full run, checked on the mixture's UniPC-10 cell). Each is judged
as the default was: the stored FD at the judge's sample count and seed, and a paired test
against the cell's best heuristic (``paired_check.py``, the pick first, the best heuristic
second), sampled only where the pick is not the default or the best heuristic.

Usage::

    python benchmarks/verify_cells.py --denoiser sv16 --stored benchmarks/results/sv16 \\
        --out benchmarks/results/verify24/sv16

Writes ``verify_cells_<denoiser>.json`` (every candidate's verify row, the picks and their
verdicts) and the judge's ``paired_check_*.json`` into ``--out``/judge, and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from default_vs_heuristics import OUTCOMES, verdict  # noqa: E402

from specsched import fit  # noqa: E402
from specsched.verify import (  # noqa: E402
    Verification,
    _finalists,
    calibrated_design,
    gaussian_design,
    verify,
    verify_candidates,
)

FLIP = {"win": "loss", "loss": "win", "tie": "tie"}


def _stored(stored: Path, denoiser: str) -> tuple[list[dict], dict]:
    """The stored defaults rows, and each cell's paired_check rows by (sampler, steps)."""
    rows = []
    for p in sorted(stored.glob("defaults_*.json")):
        rows += json.loads(p.read_text())["rows"]
    checks = {}
    for r in rows:
        p = stored / f"paired_check_{denoiser}_{r['sampler']}{r['steps']}.json"
        checks[(r["sampler"], r["steps"])] = json.loads(p.read_text())
    return rows, checks


def _judge(
    args: argparse.Namespace, sampler: str, steps: int, name: str, pick: list[int], pc: dict
) -> tuple[str, float, float]:
    """(verdict against the best heuristic, FD, its sd) of the schedule ``pick`` at the judge's
    count and seed: from the stored run where ``pick`` is its default or its best heuristic,
    else sampled paired with the best heuristic (into ``--out``/judge/CELL_NAME)."""
    rows = pc["rows"]
    result, best, _ = verdict(rows)
    by_name = {r["schedule"]: r for r in rows}
    if pick == by_name["default"]["timesteps"]:
        return result, by_name["default"]["fd"], by_name["default"]["fd_sd"]
    if pick == by_name[best]["timesteps"]:
        return "tie", by_name[best]["fd"], by_name[best]["fd_sd"]
    out = args.out / "judge" / f"{sampler}{steps}_{name}"
    argv = ["--denoiser", args.denoiser, "--sampler", sampler, "--threads", str(args.threads)]
    argv += ["--num-samples", str(pc["num_samples"]), "--seed", str(pc["seed"])]
    argv += ["--out", str(out)]
    argv += ["--schedule", f"{name}=" + ",".join(map(str, pick))]
    argv += ["--schedule", f"{best}=" + ",".join(map(str, by_name[best]["timesteps"]))]
    paired_check.main(argv)
    got = json.loads((out / f"paired_check_{args.denoiser}_{sampler}{steps}.json").read_text())
    kept, other = got["rows"][0], got["rows"][1]
    return FLIP[other["against_first"]], kept["fd"], kept["fd_sd"]


def _final_round(args: argparse.Namespace, res, setup, reference, stored: dict) -> Verification:
    """``verify``'s result from a stored first round (``--final-samples 0``) and a sampled final
    round: the final round is ``verify`` itself run on the finalists alone (in the order, with the
    sample count and seed, that ``verify`` samples them), so its numbers are ``verify``'s."""
    cands = verify_candidates(res, args.candidates)
    names = [s.name for _, s, _ in cands]
    if names != [r["schedule"] for r in stored["candidates"]]:
        raise SystemExit(f"the stored first round sampled other candidates: {names}")
    rows = [dict(r) for r in stored["candidates"]]
    low = min(range(len(rows)), key=lambda i: rows[i]["value"])
    for i, r in enumerate(rows):
        r.update(best=i == low, finalist=False, final_value=None, final_sd=None)
        r.update(final_tie_with_best=None, chosen=i == low, timesteps=list(cands[i][1].timesteps))
    final_n = args.final_samples if args.final_samples is not None else 4 * args.verify_samples
    fin = _finalists([r["value"] for r in rows], [r["tie_with_best"] for r in rows], 3)
    seconds = stored["seconds"]
    if fin and final_n:
        (_, s0, r0), others = cands[fin[0]], [(cands[i][1], cands[i][2]) for i in fin[1:]]
        only = dataclasses.replace(res, schedule=s0, response=r0, baselines=others, fallback=None)
        v = verify(
            only,
            setup.denoise,
            reference,
            shape=setup.shape,
            num_samples=final_n,
            candidates="all",
            final_samples=0,
            seed=args.verify_seed + 2,
        ).verification
        seconds += v.seconds
        for i, fr in zip(fin, v.rows, strict=True):
            rows[i].update(finalist=True, final_value=fr["value"], final_sd=fr["sd"])
            rows[i].update(final_tie_with_best=fr["tie_with_best"])
            rows[i]["chosen"] = fr["chosen"]
    metric = stored["metric"]
    return Verification(
        metric, rows, "", False, "", args.verify_samples, final_n if fin else 0, 0, 20, 0, seconds
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--stored", type=Path, required=True, help="a default_vs_heuristics.py --out")
    ap.add_argument("--cells", nargs="+", metavar="SAMPLER:STEPS", help="default: every cell")
    ap.add_argument("--verify-samples", type=int, default=256, help="fit --verify's default")
    ap.add_argument("--verify-seed", type=int, default=0, help="fit --verify's x_T seed")
    ap.add_argument(
        "--final-samples",
        type=int,
        default=None,
        help="verify's final round (default: its own, 4x --verify-samples; 0: one round)",
    )
    ap.add_argument(
        "--first-round-from",
        type=Path,
        default=None,
        help="a verify_cells.py --out of the same cells run with --final-samples 0: its first "
        "round is taken as measured and only the final round is sampled",
    )
    ap.add_argument(
        "--gaussian-design",
        action="store_true",
        help="also sample the Gaussian fit of the calibration's spectrum (the calibrated fit alone "
        "where the default is the Gaussian design), as fit --verify does on a calibration file",
    )
    ap.add_argument(
        "--candidates", type=int, default=3, help="schedules verify samples (3: its default)"
    )
    ap.add_argument(
        "--scoring", nargs="+", choices=["spectrum", "data"], default=["spectrum", "data"]
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, checks = _stored(args.stored, args.denoiser)
    if args.cells:
        want = {(c.split(":")[0], int(c.split(":")[1])) for c in args.cells}
        rows = [r for r in rows if (r["sampler"], r["steps"]) in want]
    cfg = {**rd.PRESETS["full"], "kind": "auto", "fid": False}
    setup = rd.SETUPS[args.denoiser](cfg)
    cal = rd.calibrate_setup(setup)
    if args.first_round_from is not None and args.gaussian_design:
        ap.error("--gaussian-design needs a first round that sampled it: drop --first-round-from")
    first = {}
    if args.first_round_from is not None:
        got = json.loads((args.first_round_from / f"verify_cells_{args.denoiser}.json").read_text())
        first = {(c["sampler"], c["steps"]): c for c in got["cells"]}
    out = []
    for r in rows:
        sampler, steps = r["sampler"], r["steps"]
        res = fit(cal, steps, sampler=sampler, train_schedule=setup.train)
        got = [int(t) for t in res.schedule.timesteps]
        cell = {"sampler": sampler, "steps": steps, "default": got, "stored": r["timesteps"]}
        cell["same_as_stored"] = got == r["timesteps"]
        pc = checks[(sampler, steps)]
        cell["default_verdict"] = verdict(pc["rows"])[0]
        refs = {"spectrum": cal, "data": setup.calibration_data}
        # the other design: the Gaussian fit, or the calibrated fit where the default is the
        # Gaussian design (since the twenty-sixth session)
        other = calibrated_design if res.gaussian_design else gaussian_design
        designs = [other(cal, res)] if args.gaussian_design else []
        if designs and not res.gaussian_design:
            cell["gaussian"] = [int(t) for t in designs[0].timesteps]
            cell["gaussian_is_stored_plain"] = cell["gaussian"] == r.get("plain")
        elif designs:
            cell["calibrated"] = [int(t) for t in designs[0].timesteps]
        for how in args.scoring:
            if first:
                v = _final_round(args, res, setup, refs[how], first[(sampler, steps)][how])
            else:
                v = verify(
                    res,
                    setup.denoise,
                    refs[how],
                    shape=setup.shape,
                    num_samples=args.verify_samples,
                    candidates=args.candidates,
                    designs=designs,
                    final_samples=args.final_samples,
                    seed=args.verify_seed,
                ).verification
            cell[how] = {
                "metric": v.metric,
                "candidates": [
                    {
                        k: row[k]
                        for k in (
                            "schedule",
                            "role",
                            "value",
                            "sd",
                            "tie_with_best",
                            "finalist",
                            "final_value",
                            "final_sd",
                            "final_tie_with_best",
                        )
                    }
                    for row in v.rows
                ],
                "seconds": v.seconds,
                "final_samples": v.final_samples,
            }
            # what verify kept (a tie keeps the fit's choice), and the lowest measured
            for rule, pick in (
                ("kept", next(row for row in v.rows if row["chosen"])),
                ("lowest", next(row for row in v.rows if row["best"])),
            ):
                ts = [int(t) for t in pick["timesteps"]]
                judged, fd, sd = _judge(args, sampler, steps, pick["schedule"], ts, pc)
                cell[how][rule] = {
                    "schedule": pick["schedule"],
                    "timesteps": ts,
                    "fd": fd,
                    "fd_sd": sd,
                    "verdict": judged,
                }
                print(
                    f"{sampler:9s} {steps:3d} default {cell['default_verdict']:4s} | {how:8s} "
                    f"{rule:6s} {pick['schedule']:>22s} FD {fd:8.3f} -> {judged}",
                    flush=True,
                )
        cell["best_heuristic"], cell["best_fd"] = verdict(pc["rows"])[1:]
        out.append(cell)
    counts = {
        f"{how} {rule}": {k: sum(c[how][rule]["verdict"] == k for c in out) for k in OUTCOMES}
        for how in args.scoring
        for rule in ("kept", "lowest")
    }
    counts["default"] = {k: sum(c["default_verdict"] == k for c in out) for k in OUTCOMES}
    print(f"wins / ties / losses against the best heuristic: {counts}")
    command = "python benchmarks/verify_cells.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    write_json(
        args.out / f"verify_cells_{args.denoiser}.json",
        {
            "command": command,
            **stamp(),
            "denoiser": args.denoiser,
            "verify_samples": args.verify_samples,
            "verify_seed": args.verify_seed,
            "final_samples": args.final_samples,
            "candidates": args.candidates,
            "counts": counts,
            "wall_seconds": time.perf_counter() - t0,
            "cells": out,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
