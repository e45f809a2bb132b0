"""Where two runs' autoscalers first asked for different changes, and on what numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import SCENARIOS

from sim.analysis.scaling_apart import (
    ScalingApart,
    describe_apart,
    evaluation_spacing,
    first_apart,
)
from sim.metrics.scaling_rows import scaling_frame
from sim.runner import run, write_outputs
from sim.scenario.load import load_scenario


def table(*rows: tuple[float, int, float]) -> pd.DataFrame:
    """Evaluations as (time, asked, average response) with the rest held fixed."""
    return scaling_frame(
        [
            {
                "time_s": t,
                "policy": "step",
                "agents": 100.0,
                "ready": 100.0,
                "starting": 0.0,
                "queue_depth": 3.0,
                "avg_response_time_s": response,
                "cpu_utilization": 0.5,
                "idle_fraction": 0.2,
                "in_flight": 80.0,
                "arrival_rate": 2.0,
                "asked": asked,
                "target": 100 + asked,
                "reason": "scale up: avg_response_time" if asked else "within thresholds",
            }
            for t, asked, response in rows
        ],
        0,
    )


def test_runs_that_ask_alike_at_every_evaluation_are_not_apart() -> None:
    live = table((60.3, -5, 0.1), (120.2, 0, 0.2), (180.4, 0, 4.0))
    replay = table((60.0, -5, 0.1), (120.0, 0, 0.3), (180.0, 0, 4.2))
    assert first_apart(live, replay, 30.0) is None
    assert "the same changes at every evaluation" in describe_apart(None, "live", "replay")


def test_the_first_evaluation_asked_differently_is_found_with_both_rows() -> None:
    live = table((60.0, 0, 0.1), (120.0, 0, 0.2), (180.0, 10, 5.29), (240.0, 10, 6.0))
    replay = table((60.0, 0, 0.1), (120.0, 0, 0.2), (180.0, 0, 4.94), (240.0, 10, 6.1))
    apart = first_apart(live, replay, 30.0)
    assert apart is not None and apart.time_s == 180.0
    assert apart.first is not None and apart.second is not None
    assert (apart.first["asked"], apart.second["asked"]) == (10, 0)
    text = describe_apart(apart, "live", "replay")
    assert "first apart at 180 s" in text
    assert "live: asked +10" in text and "replay: asked +0" in text
    assert "response s 5.29 / 4.94" in text
    # Through calibration.json and back: NaN as null, the same paragraph.
    again = ScalingApart.from_json(json.loads(json.dumps(apart.to_json(), allow_nan=False)))
    assert describe_apart(again, "live", "replay") == text


def test_an_alerts_forced_evaluation_beside_a_periodic_one_pairs_in_turn() -> None:
    # Both forced up at 720 s by an alert, then the periodic evaluation held (cooldown).
    live = table((660.0, 0, 1.0), (720.2, 10, 41.5), (720.2, 0, 41.5), (780.0, 0, 9.0))
    replay = table((660.0, 0, 1.0), (720.0, 10, 41.0), (720.0, 0, 41.0), (780.0, 0, 9.5))
    assert first_apart(live, replay, 30.0) is None
    # Live ran its tick before the alert's evaluation, the replay after: the same instant.
    ticked_first = table((660.0, 0, 1.0), (720.1, 0, 41.5), (720.3, 10, 41.5), (780.0, 0, 9.0))
    assert first_apart(ticked_first, replay, 30.0) is None
    # Only live's alert fired: its forced change has the replay's periodic hold as partner.
    alone = table((660.0, 0, 1.0), (720.0, 0, 41.0), (780.0, 0, 9.5))
    apart = first_apart(live, alone, 30.0)
    assert apart is not None and apart.time_s == 720.2
    assert apart.first is not None and apart.second is not None
    assert (apart.first["asked"], apart.second["asked"]) == (10, 0)
    # Shown is the change only one run asked for, not a hold beside it, whatever the order.
    apart = first_apart(ticked_first, alone, 30.0)
    assert apart is not None and apart.first is not None and apart.first["asked"] == 10


def test_a_change_one_run_made_where_the_other_did_not_evaluate_is_apart() -> None:
    # A leaderless spell: live made no evaluation at 120 s, its replay scaled up then.
    live = table((60.0, 0, 0.1), (180.0, 0, 0.2))
    replay = table((60.0, 0, 0.1), (120.0, 10, 5.5), (180.0, 0, 0.2))
    apart = first_apart(live, replay, 30.0)
    assert apart is not None and apart.time_s == 120.0
    assert apart.first is None and apart.second is not None
    assert "live: no evaluation then" in describe_apart(apart, "live", "replay")
    # A hold without a partner is no disagreement.
    quiet = table((60.0, 0, 0.1), (120.0, 0, 0.1), (180.0, 0, 0.2))
    assert first_apart(live, quiet, 30.0) is None
    assert first_apart(quiet, live, 30.0) is None


def test_evaluation_spacing_is_the_decision_interval() -> None:
    assert evaluation_spacing(table((60.0, 0, 0), (120.0, 0, 0), (120.0, 10, 0), (180, 0, 0))) == 60
    assert evaluation_spacing(table((60.0, 0, 0))) == 60.0


@pytest.fixture(scope="module")
def two_thresholds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A surge's queue of ~335 at 660 s (response 7.7 s): scaled up at the spec's thresholds
    (queue 100, 5 s), not at a queue of 400 and 10 s."""
    root = tmp_path_factory.mktemp("apart")
    common = [
        "duration=20m",
        "warmup=0",
        "scaling.policy=step",
        'workload.arrivals.bursts=[{"at": "10m", "duration": "10m", "factor": 5}]',
    ]
    dirs = []
    for name, queue, response_ms in (("low", 100, 5000), ("high", 400, 10000)):
        thresholds = [
            f"scaling.scale_up.threshold.queue_depth={queue}",
            f"scaling.scale_up.threshold.avg_response_time_ms={response_ms}",
        ]
        scenario = load_scenario(SCENARIOS / "burst.yaml", [*common, *thresholds])
        write_outputs(run(scenario), root / name, report=False)
        dirs.append(root / name)
    return dirs[0], dirs[1]


