"""Which part of a schedule costs: splice it with a heuristic and measure each piece by FD.

For a denoiser set-up of ``real_denoisers.py`` and one sampler, the schedule given with
``--timesteps`` is sampled as it is, the heuristic (``--heuristic``, default logsnr) as it is, and
the two splices at ``--split`` (a timestep): the schedule's levels above the split followed by the
heuristic's below it, and the other way round. All from the same seeded x_T, scored against the
same reference as the stored run (paired), so a difference between rows is the effect of that part
of the schedule.

Usage::

    python benchmarks/splice_schedules.py --denoiser gmm --sampler dpmpp_2m --split 125 \
        --timesteps 999 997 816 711 365 125 40 39 35 32 29 26 23 21 16 14 12 8 7 6

Writes ``results/splice_<denoiser>_<sampler>.json`` and prints a table (about a minute for gmm).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402
from _common import stamp, write_json  # noqa: E402

from specsched.generation import generate  # noqa: E402
from specsched.heuristics import heuristic_schedule  # noqa: E402
from specsched.levels import LevelRange  # noqa: E402
from specsched.schedules import Schedule  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoiser", choices=list(rd.SETUPS), required=True)
    ap.add_argument("--sampler", required=True)
    ap.add_argument("--timesteps", type=int, nargs="+", required=True)
    ap.add_argument("--split", type=int, required=True, help="timestep where the pieces meet")
    ap.add_argument("--heuristic", default="logsnr")
    ap.add_argument("--stored", type=Path, default=HERE / "results" / "real_denoisers.json")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    stored = json.loads(args.stored.read_text())
    cfg = {**stored["config"], "fid": False}
    setup = rd.SETUPS[args.denoiser](cfg)
    steps = len(args.timesteps)
    own = sorted(set(args.timesteps), reverse=True)
    heur = heuristic_schedule(args.heuristic, steps, LevelRange.discrete(setup.train))
    other = [int(t) for t in heur.timesteps]
    cut = args.split
    pieces = {
        "schedule": own,
        args.heuristic: other,
        f"schedule above {cut}, {args.heuristic} below": [t for t in own if t >= cut]
        + [t for t in other if t < cut],
        f"{args.heuristic} above {cut}, schedule below": [t for t in other if t > cut]
        + [t for t in own if t <= cut],
    }
    rows = []
    for name, ts in pieces.items():
        ts = sorted(set(ts), reverse=True)
        sched = Schedule.from_timesteps(np.array(ts), train_schedule=setup.train)
        x = generate(
            setup.denoise,
            sched,
            args.sampler,
            num_samples=cfg["num_samples"],
            shape=setup.shape,
            seed=rd.SEED,
        )
        fd, boot = rd.scored(x, setup, cfg, None)["fd"]
        rows.append(
            {"piece": name, "timesteps": ts, "fd": fd, "fd_sd": float(np.std(boot, ddof=1))}
        )
        print(f"{name:42s} {len(ts):3d} steps  FD {fd:.3f} ± {rows[-1]['fd_sd']:.3f}  {ts}")
    payload = {
        "command": "python benchmarks/splice_schedules.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        **stamp(),
        "denoiser": args.denoiser,
        "sampler": args.sampler,
        "rows": rows,
    }
    path = args.out / f"splice_{args.denoiser}_{args.sampler}.json"
    write_json(path, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
