"""The report's figures, drawn from a run's tasks, metrics and events tables.

One module per kind of figure: :mod:`~sim.report.plots.axes` (event kinds,
the time axis and the helpers every figure shares),
:mod:`~sim.report.plots.timeseries` (one table-driven time-series figure),
:mod:`~sim.report.plots.distributions`, :mod:`~sim.report.plots.timeline`,
:mod:`~sim.report.plots.cost` and :mod:`~sim.report.plots.traffic`. This
package lists them all in :data:`FIGURES`, which the report draws in order.
Saving a figure with ``fig.savefig(path_or_buffer, format="png")`` uses the
Agg renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sim.report.plots.axes import (
    ALERT_EVENT,
    SCALE_EVENT,
    SEVERITY_COLOURS,
    TimeAxis,
    event_group,
    parse_detail,
    pick_replication,
    time_axis,
)
from sim.report.plots.cost import cost_figure, cost_lines
from sim.report.plots.distributions import categories_figure, latency_cdf_figure, warm_tasks
from sim.report.plots.timeline import (
    MAX_SCALE_LABELS,
    AlertSpan,
    ScaleMark,
    alert_spans,
    scale_marks,
    timeline_figure,
)
from sim.report.plots.timeseries import (
    active_agents_figure,
    latency_figure,
    queue_depth_figure,
    throughput_figure,
    zone_health_figure,
)
from sim.report.plots.traffic import control_traffic_figure, coordinators_figure

__all__ = [
    "ALERT_EVENT",
    "FIGURES",
    "MAX_SCALE_LABELS",
    "SCALE_EVENT",
    "SEVERITY_COLOURS",
    "AlertSpan",
    "ScaleMark",
    "TimeAxis",
    "active_agents_figure",
    "alert_spans",
    "all_figures",
    "categories_figure",
    "control_traffic_figure",
    "coordinators_figure",
    "cost_figure",
    "cost_lines",
    "event_group",
    "latency_cdf_figure",
    "latency_figure",
    "parse_detail",
    "pick_replication",
    "queue_depth_figure",
    "scale_marks",
    "throughput_figure",
    "time_axis",
    "timeline_figure",
    "warm_tasks",
    "zone_health_figure",
]

#: A figure drawer: (tasks, metrics, events, summary) -> Figure.
Drawer = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Mapping[str, Any]], Figure]

#: File stem -> how to draw it from (tasks, metrics, events, summary).
FIGURES: dict[str, Drawer] = {
    "queue_depth": lambda t, m, e, s: queue_depth_figure(m, e),
    "active_agents": lambda t, m, e, s: active_agents_figure(m, e),
    "latency": lambda t, m, e, s: latency_figure(m, e),
    "throughput": lambda t, m, e, s: throughput_figure(m, e),
    "categories": lambda t, m, e, s: categories_figure(t),
    "latency_cdf": lambda t, m, e, s: latency_cdf_figure(t),
    "timeline": lambda t, m, e, s: timeline_figure(m, e),
    "cost": lambda t, m, e, s: cost_figure(m, e, s),
    "zone_health": lambda t, m, e, s: zone_health_figure(m, e),
    "control_traffic": lambda t, m, e, s: control_traffic_figure(m, e),
    "coordinators": lambda t, m, e, s: coordinators_figure(m, e),
}


def all_figures(
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    summary: Mapping[str, Any] | None = None,
) -> dict[str, Figure]:
    """Every report figure, keyed by its file stem (``queue_depth`` -> ``queue_depth.png``)."""
    info: Mapping[str, Any] = summary if summary is not None else {}
    return {name: draw(tasks, metrics, events, info) for name, draw in FIGURES.items()}
