"""``orchestra calibrate LIVE_DIR``: replay a live run, fit what live adds, replay it again.

Writes into ``--out`` (default ``reports/<scenario>-calibrated/``):
``calibrated.yaml`` (the overlay that replays this run), ``forecast.yaml``
(it, for other runs: live's stalls at random rather than at their times),
``calibration.json`` (the fit and each
figure live / before / after), ``comparison.html`` (live, before and after
overlaid: :mod:`sim.report.compare`), and the two simulated runs as
``before/`` and ``after/`` run directories, which ``orchestra compare`` reads
like any other.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.cli_support import UserError, fmt


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calibrate = sub.add_parser(
        "calibrate",
        help="fit a live run's overheads (start-up, dispatch, service) and replay it calibrated",
    )
    calibrate.add_argument("live_dir", type=Path, help="a directory written by `live run`")
    calibrate.add_argument("--out", type=Path, help="default: reports/<scenario>-calibrated/")
    calibrate.add_argument("--json", action="store_true", help="print calibration.json")
    calibrate.set_defaults(handler=_cmd_calibrate)


def calibrate(live_dir: Path, out_dir: Path | None = None) -> tuple[dict[str, Any], Path]:
    """Replay *live_dir* before and after calibration; the report and the output directory."""
    from sim.analysis.calibrate import (
        CalibrationError,
        fit,
        overlay,
        read_run,
        report,
        write_overlay,
    )
    from sim.analysis.calibrate_detection import detection_phases, pin_phases
    from sim.analysis.calibrate_dispatch import forecast_overlay
    from sim.metrics.store import write_json
    from sim.replay import ReplayError, chaos_from_events, replay_scenario
    from sim.runner import run, write_outputs
    from sim.scenario.load import ScenarioError, load_scenario

    try:
        live = read_run(live_dir)
        timeline = chaos_from_events(live["events"], 0, str(live_dir))
    except (CalibrationError, ReplayError) as exc:
        raise UserError(str(exc)) from None
    recorded = live_dir / "scenario.yaml"
    try:
        scenario = load_scenario(recorded)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    out = out_dir or Path("reports") / f"{scenario.name}-calibrated"
    out.mkdir(parents=True, exist_ok=True)

    before = run(replay_scenario(scenario, timeline))
    write_outputs(before, out / "before", report=False)
    replayed = before.results[0]
    fitted = fit(live, replayed.tasks, replayed.events, replayed.llm)
    made = overlay(recorded, out, scenario, fitted)
    phases = detection_phases(live["events"], live["agents"], replayed.events, scenario.health)
    pin_phases(made["document"], made["notes"], phases, scenario.health)
    overlay_path = out / "calibrated.yaml"
    write_overlay(overlay_path, made["document"], made["notes"])
    forecast = forecast_overlay(scenario.name, fitted.dispatch_pauses, scenario.duration)
    write_overlay(out / "forecast.yaml", forecast["document"], forecast["notes"])
    calibrated = load_scenario(overlay_path)
    after = run(replay_scenario(calibrated, timeline))
    write_outputs(after, out / "after", report=False)
    table = report(
        live,
        (before.summary, before.results[0].events, before.results[0].tasks),
        (after.summary, after.results[0].events, after.results[0].tasks),
        fitted,
        made["notes"],
    )
    table["fit"]["detection_phases"] = len(phases)
    table["scaling_apart"] = _scaling_apart(live["scaling"], before, after, scenario)
    table["overlay"] = made["document"]
    write_json(out / "calibration.json", table)
    _write_comparison(live_dir, out, scenario.name, before, after, table["tasks"])
    return table, out


def _write_comparison(
    live_dir: Path, out: Path, name: str, before: Any, after: Any, tasks: dict[str, Any]
) -> None:
    """Live against the simulation before and after calibration, as one comparison report."""
    from sim.report.compare import RunDirError, load_run_dir, write_comparison_report
    from sim.report.compare.task_section import task_pairs_section

    try:
        live = load_run_dir(live_dir, "live")
    except RunDirError as exc:
        raise UserError(str(exc)) from None
    runs = [live, before.compared("sim before"), after.compared("sim after")]
    note = f"The live run in {live_dir} (reference) and its simulated replay, before and after"
    note += " calibration."
    pairs = [("sim before", tasks["before"]), ("sim after", tasks["after"])]
    extra = task_pairs_section("live", pairs)
    write_comparison_report(
        out / "comparison.html", f"{name} — live vs simulated", note, runs, extra
    )


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import json

    table, out = calibrate(args.live_dir, args.out)
    if args.json:
        print(json.dumps(table, indent=2, default=str))
        return 0
    console = Console()
    fit = table["fit"]
    console.print(
        f"fitted: spawn delay {fmt(fit['spawn_delay_s'])} s ({fit['spawn_samples']} agents"
        f"{', ' + fmt(fit['start_gap_s']) + ' s apart' if fit['start_gap_s'] else ''}), "
        f"dispatch overhead {fmt(fit['dispatch_overhead_s'], 3)} s "
        f"({fit['dispatch_samples']} tasks), hand-off overhead "
        f"{fmt(fit['handoff_overhead_s'], 3)} s ({fit['handoff_samples']} hand-offs), "
        f"call overhead {fmt(fit['call_overhead_s'], 3)} s ({fit['call_samples']} calls), "
        f"service factor {fmt(fit['service_factor'], 4)} "
        f"({fit['service_samples']} tasks), check phases pinned for "
        f"{fit['detection_phases']} failed agents"
    )
    spread = table["overlay"].get("coordination", {}).get("dispatch_overhead", {})
    if spread.get("samples"):
        p50, p90, p99 = (_quantile(spread["samples"], q) for q in (0.5, 0.9, 0.99))
        console.print(
            f"  dispatch overhead drawn per task from {len(spread['samples'])} quantiles: "
            f"p50 {fmt(p50, 3)} s, p90 {fmt(p90, 3)} s, p99 {fmt(p99, 3)} s"
        )
    for note in table["notes"]:
        console.print(f"  {note}")
    figures = Table(title="live vs simulated, before and after calibration")
    for column in ("figure", "live", "sim before", "ratio", "sim after", "ratio"):
        figures.add_column(column, justify="left" if column == "figure" else "right")
    for row in table["figures"]:
        figures.add_row(
            row["figure"],
            fmt(row["live"]),
            fmt(row["before"]),
            _ratio_text(row["ratio_before"]),
            fmt(row["after"]),
            _ratio_text(row["ratio_after"]),
        )
    console.print(figures)
    _print_scaling(console, table)
    _print_bands_and_tasks(console, table)
    console.print(
        f"wrote {out}/ (calibrated.yaml to replay this run, forecast.yaml for other runs, "
        "calibration.json, comparison.html, before/, after/)"
    )
    return 0


def _scaling_apart(live: Any, before: Any, after: Any, scenario: Any) -> dict[str, Any]:
    """Where live's and each replay's autoscalers first asked differently (``{}``: live's
    directory has no ``scaling.parquet``, written before live recorded its evaluations)."""
    from sim.analysis.scaling_apart import first_apart

    if live is None:
        return {}
    within = scenario.scaling.decision_interval() / 2
    out: dict[str, Any] = {}
    for name, outcome in (("before", before), ("after", after)):
        replayed = outcome.results[0].scaling
        if replayed is not None:
            apart = first_apart(live, replayed, within)
            out[name] = None if apart is None else apart.to_json()
    return out


def _print_scaling(console: Console, table: dict[str, Any]) -> None:
    """The scaling decisions of the three runs, then where live's and the calibrated
    replay's autoscalers first asked differently, with what each saw."""
    from sim.analysis.scaling_apart import ScalingApart, describe_apart

    scaling = Table(title="scaling decisions (scenario time, delta)")
    runs = table["scaling"]
    for name in ("live", "before", "after"):
        scaling.add_column(name)
    for i in range(max((len(d) for d in runs.values()), default=0)):
        scaling.add_row(
            *[
                f"{d[i]['time_s']:.0f} s: {d[i]['delta']:+d}" if i < len(d) else ""
                for d in (runs["live"], runs["before"], runs["after"])
            ]
        )
    console.print(scaling)
    if "after" not in table.get("scaling_apart", {}):
        return
    apart = ScalingApart.from_json(table["scaling_apart"]["after"])
    console.print(describe_apart(apart, "live", "replay"), highlight=False, markup=False)


def _print_bands_and_tasks(console: Console, table: dict[str, Any]) -> None:
    """Waits by live utilisation band, then the task-by-task pairing before and after."""
    from sim.analysis.task_pairs import TaskPairs, describe

    bands = Table(title="wait p50 / p99 (s) by live utilisation band")
    for column in ("band", "intervals", "tasks", "live", "sim before", "sim after"):
        bands.add_column(column, justify="left" if column == "band" else "right")
    for band in table["by_utilisation"]:
        cells = [
            f"{fmt(band[run]['wait_p50'])} / {fmt(band[run]['wait_p99'])}"
            for run in ("live", "before", "after")
        ]
        bands.add_row(band["band"], str(band["intervals"]), str(band["live"]["tasks"]), *cells)
    console.print(bands)
    for run in ("before", "after"):
        console.print(f"task by task, sim {run}: {describe(TaskPairs(**table['tasks'][run]))}")


def _quantile(values: list[float], q: float) -> float:
    """The *q* quantile of evenly spaced quantiles (the nearest one)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ratio_text(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"
