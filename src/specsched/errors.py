"""Errors a user can cause.

Every error that bad input can trigger is a :class:`SpecschedError`. Its message is one line that
names the problem and the fix; the command-line tool prints it and exits with status 2.
"""

from __future__ import annotations

import numbers

__all__ = ["ItemError", "SpecschedError", "check_int"]


class SpecschedError(ValueError):
    """Bad input: the message names the problem and how to fix it."""


class ItemError(SpecschedError):
    """One item of a data set (a file, a row) cannot be used; the sources skip and count it
    like an unreadable file (or stop on it with ``strict=True``)."""


def check_int(name: str, value: object, minimum: int = 1, hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) of at least ``minimum``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : object
        What the user gave.
    minimum : int, default 1
        The smallest value allowed.
    hint : str, default ""
        Appended to the message (e.g. the option that sets it).

    Returns
    -------
    int

    Raises
    ------
    SpecschedError
        If ``value`` is not an integer (``True`` and ``2.0`` are not) or is below ``minimum``.

    Examples
    --------
    >>> check_int("steps", 10)
    10
    >>> check_int("steps", 2.5)
    Traceback (most recent call last):
    ...
    specsched.errors.SpecschedError: steps must be a positive integer (got 2.5)
    """
    want = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecschedError(f"{name} must be {want} (got {value!r}){hint}")
    if value < minimum:
        raise SpecschedError(f"{name}={value} is too small: give {want}{hint}")
    return int(value)