def test_orchestra_compare_names_the_first_evaluation_apart(
    two_thresholds: tuple[Path, Path],
) -> None:
    low, high = two_thresholds
    script = Path(sys.executable).parent / "orchestra"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sim"]
    proc = subprocess.run(
        [*command, "compare", str(low), str(high)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    evaluations = [pd.read_parquet(d / "scaling.parquet") for d in (low, high)]
    ups = [e.loc[e["asked"] > 0, "time_s"].min() for e in evaluations]
    assert ups[0] < ups[1]  # the low threshold scaled up first
    assert f"first apart at {ups[0]:.0f} s" in proc.stdout
    assert "first: asked +10" in proc.stdout and "second: asked +0" in proc.stdout
    row = evaluations[0][evaluations[0]["time_s"] == ups[0]].iloc[0]
    assert 100 <= row["queue_depth"] < 400  # between the two thresholds
    assert f"queue {row['queue_depth']:.3g} / " in proc.stdout


def test_a_metric_not_yet_delivered_is_null_in_the_rows_shown() -> None:
    live = table((60.0, 0, 0.1), (120.0, 10, float("nan")))
    replay = table((60.0, 0, 0.1), (120.0, 0, 0.2))
    apart = first_apart(live, replay, 30.0)
    assert apart is not None and apart.first is not None
    assert apart.first["avg_response_time_s"] is None
    json.dumps(apart.to_json(), allow_nan=False)  # strict JSON for calibration.json
    assert "response s - / 0.2" in describe_apart(apart, "live", "replay")
