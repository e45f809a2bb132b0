"""The timeline figure: agents and scaling, alerts from firing to resolved, then incidents.

Alerts and frequent bookkeeping events (fleet joins and leaves, scaling
decisions, detections, expired messages) are left out of the other
time-series figures and shown here, each kind in a lane of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.report.plots.axes import (
    ALERT_EVENT,
    ELECTION_EVENTS,
    FAILURE_EVENTS,
    FLEET_EVENTS,
    RECOVERY_EVENTS,
    SCALE_EVENT,
    SEVERITY_COLOURS,
    TimeAxis,
    event_group,
    finish_legend,
    finite,
    global_rows,
    parse_detail,
    plot_column,
    run_seconds,
    shade_warmup,
    timeseries_frames,
)

MAX_SCALE_LABELS = 40
_GROUP_COLOURS = {
    "failure": "#d62728",
    "recovery": "#2ca02c",
    "election": "#9467bd",
    "fleet": "#7f7f7f",
    "other": "#8c564b",
}
_LANE_MARKERS = ("o", "D", "s", "X", "P", "*", "v", "^")


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
        delta = finite(detail.get("delta"))
        time_s = finite(t)
        if delta is None or time_s is None:
            continue
        marks.append(
            ScaleMark(
                time_s=time_s,
                policy=policy,
                delta=round(delta),
                target=finite(detail.get("target")),
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
        time_s = finite(t)
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
    rows = global_rows(m)
    drawn = plot_column(
        ax, rows, "total_agents", axis, color="#555555", lw=1.2, ls="--", label="total", zorder=3
    )
    drawn |= plot_column(ax, rows, "active_agents", axis, color="#1f77b4", lw=1.8, label="active")
    marks = scale_marks(e)
    if marks:
        _draw_scale_marks(ax, rows, marks, axis)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no agent samples", transform=ax.transAxes, ha="center", color="#777777")
        ax.set_yticks([])
        return
    bottom, top = ax.get_ylim()
    ax.set_ylim(0.0, top + 0.15 * max(top - min(bottom, 0.0), 1.0))
    ax.set_ylabel("agents")


#: One line per scaling direction: marker, colour, legend.
_SCALE_STYLES = {
    1: ("^", "#2ca02c", "scale up"),
    -1: ("v", "#d62728", "scale down"),
    0: ("o", "#7f7f7f", "scale (no change)"),
}


def _draw_scale_marks(
    ax: Axes, rows: pd.DataFrame, marks: Sequence[ScaleMark], axis: TimeAxis
) -> None:
    """Scaling decisions as markers at their target (or on the total line), labelled if few."""
    totals = (
        pd.to_numeric(rows["total_agents"], errors="coerce").to_numpy(dtype=float)
        if not rows.empty and "total_agents" in rows.columns
        else np.array([])
    )
    times = rows["time_s"].to_numpy(dtype=float) if totals.size else np.array([])
    ok = np.isfinite(totals)
    policies = sorted({m.policy for m in marks})
    labelled = len(marks) <= MAX_SCALE_LABELS
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
            _label_scale_mark(ax, mark, x, y, direction, with_policy=len(policies) > 1)
    for direction in (1, -1, 0):
        if direction not in points:
            continue
        marker, colour, label = _SCALE_STYLES[direction]
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


def _label_scale_mark(
    ax: Axes, mark: ScaleMark, x: float, y: float, direction: int, *, with_policy: bool
) -> None:
    """The agents added or removed (and the policy, when several scale) beside one marker."""
    text = f"{mark.delta:+d}"
    if with_policy:
        text += f" {mark.policy}"
    ax.annotate(
        text,
        (x, y),
        xytext=(0, 7 if mark.delta >= 0 else -8),
        textcoords="offset points",
        ha="center",
        va="bottom" if mark.delta >= 0 else "top",
        fontsize=7,
        color=_SCALE_STYLES[direction][1],
    )


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
    m, e, axis = timeseries_frames(metrics, events)
    end_s = run_seconds(m, e)
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
        shade_warmup(ax, e, axis, legend=ax is agents_ax)
        ax.grid(True, axis="x", alpha=0.3)
    agents_ax.grid(True, axis="y", alpha=0.3)
    finish_legend(agents_ax)
    finish_legend(alerts_ax)
    events_ax.set_xlim(0.0, max(end_s, 1.0) / axis.divisor)
    events_ax.set_xlabel(axis.label)
    return fig
