"""What every ``orchestra`` command shares: the one-line error, durations, the summary table.

A module of its own so that the command modules (``sim.cli``, ``sim.analysis``'s
and ``sim.live``'s) import it instead of each other: ``sim.cli`` registers
their subcommands, and they must not reach back into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.scenario.units import parse_duration

__all__ = ["UserError", "duration_option", "fmt", "print_summary"]


class UserError(Exception):
    """An input problem to report in one line."""


def duration_option(flag: str, text: str) -> float:
    """Seconds from a command-line duration (``90``, ``15m``, ``1h30m``), or a UserError."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.{digits}f}"
    return str(value)


def print_summary(console: Console, summary: dict[str, Any], out_dir: Path, wall: float) -> None:
    ci = summary.get("ci95", {})

    def ci_of(*path: str) -> str:
        node: Any = ci
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return ""
            node = node[key]
        return f"[{fmt(node[0])}, {fmt(node[1])}]" if isinstance(node, list) else ""

    table = Table(title=f"{summary['scenario']} — {summary['sim_seconds'] / 3600:g} h simulated")
    table.add_column("figure")
    table.add_column("value", justify="right")
    if ci:
        table.add_column("95 % CI", justify="right")
    tasks = summary["tasks"]
    rows = [
        ("tasks completed", tasks["completed"], ("tasks", "completed")),
        ("tasks in flight at end", tasks["in_flight"], ("tasks", "in_flight")),
        ("tasks lost", tasks["lost"], ("tasks", "lost")),
        *([("tasks shed", tasks["shed"], ("tasks", "shed"))] if "tiers" in summary else []),
        ("throughput / min", summary["throughput_per_min"], ("throughput_per_min",)),
        ("latency mean (s)", summary["latency_s"]["mean"], ("latency_s", "mean")),
        ("latency p50 (s)", summary["latency_s"]["p50"], ("latency_s", "p50")),
        ("latency p99 (s)", summary["latency_s"]["p99"], ("latency_s", "p99")),
        ("wait mean (s)", summary["wait_s"]["mean"], ("wait_s", "mean")),
        ("P(wait)", summary["p_wait"], ("p_wait",)),
        ("utilisation", summary["utilization"], ("utilization",)),
        ("agents (mean)", summary["agents"]["mean"], ("agents", "mean")),
        ("DAG jobs completed", summary["jobs"]["completed"], ("jobs", "completed")),
        ("makespan p50 (s)", summary["jobs"]["makespan_s"]["p50"], ("jobs", "makespan_s", "p50")),
        ("cost per day (USD)", summary["cost"]["usd_per_day"], ("cost", "usd_per_day")),
        (
            "cost per 1k tasks (USD)",
            summary["cost"]["usd_per_1k_tasks"],
            ("cost", "usd_per_1k_tasks"),
        ),
        ("SLO met", summary["slo"]["met"], ("slo", "met")),
        ("SLO breach windows", summary["slo"]["breaches"], ("slo", "breaches")),
    ]
    for label, value, path in rows:
        cells = [label, fmt(value)]
        if ci:
            cells.append(ci_of(*path))
        table.add_row(*cells)
    console.print(table)
    from sim.metrics.slo_causes import explain

    for line in explain(summary):  # the verdict and, when missed, why (summary.json slo.causes)
        console.print(line, markup=False, highlight=False)
    console.print(f"wrote {out_dir}/ (summary.json, *.parquet, report.html) in {wall:.1f} s")
