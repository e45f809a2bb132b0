"""``orchestra failover``: the failure matrix from the command line.

Exit status: 0 when every trial ran and no task was lost; 1 on bad input, a
failed trial or a lost task (conservation must hold in every failure mode).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.cli_support import UserError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sim.analysis.failover_modes import MODES

    failover = sub.add_parser(
        "failover",
        help="the failure matrix: N trials per failure mode, the worst case of each",
        description=(
            "Run N trials of each failure mode against SCENARIO (warmed up, then one failure at "
            "an instant uniform over a health check, a Raft heartbeat and an election timeout), "
            "on common random numbers; write failover.json, trials.parquet and failover.html to "
            f"--out. Modes: {', '.join(MODES)}."
        ),
    )
    failover.add_argument("scenario", type=Path)
    failover.add_argument("--trials", type=int, default=50, metavar="N", help="per mode")
    failover.add_argument(
        "--modes", nargs="+", metavar="MODE", help="modes to run (names, or comma lists)"
    )
    failover.add_argument("--out", type=Path, help="default reports/<name>-failover/")
    failover.add_argument("--set", dest="overrides", action="append", default=[])
    failover.add_argument("--executor", choices=("local", "dask"), default="local")
    failover.add_argument("--dask", metavar="ADDRESS", help="scheduler for --executor dask")
    failover.add_argument("--workers", type=int, help="local worker processes (1 = here)")
    failover.add_argument("--pin", type=Path, metavar="FILE", help="also write a pin for check")
    failover.add_argument("--no-report", action="store_true")
    failover.add_argument("--quiet", action="store_true")
    failover.set_defaults(handler=_cmd_failover)


def _cmd_failover(args: argparse.Namespace) -> int:
    from sim.analysis.failover_check import pin_document, write_pin
    from sim.analysis.failover_matrix import run_matrix
    from sim.analysis.failover_modes import parse_modes
    from sim.metrics.store import write_json, write_parquet
    from sim.scenario.load import load_scenario

    if args.trials < 1:
        raise UserError(f"--trials: expected at least 1, got {args.trials}")
    try:
        modes = parse_modes(args.modes)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.executor == "dask" and not args.dask:
        raise UserError("--executor dask: expected --dask ADDRESS (a scheduler)")
    if args.executor == "local" and args.dask:
        raise UserError("--dask: only with --executor dask")
    scenario = load_scenario(args.scenario, args.overrides)
    out: Path = args.out or Path("reports") / f"{scenario.name}-failover"
    executor: Any = None
    if args.executor == "dask":
        from sim.analysis.sweep_cli import _connect

        executor = _connect(args.dask)
    console = Console(stderr=True, quiet=args.quiet)
    console.print(f"failover: {len(modes)} modes x {args.trials} trials of {scenario.name}")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            console.print(f"  {done}/{total} trials")

    try:
        run = run_matrix(
            scenario,
            modes,
            args.trials,
            executor=executor,
            workers=args.workers,
            progress=progress,
        )
    finally:
        if executor is not None:
            executor.close()
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "trials.parquet", run.trials)
    write_json(out / "failover.json", run.matrix)
    if not args.no_report:
        from sim.report.failover_report import write_matrix_report

        write_matrix_report(out / "failover.html", run.matrix, run.trials)
    if args.pin is not None:
        name = args.pin.stem
        write_pin(args.pin, pin_document(name, str(args.scenario), args.overrides, run.matrix))
    _print_matrix(Console(quiet=args.quiet, width=140), run.matrix)
    errors = run.trials["error"].notna().sum()
    lost = sum(int(e.get("lost_total", 0)) for e in run.matrix["modes"].values())
    if errors or lost:
        print(f"error: {errors} trials failed, {lost} tasks lost (see {out}/failover.json)")
        return 1
    return 0


def _print_matrix(console: Console, matrix: dict[str, Any]) -> None:
    table = Table(title=f"failure matrix: {matrix['scenario']}, {matrix['trials']} trials/mode")
    columns = (
        ("mode", None),
        ("detect p50", "detection_p50_s"),
        ("detect max", "detection_max_s"),
        ("bound", "detection_bound_s"),
        ("unavail p50", "unavailable_p50_s"),
        ("unavail max", "unavailable_max_s"),
        ("floor", "unavailable_before_max_s"),
        ("leaderless", "leaderless_max_s"),
        ("p99 after/before max", "p99_wait_ratio_max"),
        ("p99 vs control max", "p99_vs_control_max"),
        ("lost", "lost_total"),
        ("terms", "term_change_max"),
    )
    for heading, _ in columns:
        table.add_column(heading, justify="left" if heading == "mode" else "right")
    for name, entry in matrix["modes"].items():
        cells = [name]
        for _, key in columns[1:]:
            value = entry.get(key)
            ok = isinstance(value, int | float) and math.isfinite(value)
            cells.append(f"{value:.3g}" if ok else "—")
        table.add_row(*cells)
    console.print(table)
