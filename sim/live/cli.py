"""``orchestra live run``, ``orchestra live agent`` and ``orchestra compare`` (the service's
commands are in sim.live.serve_cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli_support import UserError, duration_option, fmt, print_summary


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    live = sub.add_parser("live", help="drive real agent processes over NATS JetStream")
    live_sub = live.add_subparsers(dest="live_command", required=True)
    _add_run_command(live_sub)

    from sim.live.agent_config import add_agent_arguments
    from sim.live.serve_cli import add_service_commands, credential_arguments

    agent = live_sub.add_parser("agent", help="one agent process (heartbeats, pulls, runs)")
    add_agent_arguments(agent)
    credential_arguments(agent)
    agent.set_defaults(handler=_cmd_agent)
    add_service_commands(live_sub)
    _add_compare_command(sub)


def _add_run_command(live_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``orchestra live run``: a scenario driven live, then its report."""
    run = live_sub.add_parser("run", help="run a scenario live and write its report")
    run.add_argument("scenario", type=Path)
    run.add_argument("--time-scale", type=float, default=60.0, help="scenario s per wall s")
    run.add_argument("--duration", help="override the scenario's duration (e.g. 2m)")
    run.add_argument("--agents", type=int, help="scale the fleet down to N specialists")
    run.add_argument(
        "--agents-mode",
        choices=("process", "simulated"),
        default="process",
        help="one OS process per agent, or every agent simulated inside this process "
        "(same heartbeats, consumers and results; fleets of thousands)",
    )
    run.add_argument("--nats", help="use this broker (nats://HOST:PORT) instead of an embedded one")
    run.add_argument(
        "--handler",
        dest="agent_handler",
        default="sleep",
        help="sleep | noop | command:TEMPLATE | mod:func",
    )
    run.add_argument("--webhook", help="URL that page_oncall / notify_slack alerts POST to")
    run.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    run.add_argument("--grace", type=float, default=60.0, help="wall s to finish work at the end")
    run.add_argument(
        "--lag-budget",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="sustained lag allowed, as a fraction of the health interval (default 0.5)",
    )
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    run.add_argument("--out", type=Path, help="output directory (default reports/<name>-live/)")
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(handler=_cmd_live_run)


