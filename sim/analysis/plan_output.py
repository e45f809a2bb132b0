"""A capacity plan on screen and on disk: rich tables, plan.json, plan.parquet, plan_pools.parquet.

The analytic guess is always printed beside the simulated answer: where the
two disagree is where the queueing model's assumptions (pooled zones,
Poisson arrivals, no dispatch latency) stop holding, which a planner should
see rather than have hidden.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from sim.analysis.plan_inputs import Fleet
from sim.analysis.planner import PhasePlan, Trial, by_category
from sim.metrics.replications import t_quantile
from sim.metrics.store import write_json, write_parquet


def _agents(specialists: int | None, control: int) -> str:
    return "—" if specialists is None else f"{specialists} ({specialists + control})"


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:,.{digits}f}"


def plan_rows(plans: list[PhasePlan]) -> list[dict[str, Any]]:
    """One flat row per phase: what plan.parquet holds and the main table shows."""
    rows = []
    for p in plans:
        trial = p.planned
        summary = trial.summary if trial is not None else {}
        ci = _wait_ci(p, trial)
        cost = summary.get("cost", {})
        total = float(cost.get("usd_total", math.nan))
        per_day = float(cost.get("usd_per_day", math.nan)) / total if total > 0 else math.nan
        fewer = p.one_fewer
        rows.append(
            {
                "phase": p.label,
                "scenario": p.scenario,
                "arrival_per_min": p.arrival_per_min,
                "tasks_per_min": p.tasks_per_min,
                "control_agents": p.control_agents,
                "max_specialists": p.max_specialists,
                "analytic_specialists": p.analytic_total,
                "simulated_specialists": p.simulated_total,
                "simulated_agents": (
                    None if p.simulated_total is None else p.simulated_total + p.control_agents
                ),
                "reserve": p.reserve,
                "feasible": p.feasible,
                "p99_wait_s": trial.p99_wait.mean if trial and trial.p99_wait else math.nan,
                "p99_wait_ci_low": ci[0],
                "p99_wait_ci_high": ci[1],
                "p99_wait_upper95": trial.p99_wait.upper if trial and trial.p99_wait else math.nan,
                "p99_target_s": p.target.p99_wait_s,
                "error_rate": summary.get("error_rate", math.nan),
                "cost_usd_per_day": summary.get("cost", {}).get("usd_per_day", math.nan),
                "cost_usd_per_1k_tasks": summary.get("cost", {}).get("usd_per_1k_tasks", math.nan),
                "cost_usd_spot_per_day": cost.get("usd_spot", math.nan) * per_day,
                "cost_usd_on_demand_per_day": cost.get("usd_on_demand", math.nan) * per_day,
                "slo_scope": p.scope.label,
                "tasks_shed": summary.get("tasks", {}).get("shed", math.nan),
                "shed_share": json.dumps(p.shed_share),
                "replications": trial.replications if trial else 0,
                "one_fewer_verdict": fewer.verdict if fewer else None,
                "simulations": p.runs,
                "binding": p.binding,
                "binding_note": p.binding_note,
                **_alternative_columns("raised", p.raised),
                **_alternative_columns("shed_plan", p.shed_plan),
            }
        )
    return rows


def _alternative_columns(prefix: str, plan: PhasePlan | None) -> dict[str, Any]:
    """The raised-limits or shed-the-lowest plan's answer, as flat columns of its phase's row."""
    trial = plan.planned if plan is not None else None
    summary = trial.summary if trial is not None else {}
    total = plan.simulated_total if plan is not None else None
    return {
        f"{prefix}_specialists": total,
        f"{prefix}_agents": None if total is None or plan is None else total + plan.control_agents,
        f"{prefix}_p99_wait_s": trial.p99_wait.mean if trial and trial.p99_wait else math.nan,
        f"{prefix}_cost_usd_per_day": summary.get("cost", {}).get("usd_per_day", math.nan),
        f"{prefix}_shed_share": json.dumps(plan.shed_share) if plan is not None else "{}",
    }


def _wait_ci(plan: PhasePlan, trial: Trial | None) -> list[float]:
    """Two-sided 95 % t-interval of the judged p99 wait over the planned trial's replications."""
    if trial is None:
        return [math.nan, math.nan]
    summaries = trial.summary.get("per_replication", [trial.summary])
    values = [plan.scope.p99_wait(s) for s in summaries]
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return [math.nan, math.nan]
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    half = t_quantile(len(finite) - 1) * math.sqrt(var / len(finite))
    return [mean - half, mean + half]


