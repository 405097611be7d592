"""Where a calibrated network fails at its noisiest levels, where should a fit start? Offline.

On a calibration file ``specsched fit`` pins the first level at the top of the model's range
(``start_at="max"``, issue 12), even where the calibration says the network fails there
(:meth:`specsched.calibrate.Calibration.failing_levels`: its output has more power than the
data's); since the thirtieth session it also tries a start where the network stops failing.
This script fits, for every deterministic cell (DDIM, DPM-Solver++(2M), Heun, UniPC at the
given steps) of each model whose network fails at the top, the fit from the top and the
``--variants``:

- ``default``: ``fit(cal, N, sampler=S)`` with ``specsched.optimize.START_BELOW_FAILURE``
  off: the fit from the top of the range, the default until the thirtieth session;
- ``rule``: the same with ``START_BELOW_FAILURE`` on, the default since the thirtieth session
  (also fit from where the calibration measures the network stop failing,
  :meth:`~specsched.calibrate.Calibration.passing_edge`, and return that where both models
  rate it better and the calibrated one by itself beyond its uncertainty; in the twenty-ninth
  session's ``*_rule.json`` files it started at the last level measured to fail, the ``below``
  start, under the both-models test alone);
- ``proof``: the thirty-first session's candidate, tried and not adopted, read off ``default``,
  ``rule`` and ``edge``: where the calibrated fit itself (not a heuristic the guard kept, not
  the Gaussian design) starts above where the network stops failing, the ``edge`` fit
  replaces it unless ``top_rated_better_alone`` (the start-below test with the roles of the
  two starts swapped); elsewhere ``rule``;
- ``edge_design``: the Gaussian model's design (the fit with the calibration dropped) pinned
  where the network stops failing, the thirty-first session's probe of designs that start
  where the network fails;
- ``max``: ``start_at="max"`` (the Gaussian design pinned at the top too);
- ``free``: ``start_at="free"`` (every level free within the range);
- ``below``: the first level pinned at the noisiest timestep where the calibration last
  measured a failure (``start_at=t_fail``), the start the failure note names;
- ``edge``: the first level pinned where the network stops failing (``start_at=t_pass``, the
  rule's candidate, whether or not the rule returns it), with ``top_rated_better``: whether
  both models rate the fit from the top better than it by the Gaussian design's test, and
  ``top_rated_better_alone``: the same and the calibrated model by itself beyond its
  uncertainty (the rule's test with the two starts' roles swapped).

It prints each one's timesteps, its calibrated and Gaussian W2, what the fit returned (fit,
fallback, design) and the paired uncertainty of the calibrated difference to the default, and
writes ``results/free_start_<denoisers>[_<variants>].json``. No sampling: the cells that change
are then sampled with ``paired_check.py``. The calibration is recomputed, deterministically, as
in the stored runs (about half a minute per model, then 10-60 s per fit).

Usage::

    python benchmarks/free_start.py --denoiser unet rgb16 cc16 sd16 gs16 mn16 --steps 5 10
    python benchmarks/free_start.py --denoiser mn16 cc16 unet --steps 5 10 --variants rule
    python benchmarks/free_start.py --denoiser mn16 unet --steps 5 10 --variants rule edge proof
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402

from specsched import fit, optimize  # noqa: E402
from specsched.optimize import _both_rate_better, _two_sd, objective_draws  # noqa: E402
from specsched.response import response  # noqa: E402

SAMPLERS = ("ddim", "dpmpp_2m", "heun", "unipc")


def failing_timestep(cal, setup) -> int | None:
    """The noisiest integer timestep at or below the lowest level where the network was measured
    to fail, or None where it does not fail at the top."""
    return _timestep(setup, cal.calibration.failure_edge(cal.variances, cal.weights))


def _timestep(setup, lam: float | None) -> int | None:
    """The noisiest integer timestep at or below log-SNR ``lam`` (as ``fit`` pins a start)."""
    if lam is None:
        return None
    return int(np.floor(setup.train.timestep_of_log_snr(np.array([lam]))[0]))


def cell(
    cal, setup, sampler: str, steps: int, t_fail: int, t_pass: int | None, variants: list[str]
) -> dict:
    """The fits of one cell (``default`` first, then ``variants``), rated by both models."""
    plain = dataclasses.replace(cal, calibration=None)
    starts = {
        "default": None, "rule": None, "max": "max", "free": "free", "below": t_fail,
        "edge": t_pass, "proof": None, "edge_design": t_pass,
    }  # fmt: skip
    fits, shipped = {}, optimize.START_BELOW_FAILURE
    fitted = [v for v in variants if v != "proof"]
    if "proof" in variants:  # read off the fit from the top, the rule's and the edge's
        fitted += [v for v in ("rule", "edge") if v not in fitted]
    for name in ["default", *fitted]:
        optimize.START_BELOW_FAILURE = name == "rule"
        try:
            # edge_design: the Gaussian model's design (the plain fit) pinned at the edge
            spec = plain if name == "edge_design" else cal
            fits[name] = fit(
                spec, steps, sampler=sampler, train_schedule=setup.train, start_at=starts[name]
            )
        finally:
            optimize.START_BELOW_FAILURE = shipped
    top, edge = fits["default"], fits.get("edge")
    top_better = top_proven = None
    if edge is not None:
        # both models rate the fit from the top better than the edge's; then (a stricter test,
        # so only where the first holds) the calibrated one by itself too
        args = (cal, edge.schedule, edge.response, top.schedule, top.response, "w2", sampler, {})
        top_better = _both_rate_better(*args)
        if top_better is not None:
            top_proven = _both_rate_better(*args, calibrated_alone=True)
    if "proof" in variants:
        # the calibrated fit itself from a failing level, an edge fit to replace it, and no proof
        swap = (
            t_pass is not None
            and top.fallback is None
            and not top.gaussian_design
            and int(top.schedule.timesteps[0]) > t_pass
            and edge.fallback is None
            and not np.array_equal(edge.schedule.log_snr, top.schedule.log_snr)
            and top_proven is None
        )
        fits["proof"] = edge if swap else fits["rule"]
    scheds = [r.schedule for r in fits.values()]
    draws = objective_draws(cal, scheds, sampler=sampler, objective="w2")
    out = {"sampler": sampler, "steps": steps, "t_fail": t_fail}
    for j, (name, r) in enumerate(fits.items()):
        out[name] = {
            "timesteps": [int(t) for t in r.schedule.timesteps],
            "returned": "design"
            if r.gaussian_design
            else (f"fallback {r.fallback}" if r.fallback else "fit"),
            "calibrated_w2": response(cal, r.schedule, sampler=sampler).w2,
            "gaussian_w2": response(plain, r.schedule, sampler=sampler).w2,
            "uncertainty_vs_default": _two_sd(draws[:, j] - draws[:, 0]) if j else 0.0,
        }
    if edge is not None:
        out["edge"]["top_rated_better"] = top_better is not None
        out["edge"]["top_rated_better_alone"] = top_proven is not None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", nargs="+", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    ap.add_argument("--steps", nargs="+", type=int, default=[5, 10])
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=("rule", "proof", "max", "free", "below", "edge", "edge_design"),
        default=["free", "below"],
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = {**rd.PRESETS["full"], "kind": "auto", "fid": False}
    t0 = time.perf_counter()
    rows = []
    for name in args.denoiser:
        setup = rd.SETUPS[name](cfg)
        cal = rd.calibrate_setup(setup)
        t_fail = failing_timestep(cal, setup)
        print(f"\n{setup.title}: " + (f"fails down to t = {t_fail}" if t_fail else "no failure"))
        if t_fail is None:
            continue
        t_pass = _timestep(setup, cal.calibration.passing_edge(cal.variances, cal.weights))
        print(f"stops failing at t = {t_pass}")
        for sampler in args.samplers:
            for steps in args.steps:
                r = {
                    "denoiser": name,
                    "t_pass": t_pass,
                    **cell(cal, setup, sampler, steps, t_fail, t_pass, args.variants),
                }
                rows.append(r)
                d = r["default"]
                line = f"{sampler + '-' + str(steps):13s} default {d['returned']:22s} "
                line += (
                    f"W2 {d['calibrated_w2']:.4g} / {d['gaussian_w2']:.4g} t0={d['timesteps'][0]}"
                )
                print(line)
                for v in args.variants:
                    x = r[v]
                    same = " (= default)" if x["timesteps"] == d["timesteps"] else ""
                    print(
                        f"{'':13s} {v:7s} {x['returned']:22s} W2 {x['calibrated_w2']:.4g} / "
                        f"{x['gaussian_w2']:.4g} t0={x['timesteps'][0]} "
                        f"(+- {x['uncertainty_vs_default']:.2g}){same}"
                        + (" top rated better" if x.get("top_rated_better") else "")
                        + (", by the calibrated alone" if x.get("top_rated_better_alone") else "")
                    )
                print(f"{'':13s} {','.join(map(str, d['timesteps']))}", flush=True)
    tag = "_".join(args.denoiser) + (
        "" if args.variants == ["free", "below"] else "_" + "_".join(args.variants)
    )
    payload = {"steps": args.steps, "samplers": args.samplers, "variants": args.variants}
    payload["rows"] = rows
    payload["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return save_result(args.out / f"free_start_{tag}.json", "free_start.py", argv, payload)


if __name__ == "__main__":
    raise SystemExit(main())
