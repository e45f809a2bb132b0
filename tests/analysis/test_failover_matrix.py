"""The failure matrix: its unavailability measure, its trials, its files and its bad input.

Small N throughout (the spec's N = 50 matrix is measured by the command, not
in a test); every run is the baseline fleet shortened by the trial plan.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import SCENARIOS

from sim.analysis.executors import SerialExecutor, local_dask_cluster
from sim.analysis.failover_matrix import run_matrix
from sim.analysis.failover_modes import MODES, TrialPlan, parse_modes
from sim.analysis.failover_trial import longest_unavailable, run_trial
from sim.cli import main
from sim.scenario.load import load_scenario

BASELINE = SCENARIOS / "baseline_200.yaml"


def _tasks(rows: list[tuple[int, int, float, float, float, float]]) -> pd.DataFrame:
    """(task, attempt, arrival, dispatch, queue, end) rows as task records."""
    columns = ["task_id", "attempt", "arrival_s", "dispatch_s", "queue_s", "end_s"]
    return pd.DataFrame(rows, columns=columns)


def test_unavailability_is_the_longest_wait_no_dispatch_cut() -> None:
    # Task 1 waits 10 -> 20; task 2 is dispatched at 14 (cuts the wait); task 3
    # waits 30 -> 33. Longest uncut stretch: 14 -> 20 = 6 s.
    tasks = _tasks(
        [
            (1, 1, 10.0, 20.0, 0.0, 25.0),
            (2, 1, 13.9, 14.0, 0.0, 16.0),
            (3, 1, 30.0, 33.0, 0.0, 40.0),
        ]
    )
    assert longest_unavailable(tasks, 0.0, 100.0) == pytest.approx(6.0)
    # Clipped to the window: from 17 on, only 17 -> 20 and 30 -> 33 remain.
    assert longest_unavailable(tasks, 17.0, 100.0) == pytest.approx(3.0)


def test_waiting_for_capacity_or_in_service_is_not_unavailability() -> None:
    # Task 1 is routed at once but queues 50 s for a free agent; task 2's first
    # attempt serves 10 -> 40, its agent is declared dead at 40, and the retry is
    # dispatched at 42: it waited 2 s, not 32.
    tasks = _tasks(
        [
            (1, 1, 0.0, 50.0, 50.0, 60.0),
            (2, 1, 10.0, 10.0, 0.0, 40.0),
            (2, 2, 10.0, 42.0, 0.0, 50.0),
        ]
    )
    assert longest_unavailable(tasks, 0.0, 100.0) == pytest.approx(2.0)


def test_a_task_never_dispatched_waits_to_the_window_end() -> None:
    tasks = _tasks([(1, 1, 90.0, math.nan, math.nan, math.nan)])
    assert longest_unavailable(tasks, 0.0, 100.0) == pytest.approx(10.0)
    assert longest_unavailable(_tasks([]), 0.0, 100.0) == 0.0


def test_trials_share_their_injection_instant_across_modes_and_span_the_timers() -> None:
    scenario = load_scenario(BASELINE)
    plan = TrialPlan.of(scenario)
    # A health check (10 s) + a heartbeat (50 ms) + the longest election timeout (300 ms).
    assert plan.span_s == pytest.approx(10.35)
    instants = np.array([plan.inject_at(k) for k in range(200)]) - plan.warmup_s - plan.window_s
    assert instants.min() >= 0 and instants.max() < plan.span_s
    # Uniform: 200 draws leave no tenth of the span empty (chance ~ 10 x 0.9^200).
    assert len(set((instants / plan.span_s * 10).astype(int))) == 10
    assert plan.inject_at(3) == TrialPlan.of(scenario).inject_at(3)


def test_a_leader_crash_trial_is_detected_within_the_election_timeout() -> None:
    scenario = load_scenario(BASELINE)
    document = scenario.model_dump(mode="json", by_alias=True)
    plan = TrialPlan.of(scenario)
    row = run_trial(document, "chief_leader_crash", "A", plan, 0)
    assert "error" not in row
    assert 0.0 < row["detection_s"] <= 0.300  # a follower's randomised timeout
    assert row["elections"] == 1 and row["term_change"] == 1
    assert row["lost"] == 0
    # The same trial again: bit for bit.
    again = run_trial(document, "chief_leader_crash", "A", plan, 0)
    assert again["events_sha256"] == row["events_sha256"]


def test_a_small_matrix_writes_its_files_and_highlights_the_worst(tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    code = main(
        [
            "failover",
            str(BASELINE),
            "--trials",
            "2",
            "--modes",
            "agent_crash,chief_leader_crash",
            "--workers",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    matrix = json.loads((out / "failover.json").read_text())
    assert list(matrix["modes"]) == ["agent_crash", "chief_leader_crash"]
    crash = matrix["modes"]["agent_crash"]
    assert crash["trials"] == 2 and crash["lost_total"] == 0
    assert crash["detection_max_s"] <= crash["detection_bound_s"] == 32.0
    trials = pd.read_parquet(out / "trials.parquet")
    # Two trials of each mode plus the two control trials (nothing injected).
    assert len(trials) == 6 and set(trials["trial"]) == {0, 1}
    assert (trials["mode"] == "control").sum() == 2
    assert matrix["control"]["trials"] == 2
    # An agent crash leaves the fleet's p99 wait near the control's (same arrivals).
    assert 0.5 < crash["p99_vs_control_p50"] < 2.0
    page = (out / "failover.html").read_text()
    assert "<table>" in page and 'class="worst"' in page and "data:image/png;base64," in page
    # The distribution is interactive too: plotly.js inline, every trial a point to hover.
    assert "Plotly.newPlot" in page and "<script src" not in page
    data = page.split('id="failover-distribution-data">', 1)[1].split("</script>", 1)[0]
    figure = json.loads(data)
    detection = next(t for t in figure["data"] if t["name"] == "detection (s)")
    assert sorted(set(detection["y"])) == ["agent_crash", "chief_leader_crash"]
    assert len(detection["x"]) == len(detection["customdata"]) == 4  # 2 trials x 2 modes
    worst = next(t for t in figure["data"] if t["name"] == "worst detection (s)")
    assert max(worst["x"]) == max(detection["x"])


def test_the_executor_does_not_change_the_matrix(tmp_path: Path) -> None:
    """Serial, two local processes, and a real Dask cluster (--executor dask): one matrix."""
    scenario = load_scenario(BASELINE)
    modes = parse_modes(["gray_agent"])
    serial = run_matrix(scenario, modes, 2, executor=SerialExecutor())
    pooled = run_matrix(scenario, modes, 2, workers=2)
    pd.testing.assert_frame_equal(serial.trials, pooled.trials)
    out = tmp_path / "dask"
    with local_dask_cluster(workers=2, threads=1, logs=tmp_path) as address:
        argv = ["failover", str(BASELINE), "--trials", "2", "--modes", "gray_agent"]
        argv += ["--executor", "dask", "--dask", address, "--out", str(out), "--quiet"]
        assert main(argv) == 0
    on_dask = pd.read_parquet(out / "trials.parquet")
    pd.testing.assert_frame_equal(serial.trials, on_dask, check_dtype=False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--modes", "meteor_strike"], "--modes: unknown mode 'meteor_strike'"),
        (["--trials", "0"], "--trials: expected at least 1, got 0"),
        (["--executor", "dask"], "--executor dask: expected --dask ADDRESS"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["failover", str(BASELINE), "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert code == 1
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_every_mode_is_a_valid_chaos_entry() -> None:
    scenario = load_scenario(BASELINE)
    for mode in MODES.values():
        event = {"at": 1000.0, **mode.chaos(scenario.topology.zones[0].name)}
        load_scenario(BASELINE, [f"chaos=[{json.dumps(event)}]"])
