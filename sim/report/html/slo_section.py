"""The report's SLO section: the verdict, why, the worst windows and the slowest pools.

It reads ``summary.json``'s ``slo.causes`` (:mod:`sim.metrics.slo_causes`);
a summary written before causes existed gets the verdict alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.metrics.slo_causes import explain
from sim.report.html.format import esc, fmt_value, get_path, hms, num

__all__ = ["slo_section"]


def _cell(value: object, cls: str = "num") -> str:
    return f'<td class="{cls}">{esc(fmt_value(value))}</td>'


def _percent(value: object) -> str:
    number = num(value)
    return "—" if number is None else f"{100.0 * number:.0f} %"


def _windows_table(windows: list[Mapping[str, Any]]) -> str:
    rows = []
    for w in windows:
        scaler = w.get("autoscaler", {})
        state = []
        if scaler.get("at_max"):
            state.append("at max")
        if scaler.get("at_min"):
            state.append("at min")
        if scaler.get("in_cooldown"):
            state.append("in cooldown")
        if scaler.get("trigger_reached") is False:
            state.append("trigger not reached")
        start = num(w.get("start_s"))
        end = num(w.get("end_s"))
        span = "—" if start is None or end is None else f"{hms(start)}–{hms(end)}"
        rows.append(
            f"<tr><td>{esc(span)}</td>{_cell(w.get('p99_wait_s'))}{_cell(w.get('tasks'))}"
            f"{_cell(w.get('agents_mean'))}{_cell(w.get('queue_max'))}"
            f"<td>{esc(scaler.get('policy', ''))}:"
            f" {esc(', '.join(state) or 'free to act')}</td></tr>"
        )
    return (
        "<h3>Worst windows</h3><table><thead><tr><th>window</th><th>p99 wait (s)</th>"
        "<th>tasks</th><th>agents (mean)</th><th>queue (max)</th><th>autoscaler</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _pools_table(pools: list[Mapping[str, Any]]) -> str:
    rows = [
        f"<tr><td>{esc(p.get('zone', ''))}</td><td>{esc(p.get('category', ''))}</td>"
        f"{_cell(p.get('p99_wait_s'))}{_cell(p.get('tasks'))}"
        f'<td class="num">{esc(_percent(p.get("utilization")))}</td></tr>'
        for p in pools
    ]
    return (
        "<h3>Pools with the longest waits</h3><table><thead><tr><th>zone</th><th>category</th>"
        "<th>p99 wait (s)</th><th>tasks</th><th>utilisation</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody><caption>Zone × category pools (at least 20 warm"
        " tasks); utilisation is busy slot time over the pool's slot time after the warm-up."
        "</caption></table>"
    )


def slo_section(summary: Mapping[str, Any]) -> str:
    """The SLO verdict with its causes (always present, so the section can be found)."""
    lines = explain(summary) or ["No SLO figures in this summary."]
    verdict = "".join(f'<p class="verdict">{esc(line)}</p>' for line in lines)
    causes = get_path(summary, "slo", "causes")
    body = ""
    if isinstance(causes, Mapping):
        windows = causes.get("worst_windows")
        pools = causes.get("pools")
        if isinstance(windows, list) and windows:
            body += _windows_table(windows)
        if isinstance(pools, list) and pools:
            body += _pools_table(pools)
    return f'<section class="panel" id="slo"><h2>SLO verdict</h2>{verdict}{body}</section>'
