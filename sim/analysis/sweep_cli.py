"""``orchestra sweep`` and ``orchestra check``: the command-line faces of sweep.py and regress.py.

Exit statuses, so scripts and CI can rely on them:

* ``sweep`` — 0 when at least one run succeeded (failed runs are listed
  with their parameters and kept in the ``error`` column; ``--strict``
  makes any failure exit 1); 1 when every run failed or the input is bad.
* ``check`` — 0 when no figure got worse; 1 on a regression, a failed run
  or bad input.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.cli_support import UserError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_sweep_parser(sub)
    _add_check_parser(sub)


def _add_sweep_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="run a scenario over a grid or random sample of --set paths",
        description=(
            "Run SCENARIO at every point of a grid (--grid PATH=v1,v2,...; several --grid "
            "flags multiply) and/or a Latin-hypercube sample (--sample PATH=lo..hi with "
            "--points N), R replications per point on common random numbers. Writes one "
            "row per point x replication to --out (Parquet); runs stream to OUT.parts/ so "
            "an interrupted sweep resumes where it stopped."
        ),
    )
    sweep.add_argument("scenario", type=Path)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="PATH=v1,v2,...",
        help="values of one setting; several --grid give every combination",
    )
    sweep.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="PATH=lo..hi",
        help="a numeric range to sample (integers if both ends are)",
    )
    sweep.add_argument("--points", type=int, default=8, help="sample size for --sample")
    sweep.add_argument("--sample-seed", type=int, default=0, help="seed of the sample design")
    sweep.add_argument("--replications", type=int, default=1, metavar="R")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    sweep.add_argument("--workers", type=int, help="local worker processes (1 = in this process)")
    sweep.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786")
    sweep.add_argument(
        "--out", type=Path, help="Parquet file (default reports/<name>-sweep.parquet)"
    )
    sweep.add_argument("--strict", action="store_true", help="exit 1 if any run failed")
    sweep.add_argument(
        "--fresh", action="store_true", help="discard stored runs (after changing the model)"
    )
    sweep.add_argument("--quiet", action="store_true")
    sweep.add_argument(
        "--figure",
        default="wait_s.p99",
        help="summary figure of the report's heat-map (default wait_s.p99)",
    )
    sweep.add_argument(
        "--no-report", action="store_true", help="skip <out without .parquet>/report.html"
    )
    sweep.set_defaults(handler=_cmd_sweep)


def _add_check_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser(
        "check",
        help="re-run pinned scenarios and fail on a regression against the baselines",
        description=(
            "Re-run the pinned scenarios in --baseline (all, or the names / scenario files "
            "given) with their seeds and replications, judge each figure by its rule, print "
            "what got better or worse, exit 1 on a regression. --update rewrites (or, for a "
            "scenario file with no baseline yet, creates) the baselines."
        ),
    )
    check.add_argument("scenarios", nargs="*", help="baseline names, baseline files or scenarios")
    check.add_argument("--baseline", type=Path, default=Path("baselines"), metavar="DIR")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    check.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    check.add_argument("--update", action="store_true", help="store this run as the baseline")
    check.add_argument("--name", help="baseline name when pinning a new scenario")
    check.add_argument("--replications", type=int, metavar="R", help="with --update")
    check.add_argument("--seed", type=int, help="with --update")
    check.add_argument("--workers", type=int, help="local worker processes")
    check.add_argument("--dask", metavar="ADDRESS", help="run on a Dask scheduler instead")
    check.add_argument("--all", action="store_true", help="list unchanged figures too")
    check.add_argument("--quiet", action="store_true")
    check.set_defaults(handler=_cmd_check)


# --------------------------------------------------------------------------- sweep


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sim.analysis.sweep import failures
    from sim.scenario.load import load_scenario

    points = _sweep_points(args)
    base = load_scenario(args.scenario, args.overrides)
    name = base.name
    out = args.out or Path("reports") / f"{name}-sweep.parquet"
    if out.suffix != ".parquet":
        raise UserError(f"--out: expected a .parquet file, got {out}")
    console = Console(stderr=True, quiet=args.quiet)
    if base.variants:
        console.print(
            f"note: the variants of {args.scenario} ({', '.join(base.variants)}) are not "
            "expanded; sweep their settings with --grid"
        )
    _prepare_parts(out.with_name(out.name + ".parts"), args.fresh, console)
    started = time.perf_counter()
    frame = _run_sweep(args, points, out, name, console)
    wall = time.perf_counter() - started
    failed = failures(frame)
    if not args.quiet:
        Console().print(f"wrote {out} ({len(frame)} rows) in {wall:.1f} s")
    if not args.no_report and len(failed) < len(frame):
        _write_sweep_report(frame, out.with_suffix("") / "report.html", name, args)
    if len(failed):
        _print_failures(Console(stderr=True), failed)
    if len(failed) == len(frame) or (args.strict and len(failed)):
        return 1
    return 0


def _sweep_points(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Check the flags and build the design: the grid times the Latin-hypercube sample."""
    from sim.analysis.sweep import (
        combine,
        grid,
        iter_specs,
        latin_hypercube,
        parse_grid,
        parse_range,
    )

    if args.replications < 1:
        raise UserError(f"--replications: expected at least 1, got {args.replications}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: expected at least 1, got {args.workers}")
    if args.dask and args.workers:
        raise UserError("--workers: the Dask cluster decides; give --dask or --workers")
    if not args.grid and not args.sample:
        raise UserError("sweep: expected at least one --grid PATH=v1,v2 or --sample PATH=lo..hi")
    try:
        axes = iter_specs(args.grid, parse_grid)
        ranges = iter_specs(args.sample, parse_range)
    except ValueError as exc:
        raise UserError(f"--grid/--sample: {exc}") from None
    if set(axes) & set(ranges):
        raise UserError(f"--sample: {sorted(set(axes) & set(ranges))[0]} is also in --grid")
    if args.sample and args.points < 1:
        raise UserError(f"--points: expected at least 1, got {args.points}")
    sampled = latin_hypercube(ranges, args.points, args.sample_seed) if ranges else [{}]
    return combine(grid(axes), sampled)


