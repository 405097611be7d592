"""The one estimation path: a source's items, split into partitions, accumulated and merged.

:func:`accumulate` splits a :class:`~specsched.data.sources.Source`'s items into contiguous
partitions, runs :func:`accumulate_partition` on each (in this process, in local worker processes,
or on a Dask cluster: the same function in all three) and merges the partial accumulators exactly,
in partition order. The accumulator is a parameter (an :class:`Accumulator`, made by the caller's
factory): :meth:`specsched.Spectrum.from_source` passes
:class:`~specsched.spectrum.SpectrumAccumulator`, so this module needs nothing from
:mod:`specsched.spectrum` (the dependency runs one way). The estimate is a sum over samples
(count, sum of ``X X^H`` per frequency, sum of the DC coefficients), so the result does not
depend on where the partitions ran, up to the rounding of the sums' order.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from ..errors import SpecschedError, check_int
from .sources import Source

__all__ = [
    "Accumulator",
    "NewAccumulator",
    "Partial",
    "accumulate",
    "accumulate_partition",
    "partitions",
]

#: Samples go through the FFT in chunks of about this many bytes of float64 input: the FFT and
#: the per-frequency products then run in cache, 2-3x faster than on large batches.
CHUNK_BYTES = 2 << 20
#: Failed items remembered (with their reason) per partition; all are counted.
MAX_EXAMPLES = 5
#: Partitions per worker: enough for load balance and a live progress bar.
PARTITIONS_PER_WORKER = 8

Estimate_co = TypeVar("Estimate_co", covariant=True)


class Accumulator(Protocol[Estimate_co]):
    """What the streaming estimator needs of an accumulator: a streaming, mergeable sum over
    samples (:class:`specsched.spectrum.SpectrumAccumulator` is one).

    Attributes
    ----------
    n : int
        Samples added so far.
    """

    n: int

    def update(self, x: np.ndarray) -> Any:
        """Add a batch ``x`` of shape ``(n, C, *signal_shape)``."""
        ...

    def merge(self, other: Any) -> Any:
        """The exact union of this partial estimate and ``other`` (a new accumulator)."""
        ...

    def finalize(self, **meta: Any) -> Estimate_co:
        """The estimate of everything added so far, with ``meta`` as its provenance."""
        ...


#: Makes an empty accumulator for samples of shape ``(C, *signal_shape)``, called as
#: ``new_accumulator(signal_shape, C)`` (for example ``partial(SpectrumAccumulator, kind="pca")``);
#: it is sent to every worker, so it must pickle.
NewAccumulator = Callable[[tuple[int, ...], int], Accumulator[Estimate_co]]


@dataclass
class Partial:
    """What one partition gives back: its accumulator and its account of the items."""

    accumulator: Accumulator[Any] | None
    items: int = 0
    failed: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)
    scaling: str = "as given"


def partitions(start: int, stop: int, parts: int, *, min_size: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into at most ``parts`` contiguous ranges of near-equal size, each of
    at least ``min_size`` items (except when there are fewer)."""
    n = stop - start
    parts = max(1, min(parts, n // max(min_size, 1)))
    edges = [start + (n * k) // parts for k in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def accumulate_partition(
    source: Source,
    partition: tuple[int, int | None],
    new_accumulator: NewAccumulator[Any],
    *,
    batch_size: int = 64,
    strict: bool = False,
    sample_shape: tuple[int, ...] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Partial:
    """Accumulate the items ``partition = (start, stop)`` of ``source``.

    Runs wherever it is sent: in the calling process, in a local worker, or as a Dask task; the
    source reopens its data there.

    Parameters
    ----------
    source : Source
    partition : (int, int or None)
        Item range; ``stop=None`` reads to the end.
    new_accumulator : callable
        Makes the partition's accumulator from the first sample's shape (:data:`NewAccumulator`).
    batch_size : int
        Items read per batch. Memory is ``O(batch_size x sample size)`` for the batch plus
        ``O(C^2 x frequencies)`` for the accumulator.
    strict : bool
        Raise on the first unreadable item instead of skipping and counting it.
    sample_shape : tuple of int, optional
        ``(C, *signal_shape)`` every sample must have; None: that of the first sample.
    on_batch : callable, optional
        Called with the number of items of each batch (progress).
    """
    start, stop = partition
    out = Partial(None)
    for batch in source.read(start, stop, batch_size=batch_size, sample_shape=sample_shape):
        out.items += batch.items
        if batch.failures:
            if strict:
                name, reason = batch.failures[0]
                raise SpecschedError(
                    f"cannot read {name} ({reason}): fix or remove it, or drop --strict "
                    "(strict=False) to skip and count unreadable items"
                )
            out.failed += len(batch.failures)
            out.examples.extend(batch.failures[: MAX_EXAMPLES - len(out.examples)])
        x = batch.x
        if x is not None and len(x):
            if out.accumulator is None:
                sample_shape = x.shape[1:]
                out.accumulator = new_accumulator(sample_shape[1:], sample_shape[0])
                out.scaling = batch.scaling
            chunk = max(1, CHUNK_BYTES // (8 * math.prod(sample_shape)))
            for i in range(0, len(x), chunk):
                out.accumulator.update(x[i : i + chunk])
        if on_batch is not None:
            on_batch(batch.items)
    return out


# ------------------------------------------------------------------------------------- progress
class ProgressBar:
    """A rich progress bar on stderr (items, items/s, ETA), shown when asked, or when stderr is
    a terminal and the run has taken more than a second."""

    def __init__(self, total: int | None, show: bool | None, description: str, unit: str = "items"):
        self.total, self.show, self.description, self.unit = total, show, description, unit
        self.t0 = time.perf_counter()
        self.done = 0
        self.bar: Any = None
        self.task: Any = None
        if show:
            self._start()

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        unit = self.unit

        class Rate(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed:,.0f} {unit}/s" if task.speed else f"- {unit}/s")

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.description, total=self.total, completed=self.done)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is None and self.show is None and time.perf_counter() - self.t0 > 1.0:
            if sys.stderr.isatty():
                self._start()
            self.show = self.bar is not None
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# ------------------------------------------------------------------------------------- runners
@dataclass(frozen=True)
class _Job:
    """Everything a partition needs besides its range (sent once per worker)."""

    source: Source
    new_accumulator: NewAccumulator[Any]
    batch_size: int
    strict: bool
    sample_shape: tuple[int, ...] | None

    def __call__(self, partition: tuple[int, int | None], on_batch=None) -> Partial:
        return accumulate_partition(
            self.source,
            partition,
            self.new_accumulator,
            batch_size=self.batch_size,
            strict=self.strict,
            sample_shape=self.sample_shape,
            on_batch=on_batch,
        )


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    if "torch" in sys.modules:  # one thread per worker process: the workers are the parallelism
        sys.modules["torch"].set_num_threads(1)


def _run_in_worker(partition: tuple[int, int]) -> Partial:
    assert _WORKER_JOB is not None
    return _WORKER_JOB(partition)


def _in_order(
    results: Iterator[tuple[int, Partial]], n: int, progress: ProgressBar
) -> Iterator[Partial]:
    """Partials in partition order (deterministic sums) from results in completion order."""
    pending: dict[int, Partial] = {}
    nxt = 0
    for index, partial in results:
        progress.advance(partial.items)
        pending[index] = partial
        while nxt in pending:
            yield pending.pop(nxt)
            nxt += 1
    assert nxt == n


def _mp_context():
    # On Linux, forked workers inherit the imported modules (torch takes seconds to import) and
    # the job, so a pool starts in milliseconds; elsewhere the platform's default (spawn) is used,
    # which pickles the job once per worker.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)


def _run_local(job: _Job, parts: Sequence[tuple[int, int]], workers: int, progress: ProgressBar):
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=_mp_context(), initializer=_init_worker, initargs=(job,)
    )
    try:
        futures = {pool.submit(_run_in_worker, p): k for k, p in enumerate(parts)}

        def completed():
            todo = set(futures)
            while todo:
                done, todo = wait(todo, return_when=FIRST_COMPLETED)
                for f in done:
                    yield futures[f], f.result()

        yield from _in_order(completed(), len(parts), progress)
    except BrokenProcessPool:
        raise SpecschedError(
            "a worker process died (out of memory?): use fewer --workers or a smaller --batch-size"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def connect_dask(address: Any, timeout: float):
    """A ``distributed.Client`` for ``address`` (a ``Client`` is used as it is).

    Returns ``(client, owned)``; raises :class:`SpecschedError` if no scheduler answers within
    ``timeout`` seconds or it has no workers.
    """
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask is an optional extra
        raise SpecschedError(
            "--dask needs dask.distributed: pip install 'specsched[dask]'"
        ) from None
    if isinstance(address, Client):
        return address, False
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        raise SpecschedError(
            f"no Dask scheduler answers at {address} within {timeout:g} s ({type(exc).__name__}):"
            f" start one with `dask scheduler` and workers with `dask worker {address}`, or "
            "check the address"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        client.close()
        raise SpecschedError(
            f"the Dask scheduler at {address} has no workers: start some with "
            f"`dask worker {address}`"
        ) from None
    return client, True


def _run_dask(job: _Job, parts: Sequence[tuple[int, int]], client, progress: ProgressBar):
    from distributed import as_completed

    remote_job = client.scatter(job, broadcast=True, hash=False)
    futures = [client.submit(_call_job, remote_job, p, pure=False) for p in parts]
    index = {f.key: k for k, f in enumerate(futures)}
    try:
        yield from _in_order(
            ((index[f.key], f.result()) for f in as_completed(futures, loop=client.loop)),
            len(parts),
            progress,
        )
    finally:
        client.cancel(futures)


def _call_job(job: _Job, partition: tuple[int, int]) -> Partial:
    return job(partition)


# ------------------------------------------------------------------------------------- estimate
def _probe(job: _Job, stop: int) -> tuple[int, ...]:
    """The shape of the first readable sample (unreadable items before it are skipped, or
    raise with ``strict``); raises if there is none."""
    examples: list[tuple[str, str]] = []
    for batch in job.source.read(0, stop, batch_size=1):
        if batch.failures and job.strict:
            name, reason = batch.failures[0]
            raise SpecschedError(
                f"cannot read {name} ({reason}): fix or remove it, or drop --strict "
                "(strict=False) to skip and count unreadable items"
            )
        examples.extend(batch.failures)
        if batch.x is not None and len(batch.x):
            return batch.x.shape[1:]
    raise _nothing_read(job.source, stop, examples[:1], dask=False)


def _nothing_read(source: Source, failed: int, examples, *, dask: bool) -> SpecschedError:
    first = f" (first: {examples[0][0]}: {examples[0][1]})" if examples else ""
    hint = "; Dask workers must be able to read the data at the same paths" if dask else ""
    return SpecschedError(
        f"no sample could be read from {source.name}: all {failed} items were skipped{first}{hint}"
    )


def accumulate(
    source: Source,
    new_accumulator: NewAccumulator[Estimate_co],
    *,
    workers: int = 1,
    dask: Any = None,
    limit: int | None = None,
    batch_size: int = 64,
    strict: bool = False,
    progress: bool | None = None,
    dask_timeout: float = 10.0,
) -> Estimate_co:
    """Accumulate a source's items, streamed, on one or more processes or a Dask cluster.

    One pass over the source; :meth:`specsched.Spectrum.from_source` makes a spectrum with it
    (one pass per spectrum kind).

    Parameters
    ----------
    source : Source
        From :func:`specsched.data.open_source`.
    new_accumulator : callable
        Makes an empty accumulator for the samples' shape (:data:`NewAccumulator`), e.g.
        ``functools.partial(SpectrumAccumulator, kind="fourier")``; it must pickle to reach
        workers.
    workers : int, default 1
        Local worker processes. Each reads and accumulates its own partitions; the partial sums
        are merged exactly. Ignored with ``dask``.
    dask : str or distributed.Client, optional
        Run the partitions on a Dask cluster: a scheduler address (``"tcp://host:8786"``) or a
        connected ``Client``. Every worker must be able to read the data (same paths).
    limit : int, optional
        Use only the first ``limit`` items (images, rows, audio files; samples for iterables).
    batch_size : int, default 64
        Items read per batch (images per VAE forward pass for latents).
    strict : bool, default False
        Fail on the first unreadable item instead of skipping and counting it.
    progress : bool, optional
        Show a progress bar on stderr: always (True), never (False), or when stderr is a
        terminal and the run takes more than a second (None).
    dask_timeout : float, default 10
        Seconds to wait for the Dask scheduler (and a worker) to answer.

    Returns
    -------
    estimate
        What the merged accumulator's ``finalize`` returns, given as ``meta`` the source, the
        scaling, the items read and the items skipped (``"skipped"``, with up to five examples
        and their reasons in ``"skipped_examples"``) and where it ran (``"workers"``, or
        ``"dask"`` and ``"dask_threads"``).

    Notes
    -----
    Memory is bounded whatever the number of items: each process holds one batch
    (``batch_size`` x the size of an item, as float64, plus its FFT), one accumulator
    (``C^2 x frequencies`` complex numbers, e.g. 0.3 MB for 3 x 64 x 64 images) and the source's
    description (for folders, the list of paths). Arrays are memory-mapped one batch at a time.
    The driver holds the merged accumulator and the partials that finished ahead of their turn
    (at most ``8 x workers`` of them).

    Examples
    --------
    >>> import functools
    >>> import numpy as np
    >>> from specsched.data import open_source
    >>> from specsched.spectrum import SpectrumAccumulator
    >>> x = np.random.default_rng(0).standard_normal((200, 1, 8, 8))
    >>> new = functools.partial(SpectrumAccumulator, kind="fourier")
    >>> spec = accumulate(open_source(x), new, batch_size=50)
    >>> spec.n_samples, spec.signal_shape
    (200, (8, 8))
    """
    workers = check_int("workers", workers, 1, " (--workers N)")
    batch_size = check_int("batch_size", batch_size, 1, " (--batch-size N)")
    if limit is not None:
        limit = check_int("limit", limit, 1, " (--limit N)")
    n = source.n_items
    stop = n if limit is None else (limit if n is None else min(n, limit))
    distributed = workers > 1 or dask is not None
    if distributed and not source.splittable:
        raise SpecschedError(
            f"{source.name} is a one-pass iterable and cannot be split across workers: pass a "
            "map-style dataset (with len and indexing) or use workers=1 without dask"
        )
    if stop == 0:
        raise SpecschedError(f"{source.name} holds no items: give some data")

    job = _Job(source, new_accumulator, batch_size, strict, None)
    where: dict[str, Any] = {"workers": workers}
    bar = ProgressBar(stop, progress, f"spectrum of {source.name}")
    try:
        if not distributed:
            total = job((0, stop), on_batch=bar.advance)
        else:
            job = _Job(source, new_accumulator, batch_size, strict, _probe(job, stop))
            if dask is not None:
                client, owned = connect_dask(dask, dask_timeout)
                try:
                    slots = max(1, sum(client.nthreads().values()))
                    parts = partitions(0, stop, slots * PARTITIONS_PER_WORKER, min_size=batch_size)
                    total = _merge(_run_dask(job, parts, client, bar))
                    where = {"dask": str(client.scheduler.address), "dask_threads": slots}
                finally:
                    if owned:
                        client.close()
            else:
                parts = partitions(0, stop, workers * PARTITIONS_PER_WORKER, min_size=batch_size)
                total = _merge(_run_local(job, parts, workers, bar))
    finally:
        bar.close()

    acc = total.accumulator
    if acc is None or acc.n == 0:
        raise _nothing_read(source, total.failed, total.examples, dask=dask is not None)
    return acc.finalize(
        source=source.name,
        scaling=total.scaling,
        items=total.items,
        skipped=total.failed,
        skipped_examples=[f"{name}: {reason}" for name, reason in total.examples],
        **where,
    )


def _merge(partials: Iterator[Partial]) -> Partial:
    """Merge partials as they arrive (in partition order) into one."""
    total = Partial(None)
    for p in partials:
        total.items += p.items
        total.failed += p.failed
        total.examples.extend(p.examples[: MAX_EXAMPLES - len(total.examples)])
        if p.accumulator is not None:
            if total.accumulator is None:
                total.accumulator, total.scaling = p.accumulator, p.scaling
            else:
                total.accumulator = total.accumulator.merge(p.accumulator)
    return total
