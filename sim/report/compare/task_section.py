"""The comparison page's "task by task" section: each task of the reference beside itself.

Scenario: two runs of the same arrivals (live and its replay, two what-ifs of
one seed) can agree on every percentile and still treat single tasks
differently; ``sim.analysis.task_pairs`` pairs them and measures how. This
is that measure as a table on the page, one column per run compared with
the reference (the figures arrive as plain mappings, as calibration.json and
``orchestra compare --json`` hold them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sim.report.html.format import esc

#: Rows of the table: label, the figure's key, and how it is shown.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("tasks paired", "paired", "count"),
    ("reference's tasks with no partner", "live_only", "count"),
    ("compared run's tasks with no partner", "replay_only", "count"),
    ("same outcome", "same_outcome", "share"),
    ("same final zone", "same_zone", "share"),
    ("same attempts", "same_attempts", "share"),
    ("latency |Δ| p50 (s)", "latency_delta_p50_s", "seconds"),
    ("latency |Δ| p90 (s)", "latency_delta_p90_s", "seconds"),
    ("latency |Δ| p99 (s)", "latency_delta_p99_s", "seconds"),
    ("latency bias, compared - reference (s)", "latency_bias_s", "seconds"),
    ("latency within 1 s", "latency_close", "share"),
)


def _cell(value: object, how: str) -> str:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return "<td>—</td>"
    if how == "count":
        return f"<td>{int(value):,}</td>"
    if how == "share":
        return f"<td>{value:.1%}</td>"
    return f"<td>{value:.3g}</td>"


def task_pairs_section(reference: str, compared: Sequence[tuple[str, Mapping[str, float]]]) -> str:
    """The section's HTML (empty when nothing was paired: no task tables)."""
    if not compared:
        return ""
    head = "<th>task by task</th>" + "".join(f"<th>{esc(name)}</th>" for name, _ in compared)
    rows = []
    for label, key, how in ROWS:
        cells = []
        for _, pairs in compared:
            value: object = pairs.get(key)
            if key == "live_only":
                value = pairs["live"] - pairs["paired"]
            elif key == "replay_only":
                value = pairs["replay"] - pairs["paired"]
            cells.append(_cell(value, how))
        rows.append(f"<tr><td>{esc(label)}</td>{''.join(cells)}</tr>")
    caption = (
        f"Each task of {reference} (the reference) paired with the same task of each run by"
        " what both drew: an arrival's category and second, a DAG node's job and node."
        " Shares are of the pairs; latencies of the pairs completed in both."
    )
    return (
        '<section class="panel" id="compare-tasks"><h2>Task by task</h2>'
        f'<table class="diff"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        f"<caption>{esc(caption)}</caption></table></section>"
    )
