"""Errors a user can cause.

Every error that bad input can trigger is a :class:`SpecschedError`. Its message is one line that
names the problem and the fix; the command-line tool prints it and exits with status 2.
"""

from __future__ import annotations

__all__ = ["ItemError", "SpecschedError"]


class SpecschedError(ValueError):
    """Bad input: the message names the problem and how to fix it."""


class ItemError(SpecschedError):
    """One item of a data set (a file, a row) cannot be used; the sources skip and count it
    like an unreadable file (or stop on it with ``strict=True``)."""
