"""The run report: one self-contained ``report.html`` plus the figures as PNG files.

:func:`write_report` draws every figure of :mod:`sim.report.plots`, writes each
as a PNG beside the report, and writes ``report.html`` laid out like the
spec's dashboard (section 6.2): a header strip with the headline numbers and
their bars, zone health beside the task distribution, the p99 response time,
a timeline of agents, scaling, alerts and failures on one time axis, the
cost, the other figures in a grid, the summary table (with a 95 %
confidence-interval column when the run had several replications) and the
first events.

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

from sim.report.plots import (
    ALERT_EVENT,
    FIGURES,
    SCALE_EVENT,
    cost_lines,
    event_group,
    pick_replication,
    warm_tasks,
)

__all__ = ["MAX_EVENTS", "SECTION_IDS", "write_report"]

#: The events table shows at most this many events.
MAX_EVENTS = 200
#: Section ids in page order; a browser test can look each of them up.
SECTION_IDS = (
    "header",
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
#: Zone health (active / total) at or above this share is healthy, below the next one bad.
HEALTHY_SHARE = 0.95
DEGRADED_SHARE = 0.80

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
.card .bar{margin-top:5px;background:#52606d}
.card .note{font-size:10px;color:#9aa5b1;margin-top:2px}
.bar{height:8px;border-radius:4px;background:#e4e7eb;overflow:hidden;min-width:60px}
.bar span{display:block;height:100%;background:#3e9ddb}
.bar span.ok{background:#2ca02c}
.bar span.warn{background:#f0a30a}
.bar span.bad{background:#d62728}
.top{display:grid;grid-template-columns:minmax(340px,1fr) minmax(0,2fr);gap:16px;
margin-bottom:16px}
.top section.panel{margin-bottom:0}
@media (max-width:1000px){.top{grid-template-columns:1fr}}
table.zones td.bar-cell{width:45%}
table.zones td:first-child{white-space:nowrap}
table.zones{margin-bottom:10px}
table.zones td{vertical-align:middle;font-size:13px}
table.zones td.ok{color:#1e7b1e;font-weight:600}
table.zones td.warn{color:#b26b00;font-weight:600}
table.zones td.bad{color:#b31b1b;font-weight:600}
tr.all td{border-top:2px solid #cbd2d9;font-weight:600}
.minicards{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 8px}
.minicard{background:#f5f7fa;border:1px solid #e4e7eb;border-radius:6px;padding:4px 10px}
.minicard .k{font-size:10px;text-transform:uppercase;letter-spacing:.05em;color:#52606d}
.minicard .v{font-size:16px;font-weight:600}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.chip{background:#f5f7fa;border:1px solid #e4e7eb;border-radius:10px;padding:1px 8px;
font-size:11px}
.chip.failure{border-color:#f4b4b4;background:#fdecec}
.chip.recovery{border-color:#b4dfb4;background:#edf8ed}
.chip.election{border-color:#d3c4ea;background:#f4effb}
.chip.alert{border-color:#f7d1a1;background:#fef4e6}
.chip.scale{border-color:#a9cbe8;background:#eaf3fb}
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


def _bar(fraction: float, label: str, cls: str = "") -> str:
    """A horizontal bar filled to ``fraction`` (clamped to 0..1), described for screen readers."""
    share = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
    css = f' class="{cls}"' if cls else ""
    return (
        f'<div class="bar" role="img" aria-label="{_esc(label)}">'
        f'<span{css} style="width:{100.0 * share:.1f}%"></span></div>'
    )


def _health_class(share: float) -> str:
    if share >= HEALTHY_SHARE:
        return "ok"
    if share >= DEGRADED_SHARE:
        return "warn"
    return "bad"


def _card(
    label: str,
    value: str,
    *,
    bad: bool = False,
    bar: tuple[float, str, str] | None = None,
    note: str = "",
) -> str:
    """A header card; ``bar`` is (fraction, description, css class)."""
    cls = "card bad" if bad else "card"
    extra = ""
    if bar is not None:
        extra += _bar(*bar)
    if note:
        extra += f'<div class="note">{_esc(note)}</div>'
    return (
        f'<div class="{cls}"><div class="k">{_esc(label)}</div>'
        f'<div class="v">{_esc(value)}</div>{extra}</div>'
    )


def _shown_rows(metrics: pd.DataFrame, level: str) -> pd.DataFrame:
    """Rows of one level for the replication the figures show, in time order."""
    if metrics.empty or not {"level", "time_s"} <= set(metrics.columns):
        return pd.DataFrame()
    rep = pick_replication(metrics)
    rows = metrics if rep is None else metrics.loc[metrics["replication"] == rep]
    rows = rows.loc[rows["level"] == level]
    return rows.sort_values("time_s", kind="stable")


def _peak(rows: pd.DataFrame, column: str) -> float | None:
    if rows.empty or column not in rows.columns:
        return None
    values = pd.to_numeric(rows[column], errors="coerce")
    values = values[np.isfinite(values)]
    return None if values.empty else float(values.max())


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

    rows = _shown_rows(metrics, "global")
    agents_bar = None
    if active is not None and total:
        share = active / total
        agents_bar = (share, f"{100.0 * share:.0f} % of agents active", _health_class(share))
    queue_bar, queue_note = None, ""
    peak_queue = _peak(rows, "queue_depth")
    if queue is not None and peak_queue:
        queue_bar = (queue / peak_queue, "queue relative to its peak", "")
        queue_note = f"last sample · peak {_fmt_number(peak_queue)}"
    tp_bar, tp_note = None, ""
    peak_tp = _peak(rows, "throughput_per_min")
    if throughput is not None and peak_tp:
        tp_bar = (throughput / peak_tp, "throughput relative to the peak interval", "")
        tp_note = f"after warm-up · peak {_fmt_number(round(peak_tp, 1))}"
    cards = [
        _card(
            "active agents / total",
            agents,
            bar=agents_bar,
            note="last sample" if agents_bar else "",
        ),
        _card("queue", show(queue), bar=queue_bar, note=queue_note),
        _card("throughput / min", show(throughput), bar=tp_bar, note=tp_note),
        _card("p99 latency", show(p99, " s")),
        _card("tasks completed", show(completed)),
        _card("lost", show(lost), bad=bool(lost)),
    ]
    per_day = _num(_get(summary, "cost", "usd_per_day"))
    if per_day is not None:
        cards.append(_card("cost / day", f"${per_day:,.2f}"))
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


def _figure_section(stem: str, png: bytes, extra: str = "", before: str = "") -> str:
    section_id, heading, caption = _FIGURE_SECTIONS[stem]
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<section class="panel" id="{section_id}">'
        f"<h2>{_esc(heading)}</h2>"
        f"{before}"
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


def _zone_label(zone: str) -> str:
    return zone if zone.lower().startswith("zone") else f"Zone {zone}"


def _health_row(label: str, active: float, total: float, queue: float | None, low: str) -> str:
    share = active / total if total > 0 else math.nan
    cls = _health_class(share) if total > 0 else ""
    percent = f"{100.0 * share:.0f} %" if total > 0 else "—"
    cells = [
        f"<td>{_esc(label)}</td>",
        f'<td class="bar-cell">{_bar(share, f"{label}: {percent} active", cls)}</td>',
        f'<td class="num">{_esc(f"{_fmt_number(active)}/{_fmt_number(total)}")}</td>',
        f'<td class="num {cls}">{_esc(percent)}</td>',
        f'<td class="num">{_esc("—" if queue is None else _fmt_number(queue))}</td>',
        f'<td class="num">{_esc(low)}</td>',
    ]
    return "".join(cells)


def _zones_section(metrics: pd.DataFrame, png: bytes | None = None) -> str:
    """Per zone: active / total agents at the last sample as a bar and a share, queue, lowest."""
    zones = _shown_rows(metrics, "zone")
    needed = {"id", "active_agents", "total_agents"}
    rows: list[str] = []
    caption = "No per-zone samples in this run's metrics."
    if not zones.empty and needed <= set(zones.columns):
        last_time = float(zones["time_s"].max())
        for zone, group in sorted(zones.groupby("id"), key=lambda kv: str(kv[0])):
            active_all = pd.to_numeric(group["active_agents"], errors="coerce")
            total_all = pd.to_numeric(group["total_agents"], errors="coerce")
            ok = np.isfinite(active_all) & np.isfinite(total_all) & (total_all > 0)
            lowest = (active_all[ok] / total_all[ok]).min() if ok.any() else math.nan
            low = "—" if not math.isfinite(lowest) else f"{100.0 * lowest:.0f} %"
            last = group.iloc[-1]
            active = _num(last.get("active_agents"))
            total = _num(last.get("total_agents"))
            if active is None or total is None:
                continue
            cells = _health_row(
                _zone_label(str(zone)), active, total, _num(last.get("queue_depth")), low
            )
            rows.append(f"<tr>{cells}</tr>")
        fleet = _shown_rows(metrics, "global")
        if rows and not fleet.empty and {"active_agents", "total_agents"} <= set(fleet.columns):
            last = fleet.iloc[-1]
            active = _num(last.get("active_agents"))
            total = _num(last.get("total_agents"))
            if active is not None and total is not None:
                cells = _health_row("All zones", active, total, _num(last.get("queue_depth")), "")
                rows.append(f'<tr class="all">{cells}</tr>')
        caption = (
            f"Agents online (idle or busy) of those provisioned, at the last sample"
            f" ({_hms(last_time)}); queue: tasks waiting in the zone; lowest: the zone's lowest"
            f" share over the run. Green ≥ {HEALTHY_SHARE:.0%}, amber ≥ {DEGRADED_SHARE:.0%}."
        )
    table = (
        '<table class="zones"><thead><tr><th>zone</th><th>health</th><th>active</th>'
        "<th>%</th><th>queue</th><th>lowest</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><caption>{_esc(caption)}</caption></table>"
    )
    image = ""
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        image = f'<img alt="Zone health over time" src="data:image/png;base64,{data}">'
    return f'<section class="panel" id="zones"><h2>Zone health</h2>{table}{image}</section>'


def _cost_cards(summary: Mapping[str, Any]) -> str:
    lines = cost_lines(summary)
    if not lines:
        return '<div class="sub">The summary has no cost figures.</div>'
    cards = []
    for line in lines:
        value, _, label = line.partition(" ")
        cards.append(
            f'<div class="minicard"><div class="k">{_esc(label)}</div>'
            f'<div class="v">{_esc(value)}</div></div>'
        )
    return f'<div class="minicards">{"".join(cards)}</div>'


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
    chips = _event_chips(frame)
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
        f"{chips}"
        "<table><thead><tr><th>time (s)</th><th>h:mm:ss</th><th>kind</th><th>subject</th>"
        f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"<caption>{_esc(caption)}</caption></table>"
        "</section>"
    )


def _event_chips(frame: pd.DataFrame) -> str:
    """One chip per event kind with its count, most frequent first."""
    if frame.empty or "kind" not in frame.columns:
        return ""
    counts = Counter(str(k) for k in frame["kind"].tolist())
    chips = []
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        group = kind if kind in (ALERT_EVENT, SCALE_EVENT) else event_group(kind)
        chips.append(f'<span class="chip {group}">{_esc(kind)} × {_esc(f"{n:,}")}</span>')
    return f'<div class="chips">{"".join(chips)}</div>'


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
    ``throughput.png``, ``categories.png``, ``latency_cdf.png``, ``timeline.png``,
    ``cost.png``, ``zone_health.png``, ``control_traffic.png``, ``coordinators.png`` and
    ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks_df = tasks if tasks is not None else pd.DataFrame()
    metrics_df = metrics if metrics is not None else pd.DataFrame()
    events_df = events if events is not None else pd.DataFrame()

    sections: dict[str, str] = {}
    zone_png: bytes | None = None
    for stem, draw in FIGURES.items():
        fig = draw(tasks_df, metrics_df, events_df, summary)
        png = _png_bytes(fig)
        _write_atomic(out / f"{stem}.png", png)
        if stem == "zone_health":
            zone_png = png
            continue
        extra = _categories_table(tasks_df) if stem == "categories" else ""
        before = _cost_cards(summary) if stem == "cost" else ""
        sections[stem] = _figure_section(stem, png, extra, before)

    zones = _zones_section(metrics_df, zone_png)
    parts = [
        _header_section(summary, metrics_df),
        f'<div class="top">{zones}{sections.pop("categories")}</div>',
        *(sections.pop(stem) for stem in _WIDE_FIGURES),
        f'<div class="grid">{"".join(sections.pop(stem) for stem in _GRID_FIGURES)}</div>',
        *sections.values(),  # any figure added to FIGURES later, full width
        '<div class="tables">',
        _summary_section(summary),
        _events_section(events_df),
        "</div>",
    ]
    title = f"Orchestra Sim report — {summary.get('scenario', 'run')}"
    report = out / "report.html"
    _write_atomic(report, _page(title, parts).encode("utf-8"))
    return report
