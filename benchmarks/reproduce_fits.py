"""Does today's `fit` give the schedules of the stored runs?

Usage::

    python benchmarks/reproduce_fits.py                      # plain fits, 30 cells, ~2 min
    python benchmarks/reproduce_fits.py --calibrated unet    # calibrated fits, ~4 min
    python benchmarks/reproduce_fits.py --calibrated mnist \\
        --fits benchmarks/results/calibrated_fits_mnist_auto_fid.json  # one stored result
    python benchmarks/reproduce_fits.py --calibrated rgb16 --polish  # rgb16's 15 defaults

Without ``--calibrated``: refits the plain (``spectral-w2``) rows of
``results/real_denoisers.json``. With ``--calibrated DENOISER``: recomputes the benchmark's
calibration of that denoiser (deterministic, as ``calibrated_fits.py`` does) and refits every
``"fit": "calibrated"`` row of the stored ``calibrated_fits.py`` results (``--fits``; default
``results/calibrated_fits_<denoiser>.json``; their spectrum kind and data set-up are read from
each file and the run it was paired with; rgb16's defaults, ``results/rgb16/defaults.json``, are
its default with ``--calibrated rgb16``). Prints each cell that differs from the stored
timesteps, the time of every fit and a count; exit status 1 if any differ. ``--polish`` also
counts each fit's integer polishes (the batches each evaluated, the value it reached; the last
one of a calibrated fit starts from the best heuristic) and sums them up. Fits on flat
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

from specsched import fit, optimize  # noqa: E402


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


class PolishCount:
    """Counts the batches of every integer polish of the fits run inside it (``polishes``: per
    fit, the ``(batches, value)`` of each polish, in the order ``fit`` runs them; ``calibrated``:
    whether the fit was on the calibrated model, whose last polish starts from the best
    heuristic, where a plain fit, as for DDPM, polishes every start's optimum)."""

    def __init__(self) -> None:
        self.polishes: list[list[tuple[int, float]]] = []
        self.calibrated: list[bool] = []

    def __enter__(self) -> PolishCount:
        self._orig = optimize._polish_integers

        def counted(t0, evaluate, *args, **kwargs):
            n = [0]

            def ev(cands):
                n[0] += 1
                return evaluate(cands)

            t, value = self._orig(t0, ev, *args, **kwargs)
            self.polishes[-1].append((n[0], float(value)))
            return t, value

        optimize._polish_integers = counted
        return self

    def __exit__(self, *exc: object) -> None:
        optimize._polish_integers = self._orig

    def line(self) -> str:
        """The last fit's polishes, and which reached the lowest value (the first on a tie)."""
        pol = self.polishes[-1]
        if not pol:
            return "no polish"
        best = min(range(len(pol)), key=lambda k: pol[k][1])
        runs = ", ".join(f"{n} batches to {v:.5g}" for n, v in pol)
        return f"polishes: {runs}; lowest: number {best + 1}"

    def summary(self) -> str:
        """Over the calibrated fits with a heuristic's polish (two polishes): its share of the
        batches, and the fits where it reached the lowest value."""
        runs = [p for p, c in zip(self.polishes, self.calibrated, strict=True) if c and len(p) > 1]
        total = sum(n for p in runs for n, _ in p)
        last = sum(p[-1][0] for p in runs)
        won = sum(min(range(len(p)), key=lambda k: p[k][1]) == len(p) - 1 for p in runs)
        return (
            f"fits with a polish from the best heuristic: {len(runs)}; its share of their polish "
            f"batches: {last} of {total} ({last / max(total, 1):.0%}); its result the better "
            f"candidate in {won} of them"
        )


def calibrated(
    denoiser: str, files: list[Path], count: PolishCount | None = None
) -> tuple[int, int]:
    """Refit the calibrated rows of stored calibrated_fits.py results (or rgb16's stored
    defaults); (same, different). With ``count``, the fits' polishes are counted there."""
    same = differ = 0
    cached: dict[tuple[str, int], tuple[rd.Setup, object]] = {}
    for path in files:
        result = json.loads(path.read_text())
        if isinstance(result, list):  # rgb16's defaults: each row is the default on the full preset
            result = {"kind": None, "rows": [{**r, "fit": "calibrated"} for r in result]}
            stored_run = None
        else:
            args = result["command"].split()
            stored_run = (
                Path(args[args.index("--stored") + 1])
                if "--stored" in args
                else HERE / "results" / "real_denoisers.json"
            )
        # a run stored on another machine: the full preset's data set-up, as the stored runs'
        config = (
            json.loads(stored_run.read_text())["config"]
            if stored_run is not None and stored_run.is_file()
            else dict(rd.PRESETS["full"])
        )
        key = (result["kind"], config["spectrum_n"])
        if key not in cached:
            kind = {} if result["kind"] is None else {"kind": result["kind"]}
            setup = rd.SETUPS[denoiser]({**config, **kind, "fid": False})
            cached[key] = (setup, rd.calibrate_setup(setup))
        setup, cal = cached[key]
        for row in result["rows"]:
            if row["fit"] != "calibrated":
                continue
            t0 = time.perf_counter()
            if count is not None:
                count.polishes.append([])
            res = fit(cal, row["steps"], sampler=row["sampler"], train_schedule=setup.train)
            seconds = time.perf_counter() - t0
            if count is not None:
                count.calibrated.append(res.calibrated)
            ts = [int(t) for t in res.schedule.timesteps]
            cell = f"{denoiser} {row['sampler']} {row['steps']}"
            polish = "" if count is None else f"; {count.line()}"
            if ts == row["timesteps"]:
                same += 1
                print(f"{cell}: same ({seconds:.1f} s{polish})", flush=True)
            else:
                differ += 1
                print(
                    f"{cell}: stored {row['timesteps']}, now {ts} ({seconds:.1f} s{polish})",
                    flush=True,
                )
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
    ap.add_argument(
        "--polish",
        action="store_true",
        help="with --calibrated: count each fit's integer polishes (batches, value reached)",
    )
    args = ap.parse_args(argv)
    if args.fits and not args.calibrated:
        ap.error("--fits needs --calibrated DENOISER")
    if args.polish and not args.calibrated:
        ap.error("--polish needs --calibrated DENOISER")
    torch.set_num_threads(1)
    if args.calibrated:
        default = (
            HERE / "results" / "rgb16" / "defaults.json"
            if args.calibrated == "rgb16"
            else HERE / "results" / f"calibrated_fits_{args.calibrated}.json"
        )
        files = args.fits or [default]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            ap.error(f"--fits: no such file {missing[0]}: give calibrated_fits.py results")
        if args.polish:
            with PolishCount() as count:
                same, differ = calibrated(args.calibrated, files, count)
            print(count.summary())
        else:
            same, differ = calibrated(args.calibrated, files)
    else:
        same, differ = plain()
    print(f"same timesteps: {same}; different: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
