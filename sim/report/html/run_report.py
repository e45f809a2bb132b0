"""The run report: one self-contained ``report.html`` plus the figures as PNG files.

:func:`write_report` draws every figure of :mod:`sim.report.plots`, writes each
as a PNG beside the report, and writes ``report.html`` laid out like the
spec's dashboard (section 6.2): a header strip with the headline numbers and
their bars, zone health beside the task distribution, the time panels
(p99, agents, queue, throughput, cost) drawn interactively
(:mod:`sim.report.time_panels`), a timeline of agents, scaling, alerts and
failures on one time axis, the other figures in a grid, the summary table
(with a 95 % confidence-interval column when the run had several
replications) and the event log with a kind filter and a search box.

The page must open anywhere, offline, years later: the PNGs are inlined as
``data:`` URIs, the CSS and the chart library are inline, and nothing refers
to any other file or host. Every string that comes from the run's data is
HTML-escaped. Every file is written atomically
(:func:`sim.metrics.store.atomic_write_bytes`), so a reader never sees half a
report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sim.metrics.store import atomic_write_bytes
from sim.report.html.cards import header_section, zones_section
from sim.report.html.format import esc
from sim.report.html.slo_section import slo_section
from sim.report.html.tables import (
    categories_table,
    cost_cards,
    events_section,
    summary_section,
)
from sim.report.html.template import EVENT_FILTER_JS, page
from sim.report.interactive import Panel, panel_html, panels_script
from sim.report.level_panels import LEVEL_PANEL_IDS, level_panels
from sim.report.plots import FIGURES
from sim.report.scaling_panel import SCALING_PANEL, scaling_panel
from sim.report.time_panels import RunFrames, run_end_s, run_panels

#: Heading and caption of each section an optional panel gets, by panel id.
_SECTIONS = {**LEVEL_PANEL_IDS, SCALING_PANEL[0]: SCALING_PANEL[1:]}

#: Figures whose place in the page an interactive panel takes (the PNG is still written).
_INTERACTIVE = {
    "latency": "panel-p99",
    "active_agents": "panel-agents",
    "queue_depth": "panel-queue",
    "throughput": "panel-throughput",
    "cost": "panel-cost",
}

#: Section ids in page order; a browser test can look each of them up.
SECTION_IDS = (
    "header",
    "slo",
    "zones",
    "categories",
    "latency",
    "timeline",
    "cost",
    "agents",
    "queue",
    "throughput",
    "latency-cdf",
    "traffic",
    "coordinators",
    "summary",
    "events",
)
#: Figures drawn full width (the page's rows follow the spec's dashboard).
_WIDE_FIGURES = ("latency", "timeline", "cost")
#: Figures in the two-column grid below them.
_GRID_FIGURES = (
    "active_agents",
    "queue_depth",
    "throughput",
    "latency_cdf",
    "control_traffic",
    "coordinators",
)

#: Figure file stem -> (section id, heading, caption).
_FIGURE_SECTIONS: dict[str, tuple[str, str, str]] = {
    "queue_depth": (
        "queue",
        "Queue depth",
        "Tasks waiting for an agent, fleet-wide and per zone.",
    ),
    "active_agents": (
        "agents",
        "Active agents",
        "Agents in the fleet, those able to take work, and those busy.",
    ),
    "latency": (
        "latency",
        "Response time (p99)",
        "p50 and p99 task latency (arrival to completion) and p99 wait (arrival to service"
        " start, the SLO's response time) per sampling interval.",
    ),
    "throughput": (
        "throughput",
        "Throughput",
        "Tasks completed per minute.",
    ),
    "categories": (
        "categories",
        "Task distribution",
        "Completed tasks per category, after the warm-up.",
    ),
    "latency_cdf": (
        "latency-cdf",
        "Latency distribution",
        "Cumulative distribution of completed tasks' latency, after the warm-up.",
    ),
    "timeline": (
        "timeline",
        "Timeline",
        "One time axis. Top: total and active agents; triangles are scaling decisions at their"
        " target size, labelled with the change. Middle: alerts from firing to resolved,"
        " coloured by severity (hatched: still firing at the end). Bottom: failures (red),"
        " recoveries and redistributions (green), elections (purple) and fleet changes (grey),"
        " one row per kind, with counts at the right.",
    ),
    "control_traffic": (
        "traffic",
        "Control traffic",
        "Messages per second by type, all paths (TASK_ASSIGN, TASK_COMPLETE, TASK_FAILED,"
        " ESCALATION, heartbeats, status polls, DAG data and broadcasts); log scale.",
    ),
    "coordinators": (
        "coordinators",
        "Coordinator load",
        "Utilisation of the chief and of the busiest zone coordinator and team lead: task"
        " messages plus the heartbeats and status polls they process. At 1 the queue grows"
        " without bound and dispatch slows (the summary's dispatch and chief figures).",
    ),
    "cost": (
        "cost",
        "Cost",
        "Cumulative cost of the fleet and its hourly rate; the figures above are the summary's"
        " (measured after the warm-up).",
    ),
}


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No metadata: the default "Software" tag carries a URL, and the file needs none.
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _figure_section(
    stem: str, png: bytes, extra: str = "", before: str = "", panel: Panel | None = None
) -> str:
    """A figure's section: the interactive panel when there is one, else the inline PNG."""
    section_id, heading, caption = _FIGURE_SECTIONS[stem]
    if panel is not None:
        figure = panel_html(panel)
        caption += " Interactive: hover to read, drag to zoom (all time panels follow), click"
        caption += f" a legend entry to hide it. Static image: {stem}.png beside this file."
    else:
        data = base64.b64encode(png).decode("ascii")
        figure = f'<img alt="{esc(heading)}" src="data:image/png;base64,{data}">'
    return (
        f'<section class="panel" id="{section_id}">'
        f"<h2>{esc(heading)}</h2>"
        f"{before}"
        f"{figure}"
        f'<div class="sub">{esc(caption)}</div>'
        f"{extra}"
        "</section>"
    )


