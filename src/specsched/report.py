"""The results table of ``fit``, ``compare`` and the demo: one row per schedule, built once.

Rows have the same keys in Python (:meth:`specsched.FitResult.table`), in the ``--json`` output and
in the schedule file's metadata: ``schedule``, ``w2``, ``kl_gen_data``, ``kl_data_gen`` (the
figure names of :class:`~specsched.response.Response`), ``ratio_to_best_heuristic`` and
``moved_levels``. :func:`comparison_table` draws them for the terminal, and :func:`moved_note`
says which schedules the model's timesteps do not realise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from .divergence import Objective
    from .response import Response
    from .schedules import Schedule

__all__ = ["comparison_rows", "comparison_table", "moved_note"]


def comparison_rows(
    rows: Iterable[tuple[Schedule, Response]],
    objective: Objective,
    best: float,
    *,
    names: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per ``(schedule, response)``: the three objectives and the ratio to ``best``.

    Parameters
    ----------
    rows : iterable of (Schedule, Response)
        The schedules and their responses, in the order of the table.
    objective : {"w2", "kl", "kl-data"}
        The objective of the ratio column.
    best : float
        The best heuristic's value of ``objective``; NaN (no heuristic) or 0 gives NaN ratios.
    names : iterable of str, optional
        The rows' labels; defaults to the schedules' names.

    Returns
    -------
    list of dict
        ``schedule``, ``w2``, ``kl_gen_data``, ``kl_data_gen``, ``ratio_to_best_heuristic``, and
        ``moved_levels``: how many of a heuristic's levels were moved off their nearest timestep
        to keep the timesteps distinct (its ``meta["moved_levels"]``; 0 for any other schedule).
    """
    rows = list(rows)
    labels = [s.name for s, _ in rows] if names is None else list(names)
    return [
        {
            "schedule": label,
            "w2": r.w2,
            "kl_gen_data": r.kl_gen_data,
            "kl_data_gen": r.kl_data_gen,
            "ratio_to_best_heuristic": r.value(objective) / best if best else math.nan,
            "moved_levels": int(s.meta.get("moved_levels", 0)),
        }
        for label, (s, r) in zip(labels, rows, strict=True)
    ]


def comparison_table(
    rows: list[dict[str, Any]], objective: str, title: str, *, highlight: str | None = "spectral"
) -> Table:
    """The rows of :func:`comparison_rows` as a terminal table (4 significant digits).

    Parameters
    ----------
    rows : list of dict
    objective : str
        Names the ratio column.
    title : str
    highlight : str or None, default "spectral"
        The first row is drawn in bold green when its schedule has this name; None: always.
    """
    from rich.table import Table

    table = Table(title=title)
    table.add_column("schedule", no_wrap=True)
    for col in ("W2^2", "KL(gen||data)", "KL(data||gen)", f"{objective} / best heuristic"):
        table.add_column(col, justify="right")
    for i, row in enumerate(rows):
        first = i == 0 and highlight in (None, row["schedule"])
        table.add_row(
            row["schedule"],
            *(f"{row[k]:.4g}" for k in ("w2", "kl_gen_data", "kl_data_gen")),
            f"{row['ratio_to_best_heuristic']:.3f}",
            style="bold green" if first else None,
        )
    return table


def moved_note(rows: Iterable[dict[str, Any]]) -> str | None:
    """The line that names the rows of :func:`comparison_rows` whose levels the model's
    timesteps do not realise (``moved_levels`` > 0), or None when there are none."""
    moved = [r for r in rows if r.get("moved_levels")]
    if not moved:
        return None
    which = ", ".join(f"{r['schedule']} ({r['moved_levels']} levels moved)" for r in moved)
    return (
        f"the model's timesteps do not realise the spacing of {which}: where the model's "
        "log-SNR changes by more than the family's step within one timestep, levels were moved "
        "off their nearest timestep to keep the timesteps distinct"
    )