def _prepare_parts(parts: Path, fresh: bool, console: Console) -> None:
    """Runs stream to OUT.parts/: --fresh discards them, otherwise the sweep resumes."""
    if fresh and parts.is_dir():
        shutil.rmtree(parts)
    elif parts.is_dir():
        console.print(f"resuming: runs already in {parts}/ are not repeated (--fresh to redo)")


def _run_sweep(
    args: argparse.Namespace, points: list[dict[str, Any]], out: Path, name: str, console: Console
) -> Any:
    """Run every point x replication under a progress bar; close a Dask client afterwards."""
    from sim.analysis.sweep import sweep

    runs = len(points) * args.replications
    executor: Any = None
    if args.dask:
        executor = _connect(args.dask)
    where = f"Dask at {args.dask}" if args.dask else f"{args.workers or 'all'} local workers"
    console.print(f"{name}: {len(points)} points x {args.replications} replications on {where}")
    with Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("sweep", total=runs, failed=0)

        def progress(done: int, total: int, failed: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed)

        try:
            return sweep(
                args.scenario,
                points,
                args.replications,
                overrides=args.overrides,
                executor=executor,
                workers=args.workers,
                out=out,
                progress=progress,
            )
        finally:
            if executor is not None:
                executor.close()


def _write_sweep_report(frame: Any, path: Path, name: str, args: argparse.Namespace) -> None:
    """Heat-map, Pareto front and points table of the sweep (sim.report.compare.sweep)."""
    from sim.report.compare.sweep import SweepReportError, write_sweep_report

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_sweep_report(path, frame, f"{name} sweep", args.figure)
    except SweepReportError as exc:
        raise UserError(str(exc)) from None
    if not args.quiet:
        Console().print(f"wrote {path}")


def _connect(address: str) -> Any:
    from sim.analysis.executors import DaskExecutor

    try:
        return DaskExecutor.connect(address, timeout=15.0)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"--dask: cannot reach a scheduler at {address}: {exc}") from None


def _print_failures(console: Console, failed: Any) -> None:
    """One line per failed point: its parameters, which replications, the message."""
    params = [c for c in failed.columns if c.startswith("set.")]
    console.print(f"[bold red]{len(failed)} runs failed:[/]")
    for point, rows in failed.groupby("point", sort=True):
        first = rows.iloc[0]
        settings = ", ".join(f"{c[len('set.') :]}={first[c]}" for c in params)
        reps = ",".join(str(r) for r in rows["replication"])
        line = f"  point {point} ({settings}) replications {reps}: {first['error']}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)


# --------------------------------------------------------------------------- check


