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

Time-series figures mark the run's incidents (failures, recoveries,
elections and any kind not listed in :data:`UNMARKED_EVENTS`) with vertical
lines and shade the warm-up period. Alerts and frequent bookkeeping events
(fleet joins and leaves, scaling decisions, detections, expired messages)
are left to the timeline figure, which gives every kind a lane of its own:
agents with scaling decisions, alerts from firing to resolved, then failures,
recoveries, elections and fleet changes. Time is shown in hours when the run
is longer than two hours, otherwise in minutes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "ALERT_EVENT",
    "FIGURES",
    "SCALE_EVENT",
    "SEVERITY_COLOURS",
    "AlertSpan",
    "ScaleMark",
    "TimeAxis",
    "active_agents_figure",
    "alert_spans",
    "all_figures",
    "categories_figure",
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

#: Failures, in the order of the timeline's lanes.
FAILURE_EVENTS = (
    "zone_outage",
    "coordinator_crash",
    "partition",
    "agent_failed",
    "job_failed",
    "message_expired",
    "error_burst",
    "task_failed",
)
#: Recoveries and redistributions (any kind containing "redistribut" counts too).
RECOVERY_EVENTS = ("zone_restored", "agent_detected", "agent_replaced", "error_burst_end")
#: Coordinator elections.
ELECTION_EVENTS = ("election", "leader_elected")
#: Specialists entering and leaving the fleet.
FLEET_EVENTS = ("agent_requested", "agent_joined", "agent_draining", "agent_left")
#: A scaling policy's decision: subject = policy, detail {delta, target, reason}.
SCALE_EVENT = "scale"
#: An alert rule changing state: subject = rule, detail {state, severity, action, value, metric}.
ALERT_EVENT = "alert"
#: Alert severity -> colour.
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}

#: Event kinds the time-series figures do not mark: the run's frame, and kinds frequent
#: enough to bury the rest (the timeline figure shows them in lanes of their own).
UNMARKED_EVENTS = frozenset(
    {
        "run_start",
        "run_end",
        "warmup_end",
        SCALE_EVENT,
        ALERT_EVENT,
        "agent_detected",
        "agent_replaced",
        "job_failed",
        "message_expired",
        "task_failed",
        "escalation",
        *FLEET_EVENTS,
    }
)
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
_WIDE_SIZE = (14.0, 3.4)
_EVENT_COLOURS = {
    "agent_failed": "#d62728",
    "zone_outage": "#a50f15",
    "coordinator_crash": "#8c2d04",
    "partition": "#e6550d",
    "zone_restored": "#2ca02c",
    "election": "#9467bd",
    "leader_elected": "#6a51a3",
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


def parse_detail(text: object) -> dict[str, Any]:
    """An event's ``detail`` JSON text as a dict; ``{}`` for anything that is not a JSON object."""
    if isinstance(text, Mapping):
        return {str(k): v for k, v in text.items()}
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


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


def _shade_warmup(ax: Axes, events: pd.DataFrame, axis: TimeAxis, *, legend: bool = True) -> None:
    warm = _warmup_end(events)
    if warm is not None and warm > 0:
        label = "warm-up" if legend else None
        ax.axvspan(0.0, warm / axis.divisor, color="#999999", alpha=0.15, lw=0, label=label)


def _decorate_time_axes(ax: Axes, events: pd.DataFrame, axis: TimeAxis) -> None:
    """Shade the warm-up, draw the event lines, label the x axis.

    With few events each line is labelled; lines closer than 1.5 % of the
    axis share one label ("agent_failed +2"). With many, a legend by kind
    replaces the labels.
    """
    _shade_warmup(ax, events, axis)
    marked = _marked_events(events)
    if not marked.empty:
        labelled = len(marked) <= MAX_LABELLED_EVENTS
        seen: set[str] = set()
        span = max(ax.get_xlim()[1], 1e-9)
        subjects = (
            marked["subject"] if "subject" in marked.columns else pd.Series([""] * len(marked))
        )
        # Clusters of nearby lines: [x of the first, its label, its colour, how many].
        clusters: list[list[Any]] = []
        for t, kind, subject in zip(marked["time_s"], marked["kind"], subjects, strict=True):
            kind_s = str(kind)
            colour = _EVENT_COLOURS.get(kind_s, "#555555")
            x = float(t) / axis.divisor
            legend = None
            if not labelled and kind_s not in seen:
                legend = kind_s
                seen.add(kind_s)
            ax.axvline(x, color=colour, lw=0.8, ls="--", alpha=0.7, label=legend)
            if clusters and x - clusters[-1][0] < 0.015 * span:
                clusters[-1][3] += 1
            else:
                clusters.append([x, _event_label(kind_s, subject), colour, 1])
        if labelled:
            last_x = -math.inf
            last_side = "left"
            for x, label, colour, count in clusters:
                # Labels sit left of their line; a close neighbour's goes to the right.
                side = "left" if x - last_x < 0.03 * span and last_side == "right" else "right"
                last_x, last_side = x, side
                ax.text(
                    x,
                    0.98,
                    label if count == 1 else f"{label} +{count - 1}",
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    va="top",
                    ha=side,
                    fontsize=7,
                    color=colour,
                )
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


def _new_timeseries(
    title: str, size: tuple[float, float] = _TIMESERIES_SIZE
) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
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
        ax, rows, "total_agents", axis, color="#555555", lw=1.2, ls="--", label="total", zorder=3
    )
    drawn |= _plot_column(ax, rows, "active_agents", axis, color="#1f77b4", lw=1.8, label="active")
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
    fig, ax = _new_timeseries("Response time: task latency and wait", _WIDE_SIZE)
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


