"""Speed of a calibrated fit: ``fit`` on a calibration file, stage by stage (issue 12's speed bars).

Run from the repository root, on an otherwise idle machine::

    python benchmarks/calibrated_speed.py                    # 32x32x3 and tiny16, ~6 minutes
    python benchmarks/calibrated_speed.py --cases photos32   # the 32x32x3 calibration only

Two calibrations:

- ``photos32``: the bundled photos at 32x32x3 (2,000 images, seed 1), calibrated on the exact
  Gaussian denoiser of their spectrum plus ``0.05 tanh(3x)`` (a non-linearity, so that the
  calibrated model carries its coherent non-linear source, as it does for every real network).
  The bar: ``fit`` on a 32x32x3 calibration under 1 s.
- ``unet``: the benchmark's tiny16 network, calibrated as ``calibrated_fits.py`` does. The bar:
  calibration plus the fit of one schedule within a minute.

Each fit (``--steps``, default 10, for each of ``--samplers``) gets one warm-up call, then
``--repeats`` timed calls (median reported, one torch thread), each split into stages
with ``fit``'s progress callback (heuristics; optimiser; each integer polish; the guard; the
Gaussian design, the check of the plain fit; the last call's split is reported), and counts the
objective's evaluations. Prints a table and writes ``--json`` (default ``benchmarks/results/calibrated_speed.json``) with the machine and the load
other processes put on it (timings taken beside other work are flagged).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import machine_details, save_result  # noqa: E402
from fit_speed import BUSY, other_load, system_busy_s, table  # noqa: E402

import specsched as ss  # noqa: E402
from specsched.data.builtin import photos  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402

#: each case's bar: what it times, the limit in seconds, whether the calibration counts
BARS = {"photos32": ("fit", 1.0, False), "unet": ("calibration + fit", 60.0, True)}


def photos32(size: int = 32, n: int = 2000) -> tuple[ss.Spectrum, float, Any]:
    """The 32x32x3 calibration (see the module docstring; ``size`` and ``n`` for a smaller one);
    the seconds it took; the training schedule."""
    x = photos(size=size, channels=3, n=n, seed=1)
    spec = ss.Spectrum.from_array(x, layout="NCHW")
    gauss = ss.GaussianDenoiser(spec)

    def denoise(x: torch.Tensor, alpha: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return gauss(x, alpha, s) + 0.05 * torch.tanh(3 * x)

    t = time.perf_counter()
    cal = ss.calibrate(spec, denoise, x, levels=LevelRange.discrete("linear"), seed=0)
    return cal, time.perf_counter() - t, "linear"


def unet() -> tuple[ss.Spectrum, float, Any]:
    """The benchmark's tiny16 calibration (``real_denoisers.py``'s full preset set-up)."""
    setup = rd.SETUPS["unet"](dict(rd.PRESETS["full"]))
    t = time.perf_counter()
    cal = rd.calibrate_setup(setup)
    return cal, time.perf_counter() - t, setup.train


CASES = {"photos32": photos32, "unet": unet}


def stages(cal: ss.Spectrum, steps: int, sampler: str, train: Any) -> tuple[dict[str, float], Any]:
    """One fit, split into stages by its progress callback: seconds per stage, and the result."""
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def progress(stage: str, done: int, total: int) -> None:
        marks.append((stage, time.perf_counter()))

    res = ss.fit(cal, steps, sampler=sampler, train_schedule=train, progress=progress)
    marks.append(("end", time.perf_counter()))
    # "done" comes a few ms after the guard (the result's last note): counted with it
    names = {
        "optimiser": "optimiser",
        "integer polish": "polish",
        "guard": "guard",
        "Gaussian design": "Gaussian design",
        "start below the failure": "start below failure",
        "done": "guard",
    }
    out: dict[str, float] = {}
    for (stage, t0), (_, t1) in itertools.pairwise(marks):
        # "start" to "heuristics": the set-up and the heuristics' exact evaluation
        label = next((v for k, v in names.items() if stage.startswith(k)), "setup + heuristics")
        out[label] = out.get(label, 0.0) + (t1 - t0)
    return out, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--samplers", nargs="+", default=["ddim", "dpmpp_2m", "unipc", "heun"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per fit (default 3)")
    ap.add_argument(
        "--json", type=Path, default=HERE / "results" / "calibrated_speed.json", metavar="PATH"
    )
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.steps < 1:
        ap.error("--repeats and --steps must be at least 1")
    torch.set_num_threads(1)
    info = machine_details()
    print(f"calibrated fit speed - {info['date']} - {info['processor']}, one torch thread")
    rows: list[dict[str, Any]] = []
    calibrations: dict[str, float] = {}
    for case in args.cases:
        cal, cal_s, train = CASES[case]()
        calibrations[case] = cal_s
        n_modes = cal.modes()[0].size
        print(f"\n{case}: {n_modes} modes, calibrated in {cal_s:.1f} s")
        for sampler in args.samplers:
            ss.fit(cal, args.steps, sampler=sampler, train_schedule=train)  # warm-up
            walls = []
            start = (system_busy_s(), time.process_time(), time.perf_counter())
            for _ in range(args.repeats):  # each timed call split into its stages (the last kept)
                gc.collect()
                split, res = stages(cal, args.steps, sampler, train)
                walls.append(sum(split.values()))
            others = other_load(*start)
            what, bar, with_calibration = BARS[case]
            median = statistics.median(walls)
            total = median + (cal_s if with_calibration else 0.0)
            row = {
                "case": case,
                "modes": n_modes,
                "sampler": sampler,
                "steps": args.steps,
                "median_s": median,
                "times_s": walls,
                "stages_s": split,
                "evaluations": res.evaluations,
                "fallback": res.fallback,
                "gaussian_design": res.gaussian_design,
                "timesteps": res.schedule.timesteps.tolist(),
                "other_processes_cores": others,
                "noisy": bool(others > BUSY or max(walls) > 1.5 * min(walls)),
                "bar": f"{what} < {bar:g} s",
                "met": total < bar,
            }
            rows.append(row)
            print(
                f"  {sampler:8s} {median:6.2f} s  "
                + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
                + f"  ({res.evaluations} evaluations)"
                + (" *" if row["noisy"] else ""),
                flush=True,
            )
    print()
    print(
        table(
            ["case", "sampler", "steps", "fit s", "evals", "bar", ""],
            [
                [
                    r["case"],
                    r["sampler"],
                    str(r["steps"]),
                    f"{r['median_s']:.2f}" + (" *" if r["noisy"] else ""),
                    str(r["evaluations"]),
                    r["bar"],
                    "met" if r["met"] else "MISSED",
                ]
                for r in rows
            ],
        )
    )
    if any(r["noisy"] for r in rows):
        print(f"   * other processes used more than {BUSY} cores, or the repeats spread > 1.5x")
    payload = {"machine_details": info, "calibration_s": calibrations, "rows": rows}
    return save_result(args.json, "calibrated_speed.py", argv, payload)


if __name__ == "__main__":
    sys.exit(main())
