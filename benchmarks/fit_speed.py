"""Speed of ``specsched.fit`` and the error of its mode compression (DESIGN §2, "Optimisation").

Run from the repository root::

    python benchmarks/fit_speed.py            # full run (a few minutes on 2 cores)
    python benchmarks/fit_speed.py --quick    # smoke run (well under a minute)

Part 1 times ``fit()`` alone: the spectra are built first, every case gets one warm-up call, then
the median of ``--repeats`` timed calls is reported, with the default ``heuristics=True`` (every
heuristic family is also evaluated exactly on the full spectrum and the best ones seed the
optimiser) and with ``heuristics=False`` (the optimisation alone). The project's targets: under
0.5 s for a 32x32x3 spectrum, under 2 s for a 256x256x3 one (10 steps, discrete linear-1000 VP).

Part 2 measures what the optimiser's compressed copy of the spectrum (``compress_modes`` with the
bins ``fit`` uses by default) costs in accuracy: the relative difference between the objective on
the compressed modes and on the full modes, at the fitted schedule and at two heuristics, for
ddim/ddpm and w2/kl. The project's bar is 0.1% (1e-3). For the 32x32x3 spectrum it also reruns the
optimiser with far more bins than modes and compares the fitted values.

All numbers go to ``--json`` (default ``benchmarks/results/fit_speed.json``) with machine info.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy  # noqa: F401  (fit imports scipy.optimize; imported here so its version is stamped)
import torch
from _common import machine_details

from specsched import divergence
from specsched.data.builtin import powerlaw_spectrum
from specsched.heuristics import heuristic_schedule
from specsched.optimize import FitResult, compress_modes, default_bins, fit, level_range
from specsched.response import output_moments, response
from specsched.schedules import Schedule
from specsched.spectrum import Spectrum

STEPS = 10
SAMPLERS = ("ddim", "ddpm")
OBJECTIVES = ("w2", "kl")
HEURISTICS = ("trailing", "karras")
BUSY = 0.25  # cores used by other processes above which timings are flagged as disturbed
BAR = 1e-3  # the project's bar for the compression error: 0.1% of the objective
LOSSLESS_BINS = 1 << 20  # "no compression": cells of 1e-6 of the log-variance range


#: the long schedule of part 2's second half (compressed into fewer bins: ``default_bins``)
LONG_STEPS = 100


# ------------------------------------------------------------------------------------ spectra
def build_spectra(quick: bool) -> list[dict[str, Any]]:
    """The benchmark spectra, each with its target and how long it took to build (not timed)."""
    out = []

    t = time.perf_counter()
    spec = Spectrum.from_source("builtin:photos", size=32, channels=3, n=10_000)
    out.append(
        {
            "key": "photos32",
            "label": "photos 32x32x3 (n=10000)",
            "spec": spec,
            "target_s": 0.5,
            "build_s": time.perf_counter() - t,
        }
    )

    t = time.perf_counter()
    S, M = powerlaw_spectrum(size=256, channels=3)
    spec = Spectrum.from_cross_spectrum(S[..., None, None] * (M @ M.T), np.zeros(3), (256, 256))
    out.append(
        {
            "key": "powerlaw256",
            "label": "power law 256x256x3 (exact)",
            "spec": spec,
            "target_s": 2.0,
            "build_s": time.perf_counter() - t,
        }
    )

    if not quick:
        t = time.perf_counter()
        spec = Spectrum.from_source("builtin:photos", size=256, channels=3, n=300)
        out.append(
            {
                "key": "photos256",
                "label": "photos 256x256x3 (n=300)",
                "spec": spec,
                "target_s": 2.0,
                "build_s": time.perf_counter() - t,
            }
        )
    return out


# ------------------------------------------------------------------------------------ timing
def system_busy_s() -> float:
    """CPU seconds all processes have used since boot (``/proc/stat``; NaN where there is none).

    Busy is everything but idle and iowait, steal included (the hypervisor running someone else).
    """
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


def other_load(busy0: float, own0: float, wall0: float) -> float:
    """Cores used on average by *other* processes since ``(busy0, own0, wall0)``."""
    wall = time.perf_counter() - wall0
    other = (system_busy_s() - busy0) - (time.process_time() - own0)
    return max(other, 0.0) / wall if wall > 0 else math.nan


def time_fit(
    spec: Spectrum, repeats: int, **kwargs: Any
) -> tuple[list[float], list[float], float, FitResult]:
    """One warm-up call, then ``repeats`` timed calls of ``fit(spec, **kwargs)``.

    Returns the wall times, the process CPU times (all threads; idle OpenBLAS threads that
    spin-wait can make it about twice the wall time), the cores other processes used meanwhile,
    and the last result.
    """
    res = fit(spec, STEPS, **kwargs)  # warm-up
    wall, cpu = [], []
    start = (system_busy_s(), time.process_time(), time.perf_counter())
    for _ in range(repeats):
        gc.collect()
        c, t = time.process_time(), time.perf_counter()
        res = fit(spec, STEPS, **kwargs)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu, other_load(*start), res


def profile_fit(spec: Spectrum, top: int = 12, **kwargs: Any) -> list[dict[str, Any]]:
    """Where one ``fit`` call spends its time: the specsched functions by cumulative time."""
    prof = cProfile.Profile()
    prof.enable()
    fit(spec, STEPS, **kwargs)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_, ncalls, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "specsched" in file:
            rows.append(
                {
                    "function": f"{Path(file).name}:{line}({func})",
                    "calls": ncalls,
                    "cumulative_s": cum,
                }
            )
    rows.sort(key=lambda r: -r["cumulative_s"])
    return rows[:top]


# ------------------------------------------------------------------------------------ accuracy
def objective_on(
    S: np.ndarray, w: np.ndarray, m: np.ndarray, sched: Schedule, sampler: str, objective: str
) -> float:
    """The objective of ``sched`` on a (possibly compressed) mode list, as the optimiser sees it."""
    St, wt, mt = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) for a in (S, w, m))
    alpha, s = torch.from_numpy(sched.alpha.copy()), torch.from_numpy(sched.s.copy())
    with torch.no_grad():
        out = output_moments(St, mt, alpha, s, process=sched.process, sampler=sampler)
        return float(divergence.total(objective, St, wt, mt, out["var"], out["mean"]))  # type: ignore[arg-type]


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ------------------------------------------------------------------------------------ start-up
SRC = str(Path(__file__).resolve().parents[1] / "src")  # these sources, not an installed copy
STEP_COUNTS = (5, 10, 20, 50, 100, 250)


def run_command(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (children's user + system) of one command, process start to exit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    r0, t = os.times(), time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, r1 = time.perf_counter() - t, os.times()
    return wall, (r1.children_user + r1.children_system) - (r0.children_user + r0.children_system)


def startup(spec_path: Path, repeats: int, long_steps: int) -> dict[str, Any]:
    """The issue-14 bars, side by side: each round runs every command once, in turn, so that load
    changes hit them alike; medians over the rounds, and ratios to ``python -c "import torch"``."""
    py = sys.executable
    fit = [py, "-m", "specsched.cli", "fit", str(spec_path)]
    commands = {
        "import torch": [py, "-c", "import torch"],
        "import specsched": [py, "-c", "import specsched"],
        "specsched fit --steps 10": [*fit, "--steps", "10"],
        f"specsched fit --steps {long_steps}": [*fit, "--steps", str(long_steps)],
        f"specsched fit --steps {long_steps} --sampler ddpm": [
            *fit,
            "--steps",
            str(long_steps),
            "--sampler",
            "ddpm",
        ],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    start = (system_busy_s(), time.process_time(), time.perf_counter())
    for _ in range(repeats):
        for key, cmd in commands.items():
            w, c = run_command(cmd)
            walls[key].append(w)
            cpus[key].append(c)
    others = other_load(*start)
    # the children's CPU shows up as "others" to other_load: take it out
    own_cores = sum(map(sum, cpus.values())) / max(sum(map(sum, walls.values())), 1e-9)
    base = statistics.median(walls["import torch"])
    rows = [
        {
            "command": key,
            "median_s": statistics.median(walls[key]),
            "times_s": walls[key],
            "cpu_median_s": statistics.median(cpus[key]),
            "ratio_to_torch_import": statistics.median(walls[key]) / base,
        }
        for key in commands
    ]
    bars = {
        "import specsched": 1.1,
        "specsched fit --steps 10": 1.5,
        f"specsched fit --steps {long_steps}": 3.0,
        f"specsched fit --steps {long_steps} --sampler ddpm": 3.0,
    }
    for r in rows:
        r["bar"] = bars.get(r["command"])
    return {
        "rows": rows,
        "repeats": repeats,
        "other_processes_cores": max(others - own_cores, 0.0),
        "load_average": list(os.getloadavg()),
    }


def step_counts(spec: Spectrum, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """One in-process ``fit`` (heuristics on) per step count and sampler: wall, CPU, evaluations."""
    rows = []
    for sampler in SAMPLERS:
        for n in counts:
            gc.collect()
            c, t = time.process_time(), time.perf_counter()
            res = fit(spec, n, sampler=sampler)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            rows.append(
                {
                    "sampler": sampler,
                    "steps": n,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "evaluations": res.evaluations,
                    "value": res.value,
                }
            )
            print(
                f"   {sampler:5s} N={n:4d}: {wall:8.2f} s wall, {cpu:8.2f} s CPU, "
                f"W2 {res.value:.6g}",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------------ report
def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer repeats and cases")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed calls per case (default 7, quick 3)"
    )
    ap.add_argument(
        "--json",
        default="benchmarks/results/fit_speed.json",
        metavar="PATH",
        help="where to write every number (default %(default)s)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one call of every case that misses its target (on by default in full runs)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) first (default: torch's own; fit runs its sampler on "
        "one thread either way)",
    )
    ap.add_argument(
        "--startup-repeats",
        type=int,
        default=None,
        help="rounds of the side-by-side start-up commands (default 5, quick 2; 0 skips them)",
    )
    ap.add_argument(
        "--steps-list",
        default=None,
        help="step counts for the fit-time-vs-N table (default 5,10,20,50,100,250; quick 5,10,20; "
        "'none' skips it)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    profile = args.profile or not args.quick
    t_total = time.perf_counter()

    info = machine_details()
    print(
        f"specsched fit benchmark - {info['date']} - {info['platform']}\n{info['processor']}, "
        f"cpus {info['cpu_count']} (usable {info['cpus_usable']}, torch threads "
        f"{info['torch_threads']}); torch {info['torch']}, numpy {info['numpy']}, "
        f"scipy {info['scipy']}; {STEPS} steps, linear-1000 VP; {repeats} repeats"
        + (" (QUICK: indicative only)" if args.quick else "")
    )
    start = (system_busy_s(), time.process_time(), time.perf_counter())
    time.sleep(1.0)
    info["other_processes_cores_at_start"] = other_load(*start)
    if info["other_processes_cores_at_start"] > BUSY:
        print(
            f"WARNING: other processes use {info['other_processes_cores_at_start']:.1f} cores "
            "right now; the timings will be inflated"
        )
    spectra = build_spectra(args.quick)
    lr = level_range()
    heur = {name: heuristic_schedule(name, STEPS, lr) for name in HEURISTICS}

    # ------------------------------------------------------------------ part 0: as a user runs it
    startup_res: dict[str, Any] | None = None
    n_startup = (
        args.startup_repeats if args.startup_repeats is not None else (2 if args.quick else 5)
    )
    long_steps = 20 if args.quick else 100
    if n_startup:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            spec_path = Path(tmp) / "spectrum.npz"
            spectra[0]["spec"].save(spec_path)
            print(
                f"\n0. start-up, process start to exit (median of {n_startup} rounds, commands "
                "interleaved; ratio to `python -c 'import torch'`)\n"
            )
            startup_res = startup(spec_path, n_startup, long_steps)
        print(
            table(
                ["command", "median s", "cpu s", "x torch import", "bar"],
                [
                    [
                        r["command"],
                        f"{r['median_s']:.2f}",
                        f"{r['cpu_median_s']:.2f}",
                        f"{r['ratio_to_torch_import']:.2f}",
                        "-" if r["bar"] is None else f"<= {r['bar']:g}",
                    ]
                    for r in startup_res["rows"]
                ],
            )
        )
        print(
            f"   other processes meanwhile: {startup_res['other_processes_cores']:.1f} cores "
            f"(load average {startup_res['load_average'][0]:.1f})"
        )
    if args.steps_list != "none":
        counts = (
            tuple(int(v) for v in args.steps_list.split(","))
            if args.steps_list
            else ((5, 10, 20) if args.quick else STEP_COUNTS)
        )
        print(f"\n0b. fit() time against the step count, {spectra[0]['label']}, one call each\n")
        steps_res = step_counts(spectra[0]["spec"], counts)
    else:
        steps_res = []

    # ------------------------------------------------------------------ part 1: wall time
    timing: list[dict[str, Any]] = []
    fitted: dict[tuple[str, str, str], FitResult] = {}
    print("\n1. wall time of fit() (objective w2; median of repeats, warm-up excluded)\n")
    for case in spectra:
        spec = case["spec"]
        bins = default_bins(spec.n_modes, STEPS)
        n_opt = spec.n_modes if bins is None else compress_modes(*spec.modes(), bins=bins)[0].size
        case.update(n_modes=spec.n_modes, default_bins=bins, n_modes_optimised=n_opt)
        for sampler in SAMPLERS:
            for heuristics in (True, False):
                times, cpu, others, res = time_fit(
                    spec, repeats, sampler=sampler, heuristics=heuristics
                )
                if bins is not None and not any(
                    f"on {n_opt} compressed modes" in n for n in res.notes
                ):
                    raise SystemExit(
                        f"fit no longer compresses {spec.n_modes} modes into {bins} bins "
                        f"({res.notes}), as specsched.optimize.default_bins says: the "
                        "compression figures below would not be what fit uses"
                    )
                if heuristics:
                    fitted[(case["key"], sampler, "w2")] = res
                med = statistics.median(times)
                timing.append(
                    {
                        "spectrum": case["key"],
                        "sampler": sampler,
                        "heuristics": heuristics,
                        "median_s": med,
                        "min_s": min(times),
                        "max_s": max(times),
                        "times_s": times,
                        "cpu_median_s": statistics.median(cpu),
                        "cpu_s": cpu,
                        "other_processes_cores": others,
                        "noisy": bool(max(times) > 1.5 * min(times) or others > BUSY),
                        "evaluations": res.evaluations,
                        "baselines": len(res.baselines),
                        "value": res.value,
                        "target_s": case["target_s"],
                        "met": med < case["target_s"],
                    }
                )
    rows = []
    for r in timing:
        case = next(c for c in spectra if c["key"] == r["spectrum"])
        rows.append(
            [
                case["label"],
                f"{case['n_modes']} -> {case['n_modes_optimised']}",
                r["sampler"],
                "yes" if r["heuristics"] else "no",
                f"{r['median_s']:.3f}",
                f"{r['min_s']:.3f}-{r['max_s']:.3f}" + (" *" if r["noisy"] else ""),
                f"{r['cpu_median_s']:.3f}",
                f"{r['other_processes_cores']:.2f}",
                str(r["evaluations"]),
                f"< {r['target_s']:g}",
                "met" if r["met"] else "MISSED",
            ]
        )
    print(
        table(
            [
                "spectrum",
                "modes (optimised)",
                "sampler",
                "heuristics",
                "median s",
                "range s",
                "cpu s",
                "others",
                "evals",
                "target s",
                "",
            ],
            rows,
        )
    )
    if any(r["noisy"] for r in timing):
        print(
            f"   * disturbed: other processes used more than {BUSY} cores on average ('others') "
            "or the slowest call took > 1.5x the fastest; on 2 cores this can inflate the times "
            "several-fold: rerun on an idle machine"
        )

    profiles = []
    if profile:
        for r in timing:
            if not r["met"]:
                case = next(c for c in spectra if c["key"] == r["spectrum"])
                top = profile_fit(case["spec"], sampler=r["sampler"], heuristics=r["heuristics"])
                profiles.append(
                    {k: r[k] for k in ("spectrum", "sampler", "heuristics")} | {"top": top}
                )
                print(
                    f"\n   profile of one call, {case['label']}, {r['sampler']}, "
                    f"heuristics={r['heuristics']} (specsched functions, cumulative):"
                )
                for p in top[:8]:
                    print(
                        f"     {p['cumulative_s']:7.3f} s  {p['calls']:5d} calls  {p['function']}"
                    )

    # ------------------------------------------------------------------ part 2: compression error
    print(
        f"\n2. compression error: |objective(compressed) - objective(full)| / objective(full), "
        f"bar {BAR:.0e}\n"
    )
    accuracy: list[dict[str, Any]] = []
    objectives = ("w2",) if args.quick else OBJECTIVES  # kl needs fits of its own
    heur_long = {name: heuristic_schedule(name, LONG_STEPS, lr) for name in HEURISTICS}
    for case in spectra:
        spec = case["spec"]
        S, w, m = spec.modes()
        # 10 steps with every spectrum's fits; 100 steps (256 bins) with the fits of the smallest
        # spectrum only (a 100-step fit of a 256x256x3 spectrum takes 30-50 s, its baselines on
        # the full spectrum most of it) and the heuristics of every one
        for steps, fits_too in ((STEPS, True), (LONG_STEPS, case is spectra[0])):
            bins = default_bins(spec.n_modes, steps)
            Sc, wc, mc = (S, w, m) if bins is None else compress_modes(S, w, m, bins=bins)
            for sampler in SAMPLERS:
                for objective in objectives:
                    scheds = dict(heur if steps == STEPS else heur_long)
                    if fits_too:
                        res = fitted.get((case["key"], sampler, objective))
                        if res is None or steps != STEPS:
                            res = fit(spec, steps, sampler=sampler, objective=objective)  # type: ignore[arg-type]
                        if steps == STEPS:
                            fitted[(case["key"], sampler, objective)] = res
                        scheds = {"fitted": res.schedule, **scheds}
                    for name, sched in scheds.items():
                        full = response(spec, sched, sampler=sampler).value(objective)  # type: ignore[arg-type]
                        comp = objective_on(Sc, wc, mc, sched, sampler, objective)
                        accuracy.append(
                            {
                                "spectrum": case["key"],
                                "steps": steps,
                                "bins": bins,
                                "sampler": sampler,
                                "objective": objective,
                                "schedule": name,
                                "timesteps": sched.timesteps.tolist(),
                                "full": full,
                                "compressed": comp,
                                "relative_error": rel(comp, full),
                            }
                        )
    rows = []
    for a in accuracy:
        case = next(c for c in spectra if c["key"] == a["spectrum"])
        rows.append(
            [
                case["label"],
                str(a["steps"]),
                str(a["bins"]),
                a["sampler"],
                a["objective"],
                a["schedule"],
                f"{a['full']:.6g}",
                f"{a['compressed']:.6g}",
                f"{a['relative_error']:.2e}",
            ]
        )
    print(
        table(
            [
                "spectrum",
                "steps",
                "bins",
                "sampler",
                "objective",
                "schedule",
                "full",
                "compressed",
                "rel. error",
            ],
            rows,
        )
    )
    worst = max(accuracy, key=lambda a: a["relative_error"])
    print(
        f"\n   worst relative error {worst['relative_error']:.2e} "
        f"({worst['spectrum']}, {worst['steps']} steps, {worst['sampler']}, "
        f"{worst['objective']}, {worst['schedule']}): "
        + ("below" if worst["relative_error"] < BAR else "ABOVE")
        + f" the bar {BAR:.0e}"
    )

    # ------------------------------------------------------------------ part 3: optimum with vs without compression
    print(
        "\n3. fitted optimum, photos 32x32x3: default compression vs (almost) none "
        "(exact objective of each fitted schedule)\n"
    )
    case = spectra[0]
    spec = case["spec"]
    S, w, m = spec.modes()
    variants = [("default", None)]
    if not args.quick:
        variants.append(
            ("bins=2048", 2048)
        )  # more bins than modes, yet many modes still share a cell
    variants.append((f"bins=2^{int(math.log2(LOSSLESS_BINS))}", LOSSLESS_BINS))
    optimum: list[dict[str, Any]] = []
    samplers_3 = ("ddim",) if args.quick else SAMPLERS
    objectives_3 = ("w2",) if args.quick else OBJECTIVES
    for sampler in samplers_3:
        for objective in objectives_3:
            ref = fitted[(case["key"], sampler, objective)]
            for label, compress in variants:
                if compress is None:
                    res, secs = ref, None
                else:
                    t = time.perf_counter()
                    res = fit(spec, STEPS, sampler=sampler, objective=objective, compress=compress)  # type: ignore[arg-type]
                    secs = time.perf_counter() - t
                bins = compress or case["default_bins"]
                n_opt = S.size if bins is None else compress_modes(S, w, m, bins=bins)[0].size
                optimum.append(
                    {
                        "sampler": sampler,
                        "objective": objective,
                        "compression": label,
                        "bins": bins,
                        "n_modes_optimised": n_opt,
                        "value": res.value,
                        "relative_to_default": rel(res.value, ref.value),
                        "same_timesteps_as_default": bool(
                            np.array_equal(res.schedule.timesteps, ref.schedule.timesteps)
                        ),
                        "timesteps": res.schedule.timesteps.tolist(),
                        "seconds_one_call": secs,
                    }
                )
    rows = [
        [
            o["sampler"],
            o["objective"],
            o["compression"],
            f"{o['n_modes_optimised']} / {case['n_modes']}",
            f"{o['value']:.8g}",
            f"{o['relative_to_default']:.2e}",
            "same" if o["same_timesteps_as_default"] else "differ",
            "-" if o["seconds_one_call"] is None else f"{o['seconds_one_call']:.2f}",
        ]
        for o in optimum
    ]
    print(
        table(
            [
                "sampler",
                "objective",
                "compression",
                "modes",
                "fitted value",
                "vs default",
                "timesteps",
                "s (1 call)",
            ],
            rows,
        )
    )

    # ------------------------------------------------------------------ write
    out = {
        "benchmark": "fit_speed",
        "quick": args.quick,
        "repeats": repeats,
        "steps": STEPS,
        "model": "discrete linear-1000 VP",
        "machine": info,
        "spectra": [
            {
                k: c[k]
                for k in (
                    "key",
                    "label",
                    "n_modes",
                    "default_bins",
                    "n_modes_optimised",
                    "target_s",
                    "build_s",
                )
            }
            for c in spectra
        ],
        "timing": timing,
        "profiles": profiles,
        "compression_error": {"bar": BAR, "worst": worst["relative_error"], "rows": accuracy},
        "optimum_32": optimum,
        "startup": startup_res,
        "step_counts": steps_res,
        "total_s": time.perf_counter() - t_total,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {path} (total {out['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
