"""Report figures for the control traffic and the coordinators' load.

What the hierarchy costs to run: messages per second by type (the spec's
TASK_ASSIGN ... ESCALATION, heartbeats and status polls), and how busy the
chief, the busiest zone coordinator and the busiest team lead are.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from sim.report.plots.axes import (
    decorate_time_axes,
    finish_legend,
    new_timeseries,
    no_data,
    timeseries_frames,
)


def control_traffic_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Messages per second by type over time (all paths together)."""
    m, e, axis = timeseries_frames(metrics, events)
    fig, ax = new_timeseries("Control traffic")
    rows = m[m["level"] == "message"] if "level" in m.columns else m
    if rows.empty:
        no_data(ax)
        return fig
    frame = rows.assign(type=rows["id"].str.split(":").str[0])
    by_type = frame.groupby(["time_s", "type"])["messages"].sum().unstack("type").sort_index()
    span = by_type.index.to_series().diff().fillna(by_type.index.to_series().iloc[0])
    rates = by_type.div(span.where(span > 0), axis=0)
    drawn = False
    for name in rates.columns:
        series = rates[name]
        if series.fillna(0).max() <= 0:
            continue
        ax.plot(axis.convert(series.index.to_series()), series.to_numpy(), lw=1.2, label=name)
        drawn = True
    if not drawn:
        no_data(ax)
        return fig
    ax.set_yscale("log")
    ax.set_ylabel("messages / s")
    decorate_time_axes(ax, e, axis)
    finish_legend(ax)
    return fig


def coordinators_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Utilisation of the chief and of the busiest zone coordinator and team lead."""
    m, e, axis = timeseries_frames(metrics, events)
    fig, ax = new_timeseries("Coordinator load")
    rows = m[m["level"] == "coordinator"] if "level" in m.columns else m
    if rows.empty:
        no_data(ax)
        return fig
    for role, label in (("chief", "chief"), ("zone", "zone coordinator"), ("team_lead", "lead")):
        of_role = rows[rows["status"] == role]
        if of_role.empty:
            continue
        busiest = of_role.groupby("id")["utilization"].mean().idxmax()
        line = of_role[of_role["id"] == busiest].sort_values("time_s")
        name = label if role == "chief" else f"busiest {label} ({busiest})"
        ax.plot(axis.convert(line["time_s"]), line["utilization"], lw=1.3, label=name)
    peak = float(rows["utilization"].max())
    if peak > 0.5:
        ax.axhline(1.0, color="#d62728", lw=0.8, ls="--", label="saturated")
    ax.set_ylabel("utilisation")
    ax.set_ylim(0.0, max(1.1 * peak, 0.01))
    decorate_time_axes(ax, e, axis)
    finish_legend(ax)
    return fig
