"""Shared ground of the report's figures: event kinds, the time axis, and axes helpers.

Every figure is a fresh :class:`matplotlib.figure.Figure` built without
pyplot: no global figure registry, no interactive backend, so figures can be
made from worker threads and several reports can be written at once.

When the frames hold several replications, the time-series figures show one
of them (replication 0 if present, else the lowest number) rather than an
average that no single run ever had. Time-series figures mark the run's
incidents (failures, recoveries, elections and any kind not listed in
:data:`UNMARKED_EVENTS`) with vertical lines and shade the warm-up period;
time is shown in hours when the run is longer than two hours, otherwise in
minutes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

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

TIMESERIES_SIZE = (9.0, 3.4)
PALETTE = (
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
WIDE_SIZE = (14.0, 3.4)
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

    def convert(
        self, seconds: pd.Series | Sequence[float] | npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
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


def only_replication(frame: pd.DataFrame | None, replication: int | None) -> pd.DataFrame:
    """Rows of ``frame`` for one replication (all rows when the frame has no such column)."""
    if frame is None:
        return pd.DataFrame()
    if replication is None or "replication" not in frame.columns:
        return frame
    return frame.loc[frame["replication"] == replication]


def run_seconds(metrics: pd.DataFrame, events: pd.DataFrame) -> float:
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


def global_rows(metrics: pd.DataFrame) -> pd.DataFrame:
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


def shade_warmup(ax: Axes, events: pd.DataFrame, axis: TimeAxis, *, legend: bool = True) -> None:
    warm = _warmup_end(events)
    if warm is not None and warm > 0:
        label = "warm-up" if legend else None
        ax.axvspan(0.0, warm / axis.divisor, color="#999999", alpha=0.15, lw=0, label=label)


def decorate_time_axes(ax: Axes, events: pd.DataFrame, axis: TimeAxis) -> None:
    """Shade the warm-up, draw the event lines, label the x axis.

    With few events each line is labelled; lines closer than 1.5 % of the
    axis share one label ("agent_failed +2"). With many, a legend by kind
    replaces the labels.
    """
    shade_warmup(ax, events, axis)
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


def no_data(ax: Axes, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def timeseries_frames(
    metrics: pd.DataFrame | None, events: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, TimeAxis]:
    rep = pick_replication(metrics)
    m = only_replication(metrics, rep)
    e = only_replication(events, rep) if events is not None else pd.DataFrame()
    return m, e, time_axis(run_seconds(m, e))


def new_timeseries(title: str, size: tuple[float, float] = TIMESERIES_SIZE) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    return fig, ax


def plot_column(ax: Axes, rows: pd.DataFrame, column: str, axis: TimeAxis, **style: Any) -> bool:
    if rows.empty or column not in rows.columns:
        return False
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return False
    ax.plot(axis.convert(rows["time_s"]), values, **style)
    return True


def finish_legend(ax: Axes) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


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


def finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
