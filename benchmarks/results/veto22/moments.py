# ruff: noqa
# Session script of the twenty-second session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""Generated samples' DC mean/var and non-DC power vs reference, for a few schedules of one cell."""

import sys, json

sys.path.insert(0, "/work/main/benchmarks")
import numpy as np, torch

torch.set_num_threads(1)
import real_denoisers as rd
from specsched import Schedule
from specsched.generation import generate

den, sampler = sys.argv[1], sys.argv[2]
n = 512
setup = rd.SETUPS[den](dict(rd.PRESETS["full"]))
ref = np.asarray(setup.floor)


def stats(x):
    x = x.reshape(len(x), -1)
    dc = x.mean(1)
    f = np.fft.fft2(x.reshape(len(x), *setup.shape), norm="ortho")
    p = (np.abs(f - f.mean(0)) ** 2).mean(0)
    return dc.mean(), dc.var(), p.reshape(-1)


rdc, rvar, rp = stats(ref)
print(f"ref: DC mean {rdc:.4f} var {rvar:.4f}")
for spec in sys.argv[3:]:
    name, ts = spec.split("=")
    sch = Schedule.from_timesteps([int(t) for t in ts.split(",")], train_schedule=setup.train)
    x = generate(setup.denoise, sch, sampler, num_samples=n, shape=setup.shape, seed=11)
    dc, var, p = stats(x)
    ratio = p / rp
    print(
        f"{name}: DC mean {dc:.4f} var {var:.4f}; power ratio median {np.median(ratio):.3f} max {ratio.max():.2f} at mode {ratio.argmax()} (excluding DC: max {np.sort(ratio)[-2]:.2f})",
        flush=True,
    )
