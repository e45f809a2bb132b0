"""Live and simulator agree: one record contract, and a calibrated replay of a live run.

A short live run of 32 agent processes (half load at time-scale 10, a burst
that scales the fleet up once, a quiet that drains it once), then ``orchestra
calibrate`` of its directory: the replay, calibrated, must agree with the live
run on throughput, utilisation and wait p50 within tolerances derived from the
number of tasks, and take the same scaling decisions within one evaluation
interval. Before any number is compared, the two directories must agree on
what the numbers *mean*: the same window, the same columns, the same attempt
numbering.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import HERE, exactly_once, run_live, write_live_dir
from support import quantile_band

from sim.analysis.calibrate_dispatch import SPREAD_POINTS, free_delays
from sim.cli import main
from sim.live.runtime import LiveRun
from sim.metrics.records import TASK_COLUMNS
from sim.scenario.load import load_scenario

#: Two-sided 99 % normal quantile: the tolerances below are 99 % bounds.
Z99 = 2.576


def live_directory(tmp_path: Path) -> tuple[LiveRun, Path]:
    scenario = load_scenario(HERE / "parity.yaml")
    live = run_live(scenario, tmp_path, time_scale=10.0)
    return live, write_live_dir(live, scenario, tmp_path / "live")


def check_same_definitions(live_dir: Path, sim_dir: Path, duration: float) -> None:
    """The same window, the same columns, the same numbering: like is compared with like."""
    live_tasks = pd.read_parquet(live_dir / "tasks.parquet")
    sim_tasks = pd.read_parquet(sim_dir / "tasks.parquet")
    assert list(live_tasks.columns) == list(sim_tasks.columns)
    assert set(TASK_COLUMNS) <= set(live_tasks.columns)
    for name in ("agents", "metrics", "jobs"):
        live_cols = list(pd.read_parquet(live_dir / f"{name}.parquet").columns)
        assert live_cols == list(pd.read_parquet(sim_dir / f"{name}.parquet").columns), name
    for tasks in (live_tasks, sim_tasks):
        # The window: nothing ends after the duration; what ran on is in flight at the end.
        assert (tasks["end_s"].dropna() <= duration).all()
        assert (tasks["start_s"].dropna() <= duration).all()
        running = tasks[tasks["outcome"] == "in_flight"]
        assert running["end_s"].isna().all() and running["complete_s"].isna().all()
        assert (running["service_s"] >= 0).all()
        # Attempts count from 1; a first attempt's dispatch is its assignment, not before arrival.
        assert tasks["attempt"].min() == 1
        first = tasks[(tasks["attempt"] == 1) & tasks["dispatch_s"].notna()]
        assert (first["dispatch_s"] >= first["arrival_s"] - 1e-9).all()
        # One row per task and attempt, the same arrivals (the same workload).
        assert not tasks.duplicated(["task_id", "attempt"]).any()
    for directory in (live_dir, sim_dir):
        agents = pd.read_parquet(directory / "agents.parquet")
        assert (agents["left_s"] <= duration).all() and (agents["joined_s"] <= duration).all()
        events = pd.read_parquet(directory / "events.parquet")
        assert (events["time_s"] <= duration + 1e-9).all()
    arrivals = sorted(np.round(live_tasks.drop_duplicates("task_id")["arrival_s"], 6))
    assert arrivals == sorted(np.round(sim_tasks.drop_duplicates("task_id")["arrival_s"], 6))
    # Drained work is reported apart and counted nowhere else.
    summary = json.loads((live_dir / "summary.json").read_text())
    drained = pd.read_parquet(live_dir / "drained.parquet")
    assert summary["drained"]["tasks"] == len(drained)
    assert (drained["complete_s"] > duration).all()
    done = live_tasks[live_tasks["outcome"] == "completed"]
    assert math.isclose(summary["throughput_per_min"] * duration / 60.0, len(done))
    assert not set(drained["task_id"]) & set(done["task_id"])


def median_band(values: pd.Series) -> tuple[float, float]:
    """A distribution-free 99 % confidence band of the median (binomial order statistics)."""
    return quantile_band(values.to_numpy(dtype=float), 0.5, Z99)


def test_live_and_calibrated_replay_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, live_dir = live_directory(tmp_path)
    exactly_once(live)
    duration = live.result.scenario.duration
    out = tmp_path / "calibrated"
    assert main(["calibrate", str(live_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "calibration.json").read_text())
    check_same_definitions(live_dir, out / "after", duration)
    comparison = (out / "comparison.html").read_text(encoding="utf-8")
    for name in ("live", "sim before", "sim after"):
        assert f"<th>{name}</th>" in comparison
    assert 'id="compare-tasks"' in comparison and "<td>tasks paired</td>" in comparison

    overlay = (out / "calibrated.yaml").read_text()
    assert "extends:" in overlay
    # For other runs: the same fit, live's stalls (if any) drawn at random, none at a time.
    forecast = load_scenario(out / "forecast.yaml").coordination.dispatch_overhead
    replayed = load_scenario(out / "calibrated.yaml").coordination.dispatch_overhead
    assert forecast.pauses == [] and forecast.samples == replayed.samples
    assert (forecast.stalls.rate_per_hour > 0) == bool(replayed.pauses)
    fit = report["fit"]
    assert fit["spawn_samples"] == 8  # the scale-up's eight processes, each timed
    assert 0 < fit["spawn_delay_s"] < 60.0 and "spawn_delay" in overlay
    assert fit["dispatch_samples"] > 100 and fit["dispatch_overhead_s"] >= 0
    check_dispatch_spread(report, live_dir, out, printed)
    # Live's hand-offs of queued work, beyond the model's, are the replay's from now on.
    assert (fit["handoff_overhead_s"] > 0) == ("handoff_overhead" in overlay)

    check_task_by_task(report["tasks"], live_dir, duration)
    figures = {row["figure"]: row for row in report["figures"]}
    n_live = int(figures["tasks completed"]["live"])
    n_sim = int(figures["tasks completed"]["after"])
    assert n_live > 400
    # Throughput and utilisation: counts of about n tasks, so a relative 99 % bound of
    # z * sqrt(1/n_live + 1/n_sim) (each count's Poisson error; same arrivals make it loose).
    relative = Z99 * math.sqrt(1 / n_live + 1 / n_sim)
    for name in ("throughput / min", "utilisation"):
        row = figures[name]
        assert abs(row["after"] - row["live"]) <= relative * row["live"], (name, row, relative)
    # Wait p50: the two medians' 99 % bands overlap (each median is known to within its
    # band; the model's start delays are narrow, live's spread, so one band is narrow).
    live_tasks = pd.read_parquet(live_dir / "tasks.parquet")
    sim_tasks = pd.read_parquet(out / "after" / "tasks.parquet")
    live_band = median_band(live_tasks.loc[live_tasks["outcome"] == "completed", "wait_s"])
    sim_band = median_band(sim_tasks.loc[sim_tasks["outcome"] == "completed", "wait_s"])
    assert max(live_band[0], sim_band[0]) <= min(live_band[1], sim_band[1]), (live_band, sim_band)
    # The same scaling decisions, each within one evaluation interval.
    interval = live.result.scenario.scaling.evaluation_interval
    live_scaling, sim_scaling = report["scaling"]["live"], report["scaling"]["after"]
    assert [d["delta"] for d in live_scaling] == [d["delta"] for d in sim_scaling] == [8, -4]
    for a, b in zip(live_scaling, sim_scaling, strict=True):
        # (live stamps the event a moment after its evaluation tick: compare the ticks)
        tick = round(a["time_s"] / interval) * interval
        assert abs(tick - b["time_s"]) <= interval, (live_scaling, sim_scaling)
    # Every evaluation, holds included (scaling.parquet): with its thresholds far from what
    # either shell sees, no evaluation of the replay asked for other than live's.
    evaluations = pd.read_parquet(live_dir / "scaling.parquet")
    assert len(evaluations) >= duration // interval - 1 > len(live_scaling)
    assert set(report["scaling_apart"]) == {"before", "after"}
    assert report["scaling_apart"]["after"] is None, report["scaling_apart"]
    assert "live and replay asked for the same changes at every evaluation" in printed


def check_dispatch_spread(report: dict[str, Any], live_dir: Path, out: Path, printed: str) -> None:
    """Live's spread of dispatch delays is drawn per task in the replay: the free tasks'
    p90 (a tail a constant overhead cannot give) of live and of the calibrated replay have
    overlapping 99 % bands, and the console says what is drawn."""
    drawn = report["overlay"].get("coordination", {}).get("dispatch_overhead")
    if drawn is None:  # live added nothing beyond the model: nothing drawn
        assert report["fit"]["dispatch_overhead_s"] == 0.0 and report["fit"]["dispatch_stalls"] == 0
        return
    assert drawn.get("dist") == "empirical" and len(drawn["samples"]) == SPREAD_POINTS
    # Stalls of live's host, if any, are replayed where they happened, each a pause.
    assert len(drawn.get("pauses", [])) == report["fit"]["dispatch_stalls"]
    assert "dispatch overhead drawn per task from 100 quantiles" in printed
    live_band, after_band = (
        quantile_band(free_delays(pd.read_parquet(run / "tasks.parquet")), 0.9, Z99)
        for run in (live_dir, out / "after")
    )
    assert max(live_band[0], after_band[0]) <= min(live_band[1], after_band[1]), (
        live_band,
        after_band,
    )


def check_task_by_task(pairs: dict[str, dict[str, float]], live_dir: Path, duration: float) -> None:
    """Each task of the live run beside itself in the replay (``sim.analysis.task_pairs``).

    No DAGs here: every task is an arrival of the stream both draw, so every one pairs.
    Their outcomes can differ only where a second of timing decides it: at the run's
    end (live's tasks still serving, or ending in the last seconds). Calibration, which
    fits live's dispatch overhead, brings the typical task's latency closer, not further.
    """
    before, after = pairs["before"], pairs["after"]
    assert after["paired"] == after["live"] == after["replay"] > 400, after
    live_tasks = pd.read_parquet(live_dir / "tasks.parquet")
    last = live_tasks.drop_duplicates("task_id", keep="last")
    at_the_end = int(((last["outcome"] == "in_flight") | (last["end_s"] > duration - 2)).sum())
    differing = round((1 - after["same_outcome"]) * after["paired"])  # (a share of a count)
    assert differing <= at_the_end, (after, at_the_end)
    assert after["latency_delta_p50_s"] <= before["latency_delta_p50_s"], pairs
