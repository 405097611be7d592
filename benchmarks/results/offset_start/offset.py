# ruff: noqa
# Session script of the twenty-third session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""One model (argv 1), one sampler (argv 2): the same schedules started from N(0, I) ("noise"),
from N(sqrt(abar_T) * mean image, I) ("offset"; the mean image of the calibration data, training
patches, not the FD reference) and from calibration samples noised to the first level
("marginal", sqrt(abar_T) x + sqrt(1 - abar_T) z). Paired: one z."""

import sys, json, time

sys.path.insert(0, "benchmarks")
import numpy as np, torch

torch.set_num_threads(1)
import real_denoisers as rd
from specsched import Schedule
from specsched.generation import generate, start_noise

den, sampler, n = sys.argv[1], sys.argv[2], 1024
setup = rd.SETUPS[den]({**rd.PRESETS["full"], "num_samples": n, "kind": "fourier", "fid": False})
data = torch.from_numpy(np.asarray(setup.calibration_data, dtype=np.float64))
mean_img = data.mean(0)
pick = torch.from_numpy(np.random.default_rng(11).integers(0, len(data), n))
out = {"denoiser": den, "sampler": sampler, "num_samples": n, "seed": 11, "rows": []}
for spec in sys.argv[3:]:
    name, ts = spec.split("=")
    sched = Schedule.from_timesteps([int(t) for t in ts.split(",")], train_schedule=setup.train)
    x0 = start_noise(sched, n, setup.shape, seed=11)
    a0, s0 = float(sched.alpha[0]), float(sched.s[0])
    for start, xs in [
        ("noise", x0),
        ("offset", x0 + a0 * mean_img),
        ("marginal", a0 * data[pick] + s0 * x0),
    ]:
        t = time.time()
        x = generate(
            setup.denoise, sched, sampler, num_samples=n, shape=setup.shape, seed=11, x_start=xs
        )
        fd = rd.score(
            x, setup.reference, ["fd"], n_boot=rd.PRESETS["full"]["n_boot"], seed=rd.SEED
        )["fd"]
        flat = x.reshape(len(x), -1)
        mterm = float(np.sum((setup.reference.mean - flat.mean(0)) ** 2))
        row = dict(
            schedule=name,
            start=start,
            timesteps=ts,
            fd=fd[0],
            fd_sd=float(np.std(fd[1], ddof=1)),
            fd_mean_term=mterm,
        )
        out["rows"].append(row)
        print(
            f"{name:>10} {start:6s}: FD {fd[0]:.3f} ± {row['fd_sd']:.3f}  mean term {mterm:.3f}  ({time.time() - t:.0f} s)",
            flush=True,
        )
json.dump(
    out,
    open(f"benchmarks/results/offset_start/offset_{den}_{sampler}{len(ts.split(','))}.json", "w"),
    indent=1,
)
