"""The sweep report: a heat-map of one figure over two swept settings, the Pareto front
of p99 wait against cost, and a table of the points with confidence intervals.

It reads the tidy frame :func:`sim.analysis.sweep.sweep` returns (a row per
point × replication, ``set.<path>`` columns for the settings, dotted figure
columns). Each point is summarised by the mean of its replications and a 95 %
t-interval (:func:`sim.metrics.replications.t_quantile`). The heat-map's axes are
the first two settings that take more than one value; when a sweep has more,
each cell averages over the others, and the page says so. Failed runs are left
out of every statistic and counted in the table.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.replications import t_quantile
from sim.metrics.store import atomic_write_bytes
from sim.report.html.format import esc, fmt_number, fmt_value
from sim.report.html.template import page
from sim.report.interactive import Panel, panel_html, panels_script

__all__ = ["COST", "P99_WAIT", "PointStats", "pareto_front", "point_stats", "write_sweep_report"]

P99_WAIT = "wait_s.p99"
COST = "cost.usd_per_day"
PREFIX = "set."


class SweepReportError(ValueError):
    """The frame cannot be reported (one line: what is missing)."""


@dataclass(frozen=True)
class PointStats:
    """One point: its settings, replications that ran, and mean with 95 % CI of a figure."""

    point: int
    settings: dict[str, Any]
    runs: int
    failed: int
    mean: dict[str, float]
    ci: dict[str, tuple[float, float]]


def _settings(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(PREFIX)]


def _varied(frame: pd.DataFrame) -> list[str]:
    return [c for c in _settings(frame) if frame[c].astype(str).nunique() > 1]


def _mean_ci(values: np.ndarray) -> tuple[float, tuple[float, float]]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, (math.nan, math.nan)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, (math.nan, math.nan)
    half = t_quantile(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def point_stats(frame: pd.DataFrame, figures: Sequence[str]) -> list[PointStats]:
    """Per point: mean and 95 % CI of each figure over its successful replications."""
    out = []
    ok = frame["error"].isna() if "error" in frame.columns else pd.Series(True, frame.index)
    for point, rows in frame.groupby("point", sort=True):
        good = rows[ok.loc[rows.index]]
        means: dict[str, float] = {}
        cis: dict[str, tuple[float, float]] = {}
        for figure in figures:
            if figure not in good.columns:
                continue
            values = pd.to_numeric(good[figure], errors="coerce").to_numpy(dtype=float)
            means[figure], cis[figure] = _mean_ci(values)
        first = rows.iloc[0]
        out.append(
            PointStats(
                point=int(str(point)),
                settings={c[len(PREFIX) :]: first[c] for c in _settings(frame)},
                runs=len(good),
                failed=len(rows) - len(good),
                mean=means,
                ci=cis,
            )
        )
    return out


def pareto_front(points: Sequence[PointStats], x: str = COST, y: str = P99_WAIT) -> list[int]:
    """Points no other point beats on both *x* and *y* (lower is better on both), by x."""
    usable = [
        p
        for p in points
        if math.isfinite(p.mean.get(x, math.nan)) and math.isfinite(p.mean.get(y, math.nan))
    ]
    front = []
    for p in usable:
        px, py = p.mean[x], p.mean[y]
        dominated = any(
            (q.mean[x] <= px and q.mean[y] <= py) and (q.mean[x] < px or q.mean[y] < py)
            for q in usable
        )
        if not dominated:
            front.append(p)
    return [p.point for p in sorted(front, key=lambda p: (p.mean[x], p.mean[y]))]


def _label(value: Any) -> str:
    return fmt_value(value)


def heatmap_panel(frame: pd.DataFrame, figure: str) -> tuple[Panel, str]:
    """The heat-map of *figure* over the first two varied settings, and a note on averaging."""
    varied = _varied(frame)
    if not varied:
        raise SweepReportError("sweep: no setting takes more than one value; nothing to map")
    x_col = varied[0]
    y_col = varied[1] if len(varied) > 1 else None
    ok = frame[frame["error"].isna()] if "error" in frame.columns else frame
    values = pd.to_numeric(ok[figure], errors="coerce")
    keys = [x_col] if y_col is None else [x_col, y_col]
    cells = values.groupby([ok[k].astype(str) for k in keys]).mean()
    x_values = _ordered(frame[x_col])
    y_values = _ordered(frame[y_col]) if y_col is not None else [""]
    z: list[list[float | None]] = []
    for yv in y_values:
        row: list[float | None] = []
        for xv in x_values:
            key: Any = xv if y_col is None else (xv, yv)
            cell = cells.get(key, math.nan)
            row.append(float(cell) if math.isfinite(float(cell)) else None)
        z.append(row)
    trace = {
        "type": "heatmap",
        "x": x_values,
        "y": y_values,
        "z": z,
        "colorscale": "Viridis",
        "colorbar": {"title": {"text": figure}},
        "hovertemplate": f"{x_col[len(PREFIX) :]}=%{{x}}<br>"
        + ("" if y_col is None else f"{y_col[len(PREFIX) :]}=%{{y}}<br>")
        + f"{figure}: %{{z:.4g}}<extra></extra>",
        "texttemplate": "%{z:.3g}",
    }
    panel = Panel(
        panel_id="panel-heatmap",
        title=f"{figure} (mean of replications)",
        x_label=x_col[len(PREFIX) :],
        y_label="" if y_col is None else y_col[len(PREFIX) :],
        raw_traces=[trace],
        linked=False,
        height_px=380,
        layout={
            "xaxis": {"type": "category", "title": {"text": x_col[len(PREFIX) :]}},
            "yaxis": {
                "type": "category",
                "title": {"text": "" if y_col is None else y_col[len(PREFIX) :]},
            },
        },
    )
    others = [c[len(PREFIX) :] for c in varied[2:]]
    note = f" Each cell averages over {', '.join(others)}." if others else ""
    return panel, note


def _ordered(column: pd.Series) -> list[str]:
    """Distinct values in numeric order when they are numbers, else as first seen."""
    distinct = list(dict.fromkeys(column.tolist()))
    with contextlib.suppress(TypeError, ValueError):
        distinct.sort(key=float)
    return [str(v) for v in distinct]


def pareto_panel(points: Sequence[PointStats]) -> Panel:
    """Every point's p99 wait against its cost per day, the Pareto front as a line."""
    front = set(pareto_front(points))
    ordered = [p for p in points if p.point in front]
    ordered.sort(key=lambda p: p.mean.get(COST, math.nan))

    def text(p: PointStats) -> str:
        return f"point {p.point}: " + ", ".join(f"{k}={_label(v)}" for k, v in p.settings.items())

    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "points",
            "x": [p.mean.get(COST) for p in points],
            "y": [p.mean.get(P99_WAIT) for p in points],
            "text": [text(p) for p in points],
            "marker": {"size": 9, "color": "#9aa5b1"},
            "hovertemplate": "%{text}<br>cost/day $%{x:.2f}, p99 wait %{y:.3g} s<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Pareto front",
            "x": [p.mean.get(COST) for p in ordered],
            "y": [p.mean.get(P99_WAIT) for p in ordered],
            "text": [text(p) for p in ordered],
            "marker": {"size": 11, "color": "#d62728"},
            "hovertemplate": "%{text}<br>cost/day $%{x:.2f}, p99 wait %{y:.3g} s<extra></extra>",
        },
    ]
    clean = [_nan_to_none(t) for t in traces]
    return Panel(
        panel_id="panel-pareto",
        title="p99 wait against cost (lower left is better)",
        x_label="cost per day (USD)",
        y_label="p99 wait (s)",
        raw_traces=clean,
        linked=False,
        height_px=380,
        layout={"hovermode": "closest"},
    )


