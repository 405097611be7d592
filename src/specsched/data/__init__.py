"""Data sources: built-in datasets and loaders that feed the spectrum estimator.

``load(source, **options)`` turns a source string into an array of samples:

- ``builtin:photos``, ``builtin:digits``, ``builtin:faces``, ``synthetic:powerlaw``
  (see :mod:`specsched.data.builtin`);
- a path to a ``.npy`` file (memory-mapped) or an ``.npz`` file (its only array, or ``key=``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecschedError

__all__ = ["load"]


def load(source: str, **options: Any) -> np.ndarray:
    """Load the samples of ``source`` as an array (layout as stored)."""
    from .builtin import is_builtin, load_builtin

    if is_builtin(source):
        return load_builtin(source, **options)
    path = Path(source)
    if not path.exists():
        raise SpecschedError(
            f"source {source!r} does not exist: give a path to data or a built-in source "
            "such as builtin:photos"
        )
    if options:
        raise SpecschedError(
            f"options {', '.join(sorted(options))} do not apply to array files: drop them"
        )
    return _load_array_file(path)


def _load_array_file(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise SpecschedError(
                        f"{path} holds {len(z.files)} arrays ({', '.join(z.files)}): save the "
                        "samples alone, or as a .npy file"
                    )
                return z[z.files[0]]
    except SpecschedError:
        raise
    except Exception as exc:
        raise SpecschedError(f"cannot read {path} ({type(exc).__name__}: {exc})") from None
    raise SpecschedError(
        f"do not know how to read {path}: give a .npy or .npz array or a built-in source"
    )
