"""The failure matrix as one self-contained HTML page: the table, then each mode's spread.

Like the run report, the page opens anywhere, offline: CSS inline, figures
inlined as PNG ``data:`` URIs, no JavaScript, every string from the data
escaped, the file written atomically. The table marks, per column, the mode
with the worst case (the largest detection or unavailability max) and any
figure past the spec's bound; below it, one strip of the trials' detection
and unavailability per mode shows where the worst case sits in the spread.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.metrics.store import atomic_write_text
from sim.report.interactive import plotly_js

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child, td.what { text-align: left; }
td.worst { background: #f8d0d0; font-weight: bold; }
td.over { color: #b00; font-weight: bold; }
td.lost { background: #b00; color: white; }
.note { color: #555; max-width: 60em; }
"""

#: (column heading, key in the mode entry, format)
_COLUMNS = (
    ("trials", "trials", "{:.0f}"),
    ("detected", "detected_share", "{:.0%}"),
    ("detect p50 s", "detection_p50_s", "{:.3g}"),
    ("detect max s", "detection_max_s", "{:.3g}"),
    ("bound s", "detection_bound_s", "{:.3g}"),
    ("unavail p50 s", "unavailable_p50_s", "{:.3g}"),
    ("unavail max s", "unavailable_max_s", "{:.3g}"),
    ("floor s", "unavailable_before_max_s", "{:.3g}"),
    ("leaderless max s", "leaderless_max_s", "{:.3g}"),
    ("retried", "retried_mean", "{:.1f}"),
    ("redistributed", "redistributed_mean", "{:.1f}"),
    ("failed", "failed_total", "{:.0f}"),
    ("p99 after/before p50", "p99_wait_ratio_p50", "{:.2f}"),
    ("p99 after/before max", "p99_wait_ratio_max", "{:.2f}"),
    ("p99 vs control p50", "p99_vs_control_p50", "{:.2f}"),
    ("p99 vs control max", "p99_vs_control_max", "{:.2f}"),
    ("lost", "lost_total", "{:.0f}"),
    ("elections max", "elections_max", "{:.0f}"),
    ("term change max", "term_change_max", "{:.0f}"),
)
_WORST_OF = ("detection_max_s", "unavailable_max_s", "leaderless_max_s", "p99_vs_control_max")


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pattern.format(value)


def matrix_table(matrix: dict[str, Any]) -> str:
    """The matrix as an HTML table, the worst mode of each worst-case column highlighted."""
    modes: dict[str, dict[str, Any]] = matrix["modes"]
    worst: dict[str, str] = {}
    for key in _WORST_OF:
        finite = {n: float(e[key]) for n, e in modes.items() if _finite(e.get(key))}
        if finite:
            worst[key] = max(finite, key=lambda n: finite[n])
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in _COLUMNS)
    lines = [f"<table><tr><th>mode</th><th>scope</th>{head}</tr>"]
    for name, entry in modes.items():
        cells = [
            f"<td>{html.escape(name)}</td>",
            f"<td class=what>{html.escape(entry['scope'])}</td>",
        ]
        for _, key, pattern in _COLUMNS:
            value = entry.get(key)
            classes = []
            if worst.get(key) == name:
                classes.append("worst")
            bound = entry.get("detection_bound_s")
            over = _finite(value) and _finite(bound) and _over(value, bound)
            if key == "detection_max_s" and over:
                classes.append("over")
            if key == "lost_total" and value:
                classes.append("lost")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{html.escape(_fmt(value, pattern))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _over(value: Any, bound: Any) -> bool:
    return bool(float(value) > float(bound))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def distribution_figure(trials: pd.DataFrame, modes: list[str]) -> Figure:
    """Per mode, every trial's detection and unavailability (log scale), worst ringed."""
    fig = Figure(figsize=(11, 0.45 * len(modes) + 1.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, column, title in (
        (axes[0], "detection_s", "detection (s)"),
        (axes[1], "unavailable_s", "unavailability (s)"),
    ):
        for row, mode in enumerate(modes):
            values = trials.loc[trials["mode"] == mode, column].dropna().to_numpy(dtype=float)
            values = values[values > 0]
            if values.size == 0:
                continue
            jitter = np.linspace(-0.25, 0.25, values.size)
            ax.scatter(values, row + jitter, s=8, alpha=0.6)
            ax.scatter([values.max()], [row], s=60, facecolors="none", edgecolors="red")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(modes)), modes)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def distribution_json(trials: pd.DataFrame, modes: list[str]) -> dict[str, Any]:
    """The same strip chart as a Plotly figure: hover names the mode, trial and value.

    Detection (left) and unavailability (right), log axes, one row per mode;
    each mode's worst trial ringed in red; the legend toggles either.
    """
    data: list[dict[str, Any]] = []
    for axis, column, title in (
        ("x", "detection_s", "detection (s)"),
        ("x2", "unavailable_s", "unavailability (s)"),
    ):
        points = trials[trials["mode"].isin(modes)][["mode", "trial", column]].dropna()
        points = points[points[column] > 0]
        worst = points.loc[points.groupby("mode")[column].idxmax()] if len(points) else points
        for name, frame, marker in (
            (title, points, {"size": 6, "opacity": 0.6}),
            (
                f"worst {title}",
                worst,
                {"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": "red", "width": 2}},
            ),
        ):
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": name,
                    "x": [float(v) for v in frame[column]],
                    "y": [str(m) for m in frame["mode"]],
                    "customdata": [int(t) for t in frame["trial"]],
                    "hovertemplate": "%{y}, trial %{customdata}: %{x:.4g} s<extra></extra>",
                    "xaxis": axis,
                    "marker": marker,
                }
            )
    layout = {
        "height": 140 + 34 * len(modes),
        "margin": {"l": 190, "r": 20, "t": 50, "b": 60},
        "xaxis": {"type": "log", "domain": [0.0, 0.47], "title": {"text": "detection (s)"}},
        "xaxis2": {
            "type": "log",
            "domain": [0.53, 1.0],
            "anchor": "y",
            "title": {"text": "unavailability (s)"},
        },
        "yaxis": {"categoryorder": "array", "categoryarray": modes[::-1], "type": "category"},
        "showlegend": True,
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom"},
    }
    return {"data": data, "layout": layout}


