"""Data sources as the streaming estimator sees them: sequences of items read in ranges.

A :class:`Source` is a small, picklable description of a data set (paths and options, or a
Python object that pickles by reference) that yields float64 batches of shape
``(n, C, *signal_shape)`` for any range of its items. Heavy state (open files, decoded models) is
created lazily in the process that reads, so the same source can be handed to local worker
processes or Dask workers, which reopen it and read their own partition
(:func:`specsched.data.stream.accumulate_partition`).

An *item* is the unit a source is split and counted in: an image, an array row, a dataset row,
an audio file (which may give several fixed-length segments). Items that cannot be read are
reported as :attr:`Batch.failures` (name and reason) rather than raised, so the estimator can skip
and count them, or fail on the first with ``strict=True``.

This module holds the base classes and the array, map-style dataset (torch, Hugging Face) and
iterable sources; image folders live in :mod:`.images`, audio in :mod:`.audio`, VAE latents in
:mod:`.latents`.
"""

from __future__ import annotations

import abc
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._arrays import as_channels_first, to_float, to_numpy
from ..errors import ItemError, SpecschedError

__all__ = [
    "ArraySource",
    "Batch",
    "FileSource",
    "HFDatasetSource",
    "ItemSource",
    "IterableSource",
    "MapSource",
    "Source",
    "to_sample",
]


@dataclass
class Batch:
    """One read: the samples of a run of items, and the items that could not be read.

    Attributes
    ----------
    x : ndarray or None
        float64 samples ``(n, C, *signal_shape)``; None when no item of the run was readable.
    items : int
        How many items the run covered (read or not), for progress and accounting.
    failures : list of (str, str)
        ``(item name, reason)`` of each unreadable item.
    scaling : str
        How raw values were mapped to ``x`` (e.g. ``"uint8 [0, 255] -> [-1, 1]"``).
    """

    x: np.ndarray | None
    items: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    scaling: str = "as given"


class Source(abc.ABC):
    """A data set the estimator can read in item ranges, in any process.

    Subclasses set :attr:`name` (provenance in the spectrum's metadata) and implement
    :meth:`read`; :attr:`n_items` is None for one-pass iterables, which cannot be split.
    """

    name: str

    @property
    def n_items(self) -> int | None:
        """Number of items, or None if unknown (a one-pass iterable)."""
        return None

    @property
    def splittable(self) -> bool:
        """Whether item ranges can be read independently (by several workers)."""
        return self.n_items is not None

    @abc.abstractmethod
    def read(
        self,
        start: int,
        stop: int | None,
        *,
        batch_size: int,
        sample_shape: tuple[int, ...] | None = None,
    ) -> Iterator[Batch]:
        """Yield the items ``start <= i < stop`` in batches of at most ``batch_size`` items.

        ``sample_shape`` is the ``(C, *signal_shape)`` every sample must have (None: that of the
        first sample read); a sample of another shape raises :class:`SpecschedError`.
        """


