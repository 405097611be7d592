"""When should a calibrated fit return the Gaussian model's design? The rule, offline, on stored cells.

Since the twenty-sixth session ``specsched fit`` on a calibration file also fits the Gaussian
model of the same spectrum (the plain fit: first level free, no step cap) and returns that
design where both the calibrated model and the Gaussian model rate it better (lower W2) than the
guarded calibrated fit, and the two improvements together exceed the uncertainty of the
difference (``specsched.optimize._gaussian_design``). This script shows, for every deterministic cell of a
model's stored ``default_vs_heuristics.py`` run (``results/<model>/paired_check_*.json``, where
both the default of the time and the plain fit were sampled), the two schedules' values under
both models, the rule's choice (``fit`` itself, with and without ``gaussian_design``), and what
sampling measured: the FD of each and the paired verdict of the plain fit against the default.
No sampling; the calibration is recomputed, deterministically, as in the stored runs (about
half a minute per model, then a few seconds to two minutes per cell).

Usage::

    python benchmarks/design_choice.py --denoiser lv16 vc16 sv16 sd16 rgb16 cc16

Writes ``results/design_choice_<denoiser>.json`` per model and prints a table. A cell whose
recomputed calibrated fit is not the stored default (the rules moved since it was sampled) is
flagged ``stored default differs``: its FD is not the current default's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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
from specsched.optimize import _two_sd, objective_draws  # noqa: E402
from specsched.response import response  # noqa: E402


def cell(cal, setup, sampler: str, steps: int, stored: dict) -> dict:
    """The rule's inputs and choice in one cell, with the stored measurements."""
    plain_spec = dataclasses.replace(cal, calibration=None)
    alone = fit(cal, steps, sampler=sampler, train_schedule=setup.train, gaussian_design=False)
    default = fit(cal, steps, sampler=sampler, train_schedule=setup.train)
    design = fit(plain_spec, steps, sampler=sampler, train_schedule=setup.train).schedule
    pair = [alone.schedule, design]
    vc = [response(cal, s, sampler=sampler).w2 for s in pair]
    vg = [response(plain_spec, s, sampler=sampler).w2 for s in pair]
    dc = objective_draws(cal, pair, sampler=sampler, objective="w2")
    dg = objective_draws(plain_spec, pair, sampler=sampler, objective="w2")
    rows = {r["schedule"]: r for r in stored["rows"]}
    ts = [[int(t) for t in s.timesteps] for s in pair]
    return {
        "sampler": sampler,
        "steps": steps,
        "calibrated": ts[0],
        "calibrated_fallback": alone.fallback,
        "gaussian": ts[1],
        "calibrated_w2": vc,
        "gaussian_w2": vg,
        "uncertainty": math.hypot(_two_sd(dc[:, 1] - dc[:, 0]), _two_sd(dg[:, 1] - dg[:, 0])),
        "chosen": "gaussian" if default.gaussian_design else "calibrated",
        "stored_default_differs": ts[0] != rows["default"]["timesteps"],
        "stored_plain_differs": ts[1] != rows["plain"]["timesteps"],
        "fd_calibrated": rows["default"]["fd"],
        "fd_gaussian": rows["plain"]["fd"],
        "gaussian_against_calibrated": rows["plain"]["against_first"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", nargs="+", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = {**rd.PRESETS["full"], "kind": "auto", "fid": False}
    for name in args.denoiser:
        t0 = time.perf_counter()
        setup = rd.SETUPS[name](cfg)
        cal = rd.calibrate_setup(setup)
        out = []
        print(f"\n{setup.title}")
        print(
            f"{'cell':13s} {'calibrated W2 (cal.+Gauss.)':>29s} {'design W2':>20s} "
            f"{'unc.':>6s}  {'chosen':10s} {'FD cal.':>8s} {'FD design':>9s}  design vs cal."
        )
        for path in sorted((HERE / "results" / name).glob(f"paired_check_{name}_*.json")):
            stored = json.loads(path.read_text())
            sampler = stored["sampler"]
            names = [r["schedule"] for r in stored["rows"]]
            if (
                sampler == "ddpm" or "plain" not in names
            ):  # stochastic: fitted on the Gaussian model
                continue
            steps = len(stored["rows"][0]["timesteps"])
            r = cell(cal, setup, sampler, steps, stored)
            out.append(r)
            flag = " (stored default differs)" if r["stored_default_differs"] else ""
            flag += " (stored plain differs)" if r["stored_plain_differs"] else ""
            vc, vg = r["calibrated_w2"], r["gaussian_w2"]
            print(
                f"{sampler + '-' + str(steps):13s} {vc[0]:9.4g} + {vg[0]:9.4g} = {vc[0] + vg[0]:7.4g} "
                f"{vc[1]:9.4g} + {vg[1]:9.4g} {r['uncertainty']:6.2g}  {r['chosen']:10s} "
                f"{r['fd_calibrated']:8.3f} {r['fd_gaussian']:9.3f}  "
                f"{r['gaussian_against_calibrated']}{flag}",
                flush=True,
            )
        chosen = [r for r in out if r["chosen"] == "gaussian"]
        counts = {
            k: sum(r["gaussian_against_calibrated"] == k for r in chosen)
            for k in ("win", "tie", "loss")
        }
        print(
            f"design chosen in {len(chosen)} of {len(out)} cells; against the calibrated fit: {counts}"
        )
        write_json(
            args.out / f"design_choice_{name}.json",
            {
                "command": "python benchmarks/design_choice.py "
                + " ".join(argv if argv is not None else sys.argv[1:]),
                **stamp(),
                "denoiser": name,
                "title": setup.title,
                "chosen_counts": counts,
                "wall_seconds": time.perf_counter() - t0,
                "rows": out,
            },
        )
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