def _add_compare_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``orchestra compare``: two run directories (sim or live) side by side."""
    compare = sub.add_parser("compare", help="two run directories side by side (sim or live)")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    compare.add_argument("--json", action="store_true", help="print the table as JSON")
    compare.add_argument(
        "--pairs",
        type=Path,
        metavar="FILE",
        help="write each task of both runs on one row (Parquet): its fate in each, the delta",
    )
    compare.add_argument(
        "--report",
        type=Path,
        nargs="?",
        const=Path(),
        metavar="FILE",
        help="also write a comparison report (default: SECOND/comparison.html)",
    )
    compare.set_defaults(handler=_cmd_compare)


def _cmd_agent(args: argparse.Namespace) -> int:
    from sim.live.agent import agent_main
    from sim.live.serve_cli import check_credentials
    from sim.live.transport import LiveError

    check_credentials(args)  # from the environment, as the agent reads them
    try:
        return agent_main(args)
    except (ValueError, ImportError, LiveError) as exc:
        raise UserError(str(exc)) from None


def _cmd_live_run(args: argparse.Namespace) -> int:
    from sim.live.cancel import run_bounded
    from sim.live.runtime import LiveOptions, live_run, scaled_scenario
    from sim.live.transport import LiveError, env_token
    from sim.metrics.store import atomic_write_text, write_parquet
    from sim.runner import Outcome, write_outputs
    from sim.scenario.load import load_scenario, scenario_yaml

    overrides = list(args.overrides)
    if args.duration is not None:
        duration_option("--duration", args.duration)
        overrides.append(f"duration={args.duration}")
    if args.time_scale <= 0:
        raise UserError(f"--time-scale: expected a positive number, got {args.time_scale}")
    if not args.lag_budget > 0:
        raise UserError(f"--lag-budget: expected a positive fraction, got {args.lag_budget}")
    if args.agents is not None and args.agents < 1:
        raise UserError(f"--agents: expected at least 1, got {args.agents}")
    scenario = scaled_scenario(load_scenario(args.scenario, overrides), args.agents)
    out_dir = args.out or Path("reports") / f"{scenario.name}-live"
    options = LiveOptions(
        time_scale=args.time_scale,
        nats_url=args.nats,
        token=env_token() if args.nats else None,
        handler=args.agent_handler,
        webhook_url=args.webhook,
        metrics_port=args.metrics_port,
        grace_s=args.grace,
        lag_budget=args.lag_budget,
        log_dir=out_dir / "agent-logs",
        agents_mode=args.agents_mode,
    )
    try:
        run = run_bounded(live_run(scenario, options))
    except LiveError as exc:
        raise UserError(str(exc)) from None
    write_outputs(Outcome(run.summary, [run.result]), out_dir, report=not args.no_report)
    if run.drained is not None:  # the work that ended after the duration, kept apart
        write_parquet(out_dir / "drained.parquet", run.drained)
    atomic_write_text(out_dir / "scenario.yaml", scenario_yaml(scenario))
    if not args.quiet:
        from rich.console import Console

        print_summary(Console(), run.summary, out_dir, run.wall_s)
    return 0


#: Figures compared, with the path into summary.json.
FIGURES = (
    ("tasks completed", ("tasks", "completed")),
    ("throughput / min", ("throughput_per_min",)),
    ("latency p50 (s)", ("latency_s", "p50")),
    ("latency p99 (s)", ("latency_s", "p99")),
    ("wait p50 (s)", ("wait_s", "p50")),
    ("wait p99 (s)", ("wait_s", "p99")),
    ("utilisation", ("utilization",)),
    ("agents min", ("agents", "min")),
    ("agents mean", ("agents", "mean")),
    ("agents max", ("agents", "max")),
    ("DAG jobs completed", ("jobs", "completed")),
)


def comparison(first: Path, second: Path) -> dict[str, Any]:
    """Figures, agents over time and scaling decisions of two run directories."""
    import pandas as pd

    out: dict[str, Any] = {"runs": [str(first), str(second)], "figures": {}, "scaling": []}
    summaries, events, metrics = [], [], []
    for directory in (first, second):
        path = directory / "summary.json"
        if not path.exists():
            raise UserError(f"{path}: file not found (expected a run directory)")
        try:
            summaries.append(json.loads(path.read_text()))
            events.append(pd.read_parquet(directory / "events.parquet"))
            metrics.append(pd.read_parquet(directory / "metrics.parquet"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{directory}: unreadable run directory ({exc})") from None
    for label, keys in FIGURES:
        values = []
        for summary in summaries:
            node: Any = summary
            for key in keys:
                node = node.get(key) if isinstance(node, dict) else None
            values.append(node)
        out["figures"][label] = values
    for frame in events:
        scale = frame[frame["kind"] == "scale"]
        decisions = []
        for row in scale.itertuples(index=False):
            detail = json.loads(str(row.detail))
            decisions.append({"time_s": float(str(row.time_s)), "delta": int(detail["delta"])})
        out["scaling"].append(decisions)
    out["agents_over_time"] = [
        [
            [float(t), float(n)]
            for t, n in m.loc[m["level"] == "global", ["time_s", "total_agents"]].itertuples(
                index=False
            )
        ]
        for m in metrics
    ]
    out["same_scaling_sequence"] = [d["delta"] for d in out["scaling"][0]] == [
        d["delta"] for d in out["scaling"][1]
    ]
    out["tasks"] = _task_pairs(first, second)
    out["scaling_evaluations"] = all((d / "scaling.parquet").exists() for d in (first, second))
    out["scaling_apart"] = _scaling_apart(first, second) if out["scaling_evaluations"] else None
    return out


def _scaling_apart(first: Path, second: Path) -> dict[str, Any] | None:
    """The first evaluation at which the two autoscalers asked differently, with both
    observations (None: they never did)."""
    import pandas as pd

    from sim.analysis.scaling_apart import evaluation_spacing, first_apart

    paths = [directory / "scaling.parquet" for directory in (first, second)]
    try:
        a, b = (pd.read_parquet(path) for path in paths)
    except (OSError, ValueError) as exc:
        raise UserError(f"{paths[0].parent}: unreadable scaling.parquet ({exc})") from None
    apart = first_apart(a, b, evaluation_spacing(a) / 2)
    return None if apart is None else apart.to_json()


def _write_pairs(first: Path, second: Path, target: Path) -> None:
    """The paired tasks, one row each, for a notebook to find which tasks moved."""
    from sim.analysis.task_pairs import paired_fates
    from sim.metrics.store import write_parquet

    tables = _task_tables(first, second)
    if tables is None:
        raise UserError(f"{first} or {second}: tasks.parquet not found (expected run directories)")
    write_parquet(target, paired_fates(*tables))
    print(f"wrote {target}", file=sys.stderr)


def _task_tables(first: Path, second: Path) -> tuple[Any, Any] | None:
    """Both runs' task tables (None: one has none); one line if unreadable."""
    import pandas as pd

    paths = [first / "tasks.parquet", second / "tasks.parquet"]
    if not all(path.exists() for path in paths):
        return None
    try:
        return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    except (OSError, ValueError) as exc:
        raise UserError(f"{first} or {second}: unreadable tasks table ({exc})") from None


