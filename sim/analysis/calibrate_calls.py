"""Calibration of a model call: what each call costs live beyond the model's latency.

Scenario: an LLM task's agent asks the coordinator's gate for every call
(``orch.llm.acquire``, a broker round trip) and tells it when the call is
done; the simulator's call takes the model's latency alone (time to first
token, then the output at the inter-token pace). So live's attempts run
longer than their replay by a fixed cost per call: at the spec's fleet on
``llm_rate_limits.yaml`` (x10), 0.095 scenario seconds a call, an attempt of
eight calls 0.85 s longer. ``orchestra calibrate`` pairs each attempt of
live with the same task's in the replay (the same calls: one plan per task,
drawn as it is submitted) and sets every model's ``ttft`` — paid once per
call — that much higher.
"""

from __future__ import annotations

import math

import pandas as pd

from sim.analysis.calibrate_dispatch import far_out_fence
from sim.analysis.task_pairs import pairing_keys


def _served(tasks: pd.DataFrame, llm: pd.DataFrame) -> pd.DataFrame:
    """First attempts that completed their calls unthrottled: key, calls and service."""
    first = tasks[(tasks["attempt"] == 1) & (tasks["outcome"] == "completed")]
    calls = llm[(llm["attempt"] == 1) & (llm["outcome"] == "completed") & (llm["throttled"] == 0)]
    served = first[["task_id", "service_s"]].merge(calls[["task_id", "calls"]], on="task_id")
    keys = pairing_keys(tasks)
    return served.assign(key=served["task_id"].astype(int).map(keys)).set_index("key")


def call_overhead(
    live_tasks: pd.DataFrame,
    live_llm: pd.DataFrame | None,
    replay_tasks: pd.DataFrame,
    replay_llm: pd.DataFrame | None,
) -> tuple[float, int]:
    """Live's service beyond the replay's per model call (ratio of sums), and the calls counted.

    Pairs the same task's first attempt in both, when both completed with the
    same number of calls and neither was throttled (a throttle's backoff is
    the provider's, and the two runs may meet it differently), and leaves out
    the attempts a stall of live's host caught (beyond the far-out fence of
    the cost per call). NaN with none.
    """
    if live_llm is None or replay_llm is None or live_llm.empty or replay_llm.empty:
        return math.nan, 0
    both = _served(live_tasks, live_llm).merge(
        _served(replay_tasks, replay_llm),
        left_index=True,
        right_index=True,
        suffixes=("_live", "_replay"),
    )
    both = both[both["calls_live"] == both["calls_replay"]]
    if both.empty:
        return math.nan, 0
    per_call = (both["service_s_live"] - both["service_s_replay"]) / both["calls_live"]
    both = both[per_call <= far_out_fence(per_call.to_numpy(dtype=float))]  # not in a stall
    calls = int(both["calls_live"].sum())
    if calls == 0:
        return math.nan, 0
    extra = float((both["service_s_live"] - both["service_s_replay"]).sum())
    return extra / calls, calls
