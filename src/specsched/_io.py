"""Atomic file output: write to a temporary file beside the target, then rename.

A run that fails half-way leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import SpecschedError

__all__ = ["atomic_path", "atomic_write_text", "check_output"]


def _probe_folder(folder: Path, what: str) -> None:
    """Fail unless a file can be created in ``folder`` (tried for real, then removed)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".specsched-probe.", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SpecschedError(
            f"cannot write to the folder {folder} ({reason}) for {what}: choose another path, "
            "or make the folder writable"
        ) from None
    os.close(fd)
    os.unlink(tmp)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output(
    path: str | Path | None,
    *,
    folder: bool = False,
    inputs: tuple[str | Path | None, ...] = (),
    option: str = "--output",
) -> None:
    """Fail now, before any work, if the output ``path`` could not be written at the end.

    The one check every command that writes runs first: the target is not an existing folder
    (a file output) or file (a folder output), its folder exists (file outputs; a folder output is
    created with its parents, so its nearest existing ancestor counts) and is writable (tried
    for real), and it is none of ``inputs`` (overwriting an input would destroy it).

    Parameters
    ----------
    path : str, Path or None
        The output; None checks nothing.
    folder : bool, default False
        Whether the output is a folder (plots, the demo's files) rather than one file.
    inputs : tuple of str, Path or None
        Paths the command reads; built-in sources and None are ignored.
    option : str, default "--output"
        How the user named the output, for the message.
    """
    if path is None:
        return
    target = Path(path)
    for src in inputs:
        if src is None or (isinstance(src, str) and ":" in src and not Path(src).exists()):
            continue
        if _same_file(target, Path(src)):
            raise SpecschedError(
                f"{option} {target} is also an input ({src}): writing it would destroy the input; "
                "choose another output path"
            )
    try:
        is_dir, exists = target.is_dir(), target.exists()
    except OSError as exc:
        raise SpecschedError(
            f"{option} {target} is not a usable path ({exc.strerror or type(exc).__name__}): "
            "choose another"
        ) from None
    if folder:
        if exists and not is_dir:
            raise SpecschedError(
                f"{option} {target} is a file, not a folder: give a folder for the output files"
            )
        existing = target
        while not existing.exists():
            existing = existing.parent if str(existing.parent) else Path(".")
            if existing == existing.parent and not existing.exists():  # pragma: no cover
                break
        if not existing.is_dir():
            raise SpecschedError(
                f"{option} {target}: {existing} is a file, not a folder: choose another path"
            )
        _probe_folder(existing, f"{option} {target}")
        return
    if is_dir:
        raise SpecschedError(
            f"{option} {target} is an existing folder: give a file name (e.g. {target / 'out'}"
            f"{target.suffix or ''})"
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise SpecschedError(f"output folder {parent} {what}: create it or choose another path")
    _probe_folder(parent, f"{option} {target}")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or Path
        The final file.
    suffix : str, optional
        Suffix of the temporary file (some writers, e.g. ``np.savez``, look at it); defaults to
        the target's own suffix.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    check_output(target, option="output")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.",
            suffix=suffix if suffix is not None else target.suffix,
            dir=parent,
        )
    except OSError as exc:  # pragma: no cover - check_output has just created a file there
        raise SpecschedError(
            f"cannot write {target} ({exc.strerror}): choose another path"
        ) from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)  # mkstemp creates 0600; give the file the usual permissions
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
