# ruff: noqa
# Session script of the twenty-second session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""Decompose W2 into mean and variance parts, calibrated and Gaussian, for the rows of paired_check files."""

import sys, json, dataclasses

sys.path.insert(0, "/work/main/benchmarks")
import numpy as np, torch
import real_denoisers as rd
from specsched import response, Schedule

den = sys.argv[1]
files = sys.argv[2:]
cfg = dict(rd.PRESETS["full"])
if den == "mnist":
    cfg["kind"] = "auto"
    cfg["fid"] = False
setup = rd.SETUPS[den](cfg)
spec = rd.calibrate_setup(setup)
plain = dataclasses.replace(spec, calibration=None)
S, w, m = (a for a in spec.modes())


def parts(sp, ts, sampler):
    r = response(sp, Schedule.from_timesteps(ts, train_schedule=setup.train), sampler=sampler)
    mu = r.output_mean.ravel()
    mean = float(np.sum(w * (mu - m) ** 2))
    return r.w2 - mean, mean


for f in files:
    d = json.load(open(f))
    sampler = d["sampler"]
    rows = d["rows"]
    first = rows[0]
    cv, cm = parts(spec, first["timesteps"], sampler)
    gv, gm = parts(plain, first["timesteps"], sampler)
    print(
        f"{den} {sampler}-{len(first['timesteps'])} {first['schedule']}: FD {first['fd']:.3f}  cal var {cv:.4f} mean {cm:.4f} | gauss var {gv:.4f} mean {gm:.4f}"
    )
    for r in rows[1:]:
        hv, hm = parts(spec, r["timesteps"], sampler)
        Gv, Gm = parts(plain, r["timesteps"], sampler)
        print(
            f"    vs {r['schedule']:10s} FD {r['fd']:.3f} ({r['against_first']:4s}) cal adv: var {hv - cv:+.4f} mean {hm - cm:+.4f} | gauss adv: var {Gv - gv:+.4f} mean {Gm - gm:+.4f}"
        )
