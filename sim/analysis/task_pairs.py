"""Task by task: each task of a live run beside the same task in its replay.

Scenario: calibration compares live and its replay figure by figure, but
two runs can agree on every percentile and still treat each task
differently. The replay serves the very tasks live served — the same
arrivals, the same drawn work — so each can be paired with itself and its
fate compared: how it ended, in which zone, after how many attempts, and how
long it took from arrival to its end.

The pairing key is what both shells drew, not the task id: ids are numbered
as tasks reach the coordinator, and a DAG node reaches it when its parents
finish, which is not the same instant in two runs, so the counters part at
the first release. An independent task is its category and arrival second
(the workload stream's draw); a DAG node is its job and node.

Some tasks have no partner, and are counted as such: live's table keeps the
DAG nodes released while it drains after the run's end, which the
simulator's, ending with the run, does not hold; a task that arrived in one
run's last instants may not have reached the other's coordinator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Arrival seconds are compared to the microsecond (the stream's draw, written by both).
KEY_DECIMALS = 6
#: A task's latency this close in both runs counts as the same.
CLOSE_S = 1.0


@dataclass(frozen=True)
class TaskPairs:
    """How the tasks of two runs compare, each with itself (see the module docstring)."""

    live: int
    replay: int
    paired: int
    #: Shares of the pairs: the same final outcome, the same final zone, as many attempts.
    same_outcome: float
    same_zone: float
    same_attempts: float
    #: Over the pairs completed in both: |replay - live| latency, its percentiles (s).
    latency_delta_p50_s: float
    latency_delta_p90_s: float
    latency_delta_p99_s: float
    #: Mean replay - live latency (s): positive, the replay is slower.
    latency_bias_s: float
    #: Share of the completed pairs whose latencies are within CLOSE_S of each other.
    latency_close: float


def task_fates(tasks: pd.DataFrame) -> pd.DataFrame:
    """One row per task, indexed by its pairing key: outcome, zone, attempts and latency.

    A run of several replications pairs replication with replication (each
    has its own streams; a what-if of the same seed shares them).
    """
    task = ["replication", "task_id"] if "replication" in tasks.columns else ["task_id"]
    ordered = tasks.sort_values([*task, "attempt"], kind="stable")
    # One row per task in both, in the same order (sorted by task): aligned by position.
    first = ordered.drop_duplicates(task, keep="first").reset_index(drop=True)
    last = ordered.drop_duplicates(task, keep="last").reset_index(drop=True)
    key = _keys(first)
    fates = pd.DataFrame(
        {
            "key": key,
            "outcome": last["outcome"].astype(str),
            "zone": last["zone"].astype(str),
            "attempts": last["attempt"].astype(int),
            "latency_s": last["latency_s"].astype(float),
        }
    )
    return fates.drop_duplicates("key", keep=False).set_index("key")


def pairing_keys(tasks: pd.DataFrame) -> pd.Series:
    """Each task id's pairing key (one replication's table): what both shells drew for it."""
    first = tasks.sort_values(["task_id", "attempt"], kind="stable").drop_duplicates("task_id")
    return pd.Series(_keys(first).to_numpy(), index=first["task_id"].astype(int).to_numpy())


def _keys(first: pd.DataFrame) -> pd.Series:
    """The pairing key of each row of *first* (a task's first attempt), as in the docstring."""
    dag = first["job_id"].astype(int) >= 0
    arrival = first["arrival_s"].round(KEY_DECIMALS).map(repr)
    independent = "a:" + first["category"].astype(str) + ":" + arrival
    node = "j:" + first["job_id"].astype(int).astype(str) + ":" + first["node"].astype(str)
    key = independent.where(~dag, node)
    if "replication" in first.columns:
        key = "r" + first["replication"].astype(int).astype(str) + ":" + key
    return key


def paired_fates(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Each task of both task tables on one row: its key, both fates (``_live`` for the
    first, ``_replay`` for the second) and ``latency_delta_s`` (second - first)."""
    return _merged(task_fates(first), task_fates(second)).reset_index()


def _merged(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    both = a.merge(b, left_index=True, right_index=True, suffixes=("_live", "_replay"))
    both["latency_delta_s"] = both["latency_s_replay"] - both["latency_s_live"]
    return both


def pair_tasks(live: pd.DataFrame, replay: pd.DataFrame) -> TaskPairs:
    """Pair every task of *live* with the same task of *replay* and compare their fates."""
    a, b = task_fates(live), task_fates(replay)
    both = _merged(a, b)
    done = both[(both["outcome_live"] == "completed") & (both["outcome_replay"] == "completed")]
    delta = done["latency_delta_s"].to_numpy(dtype=float)
    gap = np.abs(delta)

    def share(column: str) -> float:
        same = both[f"{column}_live"] == both[f"{column}_replay"]
        return float(same.mean()) if len(both) else math.nan

    def quantile(q: float) -> float:
        return float(np.quantile(gap, q)) if len(gap) else math.nan

    return TaskPairs(
        live=len(a),
        replay=len(b),
        paired=len(both),
        same_outcome=share("outcome"),
        same_zone=share("zone"),
        same_attempts=share("attempts"),
        latency_delta_p50_s=quantile(0.5),
        latency_delta_p90_s=quantile(0.9),
        latency_delta_p99_s=quantile(0.99),
        latency_bias_s=float(delta.mean()) if len(delta) else math.nan,
        latency_close=float((gap <= CLOSE_S).mean()) if len(gap) else math.nan,
    )


def describe(pairs: TaskPairs) -> str:
    """One line for a console: how many paired, and how close their fates.

    Read back from ``calibration.json`` a figure nothing measured is None (JSON
    has no NaN): a window in which no task completed in both runs says so.
    """
    head = (
        f"{pairs.paired:,} tasks paired ({pairs.live - pairs.paired:,} live only, "
        f"{pairs.replay - pairs.paired:,} replay only): "
        f"same outcome {_share(pairs.same_outcome)}, zone {_share(pairs.same_zone)}, attempts "
        f"{_share(pairs.same_attempts)}; "
    )
    if not _measured(pairs.latency_close):
        return head + "no task completed in both, so no latency to compare"
    return head + (
        f"latency |replay - live| "
        f"p50 {pairs.latency_delta_p50_s:.3g} s, p99 {pairs.latency_delta_p99_s:.3g} s, "
        f"within {CLOSE_S:g} s {pairs.latency_close:.1%}"
    )


def _measured(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _share(value: float | None) -> str:
    return f"{value:.1%}" if _measured(value) else "-"