def _cmd_check(args: argparse.Namespace) -> int:
    """The ordinary baselines, then the pinned failure matrices (baselines/failover/)."""
    from sim.analysis.failover_check import check_pins, split_targets
    from sim.analysis.regress import baseline_files

    pins, rest = split_targets(args.scenarios, args.baseline)
    status = 0
    ordinary = rest or not args.scenarios
    if ordinary and (rest or args.update or not pins or baseline_files(args.baseline)):
        status = _check_baselines(args, rest)
    if pins:
        say = Console(quiet=args.quiet).print
        passed = check_pins(
            pins, extra=args.overrides, update=args.update, workers=args.workers, say=say
        )
        if not passed:
            say("[bold red]regression:[/] a failure mode's worst case got worse")
            status = 1
    return status


def _check_baselines(args: argparse.Namespace, targets: list[str]) -> int:
    from sim.analysis.junit import write_junit
    from sim.analysis.regress import resolve, run_check, write_baselines

    if args.replications is not None and args.replications < 2:
        raise UserError(f"--replications: expected at least 2, got {args.replications}")
    if (args.replications is not None or args.seed is not None) and not args.update:
        raise UserError("--replications/--seed: only with --update (a check re-runs the pin)")
    if not args.baseline.is_dir() and not args.update:
        raise UserError(f"--baseline: {args.baseline}: expected a directory of baselines")
    chosen = resolve(targets, args.baseline, update=args.update, name=args.name)
    console = Console(stderr=True, quiet=args.quiet)
    runs = sum(b.replications if b else (args.replications or 3) for _, b, _ in chosen)
    console.print(f"check: {len(chosen)} scenarios, {runs} runs")
    started = time.perf_counter()
    executor = _connect(args.dask) if args.dask else None
    try:
        result = run_check(
            chosen,
            args.baseline,
            extra=args.overrides,
            replications=args.replications,
            seed=args.seed,
            executor=executor,
            workers=args.workers,
        )
    finally:
        if executor is not None:
            executor.close()
    elapsed = time.perf_counter() - started
    out = Console(quiet=args.quiet)
    _print_check(out, result, show_all=args.all)
    if args.junit is not None:
        write_junit(args.junit, result, elapsed)
    if args.update:
        if result.errors:
            out.print("[bold red]not updated:[/] some runs failed")
            return 1
        written = write_baselines(result)
        out.print(f"updated {len(written)} baselines in {args.baseline}/ ({elapsed:.1f} s)")
        return 0
    worse = result.regressions
    if result.failed:
        out.print(
            f"[bold red]regression:[/] {len(worse)} figures worse, "
            f"{len(result.errors)} scenarios failed to run ({elapsed:.1f} s)"
        )
        return 1
    out.print(f"[green]ok:[/] nothing got worse ({elapsed:.1f} s)")
    return 0


def _print_check(console: Console, result: Any, *, show_all: bool) -> None:
    from sim.analysis.regress import Judgement

    colours = {"worse": "red", "missing": "red", "better": "green", "same": "dim"}
    rows: list[Judgement] = [j for j in result.judgements if show_all or j.verdict != "same"]
    for scenario in dict.fromkeys(j.scenario for j in rows):
        table = Table(title=f"{scenario}: new runs against the baseline", title_justify="left")
        table.add_column("figure", no_wrap=True)
        for column in ("baseline", "now", "change"):
            table.add_column(column, justify="right", no_wrap=True)
        table.add_column("verdict", no_wrap=True)
        for j in (j for j in rows if j.scenario == scenario):
            base, now = j.baseline_mean, j.current_mean
            change = f"{j.change / base:+.1%}" if base else f"{j.change:+.4g}"
            p = f" (p={j.p_value:.1g})" if j.p_value is not None else ""
            verdict = f"[{colours[j.verdict]}]{j.verdict}[/]{p}"
            table.add_row(j.figure, _num(base), _num(now), change, verdict)
        console.print(table)
    same = sum(j.verdict == "same" for j in result.judgements)
    identical = [name for name, same_runs in result.identical.items() if same_runs]
    console.print(
        f"{len(result.judgements)} figures: {same} unchanged"
        + (f"; bit-identical runs: {', '.join(identical)}" if identical else "")
    )
    _print_errors(console, result)


def _print_errors(console: Console, result: Any) -> None:
    for name, error in result.errors.items():
        console.print(f"[bold red]{name}: run failed:[/] {error}", soft_wrap=True)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
