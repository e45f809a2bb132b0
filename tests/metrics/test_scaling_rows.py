"""``scaling.parquet``: every autoscaler evaluation, holds included, in the simulator.

Checked against what the run itself says: an evaluation at every decision
interval, a ``scale`` event exactly where one asked for a change, and the
average response it saw equal to the mean wait of the services started in
its metric window, recomputed from ``tasks.parquet``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support import SCENARIOS

from sim.metrics.scaling_rows import SCALING_COLUMNS, evaluation_row, scaling_frame
from sim.model.engine import run_scenario
from sim.policies.autoscale import FleetObservation, ScaleDecision
from sim.policies.scaling_loop import ScalePlan
from sim.scenario.load import load_scenario

#: The burst's surge moved to 10 minutes in, so a 40-minute run scales up and back down.
BURST = [
    "duration=40m",
    "warmup=0",
    "scaling.policy=step",
    'workload.arrivals.bursts=[{"at": "10m", "duration": "10m", "factor": 5}]',
]


@pytest.fixture(scope="module")
def burst():  # type: ignore[no-untyped-def]
    return run_scenario(load_scenario(SCENARIOS / "burst.yaml", BURST))


def test_every_decision_interval_has_one_evaluation_holds_included(burst) -> None:  # type: ignore[no-untyped-def]
    """Plus one at each alert that forced a scale-up, at the alert's instant."""
    scenario, table, events = burst.scenario, burst.scaling, burst.events
    assert list(table.columns) == ["replication", *SCALING_COLUMNS]
    forced = table["reason"].str.contains("forced by alert")
    every = scenario.scaling.decision_interval()
    expected = np.arange(every, scenario.duration - 1e-9, every)
    assert np.allclose(table.loc[~forced, "time_s"].to_numpy(), expected)
    alerts = events[
        (events["kind"] == "alert") & events["detail"].str.contains("scale_up_immediate")
    ]
    firing = alerts[alerts["detail"].str.contains('"firing"')]
    assert forced.sum() == len(firing) > 0
    assert np.allclose(table.loc[forced, "time_s"], firing["time_s"].astype(float))
    assert set(table["policy"]) == {"step"}
    assert (table["asked"] == 0).sum() > 0, "a run of holds only, or of changes only"
    assert (table["asked"] > 0).any(), "the surge should have scaled up"


def test_the_changes_asked_for_are_the_scale_events(burst) -> None:  # type: ignore[no-untyped-def]
    table, events = burst.scaling, burst.events
    scale = events[events["kind"] == "scale"]
    changes = table[table["asked"] != 0]
    assert len(changes) == len(scale) > 0
    for row, (time_s, detail) in zip(
        changes.itertuples(index=False),
        zip(scale["time_s"], scale["detail"], strict=True),
        strict=True,
    ):
        fields = json.loads(str(detail))
        assert row.time_s == pytest.approx(float(time_s))
        assert (row.asked, row.target, row.reason) == (
            fields["asked"],
            fields["target"],
            fields["reason"],
        )
    holds = table[table["asked"] == 0]
    assert (holds["target"] == holds["agents"]).all()


def test_the_response_time_seen_is_the_mean_wait_of_the_window(burst) -> None:  # type: ignore[no-untyped-def]
    """Recomputed from the task table: services started in (t - window, t]."""
    scenario, table, tasks = burst.scenario, burst.scaling, burst.tasks
    pipeline = scenario.scaling.pipeline
    assert pipeline.metric_delay == 0 and pipeline.metric_resolution == 0  # (a fresh metric)
    window = scenario.scaling.metric_window
    started = tasks[tasks["start_s"] >= 0]
    start = started["start_s"].to_numpy(dtype=float)
    wait = start - started["arrival_s"].to_numpy(dtype=float)
    compared = 0
    for row in table.itertuples(index=False):
        inside = (start > row.time_s - window) & (start <= row.time_s)
        if not inside.any():
            assert row.avg_response_time_s == 0.0
            continue
        assert row.avg_response_time_s == pytest.approx(wait[inside].mean(), rel=1e-9, abs=1e-9)
        compared += 1
    assert compared >= len(table) - 1
    busy = table["avg_response_time_s"].max()
    assert busy > 5 * table["avg_response_time_s"].iloc[0], "the surge did not show"


def test_no_table_where_autoscaling_is_off() -> None:
    scenario = load_scenario(
        SCENARIOS / "baseline_200.yaml", ["duration=5m", "scaling.enabled=false"]
    )
    assert run_scenario(scenario).scaling is None


def test_a_metric_not_yet_delivered_is_null_in_the_row_and_nan_in_the_table() -> None:
    observed = FleetObservation(
        agents=10,
        ready=9,
        starting=1,
        queue_depth=math.nan,
        avg_response_time_s=1.5,
        cpu_utilization=0.5,
        idle_fraction=0.1,
    )
    plan = ScalePlan(ScaleDecision(0, 10, "no metric available", "hpa"), observation=observed)
    row = evaluation_row(30.0, plan)
    assert row["queue_depth"] is None and row["avg_response_time_s"] == 1.5
    json.dumps(row, allow_nan=False)  # a JSON document as it stands (live publishes it)
    frame = scaling_frame([row], 3)
    assert math.isnan(frame.at[0, "queue_depth"]) and frame.at[0, "replication"] == 3
    assert frame.at[0, "asked"] == 0 and frame.at[0, "policy"] == "hpa"
