"""The interactive time panels of a report, from one run or several overlaid.

One table (:data:`TIME_PANELS`) says what each panel shows: its metric
columns, the first of which is the one overlaid when several runs share a
panel. A single run's report draws every column of a panel (p99 wait beside
p50 and p99 latency); a comparison report draws the first column once per
run, in the run's colour, on the same time axis. Scaling decisions are marks
on the agents panel at their target size, alerts that fired are marks on the
p99 panel at the time they fired; hovering one reads its detail.

The series are those of one replication (0 when present), like the static
figures: an average of replications is a curve no run ever had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.report.interactive import RUN_COLOURS, Mark, Panel, Series
from sim.report.plots import (
    ALERT_EVENT,
    SCALE_EVENT,
    TimeAxis,
    parse_detail,
    pick_replication,
    time_axis,
)

__all__ = ["TIME_PANELS", "PanelSpec", "RunFrames", "overlay_panels", "run_end_s", "run_panels"]


@dataclass(frozen=True)
class PanelSpec:
    """One time panel: id suffix, title, y label, and (column, legend label, dash) lines."""

    key: str
    title: str
    y_label: str
    lines: tuple[tuple[str, str, str], ...]


#: The time panels, in page order. The first line of each is overlaid in comparisons.
TIME_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec(
        "p99",
        "p99 wait (the SLO's response time)",
        "seconds",
        (
            ("p99_wait_s", "p99 wait", "solid"),
            ("p99_latency_s", "p99 latency", "dot"),
            ("p50_latency_s", "p50 latency", "dash"),
        ),
    ),
    PanelSpec(
        "agents",
        "Agents",
        "agents",
        (
            ("total_agents", "total", "solid"),
            ("active_agents", "active", "dot"),
            ("busy_agents", "busy", "dash"),
        ),
    ),
    PanelSpec("queue", "Queue depth", "tasks waiting", (("queue_depth", "queue", "solid"),)),
    PanelSpec(
        "throughput",
        "Throughput",
        "tasks / min",
        (("throughput_per_min", "throughput", "solid"),),
    ),
    PanelSpec("cost", "Cumulative cost", "USD", (("cost_usd", "cost", "solid"),)),
)


@dataclass(frozen=True)
class RunFrames:
    """A run to draw: its name, metrics and events (any number of replications)."""

    name: str
    metrics: pd.DataFrame
    events: pd.DataFrame


def _one_replication(frame: pd.DataFrame) -> pd.DataFrame:
    rep = pick_replication(frame)
    if rep is None:
        return frame
    return frame.loc[frame["replication"] == rep]


def _global_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty or not {"level", "time_s"} <= set(metrics.columns):
        return pd.DataFrame()
    rows = _one_replication(metrics)
    return rows.loc[rows["level"] == "global"].sort_values("time_s", kind="stable")


def _end_s(runs: Sequence[RunFrames]) -> float:
    end = 0.0
    for run in runs:
        for frame in (run.metrics, run.events):
            if not frame.empty and "time_s" in frame.columns:
                last = pd.to_numeric(frame["time_s"], errors="coerce").max()
                if pd.notna(last):
                    end = max(end, float(last))
    return end


def run_end_s(run: RunFrames) -> float:
    """The last simulated second in *run*'s metrics or events: the time panels' right edge."""
    return _end_s([run])


def _column(rows: pd.DataFrame, column: str) -> np.ndarray | None:
    if rows.empty or column not in rows.columns:
        return None
    values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    return values if np.isfinite(values).any() else None


def _scale_marks(run: RunFrames, axis: TimeAxis, colour: str, prefix: str) -> Mark | None:
    events = _one_replication(run.events)
    if events.empty or "kind" not in events.columns:
        return None
    scale = events.loc[events["kind"] == SCALE_EVENT]
    xs: list[float] = []
    ys: list[float] = []
    texts: list[str] = []
    for t, subject, detail in zip(scale["time_s"], scale["subject"], scale["detail"], strict=True):
        info = parse_detail(detail)
        target = info.get("target")
        if not isinstance(target, int | float):
            continue
        xs.append(float(t) / axis.divisor)
        ys.append(float(target))
        delta = info.get("delta", 0)
        texts.append(
            f"{prefix}{subject} {int(delta):+d} → {int(target)} at {float(t):.0f} s:"
            f" {info.get('reason', '')}"
        )
    if not xs:
        return None
    return Mark(f"{prefix}scaling", xs, ys, texts, colour, "triangle-up", group=run.name)


def _alert_marks(run: RunFrames, axis: TimeAxis, colour: str, prefix: str) -> Mark | None:
    events = _one_replication(run.events)
    if events.empty or "kind" not in events.columns:
        return None
    alerts = events.loc[events["kind"] == ALERT_EVENT]
    xs: list[float] = []
    texts: list[str] = []
    for t, subject, detail in zip(
        alerts["time_s"], alerts["subject"], alerts["detail"], strict=True
    ):
        info = parse_detail(detail)
        if info.get("state") != "firing":
            continue
        xs.append(float(t) / axis.divisor)
        texts.append(
            f"{prefix}alert {subject} fired at {float(t):.0f} s"
            f" ({info.get('metric', '')} = {info.get('value', '')})"
        )
    if not xs:
        return None
    return Mark(f"{prefix}alerts", xs, [0.0] * len(xs), texts, colour, "x", group=run.name)


def _panel(
    spec: PanelSpec, axis: TimeAxis, end_s: float, series: list[Series], marks: list[Mark]
) -> Panel:
    return Panel(
        x_range=(0.0, max(end_s, 1.0) / axis.divisor),
        panel_id=f"panel-{spec.key}",
        title=spec.title,
        x_label=axis.label,
        y_label=spec.y_label,
        series=series,
        marks=marks,
    )


def run_panels(run: RunFrames) -> list[Panel]:
    """A single run's time panels: every line of each panel, with scaling and alert marks."""
    end_s = _end_s([run])
    axis = time_axis(end_s)
    rows = _global_rows(run.metrics)
    panels = []
    for spec in TIME_PANELS:
        series = []
        for i, (column, label, dash) in enumerate(spec.lines):
            values = _column(rows, column)
            if values is None:
                continue
            x = axis.convert(rows["time_s"]).tolist()
            series.append(Series(label, x, values.tolist(), RUN_COLOURS[i], dash))
        marks = _marks_for(spec, run, axis, "#d62728", "")
        if series:
            panels.append(_panel(spec, axis, end_s, series, marks))
    return panels


