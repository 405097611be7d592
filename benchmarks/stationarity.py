"""How stationary are the bundled data? The measurements behind ``kind="auto"``'s limits.

For every data set: the mean-image share and the per-pixel variance spread
(:func:`specsched.spectrum.stationarity`) and the kind :func:`specsched.spectrum.choose_kind`
picks. Stationary sets (photo patches, power-law fields, mixture samples) and centred ones (MNIST,
scikit-learn digits, LFW faces, synthetic centred discs) must fall on either side of the limits,
with room at small ``n`` (power-law fields at n = 50 and 500, several seeds).

Usage::

    python benchmarks/stationarity.py          # about a minute on 2 cores

Prints a table and writes ``benchmarks/results/stationarity.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from specsched import Spectrum
from specsched.data.builtin import digits, faces, mnist, photos, powerlaw
from specsched.mixture import GaussianMixture
from specsched.spectrum import choose_kind

HERE = Path(__file__).resolve().parent


def centred_discs(n: int = 2000, size: int = 32, seed: int = 0) -> np.ndarray:
    """Centred objects: a textured disc of random radius and brightness on a black background,
    its centre jittered by 1.5 pixels (``(n, 1, size, size)`` in [-1, 1])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.full((n, 1, size, size), -1.0)
    for i in range(n):
        cx, cy = rng.normal(0.0, 1.5, 2)
        inside = np.hypot(xx - cx, yy - cy) < rng.uniform(0.15, 0.35) * size
        texture = 1.0 + 0.3 * rng.standard_normal((size, size))
        out[i, 0] += rng.uniform(0.3, 2.0) * inside * texture
    return np.clip(out, -1.0, 1.0)


def sets() -> dict[str, Callable[[], np.ndarray]]:
    gmm = HERE / "models" / "gmm16" / "mixture.npz"
    out: dict[str, Callable[[], np.ndarray]] = {
        "photos 16x16 RGB": lambda: photos(size=16, n=5000),
        "photos 32x32 RGB": lambda: photos(size=32, n=5000),
        "photos 64x64 RGB": lambda: photos(size=64, n=5000),
        "power-law 32x32": lambda: powerlaw(size=32, n=5000),
        "gmm16 samples": lambda: GaussianMixture.load(gmm).sample(5000, seed=101),
        "LFW faces 25x25": faces,
        "MNIST": lambda: mnist(n=10_000),
        "MNIST n=1000": lambda: mnist(n=1000),
        "digits 8x8": digits,
        "centred discs 32x32": centred_discs,
    }
    for n in (50, 500):
        for seed in range(3):
            out[f"power-law 32x32 n={n} seed {seed}"] = lambda n=n, s=seed: powerlaw(
                size=32, n=n, seed=s
            )
    return out


def main() -> None:
    rows = []
    print(f"{'data':34s} {'n':>6s} {'d':>6s} {'mean share':>11s} {'var spread':>11s}  kind")
    for name, make in sets().items():
        x = make()
        spec = Spectrum.from_array(x, layout="NCHW", kind="fourier")
        st = spec.meta["stationarity"]
        kind, reason = choose_kind(st, spec.dim)
        rows.append({"data": name, "d": spec.dim, **st, "kind": kind, "reason": reason})
        print(
            f"{name:34s} {st['n_samples']:6d} {spec.dim:6d} {st['mean_image_share']:11.5f} "
            f"{st['variance_spread']:11.4f}  {kind}",
            flush=True,
        )
    out = HERE / "results" / "stationarity.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