def _nan_to_none(trace: dict[str, Any]) -> dict[str, Any]:
    out = dict(trace)
    for axis in ("x", "y"):
        out[axis] = [
            None if v is None or not math.isfinite(float(v)) else float(v) for v in trace[axis]
        ]
    return out


def _points_table(points: Sequence[PointStats], figures: Sequence[str], front: set[int]) -> str:
    names = list(points[0].settings) if points else []
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    head += "".join(f"<th>{esc(f)} (mean [95 % CI])</th>" for f in figures)
    rows = []
    for p in points:
        cells = [f'<td class="num">{p.point}{" ★" if p.point in front else ""}</td>']
        cells += [f"<td>{esc(_label(p.settings[n]))}</td>" for n in names]
        for f in figures:
            mean = p.mean.get(f, math.nan)
            lo, hi = p.ci.get(f, (math.nan, math.nan))
            text = fmt_number(mean)
            if math.isfinite(lo) and math.isfinite(hi):
                text += f" [{fmt_number(lo)}, {fmt_number(hi)}]"
            cells.append(f'<td class="num">{esc(text)}</td>')
        cells.append(f'<td class="num">{p.runs}{f" ({p.failed} failed)" if p.failed else ""}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section class="panel" id="sweep-points"><h2>Points</h2>'
        f"<table><thead><tr><th>point</th>{head}<th>runs</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><caption>★: on the Pareto front of p99 wait and cost per"
        " day. Intervals: Student t over the point's replications (none with one replication)."
        "</caption></table></section>"
    )


def write_sweep_report(path: Path, frame: pd.DataFrame, title: str, figure: str = P99_WAIT) -> Path:
    """Write the sweep's report to *path* (atomically) and return it."""
    if figure not in frame.columns:
        raise SweepReportError(f"--figure: {figure} is not a figure of this sweep")
    figures = list(dict.fromkeys([figure, P99_WAIT, COST, "throughput_per_min", "slo.breaches"]))
    figures = [f for f in figures if f in frame.columns]
    points = point_stats(frame, figures)
    panels: list[Panel] = []
    note = " One setting value only: no heat-map."
    if _varied(frame):  # a one-point sweep has nothing to map, but still its table
        heat, note = heatmap_panel(frame, figure)
        panels.append(heat)
    if COST in frame.columns and P99_WAIT in frame.columns:
        panels.append(pareto_panel(points))
    parts = [
        f'<header id="header"><h1>{esc(title)}</h1><div class="sub">{len(points)} points ×'
        f" up to {max((p.runs + p.failed for p in points), default=0)} replications{esc(note)}"
        "</div></header>",
        *(
            f'<section class="panel" id="sweep-{p.panel_id}">{panel_html(p)}</section>'
            for p in panels
        ),
        _points_table(points, figures, set(pareto_front(points))),
    ]
    atomic_write_bytes(path, page(title, parts, panels_script()).encode("utf-8"))
    return path
