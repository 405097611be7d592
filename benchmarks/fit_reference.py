"""The fitted results of a fixed reference set, to check that a speed change keeps them.

Run from the repository root::

    python benchmarks/fit_reference.py --json before.json            # record
    python benchmarks/fit_reference.py --json after.json --against before.json

The reference set: the photos 32x32x3 spectrum of ``benchmarks/fit_speed.py`` (N = 5, 10, 20)
and the three spectra of ``tests/test_optimize.py`` (N = 5, 10), samplers ddim and ddpm,
objectives W2 and KL, ``fit``'s defaults otherwise: 36 fits. Each fit's value, timesteps and CPU
seconds (``time.process_time``, less sensitive to load than wall time) are written to ``--json``.
With ``--against``, every fit is compared with the recorded one: a value worse by more than
``--tol`` (relative, default 1e-9) is reported as a loss and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import specsched as ss
from specsched.data.builtin import digits, photos, powerlaw_spectrum


def spectra(only: str | None = None) -> dict[str, tuple[ss.Spectrum, tuple[int, ...]]]:
    """The reference spectra, each with its step counts."""
    S, M = powerlaw_spectrum(size=8, channels=3)
    sigma = S[..., None, None] * (M @ M.T)
    build = {
        "photos32": lambda: (
            ss.Spectrum.from_source("builtin:photos", size=32, channels=3, n=10_000),
            (5, 10, 20),
        ),
        "photos16": lambda: (
            ss.Spectrum.from_array(photos(size=16, channels=1, n=4000)),
            (5, 10),
        ),
        "powerlaw8x3": lambda: (
            ss.Spectrum.from_cross_spectrum(sigma, np.array([0.3, -0.2, 0.1]), (8, 8)),
            (5, 10),
        ),
        "digits": lambda: (ss.Spectrum.from_array(digits()), (5, 10)),
    }
    return {k: f() for k, f in build.items() if only is None or k == only}


def run(only: str | None = None) -> list[dict[str, Any]]:
    """Every fit of the reference set: key, value, timesteps, CPU seconds."""
    rows = []
    for name, (spec, counts) in spectra(only).items():
        for n in counts:
            for sampler in ("ddim", "ddpm"):
                for objective in ("w2", "kl"):
                    c = time.process_time()
                    res = ss.fit(spec, n, sampler=sampler, objective=objective)
                    cpu = time.process_time() - c
                    key = f"{name}/{sampler}/{objective}/{n}"
                    rows.append(
                        {
                            "key": key,
                            "value": res.value,
                            "timesteps": res.schedule.timesteps.tolist(),
                            "cpu_s": cpu,
                        }
                    )
                    print(f"{key:28s} {res.value:.12g}  {cpu:7.2f} s CPU", flush=True)
    return rows


def compare(rows: list[dict[str, Any]], before: list[dict[str, Any]], tol: float) -> int:
    """Print the comparison with a recorded run; the number of fits worse by more than ``tol``."""
    old = {r["key"]: r for r in before}
    losses, cpu_old, cpu_new = 0, 0.0, 0.0
    print(f"\n{'fit':28s} {'before':>14s} {'after':>14s} {'rel. change':>12s}  CPU s before/after")
    for r in rows:
        o = old.get(r["key"])
        if o is None:
            continue
        change = (r["value"] - o["value"]) / max(abs(o["value"]), 1e-300)
        same = r["timesteps"] == o["timesteps"]
        verdict = "worse" if change > tol else ("better" if change < -tol else "")
        losses += verdict == "worse"
        cpu_old, cpu_new = cpu_old + o["cpu_s"], cpu_new + r["cpu_s"]
        print(
            f"{r['key']:28s} {o['value']:14.8g} {r['value']:14.8g} {change:12.2e}  "
            f"{o['cpu_s']:6.2f} / {r['cpu_s']:6.2f} {'' if same else 'timesteps differ'} {verdict}"
        )
    print(f"total CPU s: before {cpu_old:.2f}, after {cpu_new:.2f}; worse: {losses}")
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/fit_reference.json"))
    ap.add_argument("--against", type=Path, help="a recorded run to compare with")
    ap.add_argument("--tol", type=float, default=1e-9, help="relative loss counted as worse")
    ap.add_argument("--only", help="one spectrum of the set (photos32, photos16, ...)")
    args = ap.parse_args()
    # read first: --json may name the same file
    before = None if args.against is None else json.loads(args.against.read_text())
    rows = run(args.only)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))
    if before is not None:
        sys.exit(1 if compare(rows, before, args.tol) else 0)


if __name__ == "__main__":
    main()