def pool_rows(plans: list[PhasePlan]) -> list[dict[str, Any]]:
    """One row per phase, zone and category: analytic and simulated specialists."""
    rows = []
    for p in plans:
        empty: Fleet = {}
        analytic, simulated = p.analytic or empty, p.simulated or empty
        zones = list(simulated or analytic)
        for zone in zones:
            categories = list((simulated or analytic)[zone])
            for category in categories:
                rows.append(
                    {
                        "phase": p.label,
                        "zone": zone,
                        "category": category,
                        "analytic": analytic.get(zone, {}).get(category),
                        "simulated": simulated.get(zone, {}).get(category),
                    }
                )
    return rows


def plan_document(plans: list[PhasePlan]) -> list[dict[str, Any]]:
    """plan.json: the rows plus the fleets and every simulated candidate (the evidence).

    A phase whose provider binds nests the plan at the raised limits (``raised``);
    one with tiers that can shed nests the shed-the-lowest plan (``shed_plan``).
    """
    out = []
    for p, row in zip(plans, plan_rows(plans), strict=True):
        out.append(
            {
                **row,
                "shed_share": p.shed_share,
                "scope": p.scope.describe(),
                "agent_caps": [
                    {
                        "provider": c.provider,
                        "categories": list(c.categories),
                        "busy_at_limit": c.busy_at_limit,
                        "busy_if_unlimited": c.busy_if_unlimited,
                    }
                    for c in p.agent_caps
                ],
                "raised": plan_document([p.raised])[0] if p.raised is not None else None,
                "shed_plan": plan_document([p.shed_plan])[0] if p.shed_plan is not None else None,
                "slo": {
                    "p99_wait_s": p.target.p99_wait_s,
                    "p99_latency_s": p.target.p99_latency_s,
                    "error_rate": p.target.error_rate,
                },
                "reserve_rule": p.reserve_note,
                "analytic": p.analytic,
                "simulated": p.simulated,
                "trials": [
                    {
                        "specialists": t.specialists,
                        "verdict": t.verdict,
                        "replications": t.replications,
                        "p99_wait_mean": t.p99_wait.mean if t.p99_wait else None,
                        "p99_wait_upper95": t.p99_wait.upper if t.p99_wait else None,
                        "p99_wait_lower95": t.p99_wait.lower if t.p99_wait else None,
                    }
                    for t in p.trials
                ],
            }
        )
    return out


def write_plan(out_dir: Path, plans: list[PhasePlan]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "plan.json", plan_document(plans))
    write_parquet(out_dir / "plan.parquet", pd.DataFrame(plan_rows(plans)))
    write_parquet(out_dir / "plan_pools.parquet", pd.DataFrame(pool_rows(plans)))


def print_plan(console: Console, plans: list[PhasePlan], detail: bool) -> None:
    """The plan table, agents per category, and (with *detail*) per zone; then the verdicts."""
    target = plans[0].target.describe() if plans else ""
    table = Table(title=f"capacity plan — SLO {target}, 95 % confidence, static fleet")
    for name in ("phase", "tasks/min", "analytic", "simulated", "reserve", "p99 wait (s)"):
        table.add_column(name, justify="left" if name == "phase" else "right")
    for name in ("95 % CI", "upper 95 %", "cost/day", "per 1k tasks", "sims"):
        table.add_column(name, justify="right")
    for p, row in zip(plans, plan_rows(plans), strict=True):
        table.add_row(
            p.label,
            _num(p.tasks_per_min, 1),
            _agents(p.analytic_total, p.control_agents),
            _agents(p.simulated_total, p.control_agents) if p.feasible else "[red]none[/]",
            str(p.reserve) if p.feasible else "—",
            _num(row["p99_wait_s"]),
            f"[{_num(row['p99_wait_ci_low'])}, {_num(row['p99_wait_ci_high'])}]",
            _num(row["p99_wait_upper95"]),
            f"${_num(row['cost_usd_per_day'])}",
            f"${_num(row['cost_usd_per_1k_tasks'], 3)}",
            str(p.runs),
        )
    console.print(table)
    console.print(
        "agents: specialists (all agents, with chiefs, zone coordinators and team leads); "
        "autoscaling off while planning"
    )
    console.print(_category_table(plans))
    if detail:
        for p in plans:
            if p.simulated is not None:
                console.print(_zone_table(p))
    for p in plans:
        if p.binding != "agents":
            for line in binding_lines(p):
                console.print(line)
        elif not p.feasible:
            console.print(
                f"[bold red]{p.label}: no fleet within max_agents "
                f"({p.max_specialists + p.control_agents} agents, {p.max_specialists} "
                f"specialists) meets the SLO[/]"
            )
        elif p.one_fewer is not None:
            console.print(
                f"{p.label}: {p.simulated_total} specialists meet the SLO; "
                f"{p.simulated_total - 1 if p.simulated_total else 0} {p.one_fewer.verdict}"
                f" — reserve {p.reserve}: {p.reserve_note}"
            )
    for p, row in zip(plans, plan_rows(plans), strict=True):
        for line in _purchase_and_tier_lines(p, row):
            console.print(line)


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{tier} {share:.1%}" for tier, share in shares.items()) or "none"


