"""The report's header strip (headline numbers with bars) and the zone health table."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.report.html.format import esc, fmt_id, fmt_number, fmt_value, get_path, hms, num
from sim.report.plots import pick_replication

#: Zone health (active / total) at or above this share is healthy, below the next one bad.
HEALTHY_SHARE = 0.95
DEGRADED_SHARE = 0.80


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


def _bar(fraction: float, label: str, cls: str = "") -> str:
    """A horizontal bar filled to ``fraction`` (clamped to 0..1), described for screen readers."""
    share = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
    css = f' class="{cls}"' if cls else ""
    return (
        f'<div class="bar" role="img" aria-label="{esc(label)}">'
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
        extra += f'<div class="note">{esc(note)}</div>'
    return (
        f'<div class="{cls}"><div class="k">{esc(label)}</div>'
        f'<div class="v">{esc(value)}</div>{extra}</div>'
    )


def shown_rows(metrics: pd.DataFrame, level: str) -> pd.DataFrame:
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


def header_section(summary: Mapping[str, Any], metrics: pd.DataFrame) -> str:
    last = _last_global(metrics) or {}
    rows = shown_rows(metrics, "global")
    p99 = num(get_path(summary, "latency_s", "p99"))
    completed = num(get_path(summary, "tasks", "completed"))
    lost = num(get_path(summary, "tasks", "lost"))
    cards = [
        _agents_card(summary, last),
        _queue_card(last, rows),
        _throughput_card(summary, last, rows),
        _card("p99 latency", _show(p99, " s")),
        _card("tasks completed", _show(completed)),
        _card("lost", _show(lost), bad=bool(lost)),
    ]
    cost = _cost_card(summary)
    if cost is not None:
        cards.append(cost)
    scenario = summary.get("scenario", "run")
    facts = _header_facts(summary)
    return (
        '<header id="header">'
        f"<h1>Orchestra Sim — {esc(scenario)}</h1>"
        f'<div class="sub">{esc(" · ".join(facts))}</div>'
        f'<div class="cards">{"".join(cards)}</div>'
        "</header>"
    )


def _show(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else fmt_number(value) + suffix


def _agents_card(summary: Mapping[str, Any], last: Mapping[str, Any]) -> str:
    """Active / total agents at the last sample (the summary's final count if none)."""
    active = num(last.get("active_agents"))
    total = num(last.get("total_agents"))
    if active is None:
        active = num(get_path(summary, "agents", "final"))
    agents = "—"
    if active is not None:
        agents = fmt_number(active)
        if total is not None:
            agents += f" / {fmt_number(total)}"
    agents_bar = None
    if active is not None and total:
        share = active / total
        agents_bar = (share, f"{100.0 * share:.0f} % of agents active", _health_class(share))
    return _card(
        "active agents / total",
        agents,
        bar=agents_bar,
        note="last sample" if agents_bar else "",
    )


def _queue_card(last: Mapping[str, Any], rows: pd.DataFrame) -> str:
    """The last queue depth, with a bar relative to its peak."""
    queue = num(last.get("queue_depth"))
    queue_bar, queue_note = None, ""
    peak_queue = _peak(rows, "queue_depth")
    if queue is not None and peak_queue:
        queue_bar = (queue / peak_queue, "queue relative to its peak", "")
        queue_note = f"last sample · peak {fmt_number(peak_queue)}"
    return _card("queue", _show(queue), bar=queue_bar, note=queue_note)


def _throughput_card(
    summary: Mapping[str, Any], last: Mapping[str, Any], rows: pd.DataFrame
) -> str:
    """Throughput after warm-up (the last sample's if the summary has none), against the peak."""
    throughput = num(summary.get("throughput_per_min"))
    if throughput is None:
        throughput = num(last.get("throughput_per_min"))
    tp_bar, tp_note = None, ""
    peak_tp = _peak(rows, "throughput_per_min")
    if throughput is not None and peak_tp:
        tp_bar = (throughput / peak_tp, "throughput relative to the peak interval", "")
        tp_note = f"after warm-up · peak {fmt_number(round(peak_tp, 1))}"
    return _card("throughput / min", _show(throughput), bar=tp_bar, note=tp_note)


def _cost_card(summary: Mapping[str, Any]) -> str | None:
    """Cost per day, with the spot share and reclaims for a run with spot capacity."""
    per_day = num(get_path(summary, "cost", "usd_per_day"))
    if per_day is None:
        return None
    usd_spot = num(get_path(summary, "cost", "usd_spot"))
    usd_total = num(get_path(summary, "cost", "usd_total"))
    spot_note = ""
    if usd_spot and usd_total:  # a run with spot capacity: its share and its reclaims
        reclaims = num(get_path(summary, "cost", "reclaims")) or 0
        spot_note = f"spot {usd_spot / usd_total:.0%} of it · {reclaims:.0f} reclaims"
    return _card("cost / day", f"${per_day:,.2f}", note=spot_note)


def _header_facts(summary: Mapping[str, Any]) -> list[str]:
    """The line under the title: seed, simulated time, replications, SLO verdict."""
    facts = [f"seed {fmt_id(summary.get('seed'))}"]
    sim_seconds = num(summary.get("sim_seconds"))
    if sim_seconds is not None:
        facts.append(f"{fmt_number(sim_seconds / 3600.0)} h simulated")
    replications = summary.get("replications")
    if replications is not None:
        facts.append(
            f"{fmt_value(replications)} replications (summary: across replications;"
            " figures: replication 0)"
        )
    slo_met = get_path(summary, "slo", "met")
    if isinstance(slo_met, bool):
        facts.append("SLO met" if slo_met else "SLO breached")
    return facts


def _zone_label(zone: str) -> str:
    return zone if zone.lower().startswith("zone") else f"Zone {zone}"


def _health_row(label: str, active: float, total: float, queue: float | None, low: str) -> str:
    share = active / total if total > 0 else math.nan
    cls = _health_class(share) if total > 0 else ""
    percent = f"{100.0 * share:.0f} %" if total > 0 else "—"
    cells = [
        f"<td>{esc(label)}</td>",
        f'<td class="bar-cell">{_bar(share, f"{label}: {percent} active", cls)}</td>',
        f'<td class="num">{esc(f"{fmt_number(active)}/{fmt_number(total)}")}</td>',
        f'<td class="num {cls}">{esc(percent)}</td>',
        f'<td class="num">{esc("—" if queue is None else fmt_number(queue))}</td>',
        f'<td class="num">{esc(low)}</td>',
    ]
    return "".join(cells)


def zones_section(metrics: pd.DataFrame, png: bytes | None = None) -> str:
    """Per zone: active / total agents at the last sample as a bar and a share, queue, lowest."""
    zones = shown_rows(metrics, "zone")
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
            active = num(last.get("active_agents"))
            total = num(last.get("total_agents"))
            if active is None or total is None:
                continue
            cells = _health_row(
                _zone_label(str(zone)), active, total, num(last.get("queue_depth")), low
            )
            rows.append(f"<tr>{cells}</tr>")
        fleet = shown_rows(metrics, "global")
        if rows and not fleet.empty and {"active_agents", "total_agents"} <= set(fleet.columns):
            last = fleet.iloc[-1]
            active = num(last.get("active_agents"))
            total = num(last.get("total_agents"))
            if active is not None and total is not None:
                cells = _health_row("All zones", active, total, num(last.get("queue_depth")), "")
                rows.append(f'<tr class="all">{cells}</tr>')
        caption = (
            f"Agents online (idle or busy) of those provisioned, at the last sample"
            f" ({hms(last_time)}); queue: tasks waiting in the zone; lowest: the zone's lowest"
            f" share over the run. Green ≥ {HEALTHY_SHARE:.0%}, amber ≥ {DEGRADED_SHARE:.0%}."
        )
    table = (
        '<table class="zones"><thead><tr><th>zone</th><th>health</th><th>active</th>'
        "<th>%</th><th>queue</th><th>lowest</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><caption>{esc(caption)}</caption></table>"
    )
    image = ""
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        image = f'<img alt="Zone health over time" src="data:image/png;base64,{data}">'
    return f'<section class="panel" id="zones"><h2>Zone health</h2>{table}{image}</section>'
