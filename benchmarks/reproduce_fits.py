"""Does today's `fit` give the plain (`spectral-w2`) schedules of the stored real_denoisers run?

Usage::

    python benchmarks/reproduce_fits.py     # 30 fits, ~2 min

Prints the cells whose timesteps differ from ``results/real_denoisers.json`` and a count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_denoisers as rd  # noqa: E402

from specsched import fit  # noqa: E402


def main() -> int:
    torch.set_num_threads(1)
    stored = json.loads((HERE / "results" / "real_denoisers.json").read_text())
    cfg = dict(stored["config"])
    same = differ = 0
    for name in stored["denoisers"]:
        setup = rd.SETUPS[name](cfg)
        for r in stored["records"]:
            if r["denoiser"] != name or r["schedule"] != "spectral-w2":
                continue
            res = fit(setup.spectrum, r["steps"], sampler=r["sampler"], train_schedule=setup.train)
            ts = [int(t) for t in res.schedule.timesteps]
            if ts == r["timesteps"]:
                same += 1
            else:
                differ += 1
                print(f"{name} {r['sampler']} {r['steps']}: stored {r['timesteps']}, now {ts}")
    print(f"same timesteps: {same}; different: {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