def _fleet_said(plan: PhasePlan) -> str:
    total = plan.simulated_total
    if total is None and plan.binding != "agents":
        return f"no fleet meets the SLO: the binding constraint is {plan.binding} (below)"
    if total is None:
        return f"no fleet within {plan.max_specialists} specialists meets the SLO"
    trial = plan.planned
    wait = f"p99 wait {_num(trial.p99_wait.mean)} s" if trial and trial.p99_wait else ""
    return f"{total} specialists ({total + plan.control_agents} agents) meet the SLO; {wait}"


def binding_lines(plan: PhasePlan) -> list[str]:
    """The binding constraint when it is not the agents: what binds, the ask, the fleet after."""
    lines = [f"[bold red]{plan.label}: binding constraint ({plan.binding}): {plan.binding_note}[/]"]
    lines += [f"{plan.label}: {cap.describe()}" for cap in plan.agent_caps]
    if plan.binding == "provider":
        lines.append(f"{plan.label}: agents added: none (more cannot raise throughput)")
    if plan.raised is not None:
        raised = plan.raised
        lines.append(f"{plan.label}: with the limits raised: {_fleet_said(raised)}")
        if raised.binding != "agents":
            lines += binding_lines(raised)
    return lines


def _purchase_and_tier_lines(plan: PhasePlan, row: dict[str, Any]) -> list[str]:
    """What tiers and the purchase section change in the answer, said where it applies."""
    lines = []
    if plan.scope.counts_sheds and plan.planned is not None:
        lines.append(
            f"{plan.label}: judged on {plan.scope.describe()}; tasks shed at the planned size: "
            f"{_num(row['tasks_shed'], 1)} per run (per tier: {_shares(plan.shed_share)})"
        )
    shed = plan.shed_plan
    if shed is not None:
        lines.append(
            f"{plan.label}: shedding {shed.scope.shed_free}: {_fleet_said(shed)} "
            f"for {', '.join(shed.scope.tiers or ())}; shed per tier: {_shares(shed.shed_share)}"
        )
        if shed.binding != "agents":
            lines += binding_lines(shed)
    if math.isfinite(row["cost_usd_spot_per_day"]) and row["cost_usd_spot_per_day"] > 0:
        lines.append(
            f"{plan.label}: cost/day ${_num(row['cost_usd_per_day'])} = spot "
            f"${_num(row['cost_usd_spot_per_day'])} + on-demand "
            f"${_num(row['cost_usd_on_demand_per_day'])} (billed as the purchase section says)"
        )
    return lines


def _category_table(plans: list[PhasePlan]) -> Table:
    table = Table(title="specialists per category (analytic / simulated)")
    table.add_column("category")
    for p in plans:
        table.add_column(p.label, justify="right")
    analytic = [by_category(p.analytic) if p.analytic else {} for p in plans]
    simulated = [by_category(p.simulated) if p.simulated else {} for p in plans]
    categories: list[str] = []
    for fleet in [*analytic, *simulated]:
        categories.extend(c for c in fleet if c not in categories)
    for category in categories:
        cells = [
            f"{a.get(category, '—')} / {s.get(category, '—')}"
            for a, s in zip(analytic, simulated, strict=True)
        ]
        table.add_row(category, *cells)
    return table


def _zone_table(plan: PhasePlan) -> Table:
    fleet = plan.simulated or {}
    table = Table(title=f"{plan.label}: simulated specialists per zone and category")
    table.add_column("category")
    for zone in fleet:
        table.add_column(zone, justify="right")
    categories = list(next(iter(fleet.values()), {}))
    for category in categories:
        table.add_row(category, *(str(fleet[z][category]) for z in fleet))
    table.add_row("total", *(str(sum(fleet[z].values())) for z in fleet))
    return table
