"""``orchestra plan`` and ``orchestra tune``: capacity planning and threshold tuning.

Exit status of ``plan``: 0 when every phase has a fleet within
``scaling.max_agents`` (or ``--max-agents``) that meets the SLO, 3 when at
least one phase has none (the plan is still printed and written, with the
phase marked; when a provider or a coordinator, not the agents, is what binds,
the plan says what to raise and, for a provider, the fleet at the raised
limit), 1 for bad input, as everywhere.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from sim.cli_support import UserError, duration_option

#: ``orchestra plan`` exit status when some phase has no fleet within max_agents.
EXIT_NO_FLEET = 3


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_plan_parser(sub)
    _add_tune_parser(sub)


def _add_plan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser(
        "plan",
        help="the smallest fleet meeting an SLO (analytic guess, then simulation)",
        description=(
            "Plan the smallest static fleet (specialists per category and zone, reserve) that "
            "meets the SLO with 95 % confidence, and the binding constraint (agents, a "
            "coordinator, a provider limit: then the limit to ask for and the fleet at it). "
            "Exit 0: planned; 3: some phase has no fleet within max_agents at its current "
            "limits; 1: bad input."
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
    plan.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (tcp://HOST:8786)")
    plan.add_argument("--seed", type=int)
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    plan.add_argument("--out", type=Path, help="output directory (default reports/<name>-plan/)")
    plan.add_argument("--detail", action="store_true", help="also per zone and category")
    plan.add_argument(
        "--thresholds",
        action="append",
        metavar="PATH[=lo..hi],...",
        help="also tune these scaling settings on the planned fleet with the autoscaler on: "
        "the cheapest that keeps the SLO (e.g. scaling.scale_down.threshold.idle_agents_percent)",
    )
    plan.add_argument(
        "--threshold-trials", type=int, default=12, help="tuner trials per phase (default 12)"
    )
    plan.set_defaults(handler=_cmd_plan)


def _add_tune_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tune = sub.add_parser(
        "tune",
        help="seeded multi-objective search: p99 response vs cost, SLO breaches as a constraint",
    )
    tune.add_argument("scenario", type=Path)
    tune.add_argument(
        "--params",
        action="append",
        required=True,
        metavar="PATH[=lo..hi],...",
        help="settings to tune (default ranges from the schema)",
    )
    tune.add_argument("--trials", type=int, default=20, help="trials to add (default 20)")
    tune.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    tune.add_argument("--study", type=Path, help="SQLite study file; a rerun resumes it")
    tune.add_argument("--sampler", choices=("nsga2", "tpe"), default="nsga2")
    tune.add_argument("--population", type=int, default=20, help="NSGA-II population (20)")
    tune.add_argument("--replications", type=int, default=1, help="per trial (default 1)")
    tune.add_argument(
        "--max-breach-minutes",
        type=float,
        default=0.0,
        help="constraint: SLO breach minutes allowed per run (default 0)",
    )
    tune.add_argument("--duration", help="simulated time per trial (default: the scenario's)")
    tune.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    tune.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (tcp://HOST:8786)")
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    tune.add_argument("--out", type=Path, help="output directory (default reports/<name>-tune/)")
    tune.set_defaults(handler=_cmd_tune)


def _cmd_plan(args: argparse.Namespace) -> int:
    from sim.analysis.capacity import CapacityError
    from sim.analysis.plan_inputs import growth_scenarios
    from sim.analysis.plan_output import print_plan, write_plan
    from sim.analysis.planner import PlanOptions, plan_growth
    from sim.analysis.replicas import Replicas
    from sim.analysis.targets import SloTarget, parse_slo

    if args.max_replications < 2:
        raise UserError(f"--max-replications: expected at least 2, got {args.max_replications}")
    if args.max_agents is not None and args.max_agents < 1:
        raise UserError(f"--max-agents: expected a positive count, got {args.max_agents}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: expected at least 1, got {args.workers}")
    options = PlanOptions(
        duration_s=duration_option("--duration", args.duration),
        warmup_s=None if args.warmup is None else duration_option("--warmup", args.warmup),
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
        with Replicas(args.workers, args.dask) as replicas:
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
    if args.thresholds:
        _plan_thresholds(args, console, phases, target, options, plans, out_dir)
    wall = time.perf_counter() - started
    console.print(f"wrote {out_dir}/ (plan.json, plan.parquet, plan_pools.parquet) in {wall:.1f} s")
    return 0 if all(p.feasible for p in plans) else EXIT_NO_FLEET


def _plan_thresholds(
    args: argparse.Namespace,
    console: Console,
    phases: list[tuple[str, Any]],
    target: Any,
    options: Any,
    plans: list[Any],
    out_dir: Path,
) -> None:
    """The cheapest thresholds per planned phase (``plan --thresholds``), printed and written."""
    from sim.metrics.store import write_json

    if args.threshold_trials < 1:
        raise UserError(f"--threshold-trials: expected at least 1, got {args.threshold_trials}")
    found = _search_thresholds(args, phases, target, options, plans, out_dir)
    console.print(_thresholds_table(found))
    write_json(out_dir / "thresholds.json", [_threshold_record(t) for t in found])


def _search_thresholds(
    args: argparse.Namespace,
    phases: list[tuple[str, Any]],
    target: Any,
    options: Any,
    plans: list[Any],
    out_dir: Path,
) -> list[Any]:
    """Tune the thresholds of every feasible phase's planned fleet (infeasible ones are skipped)."""
    from sim.analysis.plan_thresholds import plan_thresholds
    from sim.analysis.replicas import Replicas
    from sim.analysis.targets import SloTarget
    from sim.analysis.tune import TuneError

    specs = [spec for given in args.thresholds for spec in given.split(",") if spec]
    found = []
    with Replicas(args.workers, args.dask) as replicas:
        for (_, scenario), plan in zip(phases, plans, strict=True):
            if not plan.feasible:
                continue
            try:
                found.append(
                    plan_thresholds(
                        scenario,
                        target or SloTarget.of(scenario),
                        options,
                        plan,
                        specs,
                        trials=args.threshold_trials,
                        seed=args.seed or 0,
                        replicas=replicas,
                        out_dir=out_dir,
                    )
                )
            except TuneError as exc:
                raise UserError(f"--thresholds: {exc}") from None
    return found


