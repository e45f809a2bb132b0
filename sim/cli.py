"""The ``orchestra`` command line.

Every user error — a bad scenario, a bad ``--set``, an unreadable trace —
ends as one line on stderr (``FILE: field.path: what was expected``) and exit
status 1. A traceback means a bug in Orchestra Sim, not in the user's input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.analysis.calibrate_cli import add_commands as add_calibrate_commands
from sim.analysis.cli import add_commands as add_analysis_commands
from sim.analysis.failover_cli import add_commands as add_failover_commands
from sim.analysis.sweep_cli import add_commands as add_sweep_commands
from sim.cli_support import UserError, duration_option, fmt, print_summary
from sim.live.cli import add_commands as add_live_commands
from sim.scenario.load import ScenarioError, load_scenario, load_variants


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (ScenarioError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestra", description="Simulate and plan fleets of cooperating agents."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a what-if scenario and write its report")
    run.add_argument("scenario", type=Path)
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--duration", help="override the simulated time (e.g. 6h)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    run.add_argument("--out", type=Path, help="output directory (default reports/<name>/)")
    run.add_argument("--replications", type=int, default=1, metavar="R")
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument(
        "--dashboard", action="store_true", help="a live terminal dashboard while it runs"
    )
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check scenario files")
    validate.add_argument("files", type=Path, nargs="+")
    validate.add_argument("--set", dest="overrides", action="append", default=[])
    validate.set_defaults(handler=_cmd_validate)

    replay = sub.add_parser(
        "replay", help="replay the failures of a recorded run against a scenario"
    )
    replay.add_argument("events", type=Path, help="a run directory or its events.parquet")
    replay.add_argument(
        "scenario", type=Path, nargs="?", help="default: the run directory's scenario.yaml"
    )
    replay.add_argument("--replication", type=int, default=0, help="which recorded replication")
    replay.add_argument("--set", dest="overrides", action="append", default=[])
    replay.add_argument("--seed", type=int)
    replay.add_argument("--out", type=Path)
    replay.add_argument("--no-report", action="store_true")
    replay.add_argument("--quiet", action="store_true")
    replay.set_defaults(handler=_cmd_replay)

    schema = sub.add_parser("schema", help="print the scenario JSON Schema")
    schema.add_argument("--markdown", action="store_true", help="the reference as Markdown")
    schema.set_defaults(handler=_cmd_schema)
    for add_commands in (
        add_analysis_commands,
        add_live_commands,
        add_sweep_commands,
        add_calibrate_commands,
        add_failover_commands,
    ):
        add_commands(sub)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            variants = load_variants(path, args.overrides)
            for _, scenario in variants:
                _check_inputs(scenario, path)
        except (ScenarioError, UserError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        names = ", ".join(scenario.name for _, scenario in variants)
        print(f"{path}: ok ({names})")
    return 1 if failed else 0


def _check_inputs(scenario: Any, path: Path) -> None:
    """Open the files a scenario names (traces, empirical data, DAG files) once, to fail early."""
    from sim.world.dag_source import DagSource
    from sim.world.network import Network
    from sim.world.streams import Streams
    from sim.world.workload import ServiceDemand, WorkloadError

    try:
        streams = Streams(scenario.seed)
        demand = ServiceDemand(scenario, streams)
        regions = {z.name: z.region for z in scenario.topology.zones}
        net = Network(
            scenario.network,
            regions,
            scenario.topology.control_plane.region,
            streams.get("network"),
        )
        DagSource(scenario, streams, demand, net)
        from sim.model.chaos import check_targets
        from sim.world.topology import build_world, check_staffed

        world = build_world(scenario, streams.get("world"))
        check_staffed(scenario, world)
        check_targets(scenario, world)
        trace = scenario.workload.arrivals.trace
        if scenario.workload.arrivals.process == "trace" and trace is not None:
            from sim.world.workload import TaskSource

            next(iter(TaskSource(scenario, streams, demand)), None)
    except (WorkloadError, ValueError) as exc:
        raise UserError(
            f"{path}: {exc}" if not str(exc).startswith(str(path)) else str(exc)
        ) from None


def _cmd_replay(args: argparse.Namespace) -> int:
    """Run *scenario* with the failures recorded in *events*; compare with the recording."""
    from sim.replay import ReplayError, chaos_from_events, load_events, replay_scenario
    from sim.runner import run, write_outputs

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    try:
        events = load_events(args.events)
        timeline = chaos_from_events(events, args.replication, str(args.events))
    except ReplayError as exc:
        raise UserError(str(exc)) from None
    source = args.scenario
    if source is None:  # a live run's directory carries the scenario it ran
        source = args.events / "scenario.yaml"
        if not source.exists():
            raise UserError(f"{source}: file not found (give the scenario after the run)")
    scenario = replay_scenario(load_scenario(source, overrides), timeline)
    _check_inputs(scenario, source)
    out_dir = args.out or Path("reports") / f"{scenario.name}-replay"
    console = Console(stderr=True, quiet=args.quiet)
    started = time.perf_counter()
    outcome = _run_with_progress(scenario, 1, console, run)
    write_outputs(outcome, out_dir, report=not args.no_report)
    if not args.quiet:
        Console().print(f"replayed {len(timeline)} failures from {args.events}")
        print_summary(Console(), outcome.summary, out_dir, time.perf_counter() - started)
        recorded = args.events / "summary.json" if args.events.is_dir() else None
        if recorded is not None and recorded.exists():
            original = json.loads(recorded.read_text())
            pair = {"recorded": original, "replay": outcome.summary}
            _print_comparison(Console(), pair, out_dir, footer=False)
    if args.events.is_dir() and (args.events / "summary.json").exists() and not args.no_report:
        from sim.report.compare import RunDirError, load_run_dir, write_comparison_report

        try:
            runs = [load_run_dir(args.events, "recorded"), outcome.compared("replay")]
        except RunDirError as exc:
            raise UserError(str(exc)) from None
        note = f"The run recorded in {args.events} against its replay ({len(timeline)} failures)."
        path = write_comparison_report(out_dir / "comparison.html", scenario.name, note, runs)
        if not args.quiet:
            Console().print(f"wrote {path}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from sim.scenario.docs import json_schema, markdown_reference

    if args.markdown:
        sys.stdout.write(markdown_reference())
    else:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.model.engine import ConservationError
    from sim.runner import run, write_outputs
    from sim.world.workload import WorkloadError

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.duration is not None:
        duration_option("--duration", args.duration)
        overrides.append(f"duration={args.duration}")
    if args.replications < 1:
        raise UserError(f"--replications: expected at least 1, got {args.replications}")
    if args.dashboard and args.replications > 1:
        raise UserError("--dashboard: shows one run; use it without --replications")
    variants = load_variants(args.scenario, overrides)
    for _, scenario in variants:
        _check_inputs(scenario, args.scenario)
    base_name = load_scenario(args.scenario, overrides).name
    root = args.out or Path("reports") / base_name
    console = Console(stderr=True, quiet=args.quiet)
    summaries: dict[str, dict[str, Any]] = {}
    compared: list[Any] = []  # ComparedRun per variant, for the comparison report
    for variant, scenario in variants:
        out_dir = root / variant if variant else root
        started = time.perf_counter()
        try:
            if args.dashboard:
                outcome = _run_with_dashboard(scenario, Console(stderr=True), run)
            else:
                outcome = _run_with_progress(scenario, args.replications, console, run)
        except WorkloadError as exc:
            raise UserError(str(exc)) from None
        except ConservationError as exc:
            console.print(f"[bold red]conservation check failed:[/] {exc}")
            return 2
        wall = time.perf_counter() - started
        write_outputs(outcome, out_dir, report=not args.no_report)
        summaries[variant] = outcome.summary
        if len(variants) > 1 and not args.no_report:
            compared.append(outcome.compared(variant))
        if not args.quiet:
            print_summary(Console(), outcome.summary, out_dir, wall)
    if len(variants) > 1:
        from sim.metrics.store import write_json

        write_json(root / "comparison.json", summaries)
        if compared:
            from sim.report.compare import write_comparison_report

            note = f"Variants of {args.scenario} on the same arrivals; the first is the reference."
            write_comparison_report(root / "comparison.html", base_name, note, compared)
        if not args.quiet:
            _print_comparison(Console(), summaries, root, wrote_html=bool(compared))
    return 0


COMPARED = (
    ("p99 wait (s)", ("wait_s", "p99")),
    ("mean wait (s)", ("wait_s", "mean")),
    ("p99 latency (s)", ("latency_s", "p99")),
    ("throughput / min", ("throughput_per_min",)),
    ("utilisation", ("utilization",)),
    ("agents mean", ("agents", "mean")),
    ("agents max", ("agents", "max")),
    ("cost per day (USD)", ("cost", "usd_per_day")),
    ("cost per 1k tasks (USD)", ("cost", "usd_per_1k_tasks")),
    ("SLO breach minutes", ("slo", "breach_minutes")),
    ("SLO met", ("slo", "met")),
    ("tasks lost", ("tasks", "lost")),
    ("tasks retried", ("tasks", "retried")),
    ("attempt error rate", ("errors", "attempt_error_rate")),
    ("dispatch p99 (s)", ("dispatch_s", "p99")),
    ("chief utilisation", ("coordination", "chief_utilization")),
    ("messages / s", ("coordination", "messages_per_s")),
    ("agents failed", ("failures", "agents")),
    ("detect mean (s)", ("failures", "detect_s", "mean")),
    ("recover mean (s)", ("failures", "recover_s", "mean")),
)


def _print_comparison(
    console: Console,
    summaries: dict[str, dict[str, Any]],
    root: Path,
    footer: bool = True,
    wrote_html: bool = False,
) -> None:
    """Variants side by side: same arrivals, different settings."""
    table = Table(title="variants on the same arrivals")
    table.add_column("figure")
    for name in summaries:
        table.add_column(name, justify="right")
    for label, path in COMPARED:
        cells = [label]
        for summary in summaries.values():
            node: Any = summary
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            cells.append(fmt(node))
        table.add_row(*cells)
    console.print(table)
    if footer:
        html = ", comparison.html" if wrote_html else ""
        console.print(f"wrote {root}/comparison.json{html} and one folder per variant")


#: Routine fleet churn kept out of the dashboard's recent-events panel.
_QUIET_EVENTS = frozenset({"agent_requested", "agent_joined", "agent_draining", "agent_left"})


def _describe(kind: str, subject: str, detail: str) -> str:
    """One line for an event: the subject and the detail fields that matter."""
    info = json.loads(detail) if detail else {}
    if kind == "alert":
        return f"{subject} {info.get('state', '')} ({info.get('metric')} = {info.get('value'):.4g})"
    if kind == "scale":
        return f"{subject} {info.get('delta', 0):+d} -> {info.get('target')}: {info.get('reason')}"
    if kind == "agent_detected":
        return f"{subject} detected after {info.get('detect_s', 0):.1f} s"
    extras = ", ".join(f"{k}={v}" for k, v in info.items())
    return f"{subject} {extras}".strip()


def _run_with_dashboard(scenario: Any, console: Console, run: Any) -> Any:
    """Run one replication under a live terminal dashboard (the spec's section 6.2)."""
    from sim.model.engine import Simulation
    from sim.report.dashboard import DashboardState, LiveDashboard

    control = scenario.control_agents()

    def state_of(sim: Simulation) -> DashboardState:
        rows = sim.collector.recent(60)
        last = rows[-1] if rows else {}
        zones = {
            name: (z.active_agents, z.total_agents + z.offline_agents)
            for name, z in sim.zones.items()
        }
        return DashboardState(
            now_s=sim.env.now,
            duration_s=scenario.duration,
            scenario=scenario.name,
            active_agents=sum(z.active_agents for z in sim.zones.values()) + control,
            total_agents=scenario.scaling.default_agents,
            max_agents=scenario.scaling.max_agents,
            queue_depth=sim.core.queued() + sum(z.local_queued for z in sim.zones.values()),
            throughput_per_min=float(last.get("throughput_per_min", 0.0)),
            p99_latency_s=float(last.get("p99_latency_s", float("nan"))),
            p99_wait_s=float(last.get("p99_wait_s", float("nan"))),
            zone_health=zones,
            category_completed=dict(sim.ledger.completed_by_category),
            p99_history=[(r["time_s"], r["p99_latency_s"]) for r in rows],
            recent_events=[
                (t, kind, _describe(kind, subject, detail))
                for t, kind, subject, detail in sim.events.tail(8, _QUIET_EVENTS)
            ],
        )

    with LiveDashboard(console) as live:
        return run(scenario, 1, watch=lambda sim: live.update(state_of(sim)))


def _run_with_progress(scenario: Any, replications: int, console: Console, run: Any) -> Any:
    """Run, showing a progress bar once the run has taken more than a second."""
    started = time.perf_counter()
    progress: Progress | None = None
    task_id: Any = None
    label = f"{scenario.name}: {replications} replications" if replications > 1 else scenario.name

    def hook(fraction: float) -> None:
        nonlocal progress, task_id
        if progress is None and time.perf_counter() - started > 1.0 and not console.quiet:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            progress.start()
            task_id = progress.add_task(label, total=1.0)
        if progress is not None:
            progress.update(task_id, completed=fraction)

    try:
        return run(scenario, replications, progress=hook)
    finally:
        if progress is not None:
            progress.stop()


if __name__ == "__main__":
    raise SystemExit(main())
