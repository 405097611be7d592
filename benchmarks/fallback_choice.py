"""Which heuristic should a calibrated fit fall back to? Rules compared offline on measured cells.

Where the guard of a calibrated fit keeps a heuristic (``FitResult.fallback``), ``fit`` returns
the calibrated model's best heuristic, or logSNR-uniform spacing where the model cannot tell it
from the best (rule ``logsnr_within``). That choice rests on the calibrated model's ranking of
the heuristics, whose model error its sampling uncertainty does not measure. This script asks
whether another rule would have kept a better heuristic, on every fallback cell of stored
``calibrated_fits.py`` results: each heuristic of the cell (every one was sampled and scored by
the paired ``real_denoisers.py`` run) is rated by the calibrated model and by the Gaussian model
of the same spectrum (W2, the schedule's stored timesteps), and each rule's pick is looked up
among the measured rows. No sampling. Rules:

- ``calibrated``: the calibrated model's best (what ``fit`` does);
- ``gaussian``: the Gaussian model's best;
- ``worse_rank``: the best worse rank across the two models (ties: the calibrated rank), a
  heuristic both models rank well;
- ``worse_ratio``: the smallest worse ratio to each model's best heuristic;
- ``converged``: the calibrated model's best by W2 to the calibrated model's own converged
  output (``fit(..., target="converged")``): the heuristic that lands closest to what the
  network generates with many steps, rather than closest to the data;
- ``regular``: of the heuristics the calibrated model cannot tell from its best (their W2 within
  2 sd of the paired difference over ``objective_draws``, the guard's own uncertainty), the most
  regular (least roughness, the fit's own measure: squared second differences of the log-SNR
  levels), so logSNR-uniform wherever it is among them; the fit's rule for a flat objective
  ("return the most regular schedule of the flat set") applied to the fallback;
- ``logsnr_within``: what ``fit`` does since the nineteenth session
  (``specsched.optimize._regular_fallback``, called here): logSNR-uniform spacing where it is
  within that uncertainty of the calibrated model's best, else the best; since the twentieth
  session not where the model's timesteps do not realise logSNR-uniform spacing (levels moved
  off their nearest timestep, as on MNIST's cosine schedule at 10 and 20 steps).

Each heuristic is built by the library, as ``fit`` builds its baselines (its metadata is what the
guard reads), and checked against the stored row's timesteps.

Usage::

    python benchmarks/fallback_choice.py --denoiser gmm
    python benchmarks/fallback_choice.py --denoiser unet
    python benchmarks/fallback_choice.py --denoiser mnist --kind auto \\
        --pair benchmarks/results/real_denoisers_mnist.json \\
            benchmarks/results/calibrated_fits_mnist_auto_fid.json \\
        --pair RUN FITS ...

``--pair STORED FITS`` names a ``real_denoisers.py`` run and the ``calibrated_fits.py`` result
paired with it (default: ``results/real_denoisers.json`` and
``results/calibrated_fits_<denoiser>.json``). A minute or two each (the calibration is
recomputed, deterministically, as in the stored runs). Writes
``results/fallback_choice_<denoiser>.json`` and prints a table.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import predicted_w2, save_result  # noqa: E402
from model_agreement import measured  # noqa: E402

from specsched.calibrate import ModeTables  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402
from specsched.optimize import _regular_fallback, objective_draws  # noqa: E402
from specsched.response import Response, converged_moments, response  # noqa: E402
from specsched.schedules import Schedule  # noqa: E402

RULES = (
    "calibrated",
    "gaussian",
    "worse_rank",
    "worse_ratio",
    "converged",
    "regular",
    "logsnr_within",
)


def picks(w2: np.ndarray, regular: int, library: int) -> dict[str, int]:
    """Index of the heuristic each rule keeps, from ``w2`` of shape ``(n, 3)`` (calibrated,
    Gaussian, calibrated against its converged output), the ``regular`` rule's pick
    (:func:`most_regular_within`) and the library's (:func:`library_fallback`)."""
    both = w2[:, :2]
    rank = np.argsort(np.argsort(both, axis=0, kind="stable"), axis=0, kind="stable")
    ratio = both / both.min(0)
    n = len(w2)
    return {
        "calibrated": int(np.argmin(w2[:, 0])),
        "gaussian": int(np.argmin(w2[:, 1])),
        "worse_rank": min(range(n), key=lambda i: (int(rank[i].max()), int(rank[i, 0]))),
        "worse_ratio": int(np.argmin(ratio.max(1))),
        "converged": int(np.argmin(w2[:, 2])),
        "regular": regular,
        "logsnr_within": library,
    }


def library_heuristics(records: list[dict[str, Any]], setup: Any, steps: int) -> list[Schedule]:
    """The heuristics stored rows sampled, as the benchmark and ``fit`` build them (with their
    metadata, which the guard reads: ``meta["moved_levels"]``), each checked against its row's
    timesteps."""
    built = {s.name: s for s in rd.heuristics_for(setup.spectrum, steps, setup.train)}
    out = []
    for record in records:
        sched = built.get(record["schedule"])
        if sched is None or sched.timesteps.tolist() != list(record["timesteps"]):
            print(
                f"error: the stored {record['schedule']!r} row ({record['sampler']}, {steps} "
                "steps) is not the library's heuristic: a run older than the heuristic's "
                "definition; rerun real_denoisers.py for that cell",
                file=sys.stderr,
            )
            raise SystemExit(2)
        out.append(sched)
    return out