def _thresholds_table(found: list[Any]) -> Any:
    """One row per phase: the settings found, their p99 wait and bound, and the costs."""
    from rich.table import Table

    table = Table(title="thresholds on the planned fleet, autoscaler on (cheapest meeting the SLO)")
    for name in ("phase", "settings", "p99 wait (s)", "upper 95 %", "cost/day", "static cost/day"):
        table.add_column(name, justify="left" if name in ("phase", "settings") else "right")
    for t in found:
        settings = (
            ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in t.settings.items()
            )
            or "none meets the SLO"
        )
        table.add_row(
            t.phase,
            settings,
            f"{t.p99_wait_s:.2f}" if t.found else "—",
            f"{t.p99_upper_s:.2f}" if t.found else "—",
            f"${t.cost_usd_per_day:,.2f}" if t.found else "—",
            f"${t.static_cost_usd_per_day:,.2f}",
        )
    return table


def _threshold_record(t: Any) -> dict[str, Any]:
    """The thresholds.json entry of one phase."""
    return {
        "phase": t.phase,
        "settings": t.settings,
        "p99_wait_s": t.p99_wait_s,
        "cost_usd_per_day": t.cost_usd_per_day,
        "static_cost_usd_per_day": t.static_cost_usd_per_day,
        "p99_upper_s": t.p99_upper_s,
        "trials": t.trials,
        "candidates": t.candidates,
        "scenario": str(t.scenario_file),
    }


def _cmd_tune(args: argparse.Namespace) -> int:
    from sim.analysis.replicas import Replicas
    from sim.analysis.tune import TuneError, parse_params, run_study
    from sim.analysis.tune_output import print_front, write_tuning
    from sim.scenario.load import load_scenario

    for flag, value, least in (
        ("--trials", args.trials, 1),
        ("--replications", args.replications, 1),
        ("--population", args.population, 2),
        ("--workers", args.workers, 1),
    ):
        if value is not None and value < least:
            raise UserError(f"{flag}: expected at least {least}, got {value}")
    if args.max_breach_minutes < 0:
        raise UserError(f"--max-breach-minutes: expected >= 0, got {args.max_breach_minutes}")
    overrides = list(args.overrides)
    if args.duration is not None:
        duration_option("--duration", args.duration)
        overrides.append(f"duration={args.duration}")
    scenario = load_scenario(args.scenario, overrides)
    try:
        params = parse_params(args.params, scenario)
    except TuneError as exc:
        raise UserError(f"--params: {exc}") from None
    if args.study is not None and not args.study.parent.is_dir():
        raise UserError(f"--study: {args.study.parent}: expected an existing directory")
    started = time.perf_counter()
    workers = min(args.workers or args.replications, args.replications)
    with Replicas(workers, args.dask) as replicas:
        result = run_study(
            args.scenario,
            overrides,
            params,
            trials=args.trials,
            seed=args.seed,
            replicas=replicas,
            replications=args.replications,
            study_file=args.study,
            max_breach_minutes=args.max_breach_minutes,
            sampler=args.sampler,
            population=args.population,
        )
    out_dir = args.out or Path("reports") / f"{scenario.name}-tune"
    write_tuning(out_dir, result)
    console = Console()
    if not console.is_terminal:
        console = Console(width=132)
    print_front(console, result, [p.path for p in params])
    wall = time.perf_counter() - started
    console.print(
        f"wrote {out_dir}/ (pareto.csv, pareto.parquet, pareto.png, trials.parquet) in {wall:.1f} s"
    )
    return 0
