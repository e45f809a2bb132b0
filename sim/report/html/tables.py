"""The report's tables: categories, cost cards, the flattened summary and the event log."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sim.report.html.format import (
    esc,
    flatten,
    flatten_ci,
    fmt_ci,
    fmt_id,
    fmt_number,
    fmt_value,
    hms,
    is_number,
    num,
)
from sim.report.plots import (
    ALERT_EVENT,
    SCALE_EVENT,
    cost_lines,
    event_group,
    pick_replication,
    warm_tasks,
)

#: The events table holds at most this many events (the kind filter and the search box
#: work on these; the whole log is in events.parquet).
MAX_EVENTS = 2000


def categories_table(tasks: pd.DataFrame) -> str:
    """Per-category counts and latency percentiles, below the category figure."""
    warm = warm_tasks(tasks)
    if warm.empty or not {"category", "outcome"} <= set(warm.columns):
        return ""
    outcomes = warm.assign(category=warm["category"].astype(str))
    tally = Counter(
        zip(outcomes["category"].tolist(), outcomes["outcome"].astype(str).tolist(), strict=True)
    )
    categories = {c for c, _ in tally}
    completed_total = sum(n for (_, o), n in tally.items() if o == "completed")
    done = outcomes.loc[outcomes["outcome"] == "completed"]
    p50: dict[str, float] = {}
    p99: dict[str, float] = {}
    if "latency_s" in done.columns and not done.empty:
        latency = pd.to_numeric(done["latency_s"], errors="coerce").groupby(done["category"])
        p50 = {str(k): float(v) for k, v in latency.quantile(0.5).items()}
        p99 = {str(k): float(v) for k, v in latency.quantile(0.99).items()}

    def count(category: str, outcome: str) -> int:
        return tally.get((category, outcome), 0)

    order = sorted(categories, key=lambda c: (-count(c, "completed"), c))
    rows = []
    for category in order:
        name = category
        n_done = count(name, "completed")
        share = 100.0 * n_done / completed_total if completed_total else 0.0
        q50 = num(p50.get(name))
        q99 = num(p99.get(name))
        cells = [
            f"<td>{esc(name)}</td>",
            f'<td class="num">{esc(fmt_number(n_done))}</td>',
            f'<td class="num">{esc(f"{share:.1f} %")}</td>',
            f'<td class="num">{esc(fmt_number(count(name, "failed")))}</td>',
            f'<td class="num">{esc(fmt_number(count(name, "retried")))}</td>',
            f'<td class="num">{esc("—" if q50 is None else fmt_number(q50))}</td>',
            f'<td class="num">{esc("—" if q99 is None else fmt_number(q99))}</td>',
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<table><thead><tr><th>category</th><th>completed</th><th>share</th>"
        "<th>failed</th><th>retried</th><th>p50 (s)</th><th>p99 (s)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def cost_cards(summary: Mapping[str, Any]) -> str:
    lines = cost_lines(summary)
    if not lines:
        return '<div class="sub">The summary has no cost figures.</div>'
    cards = []
    for line in lines:
        value, _, label = line.partition(" ")
        cards.append(
            f'<div class="minicard"><div class="k">{esc(label)}</div>'
            f'<div class="v">{esc(value)}</div></div>'
        )
    return f'<div class="minicards">{"".join(cards)}</div>'


#: Summary keys not shown as rows: the CI tree is a column, per-replication copies are too long.
_NOT_IN_TABLE = frozenset({"ci95", "per_replication"})
#: Summary keys with a section of their own (the SLO verdict's causes).
_OWN_SECTION = ("slo.causes.",)


def summary_section(summary: Mapping[str, Any]) -> str:
    ci_tree = summary.get("ci95")
    has_ci = isinstance(ci_tree, Mapping)
    cis = flatten_ci(ci_tree) if isinstance(ci_tree, Mapping) else {}
    body = {k: v for k, v in summary.items() if k not in _NOT_IN_TABLE}
    rows = []
    for key, value in flatten(body):
        if key.startswith(_OWN_SECTION):
            continue
        numeric = is_number(value)
        # Identifiers are numbers but not quantities: no thousands separators.
        shown = fmt_id(value) if key == "seed" else fmt_value(value)
        cells = [
            f"<td>{esc(key)}</td>",
            f'<td class="{"num" if numeric else "text"}">{esc(shown)}</td>',
        ]
        if has_ci:
            cells.append(f'<td class="num">{esc(fmt_ci(cis.get(key)))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "<th>metric</th><th>value</th>"
    caption = "Statistics over tasks that arrived after the warm-up."
    if has_ci:
        head += "<th>95 % CI</th>"
        caption += " The confidence interval is across replications."
    return (
        '<section class="panel" id="summary">'
        "<h2>Summary</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f"<caption>{esc(caption)}</caption></table>"
        "</section>"
    )


def events_section(events: pd.DataFrame) -> str:
    frame = events if events is not None else pd.DataFrame()
    if not frame.empty and "replication" in frame.columns:
        rep = pick_replication(frame)
        frame = frame.loc[frame["replication"] == rep]
    total = len(frame)
    chips = _event_chips(frame)
    if not frame.empty and "time_s" in frame.columns:
        frame = frame.sort_values("time_s", kind="stable")
    shown = frame.head(MAX_EVENTS)
    rows = []
    for record in shown.to_dict(orient="records"):
        time_s = num(record.get("time_s"))
        detail = record.get("detail")
        detail_text = (
            ""
            if detail is None or (isinstance(detail, float) and math.isnan(detail))
            else str(detail)
        )
        if len(detail_text) > 300:
            detail_text = detail_text[:299] + "…"
        kind = str(record.get("kind", ""))
        rows.append(
            f'<tr data-kind="{esc(kind)}">'
            f'<td class="num">{esc("—" if time_s is None else f"{time_s:,.1f}")}</td>'
            f'<td class="num">{esc("—" if time_s is None else hms(time_s))}</td>'
            f"<td>{esc(kind)}</td>"
            f"<td>{esc(record.get('subject', ''))}</td>"
            f'<td class="detail">{esc(detail_text)}</td>'
            "</tr>"
        )
    if total == 0:
        caption = "No events were recorded."
    elif total > len(shown):
        caption = f"First {len(shown)} of {total:,} events (replication shown in the figures)."
    else:
        caption = f"All {total:,} events."
    return (
        '<section class="panel" id="events">'
        "<h2>Events</h2>"
        f"{chips}{_event_filters(shown)}"
        '<table id="event-table"><thead><tr><th>time (s)</th><th>h:mm:ss</th>'
        "<th>kind</th><th>subject</th>"
        f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"<caption>{esc(caption)}</caption></table>"
        "</section>"
    )


def _event_filters(frame: pd.DataFrame) -> str:
    """A kind selector and a search box over the table's rows (EVENT_FILTER_JS drives them)."""
    kinds = sorted({str(k) for k in frame["kind"].tolist()}) if "kind" in frame.columns else []
    options = "".join(f'<option value="{esc(k)}">{esc(k)}</option>' for k in kinds)
    return (
        '<div class="filters"><label>kind <select id="event-kind">'
        f'<option value="">all</option>{options}</select></label>'
        '<label>search <input id="event-search" type="search"'
        ' placeholder="subject, detail, time"></label>'
        '<span id="event-count" class="sub"></span></div>'
    )


def _event_chips(frame: pd.DataFrame) -> str:
    """One chip per event kind with its count, most frequent first."""
    if frame.empty or "kind" not in frame.columns:
        return ""
    counts = Counter(str(k) for k in frame["kind"].tolist())
    chips = []
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        group = kind if kind in (ALERT_EVENT, SCALE_EVENT) else event_group(kind)
        chips.append(f'<span class="chip {group}">{esc(kind)} × {esc(f"{n:,}")}</span>')
    return f'<div class="chips">{"".join(chips)}</div>'
