"""The comparison report: several runs of one question in one self-contained page.

Written for a scenario's variants (same arrivals, different settings), for a
replay against its recording, for ``orchestra compare A B --report`` and for a
live run against its simulated twin. The first run is the reference: the
time panels overlay every run on one time axis (p99 wait, agents, queue,
throughput, cost, with scaling decisions and alerts as marks; and, when the
runs have them, provider tokens against their limits, spot share with its
reclaims, and sheds per tier), and the table
gives each figure per run with its difference from the reference and, where
both runs have replications, a Welch t-test of the difference
(:mod:`sim.report.compare.stats`). Each run's SLO verdict is stated with its
causes when the summary carries them (``slo.causes``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.metrics.slo_causes import explain as slo_lines
from sim.metrics.store import atomic_write_bytes
from sim.report.compare.stats import (
    ALPHA,
    COMPARED,
    Difference,
    difference,
    figure_value,
    shown,
)
from sim.report.html.format import esc, fmt_number, fmt_value
from sim.report.html.template import page
from sim.report.interactive import RUN_COLOURS, panel_html, panels_script
from sim.report.level_overlay import overlay_level_panels
from sim.report.scaling_panel import scaling_panel
from sim.report.time_panels import RunFrames, overlay_panels, run_end_s

__all__ = ["ComparedRun", "load_run_dir", "write_comparison_report"]


@dataclass(frozen=True)
class ComparedRun:
    """One run in a comparison: its name, summary and (possibly empty) metrics and events."""

    name: str
    summary: Mapping[str, Any]
    metrics: pd.DataFrame
    events: pd.DataFrame
    #: Every autoscaler evaluation (``scaling.parquet``; None: autoscaling off, or none kept).
    scaling: pd.DataFrame | None = None


class RunDirError(ValueError):
    """A directory that is not a readable run (one line: path and what is missing)."""


def load_run_dir(directory: Path, name: str | None = None) -> ComparedRun:
    """A run directory (``summary.json``, ``metrics.parquet``, ``events.parquet``) as a run."""
    path = directory / "summary.json"
    if not path.is_file():
        raise RunDirError(f"{path}: file not found (expected a run directory)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        frames = [
            pd.read_parquet(directory / f) if (directory / f).is_file() else pd.DataFrame()
            for f in ("metrics.parquet", "events.parquet")
        ]
        evaluations = directory / "scaling.parquet"
        scaling = pd.read_parquet(evaluations) if evaluations.is_file() else None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{directory}: unreadable run directory ({exc})") from None
    if not isinstance(summary, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return ComparedRun(name or directory.name, summary, frames[0], frames[1], scaling)


def _value_cell(summary: Mapping[str, Any], path: Sequence[str]) -> str:
    value = figure_value(summary, path)
    text = "—" if value is None else fmt_number(value)
    ci: Any = summary.get("ci95")
    for key in path:
        ci = ci.get(key) if isinstance(ci, Mapping) else None
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        text += f" [{fmt_number(float(ci[0]))}, {fmt_number(float(ci[1]))}]"
    return f'<td class="num">{esc(text)}</td>'


def _diff_cell(diff: Difference) -> str:
    if diff.absolute is None:
        return '<td class="num">—</td>'
    text = f"{diff.absolute:+,.4g}"
    if diff.relative is not None:
        text += f" ({100.0 * diff.relative:+.1f} %)"
    if diff.tested:
        text += f" · p = {diff.p_value:.3g}" + (" *" if diff.significant else "")
    cls = f"num {diff.verdict}" if diff.verdict else "num"
    return f'<td class="{cls}">{esc(text)}</td>'


def _table(runs: Sequence[ComparedRun]) -> str:
    reference = runs[0]
    head = "<th>figure</th>" + "".join(
        f"<th>{esc(r.name)}</th>" + ("" if i == 0 else f"<th>Δ {esc(r.name)}</th>")
        for i, r in enumerate(runs)
    )
    rows = []
    tested = False
    for figure in (f for f in COMPARED if shown(f, [r.summary for r in runs])):
        cells = [f"<td>{esc(figure.label)}</td>"]
        for i, run in enumerate(runs):
            cells.append(_value_cell(run.summary, figure.path))
            if i:
                diff = difference(figure, reference.summary, run.summary)
                tested |= diff.tested
                cells.append(_diff_cell(diff))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    met = ["<td>SLO met</td>"]
    for i, run in enumerate(runs):
        slo = run.summary.get("slo")
        met.append(
            f"<td>{esc(fmt_value(slo.get('met') if isinstance(slo, Mapping) else None))}</td>"
        )
        if i:
            met.append("<td></td>")
    rows.append(f"<tr>{''.join(met)}</tr>")
    caption = (
        f"Δ: difference from {reference.name} (the reference), absolute and relative; green"
        " is better, red worse. Values in brackets: 95 % confidence interval across"
        " replications."
    )
    if tested:
        caption += (
            f" p: Welch's two-sided t-test on the replication values (unequal variances);"
            f" * marks a difference significant at {ALPHA:.0%} (uncoloured when it is not)."
        )
    else:
        caption += " No run here has several replications, so no difference is tested."
    return (
        '<section class="panel" id="compare-table"><h2>Figures side by side</h2>'
        f'<table class="diff"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        f"<caption>{esc(caption)}</caption></table></section>"
    )


def _verdicts(runs: Sequence[ComparedRun]) -> str:
    items = []
    for i, run in enumerate(runs):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        lines = slo_lines(run.summary)
        text = "<br>".join(esc(line) for line in lines) or "no SLO figures in this summary"
        items.append(f'<li><b style="color:{colour}">{esc(run.name)}</b>: {text}</li>')
    return (
        '<section class="panel" id="compare-slo"><h2>SLO verdicts</h2>'
        f'<ul class="causes">{"".join(items)}</ul></section>'
    )


def _header(title: str, note: str, runs: Sequence[ComparedRun]) -> str:
    names = " · ".join(r.name for r in runs)
    return (
        f'<header id="header"><h1>{esc(title)}</h1>'
        f'<div class="sub">{esc(note)}</div><div class="sub">runs: {esc(names)}</div></header>'
    )


def comparison_html(title: str, note: str, runs: Sequence[ComparedRun], extra: str = "") -> str:
    """The page's HTML (``extra``: more sections, e.g. a sweep's, placed after the table)."""
    if not runs:
        raise ValueError("a comparison needs at least one run")
    frames = [RunFrames(r.name, r.metrics, r.events) for r in runs]
    panels = overlay_panels(frames)
    # Provider tokens, spot, sheds: only when some run has them (sim.report.level_overlay).
    end_s = max(run_end_s(f) for f in frames)
    panels += overlay_level_panels(frames, end_s)
    seen = scaling_panel([(r.name, r.scaling) for r in runs], end_s)
    if seen is not None:
        panels.append(seen)
    panel_part = "".join(
        f'<section class="panel" id="compare-{p.panel_id}">{panel_html(p)}</section>'
        for p in panels
    )
    if panels:
        panel_part += (
            '<div class="sub">One time axis for all runs: drag to zoom any panel and the'
            " others follow (double-click resets); click a run in a legend to hide it."
            " Triangles: scaling decisions at their target size (on the autoscaler's panel:"
            " the evaluations that asked for a change); crosses: alerts firing."
            " Series: replication 0 of each run.</div>"
        )
    parts = [_header(title, note, runs), _verdicts(runs), panel_part, _table(runs), extra]
    scripts = panels_script() if panels else ""
    return page(title, parts, scripts)


def write_comparison_report(
    path: Path, title: str, note: str, runs: Sequence[ComparedRun], extra: str = ""
) -> Path:
    """Write the comparison page to *path* (atomically) and return it."""
    atomic_write_bytes(path, comparison_html(title, note, runs, extra).encode("utf-8"))
    return path
