"""Does `--verify` without data choose what pixel FD chooses?

`specsched fit FILE --verify --pipeline DIR` without `--reference` scores each candidate's samples
by the fit's objective measured on them against the file's spectrum
(`specsched.evaluate.spectral_objective`, "sampled w2"), where with data it scores pixel FD. This
script samples the given schedules of benchmark cells from one seeded x_T (paired) with a
benchmark network, scores each both ways (`evaluate_schedules`, one bootstrap for both) and
reports which schedule each picks, and whether FD can tell the two picks apart (paired test).

Usage::

    python benchmarks/verify_agreement.py --denoiser rgb16 --calibration rgb16.npz \\
        --num-samples 512 --cell heun:10:ays,quadratic,leading --cell ddim:5:quadratic,leading

A cell is ``SAMPLER:STEPS:SCHEDULE,SCHEDULE,...``, each schedule a heuristic's name or
``NAME=T0/T1/...``. Without ``--calibration`` the set-up's own spectrum is the reference
spectrum. ``--stored RUN.json`` also prints, per cell of a stored ``real_denoisers.py`` run, the
Spearman correlation between its ``spectral_w2`` and ``fd`` columns. Writes
``results/verify_agreement_<denoiser>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402
from paired_check import parse_schedule  # noqa: E402

from specsched import Schedule, Spectrum  # noqa: E402
from specsched.evaluate import evaluate_schedules, paired_tie, spectral_scorer  # noqa: E402
from specsched.heuristics import heuristic_schedule  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402

METRIC = "sampled w2"


def _schedules(spec: str, steps: int, lr: LevelRange, train: Any) -> list[Schedule]:
    out = []
    for item in spec.split(","):
        if "=" in item:
            name, t = parse_schedule(item.replace("/", ","))
            out.append(Schedule.from_timesteps(t, train_schedule=train, name=name))
        else:
            out.append(heuristic_schedule(item, steps, lr))
    return out


def agreement(
    setup: Any,
    spectrum: Spectrum,
    sampler: str,
    schedules: list[Schedule],
    *,
    num_samples: int,
    seed: int,
) -> dict[str, Any]:
    """Score ``schedules`` by pixel FD and by the sampled objective; which each picks."""

    rows = evaluate_schedules(
        setup.denoise,
        schedules,
        setup.reference,
        shape=setup.shape,
        sampler=sampler,
        metrics=["fd", METRIC],
        scorers={METRIC: spectral_scorer(spectrum, seed=seed)},
        num_samples=num_samples,
        seed=seed,
    )
    by_fd = int(np.argmin([r.scores["fd"][0] for r in rows]))
    by_obj = int(np.argmin([r.scores[METRIC][0] for r in rows]))
    return {
        "schedules": [
            {
                "name": r.name,
                "timesteps": [int(t) for t in r.schedule.timesteps],
                "fd": r.scores["fd"][0],
                "fd_sd": float(np.std(r.scores["fd"][1], ddof=1)),
                "sampled_w2": r.scores[METRIC][0],
                "sampled_w2_sd": float(np.std(r.scores[METRIC][1], ddof=1)),
            }
            for r in rows
        ],
        "fd_pick": rows[by_fd].name,
        "sampled_w2_pick": rows[by_obj].name,
        "same": by_fd == by_obj,
        # when they differ: can FD tell the sampled objective's pick from its own?
        "fd_tie": by_fd == by_obj
        or paired_tie(rows[by_obj].scores["fd"], rows[by_fd].scores["fd"]),
    }


def stored_spearman(path: Path) -> list[dict[str, Any]]:
    """Per cell of a stored benchmark run: Spearman of its spectral_w2 column against fd."""
    records = json.loads(path.read_text())["records"]
    out = []
    key = lambda r: (r["denoiser"], r["sampler"], r["steps"])  # noqa: E731
    for (den, smp, steps), group in itertools.groupby(sorted(records, key=key), key=key):
        group = list(group)
        fd = np.array([r["metrics"]["fd"]["value"] for r in group])
        sw = np.array([r["metrics"]["spectral_w2"]["value"] for r in group])
        rho = float(scipy.stats.spearmanr(sw, fd).statistic)
        out.append({"denoiser": den, "sampler": smp, "steps": steps, "spearman": rho,
                    "regret": float(fd[np.argmin(sw)] / fd.min())})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=sorted(rd.SETUPS), default="rgb16")
    ap.add_argument("--calibration", type=Path, help="spectrum or calibration file (reference)")
    ap.add_argument("--cell", action="append", default=[])
    ap.add_argument("--num-samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--stored", type=Path, help="a real_denoisers.py JSON to correlate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    payload: dict[str, Any] = {"denoiser": args.denoiser, "num_samples": args.num_samples,
                               "seed": args.seed, "cells": []}  # fmt: skip
    if args.cell:
        setup = rd.SETUPS[args.denoiser](dict(rd.PRESETS["full"]))
        spectrum = Spectrum.load(args.calibration) if args.calibration else setup.spectrum
        lr = LevelRange.discrete(setup.train)
        for cell in args.cell:
            sampler, steps, names = cell.split(":", 2)
            scheds = _schedules(names, int(steps), lr, setup.train)
            res = agreement(setup, spectrum, sampler, scheds, num_samples=args.num_samples,
                            seed=args.seed)  # fmt: skip
            payload["cells"].append({"sampler": sampler, "steps": int(steps), **res})
            verdict = "same" if res["same"] else ("FD tie" if res["fd_tie"] else "FD loss")
            print(f"{args.denoiser} {sampler}-{steps}: " + "  ".join(
                f"{r['name']} FD {r['fd']:.3f} sampled w2 {r['sampled_w2']:.3f}"
                for r in res["schedules"]
            ) + f" | FD picks {res['fd_pick']}, sampled w2 {res['sampled_w2_pick']} ({verdict})",
                flush=True)  # fmt: skip
    if args.stored:
        rows = stored_spearman(args.stored)
        payload["stored"] = {"path": str(args.stored), "cells": rows}
        for den in sorted({r["denoiser"] for r in rows}):
            rho = [r["spearman"] for r in rows if r["denoiser"] == den]
            regret = max(r["regret"] for r in rows if r["denoiser"] == den)
            print(f"{den}: spectral_w2 against fd, Spearman median {np.median(rho):.3f}, "
                  f"min {np.min(rho):.3f} over {len(rho)} cells; worst regret {regret:.3f}")  # fmt: skip
    payload["seconds"] = time.perf_counter() - t0
    path = args.out / f"verify_agreement_{args.denoiser}.json"
    return save_result(path, "verify_agreement.py", argv, payload, threads=str(args.threads))


if __name__ == "__main__":
    raise SystemExit(main())
