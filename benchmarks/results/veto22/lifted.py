# ruff: noqa
# Session script of the twenty-second session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""Refit cells with the Gaussian veto lifted; print default and lifted timesteps + notes."""

import json, sys, time

sys.path.insert(0, "/work/main/benchmarks")
import numpy as np
import real_denoisers as rd
import specsched.optimize as opt
from specsched import fit

den = sys.argv[1]
cells = [(s, int(n)) for s, n in (c.split(":") for c in sys.argv[2:])]
setup = rd.SETUPS[den](dict(rd.PRESETS["full"]))
t = time.time()
spec = rd.calibrate_setup(setup)
print("calibrated", time.time() - t, flush=True)
out = {}
orig = opt._gaussian_veto
for s, n in cells:
    opt._gaussian_veto = orig
    d = fit(spec, n, sampler=s)
    opt._gaussian_veto = lambda *a, **k: None
    l = fit(spec, n, sampler=s)
    opt._gaussian_veto = orig
    out[f"{s}{n}"] = dict(
        default=[int(x) for x in d.schedule.timesteps],
        lifted=[int(x) for x in l.schedule.timesteps],
        notes_lifted=l.notes,
        notes_default=d.notes,
    )
    print(
        s,
        n,
        "default",
        out[f"{s}{n}"]["default"],
        "\n   lifted",
        out[f"{s}{n}"]["lifted"],
        flush=True,
    )
    for x in l.notes:
        print("     ", x[:300])
json.dump(out, open(f"/work/scratch/s22/lifted_{den}.json", "w"), indent=1)