def _optional_panels(
    metrics: pd.DataFrame, scaling: pd.DataFrame | None, end_s: float
) -> list[Panel]:
    """The opt-in models' panels (llm, spot, tiers), then the autoscaler's view (autoscaling
    on): each only where the run has its data."""
    panels = level_panels(metrics, end_s)
    seen = scaling_panel([("run", scaling)], end_s)
    return panels if seen is None else [*panels, seen]


def _level_section(panel: Panel) -> str:
    """An opt-in model's panel (sim.report.level_panels) as a full-width section of its own."""
    heading, caption = _SECTIONS[panel.panel_id]
    section_id = panel.panel_id.removeprefix("panel-")
    return (
        f'<section class="panel" id="{section_id}">'
        f"<h2>{esc(heading)}</h2>"
        f"{panel_html(panel)}"
        f'<div class="sub">{esc(caption)} Interactive: hover to read, drag to zoom.</div>'
        "</section>"
    )


def write_report(
    out_dir: Path,
    summary: Mapping[str, Any],
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    scaling: pd.DataFrame | None = None,
) -> Path:
    """Write the figures as PNGs and a self-contained ``report.html`` into ``out_dir``.

    The directory is created if needed. Returns the path of ``report.html``.
    Files written: ``queue_depth.png``, ``active_agents.png``, ``latency.png``,
    ``throughput.png``, ``categories.png``, ``latency_cdf.png``, ``timeline.png``,
    ``cost.png``, ``zone_health.png``, ``control_traffic.png``, ``coordinators.png`` and
    ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks_df = tasks if tasks is not None else pd.DataFrame()
    metrics_df = metrics if metrics is not None else pd.DataFrame()
    events_df = events if events is not None else pd.DataFrame()

    frames = RunFrames("run", metrics_df, events_df)
    panels = {p.panel_id: p for p in run_panels(frames)}
    extra_panels = _optional_panels(metrics_df, scaling, run_end_s(frames))
    sections: dict[str, str] = {}
    zone_png: bytes | None = None
    for stem, draw in FIGURES.items():
        fig = draw(tasks_df, metrics_df, events_df, summary)
        png = _png_bytes(fig)
        atomic_write_bytes(out / f"{stem}.png", png)
        if stem == "zone_health":
            zone_png = png
            continue
        extra = categories_table(tasks_df) if stem == "categories" else ""
        before = cost_cards(summary) if stem == "cost" else ""
        panel = panels.get(_INTERACTIVE.get(stem, ""))
        sections[stem] = _figure_section(stem, png, extra, before, panel)

    zones = zones_section(metrics_df, zone_png)
    parts = [
        header_section(summary, metrics_df),
        slo_section(summary),
        f'<div class="top">{zones}{sections.pop("categories")}</div>',
        *(sections.pop(stem) for stem in _WIDE_FIGURES),
        f'<div class="grid">{"".join(sections.pop(stem) for stem in _GRID_FIGURES)}</div>',
        *sections.values(),  # any figure added to FIGURES later, full width
        *(_level_section(p) for p in extra_panels),  # llm, spot, tiers: only when on
        '<div class="tables">',
        summary_section(summary),
        events_section(events_df),
        "</div>",
    ]
    title = f"Orchestra Sim report — {summary.get('scenario', 'run')}"
    report = out / "report.html"
    scripts = f"<script>{EVENT_FILTER_JS}</script>"
    if panels or extra_panels:
        scripts = panels_script() + scripts
    atomic_write_bytes(report, page(title, parts, scripts).encode("utf-8"))
    return report
