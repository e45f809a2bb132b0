"""``orchestra plan`` and ``orchestra tune``: capacity planning and threshold tuning.

Exit status of ``plan``: 0 when every phase has a fleet within
``scaling.max_agents`` (or ``--max-agents``) that meets the SLO, 3 when at
least one phase has none (the plan is still printed and written, with the
phase marked), 1 for bad input, as everywhere.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from sim.scenario.units import parse_duration

#: ``orchestra plan`` exit status when some phase has no fleet within max_agents.
EXIT_NO_FLEET = 3


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser(
        "plan",
        help="the smallest fleet meeting an SLO (analytic guess, then simulation)",
        description=(
            "Plan the smallest static fleet (specialists per category and zone, reserve) that "
            "meets the SLO with 95 %% confidence. Exit 0: planned; 3: some phase has no fleet "
            "within max_agents; 1: bad input."
        ),
    )
    plan.add_argument("scenario", type=Path)
    plan.add_argument(
        "--slo",
        help="targets, e.g. p99=10s,error_rate=5%% (p99 = response time; p99_latency = "
        "end to end); default: the scenario's slo section",
    )
    plan.add_argument(
        "--growth", help="'phases' (the roadmap's phase_3_*.yaml) or 'rate=a,b,c' (tasks/min)"
    )
    plan.add_argument("--duration", default="3h", help="simulated time per run (default 3h)")
    plan.add_argument("--warmup", help="warm-up per run (default: the scenario's)")
    plan.add_argument("--max-agents", type=int, help="ceiling on all agents (default: scaling's)")
    plan.add_argument(
        "--max-replications", type=int, default=8, help="per candidate fleet (default 8)"
    )
    plan.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    plan.add_argument("--seed", type=int)
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    plan.add_argument("--out", type=Path, help="output directory (default reports/<name>-plan/)")
    plan.add_argument("--detail", action="store_true", help="also per zone and category")
    plan.set_defaults(handler=_cmd_plan)


def _duration(flag: str, text: str) -> float:
    from sim.cli import UserError

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _cmd_plan(args: argparse.Namespace) -> int:
    from sim.analysis.capacity import CapacityError
    from sim.analysis.plan_output import print_plan, write_plan
    from sim.analysis.planner import PlanOptions, growth_scenarios, plan_growth
    from sim.analysis.replicas import Replicas
    from sim.analysis.targets import SloTarget, parse_slo
    from sim.cli import UserError

    if args.max_replications < 2:
        raise UserError(f"--max-replications: expected at least 2, got {args.max_replications}")
    if args.max_agents is not None and args.max_agents < 1:
        raise UserError(f"--max-agents: expected a positive count, got {args.max_agents}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: expected at least 1, got {args.workers}")
    options = PlanOptions(
        duration_s=_duration("--duration", args.duration),
        warmup_s=None if args.warmup is None else _duration("--warmup", args.warmup),
        max_agents=args.max_agents,
        max_replications=args.max_replications,
    )
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    try:
        phases = growth_scenarios(args.scenario, overrides, args.growth)
        target = None
        if args.slo is not None:
            try:
                target = parse_slo(args.slo, SloTarget.of(phases[0][1]))
            except ValueError as exc:
                raise UserError(f"--slo: {exc}") from None
        started = time.perf_counter()
        with Replicas(args.workers) as replicas:
            plans = plan_growth(phases, target, options, replicas)
    except CapacityError as exc:
        raise UserError(f"{args.scenario}: {exc}") from None
    except ValueError as exc:
        raise UserError(f"{args.scenario}: {exc}") from None
    out_dir = args.out or Path("reports") / f"{phases[0][1].name}-plan"
    write_plan(out_dir, plans)
    console = Console()
    if not console.is_terminal:
        console = Console(width=132)  # the plan table is wide; pipes and files get all of it
    print_plan(console, plans, args.detail)
    wall = time.perf_counter() - started
    console.print(f"wrote {out_dir}/ (plan.json, plan.parquet, plan_pools.parquet) in {wall:.1f} s")
    return 0 if all(p.feasible for p in plans) else EXIT_NO_FLEET
