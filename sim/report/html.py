"""The run report: one self-contained ``report.html`` plus the figures as PNG files.

:func:`write_report` draws every figure of :mod:`sim.report.plots`, writes each
as a PNG beside the report, and writes ``report.html`` laid out like the
spec's dashboard: a header strip with the headline numbers, the figures in a
grid, the summary table (with a 95 % confidence-interval column when the run
had several replications) and the first events.

The page must open anywhere, offline, years later: the PNGs are inlined as
``data:`` URIs, the CSS is inline, there is no JavaScript and no reference to
any other file or host. Every string that comes from the run's data is
HTML-escaped. Every file is written atomically (a temporary file in the
output directory, then :func:`os.replace`), so a reader never sees half a
report.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import numbers
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.report.plots import FIGURES, pick_replication, warm_tasks

__all__ = ["MAX_EVENTS", "SECTION_IDS", "write_report"]

#: The events table shows at most this many events.
MAX_EVENTS = 200
#: Section ids in page order; a browser test can look each of them up.
SECTION_IDS = (
    "header",
    "queue",
    "agents",
    "latency",
    "throughput",
    "categories",
    "latency-cdf",
    "summary",
    "events",
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
        "Latency",
        "p50 and p99 task latency (arrival to completion) per sampling interval.",
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
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
background:#f3f4f6;color:#1f2933}
main{max-width:1500px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:15px;margin:0 0 8px}
.sub{color:#52606d;font-size:12px}
#header{background:#1f2933;color:#f5f7fa;padding:14px 16px;border-radius:8px;margin-bottom:16px}
#header .sub{color:#cbd2d9}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
.card{background:#323f4b;border-radius:6px;padding:8px 14px;min-width:150px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#9aa5b1}
.card .v{font-size:22px;font-weight:600}
.card.bad .v{color:#ff9b9b}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:16px}
section.panel{background:#fff;border-radius:8px;padding:12px 14px;
box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:16px}
.grid section.panel{margin-bottom:0}
section.panel img{width:100%;height:auto;display:block}
.tables{margin-top:16px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#f5f7fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{word-break:break-word}
td.detail{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
caption{caption-side:bottom;text-align:left;color:#52606d;padding-top:6px}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- files ----------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    The temporary file is opened with mode 0o666 so the umask applies as for
    any new file (``tempfile.mkstemp`` would leave it private).
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No metadata: the default "Software" tag carries a URL, and the file needs none.
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


# --- formatting -----------------------------------------------------------------------------


def _as_number(value: object) -> int | float | None:
    """Python or NumPy int/float as a Python number; None for anything else (booleans too)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _is_number(value: object) -> bool:
    return _as_number(value) is not None