def unreadable_reason(exc: BaseException) -> str:
    """One line saying why an item could not be read: the exception's type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class ItemSource(Source):
    """A source read one item at a time: subclasses implement :meth:`load_item`.

    ``load_item(i)`` returns the samples of item ``i`` as an array ``(k, C, *signal_shape)``
    (``k`` is 1 except for audio files cut into segments) in its raw dtype (uint8 images are
    scaled to [-1, 1] once per batch); any exception other than :class:`SpecschedError` marks the
    item unreadable.
    """

    #: How to fix a sample of the wrong shape (the end of the error message).
    shape_hint: str = "give samples of one shape"

    @abc.abstractmethod
    def load_item(self, i: int) -> np.ndarray: ...

    def item_name(self, i: int) -> str:
        return f"item {i}"

    def read(self, start, stop, *, batch_size, sample_shape=None):
        stop = self.n_items if stop is None else stop
        samples: list[np.ndarray] = []
        failures: list[tuple[str, str]] = []
        first: tuple[str, np.dtype] | None = None
        done = 0
        for i in range(start, stop):
            try:
                arr = self.load_item(i)
            except ItemError as exc:
                failures.append((self.item_name(i), str(exc)))
            except SpecschedError:
                raise
            except Exception as exc:
                failures.append((self.item_name(i), unreadable_reason(exc)))
            else:
                if sample_shape is None:
                    sample_shape = arr.shape[1:]
                if arr.shape[1:] != tuple(sample_shape):
                    raise SpecschedError(
                        f"{self.item_name(i)} gives samples of shape {arr.shape[1:]}, earlier "
                        f"ones {tuple(sample_shape)}: {self.shape_hint}"
                    )
                if first is None:
                    first = (self.item_name(i), arr.dtype)
                elif _kind(arr.dtype) != _kind(first[1]):
                    raise SpecschedError(
                        f"{self.item_name(i)} holds {arr.dtype} values, {first[0]} {first[1]}: "
                        "give all samples in one scale (uint8 images or floats)"
                    )
                if arr.shape[0]:
                    samples.append(arr)
            done += 1
            if done == batch_size or i == stop - 1:
                yield _batch(samples, done, failures)
                samples, failures, done = [], [], 0


class FileSource(ItemSource):
    """An item source with one item a file: ``files`` holds the paths, which name the items."""

    files: tuple[str, ...]

    @property
    def n_items(self) -> int:
        return len(self.files)

    def item_name(self, i: int) -> str:
        return self.files[i]


def _kind(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    return "int" if np.issubdtype(dtype, np.integer) else "float"


def _batch(samples: list[np.ndarray], items: int, failures: list[tuple[str, str]]) -> Batch:
    if not samples:
        return Batch(None, items, failures)
    x, scaling = to_float(samples[0] if len(samples) == 1 else np.concatenate(samples))
    return Batch(x, items, failures, scaling)


# ------------------------------------------------------------------------------------- samples
def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def to_sample(
    obj: Any,
    *,
    layout: str | None = None,
    column: str | None = None,
    image_options: dict[str, Any] | None = None,
    index: int = 0,
) -> np.ndarray:
    """One sample from what a dataset returns, as ``(1, C, *signal_shape)`` in its raw dtype.

    ``obj`` may be a PIL image (preprocessed like an image file, see
    :func:`specsched.data.images.preprocess`), a numpy array, a torch tensor or anything
    ``np.asarray`` takes; a tuple (torchvision's ``(image, label)``) gives its first element, a
    dict (Hugging Face rows) the entry ``column``. Arrays use the layouts of
    :meth:`specsched.Spectrum.from_array` without the sample axis: ``(H, W)``, ``(C, H, W)``,
    ``(H, W, C)``, ``(L,)`` or ``(C, L)`` (``layout`` names one when the shape is ambiguous,
    e.g. ``"NCHW"``).
    """
    if isinstance(obj, tuple):
        if not obj:
            raise SpecschedError("the dataset returned an empty tuple: return (sample, ...) items")
        obj = obj[0]
    if isinstance(obj, dict):
        if column is None:
            if len(obj) != 1:
                raise SpecschedError(
                    f"dataset items have fields {', '.join(map(str, obj))}: pick one with "
                    "column=NAME (--column)"
                )
            column = next(iter(obj))
        if column not in obj:
            raise SpecschedError(
                f"dataset items have no field {column!r} (fields: {', '.join(map(str, obj))}): "
                "pass one of them as column (--column)"
            )
        obj = obj[column]
    if _is_pil(obj):
        from .imaging import preprocess

        return preprocess(obj, index=index, **(image_options or {}))[None]
    obj = to_numpy(obj)  # a torch tensor (any dtype, requiring grad or not)
    arr = np.asarray(obj)
    if arr.dtype == object or not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        raise SpecschedError(
            f"dataset items of type {type(obj).__name__} are not numeric arrays or images: "
            "return arrays, tensors or PIL images"
        )
    if arr.ndim == 1:
        return arr[None, None]
    return as_channels_first(arr[None], layout)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- arrays
def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    reader = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if reader is None:  # pragma: no cover - version 3 only adds utf8 field names
        shape, fortran, dtype = np.lib.format._read_array_header(f, version)
    else:
        shape, fortran, dtype = reader(f)
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def _check_length(
    path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int, size: int, name=None
) -> None:
    """Fail if a ``.npy`` (member) holds fewer bytes than its header promises."""
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise SpecschedError(
            f"{name or path} is truncated: its header promises an array of shape {shape} "
            f"({need} bytes) but it holds {size} bytes; write it again with np.save"
        )


@dataclass(frozen=True, eq=False)
class ArraySource(Source):
    """Samples stored as the rows of an array: an in-memory array, a ``.npy`` or a ``.npz`` file.

    Files are never read whole: each batch maps just its own rows (``np.memmap`` at the batch's
    byte offset) and drops the map when done, so memory and address space stay at one batch
    whatever the file size. Members of uncompressed ``.npz`` files (``np.savez``) are mapped the
    same way; compressed members (``np.savez_compressed``) and Fortran-ordered arrays are read
    whole, once per process.

    Use :meth:`open` to make one from a path or an array.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    layout: str | None = None
    array: np.ndarray | None = None
    path: str | None = None
    offset: int = 0
    key: str | None = None

    @classmethod
    def open(
        cls, data: str | Path | np.ndarray, *, layout: str | None = None, key: str | None = None
    ) -> ArraySource:
        """An array source over an array, or a ``.npy`` / ``.npz`` file.

        Parameters
        ----------
        data : str, Path or ndarray
        layout : {"NL", "NCL", "NHW", "NCHW", "NHWC"}, optional
            Needed only when the shape is ambiguous (see :func:`specsched.spectrum.infer_layout`).
        key : str, optional
            The array to use in an ``.npz`` file holding several.
        """
        if not isinstance(data, str | Path):
            arr = np.asarray(data)
            src = cls(f"array {arr.shape}", arr.shape, arr.dtype, layout, array=arr)
        else:
            src = cls._open_file(Path(data), layout, key)
        if len(src.shape) < 2:
            raise SpecschedError(
                f"{src.name} has shape {src.shape}: give an array of samples (n, ...) with at "
                "least 2 dimensions"
            )
        if src.dtype == object or not (
            src.dtype == np.bool_ or np.issubdtype(src.dtype, np.number)
        ):
            raise SpecschedError(f"{src.name} holds {src.dtype} values: give a numeric array")
        # Fails now, not in a worker, if the layout is ambiguous or wrong (a zero-stride view
        # of the file's shape: the message names it, and nothing is allocated).
        shaped = np.lib.stride_tricks.as_strided(np.empty(1), src.shape, (0,) * len(src.shape))
        as_channels_first(shaped, layout)  # type: ignore[arg-type]
        return src

    @classmethod
    def _open_file(cls, path: Path, layout: str | None, key: str | None) -> ArraySource:
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                if key is not None:
                    raise SpecschedError(f"{path} is a .npy file: drop key={key!r}")
                with open(path, "rb") as f:
                    shape, fortran, dtype = _npy_header(f)
                    offset = f.tell()
                _check_length(path, shape, dtype, offset, path.stat().st_size)
                return cls(
                    str(path),
                    shape,
                    dtype,
                    layout,
                    array=np.load(path, mmap_mode="r") if fortran else None,
                    path=None if fortran else str(path),
                    offset=offset,
                )
            if suffix == ".npz":
                return cls._open_npz(path, layout, key)
        except SpecschedError:
            raise
        except Exception as exc:
            raise SpecschedError(
                f"cannot read {path} ({unreadable_reason(exc)}): give a .npy or .npz file written by numpy"
            ) from None
        raise SpecschedError(f"do not know how to read {path}: give a .npy or .npz array")

    @classmethod
    def _open_npz(cls, path: Path, layout: str | None, key: str | None) -> ArraySource:
        with zipfile.ZipFile(path) as z:
            names = [n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")]
            if key is None:
                if len(names) != 1:
                    raise SpecschedError(
                        f"{path} holds {len(names)} arrays ({', '.join(names)}): pick one with "
                        "key=NAME, or save the samples alone"
                    )
                key = names[0]
            if key not in names:
                raise SpecschedError(
                    f"{path} has no array {key!r} (arrays: {', '.join(names)}): pass one of them"
                )
            info = z.getinfo(key + ".npy")
            name = f"{path}[{key}]" if len(names) > 1 else str(path)
            if info.compress_type == zipfile.ZIP_STORED:
                with open(path, "rb") as f:
                    f.seek(info.header_offset)
                    local = f.read(30)
                    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                    data_start = start + int.from_bytes(local[28:30], "little")
                    f.seek(data_start)
                    shape, fortran, dtype = _npy_header(f)
                    offset = f.tell()
                _check_length(
                    path, shape, dtype, offset - data_start, info.file_size, f"{path}[{key}]"
                )
                if not fortran:
                    return cls(name, shape, dtype, layout, path=str(path), offset=offset, key=key)
        with np.load(path, allow_pickle=False) as npz:
            arr = npz[key]
        return cls(name, arr.shape, arr.dtype, layout, array=arr, key=key)

    @property
    def n_items(self) -> int:
        return int(self.shape[0])

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if self.array is not None:
            return self.array[start:stop]
        row = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        return np.memmap(
            self.path,
            dtype=self.dtype,
            mode="r",
            offset=self.offset + start * row,
            shape=(stop - start, *self.shape[1:]),
        )

    def read(self, start, stop, *, batch_size, sample_shape=None):
        stop = self.n_items if stop is None else min(stop, self.n_items)
        for i in range(start, stop, batch_size):
            rows = self._rows(i, min(i + batch_size, stop))
            try:
                x, scaling = to_float(as_channels_first(rows, self.layout))  # type: ignore[arg-type]
            except OSError as exc:  # the file went away or shrank under us
                raise SpecschedError(
                    f"cannot read {self.name} ({unreadable_reason(exc)})"
                ) from None
            if sample_shape is not None and x.shape[1:] != tuple(sample_shape):
                raise SpecschedError(  # pragma: no cover - one array has one shape
                    f"{self.name} gives samples of shape {x.shape[1:]}, expected {sample_shape}"
                )
            yield Batch(x, len(rows), [], scaling)
            del rows, x  # unmap before the next window


# ------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True, eq=False)
class MapSource(ItemSource):
    """A map-style dataset: anything with ``len`` and integer indexing (a torch ``Dataset``, a list).

    Items go through :func:`to_sample`; PIL images are preprocessed like image files (size, crop,
    channels). The dataset object is shipped to worker processes, so it must pickle (torch
    datasets that hold paths do; with the ``fork`` start method local workers inherit it).
    """

    dataset: Any
    name: str = "dataset"
    layout: str | None = None
    column: str | None = None
    image_options: dict[str, Any] = field(default_factory=dict)

    shape_hint = "give samples of one shape (images: pass --size N and --channels 1 or 3)"

    @property
    def n_items(self) -> int:
        return len(self.dataset)

    def item_name(self, i: int) -> str:
        return f"{self.name}[{i}]"

    def load_item(self, i: int) -> np.ndarray:
        return to_sample(
            self.dataset[i],
            layout=self.layout,
            column=self.column,
            image_options=self.image_options,
            index=i,
        )


@dataclass(frozen=True, eq=False)
class HFDatasetSource(MapSource):
    """A Hugging Face ``datasets.Dataset`` (loaded, or a folder written by ``save_to_disk``).

    Datasets loaded from disk are memory-mapped Arrow tables that pickle by reference, so workers
    reopen the same files. Image columns (``datasets.Image``) are decoded to PIL images and
    preprocessed like image files; array columns are read in batches as numpy arrays.
    """

    path: str | None = None

    @classmethod
    def open(
        cls,
        data: Any,
        *,
        column: str | None = None,
        layout: str | None = None,
        image_options: dict[str, Any] | None = None,
    ) -> HFDatasetSource:
        """A source over ``data``: a ``datasets.Dataset`` or the folder it was saved to."""
        import datasets

        path = None
        if isinstance(data, str | Path):
            path = str(data)
            try:
                data = datasets.load_from_disk(path)
            except Exception as exc:
                raise SpecschedError(
                    f"cannot load a Hugging Face dataset from {path} ({unreadable_reason(exc)}): give a "
                    "folder written by Dataset.save_to_disk"
                ) from None
        if isinstance(data, datasets.DatasetDict):
            splits = ", ".join(data)
            raise SpecschedError(
                f"{path or 'the dataset'} holds several splits ({splits}): pick one, e.g. "
                f"{Path(path or 'DIR') / next(iter(data))} or dataset['{next(iter(data))}']"
            )
        if not isinstance(data, datasets.Dataset):
            raise SpecschedError(  # pragma: no cover - dispatch sends only Datasets here
                f"expected a datasets.Dataset, got {type(data).__name__}"
            )
        columns = list(data.column_names)
        if column is None:
            images = [c for c in columns if isinstance(data.features[c], datasets.Image)]
            if len(columns) == 1 or len(images) == 1:
                column = columns[0] if len(columns) == 1 else images[0]
            else:
                raise SpecschedError(
                    f"the dataset has columns {', '.join(columns)}: pick the samples with "
                    "column=NAME (--column NAME)"
                )
        if column not in columns:
            raise SpecschedError(
                f"the dataset has no column {column!r} (columns: {', '.join(columns)}): "
                "pass one of them with --column"
            )
        data = data.select_columns([column])
        name = path or f"dataset[{column}]"
        return cls(data, name, layout, column, dict(image_options or {}), path=path)

    @property
    def _is_image(self) -> bool:
        import datasets

        return isinstance(self.dataset.features[self.column], datasets.Image)

    def item_name(self, i: int) -> str:
        return f"{self.name} row {i}"

    def read(self, start, stop, *, batch_size, sample_shape=None):
        if self._is_image:  # decoded one row at a time, so one bad image is skipped alone
            yield from super().read(start, stop, batch_size=batch_size, sample_shape=sample_shape)
            return
        stop = self.n_items if stop is None else stop
        # The numpy format casts floats to float32 and ints to int64 unless told the dtype.
        table = self.dataset.with_format(
            "numpy", dtype=_leaf_dtype(self.dataset.features[self.column])
        )
        for i in range(start, stop, batch_size):
            rows = table[i : min(i + batch_size, stop)][self.column]
            if isinstance(rows, np.ndarray) and rows.dtype != object:
                x, scaling = _float_samples(
                    rows, self.layout, sample_shape, f"{self.name} rows {i}.. give", self.shape_hint
                )
                sample_shape = x.shape[1:]
                yield Batch(x, len(rows), [], scaling)
            else:  # ragged rows: one at a time, with the per-item checks
                yield from super().read(
                    i, min(i + batch_size, stop), batch_size=batch_size, sample_shape=sample_shape
                )


def _float_samples(
    arr: np.ndarray, layout: str | None, sample_shape: Any, what: str, hint: str
) -> tuple[np.ndarray, str]:
    """A batch ``arr`` as floats, channels first, checked against the shape of earlier samples.

    ``what`` begins the error message (``"<what> samples of shape ..."``), ``hint`` ends it.
    """
    x, scaling = to_float(as_channels_first(arr, layout))  # type: ignore[arg-type]
    if sample_shape is not None and x.shape[1:] != tuple(sample_shape):
        raise SpecschedError(
            f"{what} samples of shape {x.shape[1:]}, earlier ones {tuple(sample_shape)}: {hint}"
        )
    return x, scaling


def _leaf_dtype(feature: Any) -> np.dtype | None:
    """The numpy dtype of the numbers inside a ``datasets`` feature (lists, arrays, values)."""
    while not hasattr(feature, "dtype") and hasattr(feature, "feature"):
        feature = feature.feature  # List / Sequence / LargeList
    dtype = getattr(feature, "dtype", None)
    try:
        return None if dtype is None else np.dtype(dtype)
    except TypeError:
        return None


@dataclass(frozen=True, eq=False)
class IterableSource(Source):
    """A one-pass iterable of batches (a torch ``DataLoader``, a generator of arrays).

    Each element is a batch of samples in a layout of :meth:`specsched.Spectrum.from_array`
    (``(n, C, H, W)``, ...), or a tuple whose first element is (a ``DataLoader``'s
    ``(images, labels)``). It can be read once, in one process: no workers, no Dask. ``stop``
    counts samples here (``limit``).
    """

    iterable: Iterable[Any]
    name: str = "iterable"
    layout: str | None = None

    def read(self, start, stop, *, batch_size, sample_shape=None):
        if start:
            raise SpecschedError(  # pragma: no cover - the estimator reads iterables from 0
                "an iterable can only be read from the start"
            )
        seen = 0
        for k, obj in enumerate(self.iterable):
            if stop is not None and seen >= stop:
                return
            if isinstance(obj, tuple | list) and obj and not np.isscalar(obj[0]):
                obj = obj[0]
            obj = to_numpy(obj)
            arr = np.asarray(obj)
            if arr.dtype == object or arr.ndim < 2:
                raise SpecschedError(
                    f"element {k} of the iterable has shape {arr.shape}: iterables must yield "
                    "batches of samples (n, ...), e.g. a DataLoader's"
                )
            if stop is not None:
                arr = arr[: stop - seen]
            x, scaling = _float_samples(
                arr,
                self.layout,
                sample_shape,
                f"element {k} of the iterable holds",
                "give samples of one shape",
            )
            sample_shape = x.shape[1:]
            seen += len(x)
            yield Batch(x, len(x), [], scaling)
