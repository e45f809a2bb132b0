"""The autoscaler's view: the average response it saw at each evaluation, and what it asked.

The agents panel marks where a run scaled; it cannot show why a run did not.
This panel draws, from ``scaling.parquet``, the number the spec's step
policy compares with its 5 s threshold — the average response over the
autoscaler's metric window, at every evaluation, holds included — with a
triangle where an evaluation asked for a change (hover reads its reason and
what it saw). Overlaid in a comparison, one line per run, it shows where two
runs' autoscalers saw the same load and decided alike, and where one crossed
a threshold the other stayed under: a knife edge, or a drift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.report.interactive import RUN_COLOURS, Mark, Panel, Series
from sim.report.plots import TimeAxis, pick_replication, time_axis

__all__ = ["SCALING_PANEL", "scaling_panel"]

#: The panel's id, heading and caption (a run report's section, as the opt-in panels').
SCALING_PANEL = (
    "panel-autoscaler",
    "What the autoscaler saw",
    "The average response (arrival to start) over the autoscaler's metric window at each "
    "evaluation, holds included: the number the step policy compares with its threshold "
    "(5 s in the spec). Triangles: evaluations that asked for a change; hover reads the "
    "reason and the queue it saw.",
)


def scaling_panel(runs: Sequence[tuple[str, pd.DataFrame | None]], end_s: float) -> Panel | None:
    """One line per run with evaluations (replication 0), each in its run's colour.

    *runs* is (name, ``scaling.parquet`` table or None) in page order; None
    where no run has a table (autoscaling off, or runs written before it).
    """
    axis = time_axis(end_s)
    series: list[Series] = []
    marks: list[Mark] = []
    for i, (name, table) in enumerate(runs):
        rows = _one_replication(table)
        if rows.empty:
            continue
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        x = axis.convert(rows["time_s"]).tolist()
        response = rows["avg_response_time_s"].to_numpy(dtype=float)
        series.append(Series(f"{name}: response seen", x, response.tolist(), colour, group=name))
        mark = _changes(rows, axis, name, colour)
        if mark is not None:
            marks.append(mark)
    if not series:
        return None
    panel_id, title, _ = SCALING_PANEL
    return Panel(
        panel_id=panel_id,
        title=title,
        x_label=axis.label,
        y_label="seconds",
        series=series,
        marks=marks,
        x_range=(0.0, max(end_s, 1.0) / axis.divisor),
    )


def _one_replication(table: pd.DataFrame | None) -> pd.DataFrame:
    rep = pick_replication(table)
    if table is None or rep is None:
        return pd.DataFrame()
    rows = table.loc[table["replication"] == rep]
    return rows.sort_values("time_s", kind="stable")


def _changes(rows: pd.DataFrame, axis: TimeAxis, name: str, colour: str) -> Mark | None:
    """A triangle at each evaluation that asked for a change (up or down by its sign)."""
    asked = rows.loc[rows["asked"] != 0]
    if asked.empty:
        return None
    texts = [
        f"{name}: asked {int(a):+d} at {float(t):.0f} s (queue {q:.0f}): {reason}"
        for t, a, q, reason in zip(
            asked["time_s"], asked["asked"], asked["queue_depth"], asked["reason"], strict=True
        )
    ]
    y = np.nan_to_num(asked["avg_response_time_s"].to_numpy(dtype=float), nan=0.0)
    x = axis.convert(asked["time_s"]).tolist()
    return Mark(f"{name}: asked", x, y.tolist(), texts, colour, "triangle-up", group=name)
