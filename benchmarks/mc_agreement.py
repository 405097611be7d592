"""Monte-Carlo agreement of the closed-form response with diffusers' own schedulers.

Runs diffusers' DDIMScheduler (eta 0, 0.5, 1) and DDPMScheduler on 20,000 samples of 8x8 Gaussian
power-law fields (1 and 3 channels, channel means 0.3, -0.2, 0.1) with the exact Gaussian denoiser
as the model, and compares per-mode variances and means with specsched's closed form, in units of
the standard error of each estimate (relative SE 1/sqrt(n) for complex modes, sqrt(2/n) for real
ones; SE sqrt(P/n) for means). Deterministic DDIM is compared sample by sample.

    python benchmarks/mc_agreement.py            # prints a table, writes benchmarks/results/mc_agreement.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import specsched as ss
from specsched.testing import (
    MEANS3,
    diffusers_scheduler,
    mode_tolerance,
    run_diffusers,
    to_modes,
    true_spectrum,
)

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/mc_agreement.json")
    args = ap.parse_args()
    n, rows = args.samples, []
    cases = [
        ("ddim", 1.0, "leading", 5),
        ("ddim", 1.0, "trailing", 10),
        ("ddim", 0.5, "trailing", 5),
        ("ddpm", None, "leading", 10),
        ("ddpm", None, "trailing", 5),
    ]
    print(
        f"{'C':>2} {'sampler':<10} {'spacing':<9} {'N':>3} {'max var err':>11} {'max/SE':>7} {'rms/SE':>7} {'mean max/SE':>12} {'per-sample diff (eta 0)':>24}"
    )
    for channels in (1, 3):
        spec = true_spectrum(8, channels, MEANS3[:channels])
        se = mode_tolerance(spec, n, z=1.0)
        for kind, eta, spacing, steps in cases:
            sch = diffusers_scheduler(kind, steps, spacing)
            sched = ss.Schedule.from_timesteps(sch.timesteps.numpy())
            r = ss.response(
                spec,
                sched,
                **({"sampler": "ddim", "eta": eta} if kind == "ddim" else {"sampler": "ddpm"}),
            )
            g = torch.Generator().manual_seed(7)
            x_T = torch.randn(n, channels, 8, 8, dtype=torch.float64, generator=g)
            y = to_modes(
                run_diffusers(sch, ss.GaussianDenoiser(spec), x_T, eta=eta, generator=g).numpy(),
                spec,
            )
            rel = np.mean(np.abs(y - r.output_mean) ** 2, 0) / r.output_var - 1
            zm = np.abs(y.mean(0) - r.output_mean) / np.sqrt(r.output_var / n)
            det = diffusers_scheduler("ddim", steps, spacing)
            rd = ss.response(spec, sched, sampler="ddim")
            x0 = torch.randn(
                64, channels, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
            )
            got = to_modes(run_diffusers(det, ss.GaussianDenoiser(spec), x0, eta=0.0).numpy(), spec)
            diff = float(
                np.abs(got - (rd.transfer * to_modes(x0.numpy(), spec) + rd.output_mean)).max()
            )
            row = {
                "channels": channels, "sampler": kind, "eta": eta, "spacing": spacing, "steps": steps,
                "max_var_rel_err": float(np.abs(rel).max()), "max_var_err_se": float(np.max(np.abs(rel) / se)),
                "rms_var_err_se": float(np.sqrt(np.mean((rel / se) ** 2))), "max_mean_err_se": float(zm.max()),
                "deterministic_max_abs_diff": diff,
            }  # fmt: skip
            rows.append(row)
            name = f"{kind}({eta})" if eta is not None else kind
            print(
                f"{channels:>2} {name:<10} {spacing:<9} {steps:>3} {row['max_var_rel_err']:>11.4f} {row['max_var_err_se']:>7.2f} {row['rms_var_err_se']:>7.2f} {row['max_mean_err_se']:>12.2f} {diff:>24.1e}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"samples": n, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