def _task_pairs(first: Path, second: Path) -> dict[str, Any] | None:
    """Task by task (``sim.analysis.task_pairs``): live against its replay, or two what-ifs
    of one seed (the same arrivals and work: common random numbers); None without tables."""
    from dataclasses import asdict

    from sim.analysis.task_pairs import pair_tasks

    tables = _task_tables(first, second)
    return None if tables is None else asdict(pair_tasks(*tables))


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    result = comparison(args.first, args.second)
    if args.pairs is not None:
        _write_pairs(args.first, args.second, args.pairs)
    if args.report is not None:
        _write_report(args.first, args.second, args.report, result["tasks"])
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    console = Console()
    table = Table(title="run comparison")
    table.add_column("figure")
    table.add_column(str(args.first), justify="right")
    table.add_column(str(args.second), justify="right")
    table.add_column("ratio", justify="right")
    for label, (a, b) in result["figures"].items():
        ratio = (
            f"{b / a:.3f}"
            if isinstance(a, int | float) and isinstance(b, int | float) and a
            else "—"
        )
        table.add_row(label, fmt(a), fmt(b), ratio)
    console.print(table)
    scaling = Table(title="scaling decisions (scenario time, delta)")
    scaling.add_column(str(args.first))
    scaling.add_column(str(args.second))
    first, second = result["scaling"]
    for i in range(max(len(first), len(second))):
        cells = [
            f"{d[i]['time_s']:.0f} s: {d[i]['delta']:+d}" if i < len(d) else ""
            for d in (first, second)
        ]
        scaling.add_row(*cells)
    console.print(scaling)
    same = "the same" if result["same_scaling_sequence"] else "different"
    console.print(f"scaling sequences: {same}")
    if result["scaling_evaluations"]:  # (both runs recorded every evaluation)
        from sim.analysis.scaling_apart import ScalingApart, describe_apart

        apart = ScalingApart.from_json(result["scaling_apart"])
        console.print(describe_apart(apart, "first", "second"), highlight=False, markup=False)
    if result["tasks"] is not None:
        from sim.analysis.task_pairs import TaskPairs, describe

        console.print(f"task by task: {describe(TaskPairs(**result['tasks']))}")
    return 0


def _write_report(
    first: Path, second: Path, target: Path, tasks: dict[str, Any] | None = None
) -> None:
    """The two runs in one comparison report (the first is the reference)."""
    from sim.report.compare import RunDirError, load_run_dir, write_comparison_report
    from sim.report.compare.task_section import task_pairs_section

    path = second / "comparison.html" if target == Path() else target
    try:
        runs = [load_run_dir(first, str(first)), load_run_dir(second, str(second))]
    except RunDirError as exc:
        raise UserError(str(exc)) from None
    note = f"{first} (reference) against {second}."
    title = f"{runs[0].summary.get('scenario', first.name)} — run comparison"
    extra = task_pairs_section(str(first), [(str(second), tasks)] if tasks else [])
    write_comparison_report(path, title, note, runs, extra)
    print(f"wrote {path}", file=sys.stderr)
