"""The cost figure: cumulative cost of the fleet, its hourly rate, the summary's costs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.report.plots.axes import (
    TimeAxis,
    finite,
    global_rows,
    new_timeseries,
    no_data,
    plot_column,
    shade_warmup,
    timeseries_frames,
)


def cost_lines(summary: Mapping[str, Any] | None) -> list[str]:
    """The summary's cost figures as short lines ("$113.41 per day", ...)."""
    cost = summary.get("cost") if summary is not None else None
    if not isinstance(cost, Mapping):
        return []
    lines = []
    for key, suffix in (
        ("usd_total", "total"),
        ("usd_per_day", "per day"),
        ("usd_per_1k_tasks", "per 1k tasks"),
    ):
        value = finite(cost.get(key))
        if value is not None:
            lines.append(f"${value:,.2f} {suffix}")
    return lines


def cost_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Figure:
    """Cumulative cost over time (``cost_usd``) and its hourly rate, with the summary's costs."""
    m, e, axis = timeseries_frames(metrics, events)
    fig, ax = new_timeseries("Cost", (14.0, 3.0))
    rows = global_rows(m)
    drawn = plot_column(
        ax, rows, "cost_usd", axis, color="#2ca02c", lw=1.6, label="cumulative cost"
    )
    text = "\n".join(cost_lines(summary))
    if not drawn:
        message = "no cost_usd column in this run's metrics"
        no_data(ax, f"{message}\n\n{text}" if text else message)
        return fig
    values = pd.to_numeric(rows["cost_usd"], errors="coerce").to_numpy(dtype=float)
    times = rows["time_s"].to_numpy(dtype=float)
    ok = np.isfinite(values) & np.isfinite(times)
    if ok.sum() >= 2:
        _draw_rate(ax, times[ok], values[ok], axis)
    ax.set_ylabel("cumulative cost ($)")
    ax.set_ylim(bottom=0.0)
    if text:
        _draw_cost_box(ax, text)
    shade_warmup(ax, e, axis)
    ax.set_xlabel(axis.label)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    return fig


def _draw_rate(
    ax: Axes, times: npt.NDArray[np.float64], values: npt.NDArray[np.float64], axis: TimeAxis
) -> None:
    """The hourly rate between samples on a twin axis, with one legend for both lines."""
    dt = np.diff(times)
    rate = np.divide(np.diff(values) * 3600.0, dt, out=np.full(dt.size, np.nan), where=dt > 0)
    twin = ax.twinx()
    twin.plot(
        axis.convert(times[1:]),
        rate,
        color="#9467bd",
        lw=1.0,
        ls="--",
        label="rate ($/h)",
    )
    twin.set_ylabel("$ / h")
    finite_rate = rate[np.isfinite(rate)]
    top = float(finite_rate.max()) if finite_rate.size else 0.0
    twin.set_ylim(0.0, top * 1.2 if top > 0 else 1.0)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(
        handles + more,
        labels + more_labels,
        fontsize=8,
        loc="lower right",
    )


def _draw_cost_box(ax: Axes, text: str) -> None:
    """The summary's costs in a box at the top left."""
    ax.text(
        0.01,
        0.97,
        text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#cccccc"},
    )