def _fmt_number(value: int | float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    if magnitude >= 0.01:
        return f"{value:.4g}"
    return f"{value:.3g}"


def _fmt_value(value: object) -> str:
    """Plain-text rendering of a summary leaf (escaped by the caller)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = _as_number(value)
    if number is not None:
        return _fmt_number(number)
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        if any(isinstance(v, Mapping | list | tuple) for v in value):
            return f"{len(value)} items"
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, Mapping):
        return "none" if not value else json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _fmt_id(value: object) -> str:
    """An identifier such as a seed: digits only, even if averaging made it a float."""
    number = _as_number(value)
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    if number is not None:
        return str(number)
    return "—" if value is None else str(value)


def _fmt_ci(pair: object) -> str:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        lo, hi = _as_number(pair[0]), _as_number(pair[1])
        if lo is not None and hi is not None:
            return f"[{_fmt_number(lo)}, {_fmt_number(hi)}]"
    return ""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, object]]:
    """Yield ``(dotted.key, leaf)`` pairs; an empty mapping is itself a leaf."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _flatten_ci(tree: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    """Dotted key -> ``[lo, hi]`` for a ``ci95`` tree mirroring the summary."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten_ci(value, name + "."))
        else:
            out[name] = value
    return out


def _get(tree: Mapping[str, Any], *path: str) -> object:
    node: object = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# --- sections -------------------------------------------------------------------------------


def _last_global(metrics: pd.DataFrame) -> Mapping[str, Any] | None:
    if metrics.empty or not {"level", "time_s"} <= set(metrics.columns):
        return None
    rep = pick_replication(metrics)
    rows = metrics if rep is None else metrics.loc[metrics["replication"] == rep]
    rows = rows.loc[rows["level"] == "global"]
    if rows.empty:
        return None
    last = rows.sort_values("time_s", kind="stable").iloc[-1]
    return {str(k): v for k, v in last.items()}


def _num(value: object) -> float | None:
    """A finite number as float, else None."""
    number = _as_number(value)
    if number is None or not math.isfinite(number):
        return None
    return float(number)


def _card(label: str, value: str, *, bad: bool = False) -> str:
    cls = "card bad" if bad else "card"
    return (
        f'<div class="{cls}"><div class="k">{_esc(label)}</div>'
        f'<div class="v">{_esc(value)}</div></div>'
    )


def _header_section(summary: Mapping[str, Any], metrics: pd.DataFrame) -> str:
    last = _last_global(metrics) or {}
    active = _num(last.get("active_agents"))
    total = _num(last.get("total_agents"))
    if active is None:
        active = _num(_get(summary, "agents", "final"))
    agents = "—"
    if active is not None:
        agents = _fmt_number(active)
        if total is not None:
            agents += f" / {_fmt_number(total)}"
    queue = _num(last.get("queue_depth"))
    throughput = _num(summary.get("throughput_per_min"))
    if throughput is None:
        throughput = _num(last.get("throughput_per_min"))
    p99 = _num(_get(summary, "latency_s", "p99"))
    completed = _num(_get(summary, "tasks", "completed"))
    lost = _num(_get(summary, "tasks", "lost"))

    def show(value: float | None, suffix: str = "") -> str:
        return "—" if value is None else _fmt_number(value) + suffix

    cards = [
        _card("active agents / total", agents),
        _card("queue", show(queue)),
        _card("throughput / min", show(throughput)),
        _card("p99 latency", show(p99, " s")),
        _card("tasks completed", show(completed)),
        _card("lost", show(lost), bad=bool(lost)),
    ]
    scenario = summary.get("scenario", "run")
    facts = [f"seed {_fmt_id(summary.get('seed'))}"]
    sim_seconds = _num(summary.get("sim_seconds"))
    if sim_seconds is not None:
        facts.append(f"{_fmt_number(sim_seconds / 3600.0)} h simulated")
    replications = summary.get("replications")
    if replications is not None:
        facts.append(
            f"{_fmt_value(replications)} replications (summary: across replications;"
            " figures: replication 0)"
        )
    slo_met = _get(summary, "slo", "met")
    if isinstance(slo_met, bool):
        facts.append("SLO met" if slo_met else "SLO breached")
    return (
        '<header id="header">'
        f"<h1>Orchestra Sim — {_esc(scenario)}</h1>"
        f'<div class="sub">{_esc(" · ".join(facts))}</div>'
        f'<div class="cards">{"".join(cards)}</div>'
        "</header>"
    )


def _figure_section(stem: str, png: bytes, extra: str = "") -> str:
    section_id, heading, caption = _FIGURE_SECTIONS[stem]
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<section class="panel" id="{section_id}">'
        f"<h2>{_esc(heading)}</h2>"
        f'<img alt="{_esc(heading)}" src="data:image/png;base64,{data}">'
        f'<div class="sub">{_esc(caption)}</div>'
        f"{extra}"
        "</section>"
    )


