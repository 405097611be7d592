"""Errors a user can cause.

Every error that bad input can trigger is a :class:`SpecschedError`. Its message is one line that
names the problem and the fix; the command-line tool prints it and exits with status 2.
"""

from __future__ import annotations

__all__ = ["SpecschedError"]


class SpecschedError(ValueError):
    """Bad input: the message names the problem and how to fix it."""
