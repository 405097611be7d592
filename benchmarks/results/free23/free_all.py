# ruff: noqa
# Session script of the twenty-third session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""Offline: the default fit (start pinned at the top on a calibration) against the same fit with a
free first level, on every deterministic cell of the six models (benchmark calibrations, kind auto)."""

import sys, json, time

sys.path.insert(0, "benchmarks")
import real_denoisers as rd
from specsched import fit

out = {}
dens = sys.argv[1:] or ["gmm", "unet", "mnist", "rgb16", "sv16", "cc16"]
path = f"benchmarks/results/free23/free_all_{'_'.join(dens)}.json"
for den in dens:
    cfg = {**rd.PRESETS["full"], "kind": "auto", "fid": False}
    setup = rd.SETUPS[den](cfg)
    t0 = time.time()
    cal = rd.calibrate_setup(setup)
    print(den, "calibrated", f"{time.time() - t0:.0f}s", flush=True)
    for s in ["ddim", "dpmpp_2m", "heun", "unipc"]:
        for n in (5, 10, 20):
            row = {}
            for start in [None, "free"]:
                t = time.time()
                r = fit(cal, n, sampler=s, train_schedule=setup.train, start_at=start)
                row[str(start)] = dict(
                    timesteps=[int(x) for x in r.schedule.timesteps],
                    value=r.value,
                    unc=r.uncertainty,
                    fallback=r.fallback,
                    notes=r.notes,
                    seconds=time.time() - t,
                )
            out[f"{den}/{s}{n}"] = row
            d, f = row["None"], row["free"]
            same = d["timesteps"] == f["timesteps"]
            print(
                f"{den:6s} {s:9s} {n:2d} default {d['fallback'] or 'fit':14s} {d['value']:.4g}±{d['unc']:.2g} t0={d['timesteps'][0]} | "
                f"free {f['fallback'] or 'fit':14s} {f['value']:.4g}±{f['unc']:.2g} t0={f['timesteps'][0]} {'SAME' if same else 'DIFF'} ({f['seconds']:.0f}s)",
                flush=True,
            )
            json.dump(out, open(path, "w"), indent=1)