def _categories_table(tasks: pd.DataFrame) -> str:
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
        q50 = _num(p50.get(name))
        q99 = _num(p99.get(name))
        cells = [
            f"<td>{_esc(name)}</td>",
            f'<td class="num">{_esc(_fmt_number(n_done))}</td>',
            f'<td class="num">{_esc(f"{share:.1f} %")}</td>',
            f'<td class="num">{_esc(_fmt_number(count(name, "failed")))}</td>',
            f'<td class="num">{_esc(_fmt_number(count(name, "retried")))}</td>',
            f'<td class="num">{_esc("—" if q50 is None else _fmt_number(q50))}</td>',
            f'<td class="num">{_esc("—" if q99 is None else _fmt_number(q99))}</td>',
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<table><thead><tr><th>category</th><th>completed</th><th>share</th>"
        "<th>failed</th><th>retried</th><th>p50 (s)</th><th>p99 (s)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


#: Summary keys not shown as rows: the CI tree is a column, per-replication copies are too long.
_NOT_IN_TABLE = frozenset({"ci95", "per_replication"})


def _summary_section(summary: Mapping[str, Any]) -> str:
    ci_tree = summary.get("ci95")
    has_ci = isinstance(ci_tree, Mapping)
    cis = _flatten_ci(ci_tree) if isinstance(ci_tree, Mapping) else {}
    body = {k: v for k, v in summary.items() if k not in _NOT_IN_TABLE}
    rows = []
    for key, value in _flatten(body):
        numeric = _is_number(value)
        # Identifiers are numbers but not quantities: no thousands separators.
        shown = _fmt_id(value) if key == "seed" else _fmt_value(value)
        cells = [
            f"<td>{_esc(key)}</td>",
            f'<td class="{"num" if numeric else "text"}">{_esc(shown)}</td>',
        ]
        if has_ci:
            cells.append(f'<td class="num">{_esc(_fmt_ci(cis.get(key)))}</td>')
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
        f"<caption>{_esc(caption)}</caption></table>"
        "</section>"
    )


def _events_section(events: pd.DataFrame) -> str:
    frame = events if events is not None else pd.DataFrame()
    if not frame.empty and "replication" in frame.columns:
        rep = pick_replication(frame)
        frame = frame.loc[frame["replication"] == rep]
    total = len(frame)
    if not frame.empty and "time_s" in frame.columns:
        frame = frame.sort_values("time_s", kind="stable")
    shown = frame.head(MAX_EVENTS)
    rows = []
    for record in shown.to_dict(orient="records"):
        time_s = _num(record.get("time_s"))
        detail = record.get("detail")
        detail_text = (
            ""
            if detail is None or (isinstance(detail, float) and math.isnan(detail))
            else str(detail)
        )
        if len(detail_text) > 300:
            detail_text = detail_text[:299] + "…"
        rows.append(
            "<tr>"
            f'<td class="num">{_esc("—" if time_s is None else f"{time_s:,.1f}")}</td>'
            f'<td class="num">{_esc("—" if time_s is None else _hms(time_s))}</td>'
            f"<td>{_esc(record.get('kind', ''))}</td>"
            f"<td>{_esc(record.get('subject', ''))}</td>"
            f'<td class="detail">{_esc(detail_text)}</td>'
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
        "<table><thead><tr><th>time (s)</th><th>h:mm:ss</th><th>kind</th><th>subject</th>"
        f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"<caption>{_esc(caption)}</caption></table>"
        "</section>"
    )


def _page(title: str, parts: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(
    out_dir: Path,
    summary: Mapping[str, Any],
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
) -> Path:
    """Write the figures as PNGs and a self-contained ``report.html`` into ``out_dir``.

    The directory is created if needed. Returns the path of ``report.html``.
    Files written: ``queue_depth.png``, ``active_agents.png``, ``latency.png``,
    ``throughput.png``, ``categories.png``, ``latency_cdf.png`` and
    ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks_df = tasks if tasks is not None else pd.DataFrame()
    metrics_df = metrics if metrics is not None else pd.DataFrame()
    events_df = events if events is not None else pd.DataFrame()

    figure_html: list[str] = []
    for stem, draw in FIGURES.items():
        fig = draw(tasks_df, metrics_df, events_df)
        png = _png_bytes(fig)
        _write_atomic(out / f"{stem}.png", png)
        extra = _categories_table(tasks_df) if stem == "categories" else ""
        figure_html.append(_figure_section(stem, png, extra))

    parts = [
        _header_section(summary, metrics_df),
        f'<div class="grid">{"".join(figure_html)}</div>',
        '<div class="tables">',
        _summary_section(summary),
        _events_section(events_df),
        "</div>",
    ]
    title = f"Orchestra Sim report — {summary.get('scenario', 'run')}"
    report = out / "report.html"
    _write_atomic(report, _page(title, parts).encode("utf-8"))
    return report
