"""Tests for the streaming estimator (specsched.data.stream): partitions, local workers, a real
Dask cluster, bounded memory, progress, and the command line on folders."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from test_sources import assert_same_spectrum, smooth_images

from specsched import Spectrum
from specsched.data import open_source
from specsched.data.stream import accumulate, partitions
from specsched.errors import SpecschedError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """60 PNGs of mixed sizes (resized with --size) and one corrupt file."""
    root = tmp_path_factory.mktemp("folder")
    for i, im in enumerate(smooth_images(60, 20, 20, seed=11)):
        Image.fromarray(im[: 14 + i % 5]).save(root / f"{i:03d}.png")
    (root / "zz_broken.png").write_bytes(b"junk")
    return root


def test_partitions_cover_the_range_once():
    for n, parts, min_size in [(10, 3, 1), (100, 7, 5), (5, 10, 1), (64, 16, 64), (1, 4, 8)]:
        got = partitions(3, 3 + n, parts, min_size=min_size)
        assert got[0][0] == 3 and got[-1][1] == 3 + n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(got))
        assert len(got) <= max(1, min(parts, n // min_size))
        sizes = [b - a for a, b in got]
        assert max(sizes) - min(sizes) <= 1


def test_workers_give_the_single_process_estimate(folder):
    one = Spectrum.from_source(folder, size=12, crop="random", seed=3, batch_size=4)
    two = Spectrum.from_source(folder, size=12, crop="random", seed=3, batch_size=4, workers=2)
    assert_same_spectrum(two, one, rtol=1e-10)
    assert two.meta["skipped"] == one.meta["skipped"] == 1
    assert two.meta["items"] == 61 and two.meta["workers"] == 2
    with pytest.raises(SpecschedError, match=r"cannot read .*zz_broken"):
        Spectrum.from_source(folder, size=12, strict=True, workers=2)
    with pytest.raises(SpecschedError, match=r"workers=0 is too small.*--workers"):
        Spectrum.from_source(folder, size=12, workers=0)


class SumAccumulator:
    """The least an accumulator needs: a count, updates, exact merges and a result."""

    def __init__(self, signal_shape: tuple[int, ...], channels: int):
        self.shape, self.n, self.total = (channels, *signal_shape), 0, 0.0

    def update(self, x: np.ndarray) -> SumAccumulator:
        assert x.shape[1:] == self.shape
        self.n, self.total = self.n + len(x), self.total + float(x.sum())
        return self

    def merge(self, other: SumAccumulator) -> SumAccumulator:
        out = SumAccumulator(self.shape[1:], self.shape[0])
        out.n, out.total = self.n + other.n, self.total + other.total
        return out

    def finalize(self, **meta):
        return self.n, self.total, meta


def test_the_stream_takes_any_accumulator():
    """The estimator streams whatever accumulator it is given (the spectrum's is one)."""
    x = np.arange(300 * 2 * 4 * 4, dtype=np.float64).reshape(300, 2, 4, 4) % 7
    for workers in (1, 2):
        n, total, meta = accumulate(open_source(x), SumAccumulator, workers=workers, batch_size=16)
        assert (n, total) == (300, x.sum())
        assert meta["items"] == 300 and meta["workers"] == workers and meta["skipped"] == 0


def test_workers_on_arrays_and_datasets(tmp_path):
    import datasets
    import torch

    x = np.random.default_rng(12).standard_normal((300, 3, 8, 8))

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return torch.from_numpy(x[i])

    ref = Spectrum.from_array(x)
    assert_same_spectrum(Spectrum.from_source(x, workers=2, batch_size=16), ref, rtol=1e-10)
    assert_same_spectrum(Spectrum.from_source(Items(), workers=2, batch_size=16), ref, rtol=1e-10)
    datasets.Dataset.from_dict({"x": list(x)}).save_to_disk(str(tmp_path / "hf"))
    hf = Spectrum.from_source(str(tmp_path / "hf"), workers=2, batch_size=16)
    assert_same_spectrum(hf, ref, rtol=1e-10)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_single_process_estimate(folder):
    from distributed import Client, LocalCluster

    one = Spectrum.from_source(folder, size=12, batch_size=4)
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        spec = Spectrum.from_source(folder, size=12, batch_size=4, dask=cluster.scheduler_address)
        assert_same_spectrum(spec, one, rtol=1e-10)
        assert spec.meta["skipped"] == 1 and spec.meta["dask"] == cluster.scheduler_address
        with Client(cluster, set_as_default=False) as client:  # a connected client works too
            again = Spectrum.from_source(folder, size=12, batch_size=4, dask=client)
        assert_same_spectrum(again, one, rtol=1e-10)


def test_unreachable_dask_scheduler_fails_clearly_within_the_timeout(folder, monkeypatch):
    """The timeout reaches the client (dask bounds the wait), and the error names it."""
    distributed = pytest.importorskip("distributed")
    timeouts = []

    class Client(distributed.Client):
        def __init__(self, *args, timeout=None, **kwargs):
            timeouts.append(timeout)
            super().__init__(*args, timeout=timeout, **kwargs)

    monkeypatch.setattr(distributed, "Client", Client)
    with pytest.raises(
        SpecschedError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:1 within 2 s"
    ):
        Spectrum.from_source(folder, size=12, dask="tcp://127.0.0.1:1", dask_timeout=2)
    assert timeouts == [2]


@pytest.mark.slow
def test_memory_stays_bounded_on_a_file_larger_than_the_address_space_cap(tmp_path):
    """A .npy twice the size of the headroom left under RLIMIT_AS streams through; mapping it
    whole fails under the same cap (so the cap is real)."""
    n, shape = 8192, (1, 64, 64)  # 8192 float32 images of 64x64: 128 MiB
    x = np.lib.format.open_memmap(tmp_path / "big.npy", "w+", np.float32, (n, *shape))
    rng = np.random.default_rng(13)
    for i in range(0, n, 1024):
        x[i : i + 1024] = rng.standard_normal((1024, *shape))
    x.flush()
    del x
    script = textwrap.dedent(
        f"""
        import resource, sys, numpy as np
        from specsched import Spectrum
        # load the code the estimate runs (its libraries are imported lazily) before capping:
        # the cap bounds what the data take, not the size of the libraries
        Spectrum.from_source(np.zeros((2, 1, 64, 64), np.float32), batch_size=64)
        vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize")][0]
        cap = vm + 64 * 2**20  # 64 MiB more address space than this process has now
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        spec = Spectrum.from_source({str(tmp_path / "big.npy")!r}, batch_size=64)
        np.save({str(tmp_path / "variances.npy")!r}, spec.variances)
        try:
            np.load({str(tmp_path / "big.npy")!r}, mmap_mode="r")
        except (MemoryError, OSError, ValueError):
            print("whole map refused")
        print("done", spec.n_samples)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "whole map refused" in run.stdout and f"done {n}" in run.stdout
    ref = Spectrum.from_source(str(tmp_path / "big.npy"), batch_size=512)
    np.testing.assert_allclose(
        np.load(tmp_path / "variances.npy"), ref.variances, rtol=0, atol=1e-12 * ref.variances.max()
    )


def test_progress_bar_on_request(capsys):
    x = np.random.default_rng(14).standard_normal((40, 1, 8, 8))
    Spectrum.from_source(x, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert "40/40" in err and "items/s" in err
    Spectrum.from_source(x, batch_size=10)  # not a terminal, and short: no bar
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------------- CLI
def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "specsched.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_spectrum_of_a_folder(folder, tmp_path):
    run = _cli("spectrum", folder, "--size", 16, "-o", "out.npz", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["n_samples"] == 60 and summary["signal_shape"] == [16, 16]
    assert "skipped 1 unreadable item" in run.stderr  # one line, on stderr
    saved = Spectrum.load(tmp_path / "out.npz")
    assert saved.meta["skipped"] == 1
    assert_same_spectrum(saved, Spectrum.from_source(folder, size=16))


@pytest.mark.slow
def test_cli_bad_input_exits_2_with_one_line_and_no_file(folder, tmp_path):
    run = _cli("spectrum", folder, "-o", "out.npz", "--json", cwd=tmp_path)  # mixed sizes
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--size" in lines[0]
    assert run.stdout == ""
    assert list(tmp_path.iterdir()) == []
    run = _cli("spectrum", folder, "--size", 16, "--strict", "-o", "out.npz", cwd=tmp_path)
    assert run.returncode == 2 and "zz_broken.png" in run.stderr
    assert list(tmp_path.iterdir()) == []
