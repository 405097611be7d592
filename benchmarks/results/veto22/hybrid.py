# ruff: noqa
# Session script of the twenty-second session (run from the repository root), kept as the record of benchmarks/RESULTS.md's numbers.
"""Refit cells with a hybrid Gaussian veto: the Gaussian model judges the variance part of the
objective; the mean part comes from the calibrated model (the network's measured bias)."""

import json, sys, time, dataclasses

sys.path.insert(0, "/work/main/benchmarks")
import numpy as np, torch
import real_denoisers as rd
import specsched.optimize as opt
from specsched import fit, response, divergence


def mean_part(r, objective):
    S, w, m = (torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in r.spectrum.modes())
    P = torch.from_numpy(r.output_var.ravel())
    mu = torch.from_numpy(r.output_mean.ravel())
    full = divergence.per_mode(objective, S, m, P, mu)
    nomean = divergence.per_mode(objective, S, m, P, m)
    return float((w * (full - nomean)).sum())


def hybrid_veto(spec, fitted, heuristics, objective, sampler, sampler_options):
    plain = dataclasses.replace(spec, calibration=None)
    scheds = [fitted, *heuristics]
    vals = opt.objective_draws(
        plain, scheds, sampler=sampler, objective=objective, **sampler_options
    )

    def hv(s):
        g = response(plain, s, sampler=sampler, **sampler_options)
        c = response(spec, s, sampler=sampler, **sampler_options)
        return g.value(objective) - mean_part(g, objective) + mean_part(c, objective)

    v_fit = hv(fitted)
    flagged = []
    for k, h in enumerate(heuristics, start=1):
        v_h = hv(h)
        tol = opt._two_sd(vals[:, 0] - vals[:, k])
        if v_fit - v_h > tol:
            flagged.append((v_h, h.name, tol))
    if not flagged:
        return None
    v_h, name, tol = min(flagged)
    return v_fit, name, v_h, tol


if __name__ == "__main__":
    den = sys.argv[1]
    cells = [(s, int(n)) for s, n in (c.split(":") for c in sys.argv[2:])]
    cfg = dict(rd.PRESETS["full"])
    if den == "mnist":
        cfg["kind"] = "auto"
        cfg["fid"] = False
    setup = rd.SETUPS[den](cfg)
    spec = rd.calibrate_setup(setup)
    orig = opt._gaussian_veto
    out = {}
    for s, n in cells:
        opt._gaussian_veto = orig
        d = fit(spec, n, sampler=s)
        opt._gaussian_veto = hybrid_veto
        h = fit(spec, n, sampler=s)
        opt._gaussian_veto = orig
        out[f"{s}{n}"] = dict(
            default=[int(x) for x in d.schedule.timesteps],
            hybrid=[int(x) for x in h.schedule.timesteps],
            notes_hybrid=h.notes,
            notes_default=d.notes,
        )
        same = "same" if out[f"{s}{n}"]["default"] == out[f"{s}{n}"]["hybrid"] else "CHANGED"
        print(
            s,
            n,
            same,
            "default",
            out[f"{s}{n}"]["default"],
            "\n   hybrid",
            out[f"{s}{n}"]["hybrid"],
            flush=True,
        )
        for x in h.notes:
            if "Gaussian" in x:
                print("     ", x[:400])
        json.dump(out, open(f"/work/scratch/s22/hybrid_{den}.json", "w"), indent=1)