def zone_health_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """Per zone, the share of its agents online (active / total, %) over time."""
    m, e, axis = _timeseries_frames(metrics, events)
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
                color=_PALETTE[i % len(_PALETTE)],
                lw=1.3,
                label=str(zone),
            )
            drawn = True
    if not drawn:
        _no_data(ax, "no per-zone samples")
        return fig
    ax.axhline(95.0, color="#2ca02c", lw=0.7, ls=":")
    ax.axhline(80.0, color="#ff7f0e", lw=0.7, ls=":")
    ax.set_ylim(0.0, 105.0)
    ax.set_ylabel("agents online (%)", fontsize=8)
    ax.tick_params(labelsize=8)
    _shade_warmup(ax, e, axis, legend=False)
    ax.set_xlabel(axis.label, fontsize=8)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncols=min(4, len(ax.get_lines())), title_fontsize=7)
    return fig


# --- timeline -----------------------------------------------------------------------------

#: Past this many scaling decisions the markers lose their "+n" labels.
MAX_SCALE_LABELS = 40
_GROUP_COLOURS = {
    "failure": "#d62728",
    "recovery": "#2ca02c",
    "election": "#9467bd",
    "fleet": "#7f7f7f",
    "other": "#8c564b",
}
_LANE_MARKERS = ("o", "D", "s", "X", "P", "*", "v", "^")


def event_group(kind: str) -> str:
    """The timeline lane group of an event kind: failure, recovery, election, fleet or other."""
    if kind in FAILURE_EVENTS:
        return "failure"
    if kind in RECOVERY_EVENTS or "redistribut" in kind:
        return "recovery"
    if kind in ELECTION_EVENTS:
        return "election"
    if kind in FLEET_EVENTS:
        return "fleet"
    return "other"


@dataclass(frozen=True)
class ScaleMark:
    """One scaling decision: when, by which policy, by how much, towards what fleet size."""

    time_s: float
    policy: str
    delta: int
    target: float | None
    reason: str


