"""Task by task: pairing each live task with itself in a replay, by what both drew."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pandas as pd
import pytest

from sim.analysis.task_pairs import TaskPairs, describe, pair_tasks, task_fates

COLUMNS = ("task_id", "job_id", "node", "attempt", "category", "zone", "outcome", "arrival_s")


def _tasks(rows: list[tuple[object, ...]], latencies: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["latency_s"] = latencies
    return frame


def test_tasks_pair_by_what_both_drew_not_by_their_ids() -> None:
    """The replay numbered a DAG node before an arrival, live after: the ids part, the
    keys do not. A retried task is one task, its fate its last attempt's."""
    live = _tasks(
        [
            (1, -1, -1, 1, "CodeGen", "A", "completed", 10.0),
            (2, -1, -1, 1, "Review", "B", "retried", 11.5),
            (2, -1, -1, 2, "Review", "C", "completed", 11.5),
            (3, 4, 0, 1, "Test", "A", "completed", 12.0),
            (4, 4, 1, 1, "Test", "A", "in_flight", 30.0),  # released while live drained
        ],
        [5.0, math.nan, 40.0, 8.0, math.nan],
    )
    replay = _tasks(
        [
            (1, -1, -1, 1, "CodeGen", "A", "completed", 10.0),
            (2, 4, 0, 1, "Test", "A", "completed", 12.5),
            (3, -1, -1, 1, "Review", "B", "retried", 11.5),
            (3, -1, -1, 2, "Review", "B", "completed", 11.5),
        ],
        [5.5, 9.0, math.nan, 38.0],
    )
    fates = task_fates(live)
    assert fates.loc["j:4:0", "latency_s"] == 8.0 and fates.loc["a:Review:11.5", "attempts"] == 2
    pairs = pair_tasks(live, replay)
    assert (pairs.live, pairs.replay, pairs.paired) == (4, 3, 3)
    assert pairs.same_outcome == 1.0 and pairs.same_attempts == 1.0
    assert pairs.same_zone == pytest.approx(2 / 3)  # the retry went to C live, stayed in B
    # |replay - live| latency: 0.5, 2.0 and 1.0 s; the replay 0.5 - 2 + 1 = -0.5 s in all.
    assert pairs.latency_delta_p50_s == pytest.approx(1.0)
    assert pairs.latency_bias_s == pytest.approx(-0.5 / 3)
    assert pairs.latency_close == pytest.approx(2 / 3)
    assert "3 tasks paired (1 live only, 0 replay only)" in describe(pairs)


def test_no_pairs_is_said_as_such_not_as_zeros() -> None:
    live = _tasks([(1, -1, -1, 1, "CodeGen", "A", "completed", 1.0)], [2.0])
    replay = _tasks([(1, -1, -1, 1, "CodeGen", "A", "completed", 9.0)], [2.0])
    pairs = pair_tasks(live, replay)  # (the replay's task arrived at another second)
    assert (pairs.live, pairs.replay, pairs.paired) == (1, 1, 0)
    shares = (pairs.same_outcome, pairs.latency_delta_p99_s, pairs.latency_close)
    assert all(math.isnan(value) for value in shares)
    said = describe(pairs)
    assert said.startswith("0 tasks paired (1 live only, 1 replay only): same outcome -")
    assert "no task completed in both" in said and "nan" not in said
    # Read back from calibration.json, where NaN was written as null: the same line.
    read_back = TaskPairs(**json.loads(json.dumps(asdict(pairs)).replace("NaN", "null")))
    assert describe(read_back) == said


def test_replications_pair_with_their_own() -> None:
    """Two replications of one run reuse task ids; each pairs with its namesake only."""
    rows = [
        (1, -1, -1, 1, "CodeGen", "A", "completed", 10.0),
        (1, -1, -1, 1, "CodeGen", "A", "completed", 10.0),
    ]
    live = _tasks(rows, [5.0, 7.0])
    live["replication"] = [0, 1]
    replay = live.assign(latency_s=[5.0, 9.0])
    pairs = pair_tasks(live, replay)
    assert (pairs.live, pairs.paired) == (2, 2)
    assert pairs.latency_delta_p50_s == pytest.approx(1.0)  # |0| and |2|: replication-wise
