"""What a network does on the states a sampler visits, against what the calibrated model predicts.

The calibration (`specsched.calibrate`) measures the network on real data noised to each level;
a sampler feeds it its own states, which carry the errors of the calls before. This script samples
one or more schedules with a benchmark network, records every state and every call, and prints:

1. **per level**, the power of the state about the data's mean (``E|X|^2`` with
   ``X = U^H FFT(x - alpha mu)``, summed over modes with the spectrum's weights) over the power of
   noised data at that level (``alpha^2 S + s^2``), measured and as the calibrated and the
   Gaussian response models predict it (``output_moments(..., trace=True)``), for all modes, for
   the DC modes (the image's mean colour) and for the rest;
2. **per call**, what the network returned beyond the calibrated linear part, ``r = Y - g X - b``
   (``g``, ``b``, ``R`` interpolated in log-SNR as the model does): its power over the calibrated
   ``R`` (the model's is 1 by construction), its correlation with the state (the model projects
   it off the state: 0) and with the previous call's residual (both averaged over modes weighted
   by the residual's power), and the gain the network has on these states (the regression of
   its output on the state, over the samples) and the calibrated gain, both over the Gaussian
   gain ``alpha S / (alpha^2 S + s^2)`` (averaged over the non-DC modes weighted by ``S``).

It also prints, per level of the calibration grid, the network's output power over the data's
variance (`Calibration.output_power`; an exact denoiser's is at most 1) and the levels where it
fails (`Calibration.failing_levels`).

Usage::

    python benchmarks/sampling_states.py --denoiser rgb16 --sampler heun --steps 10 \\
        --schedule ays --schedule quadratic                  # about a minute a schedule
    python benchmarks/sampling_states.py --denoiser unet --sampler ddim --steps 10 \\
        --schedule ays --calibration cal.npz                 # reuse a calibration file

``--schedule`` takes a heuristic's name or ``NAME=T0,T1,...``. Without ``--calibration`` the
set-up is calibrated as ``calibrated_fits.py`` does (``real_denoisers.calibrate_setup``). Writes
``results/sampling_states_<denoiser>_<sampler><steps>.json`` (``--out`` for another folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import save_result  # noqa: E402
from paired_check import parse_schedule  # noqa: E402

from specsched import Schedule, Spectrum  # noqa: E402
from specsched.calibrate import ModeTables, _basis, _interp  # noqa: E402
from specsched.generation import start_noise  # noqa: E402
from specsched.heuristics import heuristic_schedule  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402
from specsched.response import output_moments  # noqa: E402
from specsched.samplers import get_sampler  # noqa: E402


def _groups(spec: Spectrum) -> dict[str, np.ndarray]:
    """Masks of the modes (layout of ``spec.variances``): all, and for Fourier spectra DC / rest."""
    shape = spec.variances.shape
    out = {"all": np.ones(shape, dtype=bool)}
    if spec.kind == "fourier":
        f = np.asarray(spec.frequencies)
        f = f[..., 0] if f.ndim == len(shape) else f
        dc = np.broadcast_to((f == 0).reshape(f.shape + (1,) * (len(shape) - f.ndim)), shape)
        out["dc"], out["rest"] = dc.copy(), ~dc
    return out


def _at(table: np.ndarray, grid: np.ndarray, lam: float) -> np.ndarray:
    """A calibration table ``(K, *modes)`` at log-SNR ``lam``, interpolated as the model does
    (``specsched.calibrate._interp``: linear in log-SNR, clamped)."""
    vals = _interp(
        torch.tensor([[lam]], dtype=torch.float64),
        torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float64)),
        torch.from_numpy(np.ascontiguousarray(table, dtype=np.float64).reshape(grid.size, -1)),
    )
    return vals.numpy().reshape(table.shape[1:])


def predicted_states(spec: Spectrum, sched: Schedule, sampler: str, calibrated: bool) -> np.ndarray:
    """Predicted power of the state about ``alpha m`` at every level, ``(N + 1, *modes)``."""
    S = torch.from_numpy(spec.variances.reshape(-1))
    m = torch.from_numpy(spec.means.reshape(-1))
    alpha = torch.tensor(np.array(sched.alpha), dtype=torch.float64)
    s = torch.tensor(np.array(sched.s), dtype=torch.float64)
    tables = ModeTables(spec.calibration, spec.variances) if calibrated else None
    with torch.no_grad():
        mom = output_moments(
            S, m, alpha, s, process=sched.process, sampler=sampler, trace=True, calibration=tables
        )
    power = mom["trace_var"] + (mom["trace_mean"] - alpha[:, None] * m) ** 2
    return power.numpy().reshape(-1, *spec.variances.shape)


def measure(
    cal: Spectrum,
    denoise: Any,
    sched: Schedule,
    sampler: str,
    *,
    num_samples: int,
    shape: tuple[int, ...],
    seed: int = 7,
) -> dict[str, Any]:
    """Sample ``sched`` with ``denoise``, recording states and calls; compare with the models.

    Returns a dict with ``levels`` (per level: timestep or log-SNR, and for each mode group the
    measured / calibrated / Gaussian power over noised data's) and ``calls`` (per call: log-SNR,
    residual power over the calibration's, its correlation with the state and with the previous
    call's residual).
    """
    c = cal.calibration
    basis = _basis(cal)
    S = cal.variances
    w = np.broadcast_to(np.asarray(cal.weights, dtype=np.float64), S.shape)
    groups = _groups(cal)
    alpha = torch.tensor(np.array(sched.alpha), dtype=torch.float64)
    s = torch.tensor(np.array(sched.s), dtype=torch.float64)
    states: list[torch.Tensor] = []
    calls: list[tuple[float, float, torch.Tensor, torch.Tensor]] = []

    def recording(x: torch.Tensor, a: torch.Tensor, sg: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(denoise(x, a, sg)).to(torch.float64)
        calls.append((float(a), float(sg), x.clone(), y.clone()))
        return y

    x_start = start_noise(sched, num_samples, shape, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        get_sampler(sampler)(
            recording,
            x_start,
            alpha,
            s,
            noise=lambda like: torch.randn(like.shape, generator=gen, dtype=torch.float64),
            process=sched.process,
            callback=lambda i, xi, x0: states.append(xi.clone()),
        )
    states = [x_start, *states]
    pred = {
        "calibrated": predicted_states(cal, sched, sampler, True),
        "gaussian": predicted_states(cal, sched, sampler, False),
    }
    a_all, s_all = np.array(sched.alpha), np.array(sched.s)  # the clean end last
    t_all = None if sched.timesteps is None else [int(t) for t in sched.timesteps] + [None]
    levels = []
    for i, xi in enumerate(states):
        on = a_all[i] ** 2 * S + s_all[i] ** 2  # noised data's power about alpha m
        X = basis(xi, float(a_all[i])).numpy()
        meas = np.mean(np.abs(X) ** 2, axis=0)
        row: dict[str, Any] = {"t": None if t_all is None else t_all[i]}
        for name, g in groups.items():
            den = float(np.sum((w * on)[g]))
            row[name] = {
                "measured": float(np.sum((w * meas)[g])) / den,
                **{k: float(np.sum((w * v[i])[g])) / den for k, v in pred.items()},
            }
        levels.append(row)
    out_calls = []
    ws = w * S * groups.get("rest", groups["all"])  # the gains' weights (see below)
    prev: np.ndarray | None = None
    for a, sg, x, y in calls:
        lam = 2.0 * np.log(a / sg)
        X, Y = basis(x, a).numpy(), basis(y, 1.0).numpy()
        g, b = _at(c.gain, c.log_snr, lam), _at(c.bias, c.log_snr, lam)
        R = _at(c.residual, c.log_snr, lam)
        r = Y - g * X - b
        rc, Xc = r - r.mean(0), X - X.mean(0)
        P = np.mean(np.abs(rc) ** 2, axis=0)
        vx = np.mean(np.abs(Xc) ** 2, axis=0)
        coef = np.mean((np.conj(Xc) * rc).real, axis=0) / np.maximum(vx, 1e-300)
        # the gain the network has on these states (the regression's, ``g + coef``) and the
        # calibrated gain, over the Gaussian gain, weighted by the modes' variance over the
        # non-DC modes (all modes for spectra without a DC group)
        gauss = a * S / (a * a * S + sg * sg)
        ok = ws * (gauss > 0)
        row = {
            "log_snr": float(lam),
            "gain_over_gaussian": float(
                np.sum(ok * (g + coef) / np.maximum(gauss, 1e-300)) / np.sum(ok)
            ),
            "calibrated_gain_over_gaussian": float(
                np.sum(ok * g / np.maximum(gauss, 1e-300)) / np.sum(ok)
            ),
            "residual_over_calibrated": float(np.sum(w * P) / max(np.sum(w * R), 1e-300)),
            # correlation of the residual with the state, weighted by the residual's power
            "correlation_with_state": float(
                np.sum(w * P * coef * np.sqrt(vx / np.maximum(P, 1e-300)))
                / max(np.sum(w * P), 1e-300)
            ),
            "correlation_with_previous": None,
        }
        if prev is not None:
            num = np.mean((np.conj(prev) * rc).real, axis=0)
            den = np.sqrt(np.mean(np.abs(prev) ** 2, axis=0) * P)
            corr = num / np.maximum(den, 1e-300)
            row["correlation_with_previous"] = float(np.sum(w * P * corr) / np.sum(w * P))
        prev = rc
        out_calls.append(row)
    return {"levels": levels, "calls": out_calls}


def _schedule(arg: str, steps: int, levels: LevelRange, train: Any) -> tuple[str, Schedule]:
    if "=" in arg:
        name, t = parse_schedule(arg)
        if len(t) != steps:
            raise SystemExit(f"--schedule {name}: {len(t)} timesteps for --steps {steps}")
        return name, Schedule.from_timesteps(t, train_schedule=train, name=name)
    return arg, heuristic_schedule(arg, steps, levels)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=sorted(rd.SETUPS), default="rgb16")
    ap.add_argument("--sampler", default="heun")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--schedule", action="append", required=True)
    ap.add_argument("--num-samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--calibration", type=Path, help="a calibration of the set-up to reuse")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    setup = rd.SETUPS[args.denoiser](dict(rd.PRESETS["full"]))
    cal = Spectrum.load(args.calibration) if args.calibration else rd.calibrate_setup(setup)
    c = cal.calibration
    ratio, se = c.output_power(cal.variances, cal.weights)
    failing = c.failing_levels(cal.variances, cal.weights)
    print(f"{args.denoiser}: the network's output power over the data's variance, per level")
    print("  log-SNR " + " ".join(f"{v:6.2f}" for v in c.log_snr[:8]) + " ...")
    print("  ratio   " + " ".join(f"{v:6.2f}" for v in ratio[:8]) + " ...")
    print(f"  fails at {int(failing.sum())} of {failing.size} levels (the noisiest)")
    lr = LevelRange.discrete(setup.train)
    cases = []
    for arg in args.schedule:
        name, sched = _schedule(arg, args.steps, lr, setup.train)
        res = measure(
            cal,
            setup.denoise,
            sched,
            args.sampler,
            num_samples=args.num_samples,
            shape=setup.shape,
            seed=args.seed,
        )
        cases.append({"schedule": name, "timesteps": [int(t) for t in sched.timesteps], **res})
        print(f"\n{args.sampler}-{args.steps} {name} {[int(t) for t in sched.timesteps]}")
        groups = [g for g in ("all", "dc", "rest") if g in res["levels"][0]]
        print("  level     t  " + "  ".join(f"{g:>5s}: meas  cal  gauss" for g in groups))
        for i, row in enumerate(res["levels"]):
            t = "clean" if row["t"] is None else str(row["t"])
            cells = "  ".join(
                f"{row[g]['measured']:11.3f} {row[g]['calibrated']:5.2f} {row[g]['gaussian']:5.2f}"
                for g in groups
            )
            print(f"  {i:5d} {t:>5s}  {cells}")
        print(
            "  call  log-SNR  gain/Gaussian: network  calibrated  residual/calibrated  "
            "corr. with state  with previous"
        )
        for k, row in enumerate(res["calls"]):
            corr = row["correlation_with_previous"]
            print(
                f"  {k:4d} {row['log_snr']:8.2f} {row['gain_over_gaussian']:22.3f} "
                f"{row['calibrated_gain_over_gaussian']:11.3f} "
                f"{row['residual_over_calibrated']:20.2f} "
                f"{row['correlation_with_state']:17.3f} {'' if corr is None else f'{corr:14.3f}'}"
            )
    payload = {
        "denoiser": args.denoiser,
        "sampler": args.sampler,
        "steps": args.steps,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "calibration": {
            "log_snr": c.log_snr.tolist(),
            "output_over_data": ratio.tolist(),
            "se": se.tolist(),
            "failing": failing.tolist(),
        },
        "cases": cases,
        "seconds": time.perf_counter() - t0,
    }
    path = args.out / f"sampling_states_{args.denoiser}_{args.sampler}{args.steps}.json"
    print(f"\n{payload['seconds']:.0f} s")
    return save_result(path, "sampling_states.py", argv, payload, threads=str(args.threads))


if __name__ == "__main__":
    raise SystemExit(main())