def _interactive(figure: dict[str, Any]) -> str:
    """The figure, drawn offline by the plotly.js bundled inline (as every report is)."""
    payload = json.dumps(figure, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return (
        f"<script>{plotly_js()}</script>"
        '<div id="failover-distribution"></div>'
        f'<script type="application/json" id="failover-distribution-data">{payload}</script>'
        "<script>(function(){var f=JSON.parse(document.getElementById("
        "'failover-distribution-data').textContent);Plotly.newPlot("
        "'failover-distribution',f.data,f.layout,{responsive:true,displaylogo:false});})();"
        "</script>"
    )


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_matrix_report(path: Path, matrix: dict[str, Any], trials: pd.DataFrame) -> None:
    """Write the failure matrix page to *path* (atomically)."""
    modes = list(matrix["modes"])
    ok = trials[trials["error"].isna()] if "error" in trials else trials
    ok = ok[ok["mode"] != "control"]
    figure = _png(distribution_figure(ok, modes))
    interactive = _interactive(distribution_json(ok, modes))
    bounds = matrix["bounds"]
    plan = matrix["plan"]
    note = (
        f"{matrix['trials']} trials per mode on common random numbers (trial k of every mode: "
        f"the same arrivals, the same injection instant). Each trial warms up "
        f"{plan['warmup_s']:.0f} s, runs {plan['window_s']:.0f} s, then one failure is injected "
        f"at an instant uniform over {plan['inject_span_s']:.3g} s (a health-check interval, a "
        f"Raft heartbeat and an election timeout), and {plan['window_s']:.0f} s more are measured. "
        f"Bounds: a health verdict within {bounds['health_detection_s']:.3g} s (threshold x "
        f"interval + timeout); a Raft detection within {bounds['raft_detection_s']:.3g} s (the "
        f"election timeout's upper end); a leader cut off inbound within "
        f"{bounds['check_quorum_detection_s']:.3g} s (two check-quorum periods, then the "
        f"election timeout); a WAL stall has no fixed bound (its heartbeats stop at the first "
        f"write). 'floor' is the longest unavailability in the ten "
        f"minutes before the failure: what a healthy fleet shows. 'vs control' pairs each "
        f"trial with the same trial run with nothing injected (same arrivals): the p99 wait "
        f"of the ten minutes after the failure over the control's over the same minutes."
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Failure matrix: {html.escape(matrix["scenario"])}</title>
<style>{_CSS}</style></head><body>
<h1>Failure matrix: {html.escape(matrix["scenario"])} (seed {matrix["seed"]})</h1>
<p class=note>{html.escape(note)}</p>
{matrix_table(matrix)}
<h2>Distribution per mode</h2>
{interactive}
<details><summary>static figure (for print)</summary>
<img alt="detection and unavailability per trial" src="data:image/png;base64,{figure}">
</details>
</body></html>
"""
    atomic_write_text(path, page)