@dataclass(frozen=True)
class AlertSpan:
    """One alert from firing to resolved (``resolved_s`` None: still firing at the end)."""

    rule: str
    severity: str
    start_s: float
    resolved_s: float | None
    action: str


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _of_kind(events: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    if events.empty or not {"kind", "time_s"} <= set(events.columns):
        return pd.DataFrame()
    rows = events.loc[events["kind"].isin(list(kinds))]
    return rows.sort_values("time_s", kind="stable")


def _details(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if "detail" not in rows.columns:
        return [{} for _ in range(len(rows))]
    return [parse_detail(d) for d in rows["detail"]]


def _times(rows: pd.DataFrame) -> list[object]:
    if "time_s" not in rows.columns:
        return [None] * len(rows)
    return list(rows["time_s"])


def _subjects(rows: pd.DataFrame) -> list[str]:
    if "subject" not in rows.columns:
        return [""] * len(rows)
    return ["" if pd.isna(v) else str(v) for v in rows["subject"]]


def scale_marks(events: pd.DataFrame) -> list[ScaleMark]:
    """The run's ``scale`` events in time order (events without a usable delta are skipped)."""
    rows = _of_kind(events, [SCALE_EVENT])
    marks = []
    for t, policy, detail in zip(_times(rows), _subjects(rows), _details(rows), strict=True):
        delta = _finite(detail.get("delta"))
        time_s = _finite(t)
        if delta is None or time_s is None:
            continue
        marks.append(
            ScaleMark(
                time_s=time_s,
                policy=policy,
                delta=round(delta),
                target=_finite(detail.get("target")),
                reason=str(detail.get("reason", "")),
            )
        )
    return marks


def alert_spans(events: pd.DataFrame, run_start_s: float = 0.0) -> list[AlertSpan]:
    """Pair each rule's ``firing`` with its next ``resolved``.

    A second ``firing`` while the rule already fires is the same alert; a
    ``resolved`` with nothing open means the alert fired before the log began
    (it starts at ``run_start_s``). Spans are ordered by rule, then start.
    """
    rows = _of_kind(events, [ALERT_EVENT])
    open_spans: dict[str, tuple[float, str, str]] = {}
    spans: list[AlertSpan] = []
    for t, rule, detail in zip(_times(rows), _subjects(rows), _details(rows), strict=True):
        time_s = _finite(t)
        if time_s is None:
            continue
        state = str(detail.get("state", "firing"))
        severity = str(detail.get("severity", "warning"))
        action = str(detail.get("action", ""))
        if state == "resolved":
            start, sev, act = open_spans.pop(rule, (run_start_s, severity, action))
            spans.append(AlertSpan(rule, sev, start, time_s, act))
        elif rule not in open_spans:
            open_spans[rule] = (time_s, severity, action)
    for rule, (start, sev, act) in open_spans.items():
        spans.append(AlertSpan(rule, sev, start, None, act))
    return sorted(spans, key=lambda a: (a.rule, a.start_s))


def _lane_kinds(events: pd.DataFrame) -> list[str]:
    """Kinds for the events lane, grouped failure, recovery, election, fleet, other."""
    if events.empty or "kind" not in events.columns:
        return []
    skip = {"run_start", "run_end", "warmup_end", SCALE_EVENT, ALERT_EVENT}
    present = {str(k) for k in pd.unique(events["kind"].dropna())} - skip
    known = [*FAILURE_EVENTS, *RECOVERY_EVENTS, *ELECTION_EVENTS, *FLEET_EVENTS]
    order = {kind: i for i, kind in enumerate(known)}
    groups = ("failure", "recovery", "election", "fleet", "other")
    return sorted(
        present,
        key=lambda k: (groups.index(event_group(k)), order.get(k, len(order)), k),
    )


def _draw_agents_lane(ax: Axes, m: pd.DataFrame, e: pd.DataFrame, axis: TimeAxis) -> None:
    rows = _global_rows(m)
    drawn = _plot_column(
        ax, rows, "total_agents", axis, color="#555555", lw=1.2, ls="--", label="total", zorder=3
    )
    drawn |= _plot_column(ax, rows, "active_agents", axis, color="#1f77b4", lw=1.8, label="active")
    marks = scale_marks(e)
    if marks:
        totals = (
            pd.to_numeric(rows["total_agents"], errors="coerce").to_numpy(dtype=float)
            if not rows.empty and "total_agents" in rows.columns
            else np.array([])
        )
        times = rows["time_s"].to_numpy(dtype=float) if totals.size else np.array([])
        ok = np.isfinite(totals)
        policies = sorted({m.policy for m in marks})
        labelled = len(marks) <= MAX_SCALE_LABELS
        # One line per direction: (marker, colour, legend) -> xs, ys.
        styles = {
            1: ("^", "#2ca02c", "scale up"),
            -1: ("v", "#d62728", "scale down"),
            0: ("o", "#7f7f7f", "scale (no change)"),
        }
        points: dict[int, tuple[list[float], list[float]]] = {}
        for mark in marks:
            if mark.target is not None:
                y = mark.target
            elif ok.any():
                y = float(np.interp(mark.time_s, times[ok], totals[ok]))
            else:
                y = 0.0
            x = mark.time_s / axis.divisor
            direction = (mark.delta > 0) - (mark.delta < 0)
            xs, ys = points.setdefault(direction, ([], []))
            xs.append(x)
            ys.append(y)
            if labelled:
                text = f"{mark.delta:+d}"
                if len(policies) > 1:
                    text += f" {mark.policy}"
                ax.annotate(
                    text,
                    (x, y),
                    xytext=(0, 7 if mark.delta >= 0 else -8),
                    textcoords="offset points",
                    ha="center",
                    va="bottom" if mark.delta >= 0 else "top",
                    fontsize=7,
                    color=styles[direction][1],
                )
        for direction in (1, -1, 0):
            if direction not in points:
                continue
            marker, colour, label = styles[direction]
            xs, ys = points[direction]
            ax.plot(
                xs,
                ys,
                ls="none",
                marker=marker,
                ms=7,
                color=colour,
                markeredgecolor="black",
                markeredgewidth=0.5,
                label=label,
                zorder=5,
            )
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no agent samples", transform=ax.transAxes, ha="center", color="#777777")
        ax.set_yticks([])
        return
    bottom, top = ax.get_ylim()
    ax.set_ylim(0.0, top + 0.15 * max(top - min(bottom, 0.0), 1.0))
    ax.set_ylabel("agents")


def _draw_alert_lane(ax: Axes, e: pd.DataFrame, axis: TimeAxis, end_s: float) -> None:
    spans = alert_spans(e)
    if not spans:
        ax.text(0.5, 0.5, "no alerts", transform=ax.transAxes, ha="center", color="#777777")
        ax.set_yticks([])
        return
    rules = sorted({s.rule for s in spans})
    lane = {rule: i for i, rule in enumerate(rules)}
    min_width = max(end_s, 1.0) * 0.004
    # One collection per (rule, severity, still firing): a long run has many alerts.
    bars: dict[tuple[str, str, bool], list[tuple[float, float]]] = {}
    for span in spans:
        stop = end_s if span.resolved_s is None else span.resolved_s
        width = max(stop - span.start_s, min_width)
        key = (span.rule, span.severity, span.resolved_s is None)
        bars.setdefault(key, []).append((span.start_s / axis.divisor, width / axis.divisor))
    seen: set[str] = set()
    rank = {severity: i for i, severity in enumerate(SEVERITY_COLOURS)}
    ordered = sorted(bars.items(), key=lambda kv: (rank.get(kv[0][1], len(rank)), kv[0]))
    for (rule, severity, still_firing), ranges in ordered:
        colour = SEVERITY_COLOURS.get(severity, "#7f7f7f")
        ax.broken_barh(
            ranges,
            (lane[rule] - 0.35, 0.7),
            facecolors=colour,
            edgecolors="black" if still_firing else colour,
            linewidth=0.6,
            hatch="//" if still_firing else None,
            alpha=0.85,
            label=None if severity in seen else severity,
        )
        seen.add(severity)
    if any(s.resolved_s is None for s in spans):
        ax.broken_barh(
            [],
            (0, 0),
            facecolors="white",
            edgecolors="black",
            hatch="//",
            label="still firing at end",
        )
    ax.set_yticks(range(len(rules)), labels=rules, fontsize=8)
    ax.set_ylim(len(rules) - 0.5, -0.5)
    ax.set_ylabel("alerts")


def _draw_event_lane(ax: Axes, e: pd.DataFrame, axis: TimeAxis) -> None:
    kinds = _lane_kinds(e)
    if not kinds:
        ax.text(
            0.5,
            0.5,
            "no failures, recoveries, elections or fleet changes",
            transform=ax.transAxes,
            ha="center",
            color="#777777",
        )
        ax.set_yticks([])
        return
    used: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        group = event_group(kind)
        times = e.loc[e["kind"] == kind, "time_s"].to_numpy(dtype=float)
        times = times[np.isfinite(times)]
        marker = _LANE_MARKERS[used.get(group, 0) % len(_LANE_MARKERS)]
        used[group] = used.get(group, 0) + 1
        colour = _GROUP_COLOURS[group]
        dense = times.size > 200
        ax.plot(
            axis.convert(times),
            np.full(times.size, float(i)),
            ls="none",
            marker="|" if dense else marker,
            ms=10 if dense else 6,
            color=colour,
            markeredgecolor=colour if dense else "black",
            markeredgewidth=1.0 if dense else 0.4,
            alpha=0.8,
        )
        # The count sits at the right end of the lane.
        ax.text(
            1.005,
            float(i),
            f"{times.size:,}",
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=7,
            color=colour,
        )
    ax.set_yticks(range(len(kinds)), labels=kinds, fontsize=8)
    for tick, kind in zip(ax.get_yticklabels(), kinds, strict=True):
        tick.set_color(_GROUP_COLOURS[event_group(kind)])
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set_ylabel("events")


def timeline_figure(metrics: pd.DataFrame, events: pd.DataFrame | None = None) -> Figure:
    """The run on one time axis: agents and scaling, alerts, then failures and recoveries.

    Top: total and active agents, each ``scale`` decision a triangle (up or
    down) at its target size labelled with its delta. Middle: one row per
    alert rule, a bar from firing to resolved coloured by severity (hatched
    when still firing at the end). Bottom: one row per event kind — failures
    red, recoveries green, elections purple, fleet changes grey — with its
    count at the right.
    """
    m, e, axis = _timeseries_frames(metrics, events)
    end_s = _run_seconds(m, e)
    rules = len({s.rule for s in alert_spans(e)})
    kinds = len(_lane_kinds(e))
    heights = [2.6, max(0.7, 0.32 * rules + 0.3), max(0.7, 0.26 * kinds + 0.3)]
    fig = Figure(figsize=(14.0, sum(heights) + 1.1), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, height_ratios=heights)
    fig.suptitle(
        "Timeline: agents and scaling, alerts, failures and recoveries",
        fontsize=11,
        x=0.01,
        ha="left",
    )
    agents_ax, alerts_ax, events_ax = (axes[0], axes[1], axes[2])
    _draw_agents_lane(agents_ax, m, e, axis)
    _draw_alert_lane(alerts_ax, e, axis, end_s)
    _draw_event_lane(events_ax, e, axis)
    for ax in (agents_ax, alerts_ax, events_ax):
        _shade_warmup(ax, e, axis, legend=ax is agents_ax)
        ax.grid(True, axis="x", alpha=0.3)
    agents_ax.grid(True, axis="y", alpha=0.3)
    _finish_legend(agents_ax)
    _finish_legend(alerts_ax)
    events_ax.set_xlim(0.0, max(end_s, 1.0) / axis.divisor)
    events_ax.set_xlabel(axis.label)
    return fig


# --- cost ---------------------------------------------------------------------------------


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
        value = _finite(cost.get(key))
        if value is not None:
            lines.append(f"${value:,.2f} {suffix}")
    return lines


def cost_figure(
    metrics: pd.DataFrame,
    events: pd.DataFrame | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Figure:
    """Cumulative cost over time (``cost_usd``) and its hourly rate, with the summary's costs."""
    m, e, axis = _timeseries_frames(metrics, events)
    fig, ax = _new_timeseries("Cost", (14.0, 3.0))
    rows = _global_rows(m)
    drawn = _plot_column(
        ax, rows, "cost_usd", axis, color="#2ca02c", lw=1.6, label="cumulative cost"
    )
    text = "\n".join(cost_lines(summary))
    if not drawn:
        message = "no cost_usd column in this run's metrics"
        _no_data(ax, f"{message}\n\n{text}" if text else message)
        return fig
    values = pd.to_numeric(rows["cost_usd"], errors="coerce").to_numpy(dtype=float)
    times = rows["time_s"].to_numpy(dtype=float)
    ok = np.isfinite(values) & np.isfinite(times)
    if ok.sum() >= 2:
        dt = np.diff(times[ok])
        rate = np.divide(
            np.diff(values[ok]) * 3600.0, dt, out=np.full(dt.size, np.nan), where=dt > 0
        )
        twin = ax.twinx()
        twin.plot(
            axis.convert(times[ok][1:]),
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
    ax.set_ylabel("cumulative cost ($)")
    ax.set_ylim(bottom=0.0)
    if text:
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
    _shade_warmup(ax, e, axis)
    ax.set_xlabel(axis.label)
    ax.set_xlim(left=0.0)
    ax.grid(True, alpha=0.3)
    return fig


#: A figure drawer: (tasks, metrics, events, summary) -> Figure.
Drawer = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Mapping[str, Any]], Figure]


def _traffic_plots() -> Any:
    """The traffic figures' module (it builds on this one's helpers, so it comes in late)."""
    from sim.report import traffic_plots

    return traffic_plots


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
    "control_traffic": lambda t, m, e, s: _traffic_plots().control_traffic_figure(m, e),
    "coordinators": lambda t, m, e, s: _traffic_plots().coordinators_figure(m, e),
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
