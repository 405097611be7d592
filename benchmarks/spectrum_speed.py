"""Throughput of the streaming spectrum estimator against the cost of just reading the data.

(a) Image folder: 10,000 64x64 RGB PNGs (patches of the photographs bundled with scikit-image).
    Items/s of the full estimate (decode, scale, FFT, accumulate, merge) against items/s of
    decoding the same files alone (PIL open + convert("RGB") + np.asarray), both with the same
    number of worker processes. Target: decode-only / estimate <= 1.2 with --workers 2.
(b) A 2 GB float32 .npy of shape (N, 3, 64, 64), memory-mapped: items/s of the estimate
    (workers=1) against a bare ``np.fft.rfft2`` pass over the same data in the same batch size,
    and the peak resident memory (VmHWM) of each, run in a fresh process. Target: ratio <= 1.3.

Every timing is the best of ``--repeats`` runs, end to end (pool start-up included); the CPU
ratio (CPU seconds of the estimate over those of the baseline, workers included) is printed too,
as it is less sensitive to other load on the machine. Temporary files are deleted at the end.

Usage::

    python benchmarks/spectrum_speed.py            # full sizes (a few minutes)
    python benchmarks/spectrum_speed.py --quick    # 2,000 PNGs and a 256 MB array

Writes ``benchmarks/results/spectrum_speed.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _common import machine_details

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------- (a) images
def make_pngs(folder: Path, n: int) -> None:
    from PIL import Image

    from specsched.data.builtin import photos

    for start in range(0, n, 1000):
        m = min(1000, n - start)
        x = photos(size=64, channels=3, n=m, seed=start)
        u8 = np.rint((x + 1.0) * 127.5).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        for i, im in enumerate(u8):
            Image.fromarray(im).save(folder / f"{start + i:06d}.png")


def _decode(files: list[str]) -> int:
    from PIL import Image

    for f in files:
        with Image.open(f) as im:
            np.asarray(im.convert("RGB"))
    return len(files)


def _clock() -> tuple[float, float]:
    """Wall time, and CPU time of this process and its finished children."""
    r = os.times()
    return time.perf_counter(), r.user + r.system + r.children_user + r.children_system


def _since(t0: tuple[float, float]) -> tuple[float, float]:
    t1 = _clock()
    return t1[0] - t0[0], t1[1] - t0[1]


def decode_only(folder: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds to list and decode every file, over ``workers`` processes split like
    the estimator's."""
    from specsched.data.images import IMAGE_EXTENSIONS, find_files
    from specsched.data.stream import PARTITIONS_PER_WORKER, _mp_context, partitions

    t0 = _clock()
    files = find_files(folder, IMAGE_EXTENSIONS)
    if workers == 1:
        _decode(files)
    else:
        parts = partitions(0, len(files), workers * PARTITIONS_PER_WORKER, min_size=64)
        with ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
            sum(pool.map(_decode, [files[a:b] for a, b in parts]))
    return _since(t0)


def estimate_folder(folder: Path, workers: int) -> tuple[float, float]:
    from specsched import Spectrum

    t0 = _clock()
    Spectrum.from_source(folder, workers=workers, progress=False)
    return _since(t0)


def bench_images(n: int, workers_list: list[int], repeats: int, tmp: Path) -> list[dict]:
    folder = tmp / "pngs"
    folder.mkdir()
    t0 = time.perf_counter()
    make_pngs(folder, n)
    print(f"(a) wrote {n} PNGs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    for workers in workers_list:
        dec, est = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            dec.append(decode_only(folder, workers))
            est.append(estimate_folder(folder, workers))
        wall_dec, cpu_dec = min(dec)
        wall_est, cpu_est = min(est)
        rows.append(
            {
                "workers": workers,
                "items": n,
                "decode_items_per_s": n / wall_dec,
                "estimate_items_per_s": n / wall_est,
                "ratio": wall_est / wall_dec,
                "target": 1.2 if workers == 2 else None,
                "decode_cpu_us_per_item": 1e6 * cpu_dec / n,
                "estimate_cpu_us_per_item": 1e6 * cpu_est / n,
                "cpu_ratio": cpu_est / cpu_dec,
            }
        )
    return rows


# ------------------------------------------------------------------------------------- (b) array
def make_array(path: Path, nbytes: int) -> tuple[int, ...]:
    shape = (nbytes // (4 * 3 * 64 * 64), 3, 64, 64)
    x = np.lib.format.open_memmap(path, "w+", np.float32, shape)
    rng = np.random.default_rng(0)
    for i in range(0, shape[0], 2048):
        m = min(2048, shape[0] - i)
        x[i : i + m] = rng.standard_normal((m, *shape[1:]), dtype=np.float32)
    x.flush()
    del x
    return shape


_CHILD = """
import sys, time, numpy as np
mode, path, bs = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "estimate":
    from specsched import Spectrum

def peak_rss():
    # VmHWM: this process's own peak (ru_maxrss can carry the parent's peak over a fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

rss0 = peak_rss()
t0, c0 = time.perf_counter(), time.process_time()
if mode == "estimate":
    n = Spectrum.from_source(path, batch_size=bs, progress=False).n_samples
else:
    x = np.load(path, mmap_mode="r")
    n = len(x)
    for i in range(0, n, bs):
        np.fft.rfft2(x[i : i + bs])
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
print(n, dt, rss0, peak_rss(), cpu)
"""


def _child(mode: str, path: Path, batch_size: int) -> tuple[int, float, int, int, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path), str(batch_size)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]), int(out[3]), float(out[4])


