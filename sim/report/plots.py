"""The report's figures, drawn from a run's tasks, metrics and events tables.

Every function returns a fresh :class:`matplotlib.figure.Figure` built without
pyplot: no global figure registry, no interactive backend, so figures can be
made from worker threads and several reports can be written at once. Saving a
figure with ``fig.savefig(path_or_buffer, format="png")`` uses the Agg
renderer.

When the frames hold several replications, the time-series figures show one
of them (replication 0 if present, else the lowest number) rather than an
average that no single run ever had. Task figures count only *warm* rows, the
task attempts that arrived after the warm-up, as the statistics do.

Time-series figures mark the run's notable events (every kind except
``run_start``, ``run_end`` and ``warmup_end``) with vertical lines and shade
the warm-up period. Time is shown in hours when the run is longer than two
hours, otherwise in minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "FIGURES",
    "TimeAxis",
    "active_agents_figure",
    "all_figures",
    "categories_figure",
    "latency_cdf_figure",
    "latency_figure",
    "pick_replication",
    "queue_depth_figure",
    "throughput_figure",
    "time_axis",
    "warm_tasks",
]

#: Event kinds that frame the run rather than happen in it; they are not marked.
UNMARKED_EVENTS = frozenset({"run_start", "run_end", "warmup_end"})
#: Past this many marked events the lines lose their text labels and get a legend by kind.
MAX_LABELLED_EVENTS = 12
#: At most this many event lines are drawn on one figure.
MAX_EVENT_LINES = 300

_TIMESERIES_SIZE = (9.0, 3.4)
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_EVENT_COLOURS = {
    "agent_failed": "#d62728",
    "election": "#9467bd",
    "alert": "#ff7f0e",
    "scale_up": "#2ca02c",
    "scale_down": "#17becf",
}


@dataclass(frozen=True)
class TimeAxis:
    """How simulated seconds are shown: divide by ``divisor`` and label with ``unit``."""

    divisor: float
    unit: str

    def convert(self, seconds: pd.Series | Sequence[float]) -> npt.NDArray[np.float64]:
        """Seconds to display units, as a float array."""
        return np.asarray(seconds, dtype=np.float64) / self.divisor

    @property
    def label(self) -> str:
        """The x-axis label."""
        return f"simulated time ({self.unit})"


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def pick_replication(frame: pd.DataFrame | None) -> int | None:
    """The replication a figure shows: 0 when present, else the lowest; None if there is none."""
    if _empty(frame) or frame is None or "replication" not in frame.columns:
        return None
    reps = pd.unique(frame["replication"].dropna())
    if len(reps) == 0:
        return None
    values = sorted(int(r) for r in reps)
    return 0 if 0 in values else values[0]


def _only(frame: pd.DataFrame | None, replication: int | None) -> pd.DataFrame:
    """Rows of ``frame`` for one replication (all rows when the frame has no such column)."""
    if frame is None:
        return pd.DataFrame()
    if replication is None or "replication" not in frame.columns:
        return frame
    return frame.loc[frame["replication"] == replication]


def _run_seconds(metrics: pd.DataFrame, events: pd.DataFrame) -> float:
    """Length of the run: the last metric sample or the run_end event, whichever is later."""
    end = 0.0
    if not metrics.empty and "time_s" in metrics.columns:
        last = metrics["time_s"].max()
        if pd.notna(last):
            end = max(end, float(last))
    if not events.empty and {"time_s", "kind"} <= set(events.columns):
        last = events["time_s"].max()
        if pd.notna(last):
            end = max(end, float(last))
    return end


def time_axis(run_seconds: float) -> TimeAxis:
    """Hours for runs longer than two hours, minutes otherwise."""
    if run_seconds > 2 * 3600.0:
        return TimeAxis(3600.0, "h")
    return TimeAxis(60.0, "min")


def _global_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty or "level" not in metrics.columns:
        return pd.DataFrame()
    rows = metrics.loc[metrics["level"] == "global"]
    return rows.sort_values("time_s", kind="stable")


def _warmup_end(events: pd.DataFrame) -> float | None:
    if events.empty or not {"kind", "time_s"} <= set(events.columns):
        return None
    times = events.loc[events["kind"] == "warmup_end", "time_s"].dropna()
    if times.empty:
        return None
    return float(times.min())


def _marked_events(events: pd.DataFrame) -> pd.DataFrame:
    if events.empty or not {"kind", "time_s"} <= set(events.columns):
        return pd.DataFrame()
    marked = events.loc[~events["kind"].isin(list(UNMARKED_EVENTS))]
    return marked.sort_values("time_s", kind="stable").head(MAX_EVENT_LINES)


def _event_label(kind: str, subject: object) -> str:
    """``kind`` plus the subject when both fit in a short rotated label."""
    if isinstance(subject, str) and subject and subject != "global":
        text = f"{kind} {subject}"
        if len(text) <= 22:
            return text
    return kind if len(kind) <= 22 else kind[:21] + "…"


def _decorate_time_axes(ax: Axes, events: pd.DataFrame, axis: TimeAxis) -> None:
    """Shade the warm-up, draw the event lines, label the x axis."""
    warm = _warmup_end(events)
    if warm is not None and warm > 0:
        ax.axvspan(0.0, warm / axis.divisor, color="#999999", alpha=0.15, lw=0, label="warm-up")
    marked = _marked_events(events)
    if not marked.empty:
        labelled = len(marked) <= MAX_LABELLED_EVENTS
        seen: set[str] = set()
        span = max(ax.get_xlim()[1], 1e-9)
        last_x = -math.inf
        last_side = "left"
        subjects = (
            marked["subject"] if "subject" in marked.columns else pd.Series([""] * len(marked))
        )
        for t, kind, subject in zip(marked["time_s"], marked["kind"], subjects, strict=True):
            kind_s = str(kind)
            colour = _EVENT_COLOURS.get(kind_s, "#555555")
            x = float(t) / axis.divisor
            legend = None
            if not labelled and kind_s not in seen:
                legend = kind_s
                seen.add(kind_s)
            ax.axvline(x, color=colour, lw=0.8, ls="--", alpha=0.7, label=legend)
            if labelled:
                # Labels sit left of their line; a close neighbour's goes to the right.
                side = "left" if x - last_x < 0.02 * span and last_side == "right" else "right"
                last_x, last_side = x, side
                ax.text(
                    x,
                    0.98,
                    _event_label(kind_s, subject),
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    va="top",
                    ha=side,
                    fontsize=7,
                    color=colour,
                )
        if labelled:
            # Headroom so the rotated labels sit mostly above the data.
            bottom, top = ax.get_ylim()
            ax.set_ylim(bottom, top + 0.4 * (top - bottom))
    ax.set_xlabel(axis.label)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)


def _no_data(ax: Axes, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _timeseries_frames(
    metrics: pd.DataFrame | None, events: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, TimeAxis]:
    rep = pick_replication(metrics)
    m = _only(metrics, rep)
    e = _only(events, rep) if events is not None else pd.DataFrame()
    return m, e, time_axis(_run_seconds(m, e))


def _new_timeseries(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=_TIMESERIES_SIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    return fig, ax


def _plot_column(ax: Axes, rows: pd.DataFrame, column: str, axis: TimeAxis, **style: Any) -> bool:
    if rows.empty or column not in rows.columns:
        return False
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return False
    ax.plot(axis.convert(rows["time_s"]), values, **style)
    return True


def _finish_legend(ax: Axes) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def queue_depth_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Tasks waiting over time: the fleet-wide queue and one line per zone."""
    m, e, axis = _timeseries_frames(metrics, events)
    fig, ax = _new_timeseries("Queue depth")
    drawn = _plot_column(
        ax, _global_rows(m), "queue_depth", axis, color="black", lw=1.6, label="global"
    )
    if not m.empty and "level" in m.columns:
        zones = m.loc[m["level"] == "zone"]
        for i, (zone, rows) in enumerate(sorted(zones.groupby("id"), key=lambda kv: str(kv[0]))):
            drawn |= _plot_column(
                ax,
                rows.sort_values("time_s", kind="stable"),
                "queue_depth",
                axis,
                color=_PALETTE[i % len(_PALETTE)],
                lw=1.0,
                label=f"zone {zone}",
            )
    if not drawn:
        _no_data(ax)
        return fig
    ax.set_ylabel("tasks queued")
    ax.set_ylim(bottom=0.0)
    _decorate_time_axes(ax, e, axis)
    _finish_legend(ax)
    return fig