def library_fallback(model: Any, scheds: list[Schedule], resp: list[Response], sampler: str) -> int:
    """Index of the heuristic of ``scheds`` (with their responses ``resp`` on the calibrated
    ``model``) that ``fit``'s guard keeps: ``specsched.optimize._regular_fallback`` on them,
    ranked by the model's W2."""
    order = sorted(range(len(scheds)), key=lambda i: resp[i].w2)
    kept, _, _ = _regular_fallback(
        model, [(scheds[i], resp[i]) for i in order], "w2", sampler, {}, False
    )
    return next(i for i, s in enumerate(scheds) if s is kept)


def most_regular_within(model: Any, scheds: list[Schedule], w2: np.ndarray, sampler: str) -> int:
    """Index of the most regular heuristic of ``scheds`` (their W2 ``w2`` on the calibrated
    ``model``) that the model cannot tell from its best one (2 sd of the paired W2 difference
    over its ``objective_draws``); ties (several equally regular) go to the lower W2."""
    draws = objective_draws(model, scheds, sampler=sampler, objective="w2")
    best = int(np.argmin(w2))
    diff = draws - draws[:, [best]]
    within = np.abs(w2 - w2[best]) <= 2.0 * diff.std(0, ddof=1)
    rough = np.array([float(np.sum(np.diff(s.log_snr[:-1], 2) ** 2)) for s in scheds])
    return min(np.flatnonzero(within), key=lambda i: (rough[i], w2[i]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument(
        "--pair",
        nargs=2,
        action="append",
        type=Path,
        metavar=("STORED", "FITS"),
        help="a real_denoisers.py run and the calibrated_fits.py result paired with it",
    )
    ap.add_argument("--kind", choices=["fourier", "auto", "pca"], default="fourier")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    pairs = args.pair or [
        (
            HERE / "results" / "real_denoisers.json",
            HERE / "results" / f"calibrated_fits_{args.denoiser}.json",
        )
    ]
    missing = [str(f) for pair in pairs for f in pair if not f.is_file()]
    if missing:
        ap.error(
            f"--pair: no such file {missing[0]}: give a real_denoisers.py run and its "
            "calibrated_fits.py result"
        )
    loaded = [(json.loads(s.read_text()), json.loads(f.read_text())) for s, f in pairs]
    # the runs of one denoiser share their data set-up (sample and spectrum sizes, seeds)
    setup = rd.SETUPS[args.denoiser]({**loaded[0][0]["config"], "kind": args.kind, "fid": False})
    calibrated = rd.calibrate_setup(setup)
    S, _, m = calibrated.modes()
    conv = converged_moments(
        torch.from_numpy(S),
        torch.from_numpy(m),
        ModeTables(calibrated.calibration, S),
        LevelRange.discrete(setup.train).process,
    )
    converged = tuple(a.numpy() for a in conv)
    rows = []
    for stored, fitted in loaded:
        for fit_row in fitted["rows"]:
            if fit_row["fit"] != "calibrated" or fit_row["fallback"] is None:
                continue
            sampler, steps = fit_row["sampler"], fit_row["steps"]
            heur = [
                r
                for r in stored["records"]
                if (r["denoiser"], r["sampler"], r["steps"], r["kind"])
                == (args.denoiser, sampler, steps, "heuristic")
            ]
            best_h = min(heur, key=lambda r: r["metrics"]["fd"]["value"])
            # the heuristics' schedules and calibrated responses, shared by the rules
            scheds = library_heuristics(heur, setup, steps)
            resp = [response(calibrated, sch, sampler) for sch in scheds]
            w2 = np.stack(
                [
                    [r.w2 for r in resp],
                    predicted_w2(setup.spectrum, heur, sampler, setup.train),
                    predicted_w2(calibrated, heur, sampler, setup.train, target=converged),
                ],
                1,
            )
            chosen = {}
            regular = most_regular_within(calibrated, scheds, w2[:, 0], sampler)
            library = library_fallback(calibrated, scheds, resp, sampler)
            for rule, k in picks(w2, regular, library).items():
                fd, outcome = measured(heur[k], best_h)
                chosen[rule] = {
                    "heuristic": heur[k]["schedule"],
                    "fd": fd,
                    "ratio": fd / best_h["metrics"]["fd"]["value"],
                    "result": outcome,
                }
            rows.append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "fallback": fit_row["fallback"],
                    "best_heuristic": best_h["schedule"],
                    "best_fd": best_h["metrics"]["fd"]["value"],
                    "w2": {h["schedule"]: w2[i].tolist() for i, h in enumerate(heur)},
                    "rules": chosen,
                }
            )
            print(
                f"{sampler:9s} {steps:2d}: fallback {fit_row['fallback']:10s} best "
                f"{best_h['schedule']:10s} "
                + " ".join(
                    f"{r}={c['heuristic']} {c['ratio']:.3f} {c['result']}"
                    for r, c in chosen.items()
                ),
                flush=True,
            )
    summary = {}
    for rule in RULES:
        got = [r["rules"][rule] for r in rows]
        summary[rule] = {
            **{k: sum(c["result"] == k for c in got) for k in ("win", "tie", "loss")},
            "geomean_ratio": float(np.exp(np.mean(np.log([c["ratio"] for c in got]))))
            if got
            else None,
        }
        print(f"{rule:12s} {summary[rule]}")
    mismatch = [r for r in rows if r["rules"]["logsnr_within"]["heuristic"] != r["fallback"]]
    if mismatch:
        print(
            f"note: {len(mismatch)} cells' stored fallback is not what fit's guard keeps today "
            "(rule logsnr_within): a run older than the rule"
        )
    path = args.out / f"fallback_choice_{args.denoiser}.json"
    payload = {
        "pairs": [[str(s), str(f)] for s, f in pairs],
        "kind": args.kind,
        "summary": summary,
        "wall_seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    return save_result(path, "fallback_choice.py", argv, payload, threads="1")


if __name__ == "__main__":
    sys.exit(main())
