"""The tuning result on screen and on disk: the Pareto front as a table, CSV, Parquet and a plot."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from sim.analysis.tune import TuneResult
from sim.metrics.store import atomic_write_bytes, atomic_write_text, write_parquet


def pareto_figure(result: TuneResult) -> Figure:
    """Every trial (infeasible ones crossed out) and the front, cost against p99 response."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    trials, front = result.trials, result.front
    if not trials.empty:
        ok, bad = trials[trials["feasible"]], trials[~trials["feasible"]]
        ax.scatter(ok["cost_usd_per_day"], ok["p99_wait_s"], color="0.6", label="feasible trial")
        ax.scatter(
            bad["cost_usd_per_day"],
            bad["p99_wait_s"],
            color="tab:red",
            marker="x",
            label="breaches the SLO allowance",
        )
    if not front.empty:
        ax.plot(
            front["cost_usd_per_day"],
            front["p99_wait_s"],
            "o-",
            color="tab:blue",
            drawstyle="steps-post",
            label="Pareto front",
        )
    ax.set_xlabel("cost per day (USD)")
    ax.set_ylabel("p99 response time (s)")
    ax.set_title(f"{result.study_name}: {len(trials)} trials")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def write_tuning(out_dir: Path, result: TuneResult) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "pareto.csv", result.front.to_csv(index=False))
    write_parquet(out_dir / "pareto.parquet", result.front)
    write_parquet(out_dir / "trials.parquet", result.trials)
    buffer = io.BytesIO()
    pareto_figure(result).savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(out_dir / "pareto.png", buffer.getvalue())


def print_front(console: Console, result: TuneResult, params: list[str]) -> None:
    front: pd.DataFrame = result.front
    feasible = int(result.trials["feasible"].sum()) if not result.trials.empty else 0
    table = Table(
        title=f"Pareto front: p99 response vs cost ({len(front)} of {feasible} feasible trials, "
        f"{len(result.trials)} in the study)"
    )
    table.add_column("trial", justify="right")
    for name in params:
        table.add_column(name, justify="right")
    for name in ("p99 wait (s)", "cost/day", "per 1k tasks", "agents", "breach min"):
        table.add_column(name, justify="right")
    for values in front.to_dict("records"):
        cells = [str(values["trial"])]
        for name in params:
            value = values[name]
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        cells += [
            f"{values['p99_wait_s']:.2f}",
            f"${values['cost_usd_per_day']:.2f}",
            f"${values['cost_usd_per_1k_tasks']:.3f}",
            f"{values['agents_mean']:.1f}",
            f"{values['breach_minutes']:.0f}",
        ]
        table.add_row(*cells)
    console.print(table)
    if front.empty:
        console.print("[bold red]no trial met the SLO breach allowance[/]")