def active_agents_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Fleet size over time: total agents, active (not offline or failed) and busy."""
    m, e, axis = _timeseries_frames(metrics, events)
    fig, ax = _new_timeseries("Agents")
    rows = _global_rows(m)
    drawn = _plot_column(
        ax, rows, "total_agents", axis, color="#7f7f7f", lw=1.2, ls="--", label="total"
    )
    drawn |= _plot_column(ax, rows, "active_agents", axis, color="#1f77b4", lw=1.6, label="active")
    drawn |= _plot_column(ax, rows, "busy_agents", axis, color="#ff7f0e", lw=1.0, label="busy")
    if not drawn:
        _no_data(ax)
        return fig
    ax.set_ylabel("agents")
    ax.set_ylim(bottom=0.0)
    _decorate_time_axes(ax, e, axis)
    _finish_legend(ax)
    return fig


def latency_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """p50 and p99 over time: end-to-end latency, and wait (the SLO's response time)."""
    m, e, axis = _timeseries_frames(metrics, events)
    fig, ax = _new_timeseries("Task latency and wait")
    rows = _global_rows(m)
    drawn = _plot_column(ax, rows, "p99_latency_s", axis, color="#d62728", lw=1.4, label="p99")
    drawn |= _plot_column(ax, rows, "p50_latency_s", axis, color="#1f77b4", lw=1.4, label="p50")
    drawn |= _plot_column(
        ax, rows, "p99_wait_s", axis, color="#ff7f0e", lw=1.2, ls="--", label="p99 wait"
    )
    if not drawn:
        _no_data(ax)
        return fig
    ax.set_ylabel("latency (s)")
    ax.set_ylim(bottom=0.0)
    _decorate_time_axes(ax, e, axis)
    _finish_legend(ax)
    return fig


def throughput_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Completed tasks per minute over time."""
    m, e, axis = _timeseries_frames(metrics, events)
    fig, ax = _new_timeseries("Throughput")
    drawn = _plot_column(
        ax,
        _global_rows(m),
        "throughput_per_min",
        axis,
        color="#2ca02c",
        lw=1.4,
        label="completed / min",
    )
    if not drawn:
        _no_data(ax)
        return fig
    ax.set_ylabel("tasks / min")
    ax.set_ylim(bottom=0.0)
    _decorate_time_axes(ax, e, axis)
    _finish_legend(ax)
    return fig


def warm_tasks(tasks: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of the shown replication that arrived after the warm-up (the ones statistics use)."""
    if tasks is None or tasks.empty:
        return pd.DataFrame()
    t = _only(tasks, pick_replication(tasks))
    if "warm" in t.columns:
        t = t.loc[t["warm"].fillna(False).astype(bool)]
    return t


def _completed(tasks: pd.DataFrame) -> pd.DataFrame:
    if tasks.empty or "outcome" not in tasks.columns:
        return pd.DataFrame()
    return tasks.loc[tasks["outcome"] == "completed"]


def categories_figure(tasks: pd.DataFrame) -> Figure:
    """Completed tasks per category, as horizontal bars, largest on top."""
    done = _completed(warm_tasks(tasks))
    counts = (
        done["category"].astype(str).value_counts()
        if not done.empty and "category" in done.columns
        else pd.Series(dtype="int64")
    )
    height = max(2.4, 0.9 + 0.32 * len(counts))
    fig = Figure(figsize=(9.0, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(
        "Task distribution by category (completed, after warm-up)", fontsize=11, loc="left"
    )
    if counts.empty:
        _no_data(ax)
        return fig
    counts = counts.sort_values(ascending=True, kind="stable")
    total = float(counts.sum())
    labels = [str(c) for c in counts.index]
    positions = np.arange(len(counts))
    ax.barh(positions, counts.to_numpy(dtype=float), color="#1f77b4", height=0.7)
    ax.set_yticks(positions, labels=labels, fontsize=8)
    for y, n in zip(positions, counts.to_numpy(), strict=True):
        ax.text(
            float(n), float(y), f" {int(n):,} ({100.0 * n / total:.1f} %)", va="center", fontsize=7
        )
    ax.set_xlabel("tasks completed")
    ax.set_xlim(0.0, float(counts.max()) * 1.22)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def latency_cdf_figure(tasks: pd.DataFrame) -> Figure:
    """Empirical CDF of completed tasks' latency, with p50, p95 and p99 marked."""
    done = _completed(warm_tasks(tasks))
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Latency distribution (completed, after warm-up)", fontsize=11, loc="left")
    if done.empty or "latency_s" not in done.columns:
        _no_data(ax)
        return fig
    lat = pd.to_numeric(done["latency_s"], errors="coerce").to_numpy(dtype=float)
    lat = np.sort(lat[np.isfinite(lat)])
    if lat.size == 0:
        _no_data(ax)
        return fig
    series: list[tuple[str, np.ndarray, str]] = [("all tasks", lat, "black")]
    if "critical" in done.columns:
        crit_mask = done["critical"].fillna(False).astype(bool).to_numpy()
        raw = pd.to_numeric(done["latency_s"], errors="coerce").to_numpy(dtype=float)
        crit = np.sort(raw[crit_mask & np.isfinite(raw)])
        if 10 <= crit.size < lat.size:
            series.append(("critical", crit, "#d62728"))
    for label, values, colour in series:
        probs = np.arange(1, values.size + 1, dtype=float) / values.size
        ax.step(
            values, probs, where="post", color=colour, lw=1.3, label=f"{label} (n={values.size:,})"
        )
    positive = lat[lat > 0]
    if positive.size and positive[-1] / positive[0] > 100.0:
        ax.set_xscale("log")
    for q, style in ((0.50, ":"), (0.95, "-."), (0.99, "--")):
        x = float(np.quantile(lat, q))
        ax.axvline(x, color="#555555", ls=style, lw=0.9)
        ax.text(
            x,
            0.02,
            f" p{round(q * 100)} = {x:.3g} s",
            rotation=90,
            fontsize=7,
            va="bottom",
            ha="right",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of tasks ≤ x")
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


#: File stem -> how to draw it from (tasks, metrics, events).
FIGURES: dict[str, Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], Figure]] = {
    "queue_depth": lambda t, m, e: queue_depth_figure(m, e),
    "active_agents": lambda t, m, e: active_agents_figure(m, e),
    "latency": lambda t, m, e: latency_figure(m, e),
    "throughput": lambda t, m, e: throughput_figure(m, e),
    "categories": lambda t, m, e: categories_figure(t),
    "latency_cdf": lambda t, m, e: latency_cdf_figure(t),
}


def all_figures(
    tasks: pd.DataFrame, metrics: pd.DataFrame, events: pd.DataFrame
) -> dict[str, Figure]:
    """Every report figure, keyed by its file stem (``queue_depth`` -> ``queue_depth.png``)."""
    return {name: draw(tasks, metrics, events) for name, draw in FIGURES.items()}
