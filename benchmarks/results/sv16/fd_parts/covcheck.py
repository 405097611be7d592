# ruff: noqa
# Session script of the twenty-second session, kept as the record of benchmarks/RESULTS.md's numbers.
"""Re-sample each sv16 cell's default and its three best heuristics (by stored FD) with paired_check,
which now also reports FD's mean term and the covariance part with its own paired verdict."""

import json, subprocess, sys, glob

den, out = sys.argv[1], sys.argv[2]
for f in sorted(glob.glob(f"/work/main/benchmarks/results/{den}/paired_check_{den}_*.json")):
    d = json.load(open(f))
    rows = d["rows"]
    default = next(r for r in rows if r["schedule"] == "default")
    heur = sorted(
        (r for r in rows if r["schedule"] not in ("default", "plain")), key=lambda r: r["fd"]
    )
    scheds = [("default", default["timesteps"])]
    for r in heur:
        if len(scheds) == 4:
            break
        if r["timesteps"] != default["timesteps"]:
            scheds.append((r["schedule"], r["timesteps"]))
    cmd = [
        "python",
        "/work/main/benchmarks/paired_check.py",
        "--denoiser",
        den,
        "--sampler",
        d["sampler"],
        "--num-samples",
        str(d["num_samples"]),
        "--seed",
        str(d["seed"]),
        "--threads",
        "1",
        "--out",
        out,
    ]
    for n, ts in scheds:
        cmd += ["--schedule", f"{n}=" + ",".join(map(str, ts))]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
