"""The time-series figures, drawn by one function from a table of what each shows.

Queue depth, agents, response time and throughput differ only in their
title, the metric columns they draw and the lines' style; :data:`TIMESERIES`
says that for each, and :func:`timeseries_figure` draws any of them: the
lines of the shown replication's global samples, optionally one line per
zone, the warm-up shaded and the run's incidents marked. Zone health (a share
per zone against two thresholds) is drawn apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.report.plots.axes import (
    PALETTE,
    TIMESERIES_SIZE,
    WIDE_SIZE,
    decorate_time_axes,
    finish_legend,
    global_rows,
    new_timeseries,
    no_data,
    plot_column,
    shade_warmup,
    timeseries_frames,
)


@dataclass(frozen=True)
class Line:
    """One metric column drawn as a line: its legend label and matplotlib style."""

    column: str
    label: str
    style: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeSeriesSpec:
    """A time-series figure: title, y label, lines, size, and a column drawn per zone too."""

    title: str
    y_label: str
    lines: tuple[Line, ...]
    size: tuple[float, float] = TIMESERIES_SIZE
    per_zone: str | None = None


#: Figure stem -> what it shows.
TIMESERIES: dict[str, TimeSeriesSpec] = {
    "queue_depth": TimeSeriesSpec(
        "Queue depth",
        "tasks queued",
        (Line("queue_depth", "global", {"color": "black", "lw": 1.6}),),
        per_zone="queue_depth",
    ),
    "active_agents": TimeSeriesSpec(
        "Agents",
        "agents",
        (
            Line("total_agents", "total", {"color": "#555555", "lw": 1.2, "ls": "--", "zorder": 3}),
            Line("active_agents", "active", {"color": "#1f77b4", "lw": 1.8}),
            Line("busy_agents", "busy", {"color": "#ff7f0e", "lw": 1.0}),
        ),
    ),
    "latency": TimeSeriesSpec(
        "Response time: task latency and wait",
        "latency (s)",
        (
            Line("p99_latency_s", "p99", {"color": "#d62728", "lw": 1.4}),
            Line("p50_latency_s", "p50", {"color": "#1f77b4", "lw": 1.4}),
            Line("p99_wait_s", "p99 wait", {"color": "#ff7f0e", "lw": 1.2, "ls": "--"}),
        ),
        size=WIDE_SIZE,
    ),
    "throughput": TimeSeriesSpec(
        "Throughput",
        "tasks / min",
        (Line("throughput_per_min", "completed / min", {"color": "#2ca02c", "lw": 1.4}),),
    ),
}


def timeseries_figure(
    spec: TimeSeriesSpec, metrics: pd.DataFrame, events: pd.DataFrame | None = None
) -> Figure:
    """Draw *spec* from the shown replication's samples ("no data" when no line has any)."""
    m, e, axis = timeseries_frames(metrics, events)
    fig, ax = new_timeseries(spec.title, spec.size)
    rows = global_rows(m)
    drawn = False
    for line in spec.lines:
        drawn |= plot_column(ax, rows, line.column, axis, label=line.label, **line.style)
    if spec.per_zone is not None and not m.empty and "level" in m.columns:
        zones = m.loc[m["level"] == "zone"]
        for i, (zone, group) in enumerate(sorted(zones.groupby("id"), key=lambda kv: str(kv[0]))):
            drawn |= plot_column(
                ax,
                group.sort_values("time_s", kind="stable"),
                spec.per_zone,
                axis,
                color=PALETTE[i % len(PALETTE)],
                lw=1.0,
                label=f"zone {zone}",
            )
    if not drawn:
        no_data(ax)
        return fig
    ax.set_ylabel(spec.y_label)
    ax.set_ylim(bottom=0.0)
    decorate_time_axes(ax, e, axis)
    finish_legend(ax)
    return fig


def queue_depth_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Tasks waiting over time: the fleet-wide queue and one line per zone."""
    return timeseries_figure(TIMESERIES["queue_depth"], metrics, events)


def active_agents_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Fleet size over time: total agents, active (not offline or failed) and busy."""
    return timeseries_figure(TIMESERIES["active_agents"], metrics, events)


def latency_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """p50 and p99 over time: end-to-end latency, and wait (the SLO's response time)."""
    return timeseries_figure(TIMESERIES["latency"], metrics, events)


def throughput_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Completed tasks per minute over time."""
    return timeseries_figure(TIMESERIES["throughput"], metrics, events)


def zone_health_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Per zone, the share of its agents online (active / total, %) over time."""
    m, e, axis = timeseries_frames(metrics, events)
    fig = Figure(figsize=(5.6, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Zone health over time", fontsize=10, loc="left")
    zones = (
        m.loc[m["level"] == "zone"]
        if not m.empty and {"level", "id"} <= set(m.columns)
        else pd.DataFrame()
    )
    drawn = False
    if not zones.empty and {"active_agents", "total_agents"} <= set(zones.columns):
        for i, (zone, rows) in enumerate(sorted(zones.groupby("id"), key=lambda kv: str(kv[0]))):
            rows = rows.sort_values("time_s", kind="stable")
            active = pd.to_numeric(rows["active_agents"], errors="coerce").to_numpy(dtype=float)
            total = pd.to_numeric(rows["total_agents"], errors="coerce").to_numpy(dtype=float)
            share = np.divide(
                100.0 * active, total, out=np.full(total.size, np.nan), where=total > 0
            )
            if not np.isfinite(share).any():
                continue
            ax.plot(
                axis.convert(rows["time_s"]),
                share,
                color=PALETTE[i % len(PALETTE)],
                lw=1.3,
                label=str(zone),
            )
            drawn = True
    if not drawn:
        no_data(ax, "no per-zone samples")
        return fig
    ax.axhline(95.0, color="#2ca02c", lw=0.7, ls=":")
    ax.axhline(80.0, color="#ff7f0e", lw=0.7, ls=":")
    ax.set_ylim(0.0, 105.0)
    ax.set_ylabel("agents online (%)", fontsize=8)
    ax.tick_params(labelsize=8)
    shade_warmup(ax, e, axis, legend=False)
    ax.set_xlabel(axis.label, fontsize=8)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncols=min(4, len(ax.get_lines())), title_fontsize=7)
    return fig