def bench_array(nbytes: int, batch_size: int, repeats: int, tmp: Path) -> dict:
    path = tmp / "big.npy"
    t0 = time.perf_counter()
    shape = make_array(path, nbytes)
    print(
        f"(b) wrote {path.stat().st_size / 2**30:.2f} GiB {shape} in "
        f"{time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    runs: dict[str, list] = {"rfft2": [], "estimate": []}
    for _ in range(repeats):
        for mode in runs:
            runs[mode].append(_child(mode, path, batch_size))
    best = {m: min(r, key=lambda v: v[1]) for m, r in runs.items()}
    n = best["estimate"][0]
    return {
        "shape": list(shape),
        "file_bytes": path.stat().st_size,
        "batch_size": batch_size,
        "rfft2_items_per_s": n / best["rfft2"][1],
        "estimate_items_per_s": n / best["estimate"][1],
        "ratio": best["estimate"][1] / best["rfft2"][1],
        "target": 1.3,
        "rfft2_cpu_us_per_item": 1e6 * min(r[4] for r in runs["rfft2"]) / n,
        "estimate_cpu_us_per_item": 1e6 * min(r[4] for r in runs["estimate"]) / n,
        "estimate_peak_rss_bytes": max(r[3] for r in runs["estimate"]),
        "estimate_rss_after_imports_bytes": max(r[2] for r in runs["estimate"]),
        "rfft2_peak_rss_bytes": max(r[3] for r in runs["rfft2"]),
        "rfft2_rss_after_imports_bytes": max(r[2] for r in runs["rfft2"]),
    }


# ------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 PNGs and a 256 MB array")
    ap.add_argument("--images", type=int, default=None, help="number of PNGs (default 10000)")
    ap.add_argument("--array-mb", type=int, default=None, help="array size in MB (default 2048)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip", choices=["images", "array"], default=None)
    ap.add_argument("--output", type=Path, default=HERE / "results" / "spectrum_speed.json")
    args = ap.parse_args()
    n_images = args.images or (2000 if args.quick else 10_000)
    array_mb = args.array_mb or (256 if args.quick else 2048)

    result: dict = {
        "machine": machine_details(),
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="specsched-bench-") as tmp:
        if args.skip != "images":
            result["images"] = bench_images(n_images, args.workers, args.repeats, Path(tmp))
        if args.skip != "array":
            result["array"] = bench_array(
                array_mb * 2**20, args.batch_size, args.repeats, Path(tmp)
            )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    from rich.console import Console
    from rich.table import Table

    table = Table(title="spectrum estimate vs reading the data alone (items/s, best of runs)")
    for col in ("case", "baseline", "estimate", "ratio", "CPU ratio", "target", "peak RSS"):
        table.add_column(col, justify="right" if col != "case" else "left")
    for row in result.get("images", []):
        table.add_row(
            f"(a) {row['items']} PNGs, {row['workers']} worker(s)",
            f"decode {row['decode_items_per_s']:,.0f}",
            f"{row['estimate_items_per_s']:,.0f}",
            f"{row['ratio']:.2f}",
            f"{row['cpu_ratio']:.2f}",
            f"<= {row['target']}" if row["target"] else "",
            "",
        )
    if "array" in result:
        a = result["array"]
        table.add_row(
            f"(b) {a['file_bytes'] / 2**30:.2f} GiB .npy, batch {a['batch_size']}",
            f"rfft2 {a['rfft2_items_per_s']:,.0f}",
            f"{a['estimate_items_per_s']:,.0f}",
            f"{a['ratio']:.2f}",
            f"{a['estimate_cpu_us_per_item'] / a['rfft2_cpu_us_per_item']:.2f}",
            f"<= {a['target']}",
            f"{a['estimate_peak_rss_bytes'] / 2**20:.0f} MiB "
            f"(rfft2 {a['rfft2_peak_rss_bytes'] / 2**20:.0f} MiB)",
        )
    Console().print(table)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