def _marks_for(
    spec: PanelSpec, run: RunFrames, axis: TimeAxis, colour: str, prefix: str
) -> list[Mark]:
    mark = None
    if spec.key == "agents":
        mark = _scale_marks(run, axis, colour, prefix)
    elif spec.key == "p99":
        mark = _alert_marks(run, axis, colour, prefix)
    return [mark] if mark is not None else []


def overlay_panels(runs: Sequence[RunFrames]) -> list[Panel]:
    """Several runs on one time axis: each panel's first line once per run, in its colour."""
    end_s = _end_s(runs)
    axis = time_axis(end_s)
    rows_of = {run.name: _global_rows(run.metrics) for run in runs}
    panels = []
    for spec in TIME_PANELS:
        column = spec.lines[0][0]
        series: list[Series] = []
        marks: list[Mark] = []
        for i, run in enumerate(runs):
            colour = RUN_COLOURS[i % len(RUN_COLOURS)]
            rows = rows_of[run.name]
            values = _column(rows, column)
            if values is not None:
                x = axis.convert(rows["time_s"]).tolist()
                series.append(Series(run.name, x, values.tolist(), colour, group=run.name))
            marks += _marks_for(spec, run, axis, colour, f"{run.name}: ")
        if series:
            panels.append(_panel(spec, axis, end_s, series, marks))
    return panels


def runs_from_frames(frames: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]) -> list[RunFrames]:
    """``{name: (metrics, events)}`` as RunFrames, in the mapping's order."""
    return [RunFrames(name, m, e) for name, (m, e) in frames.items()]
