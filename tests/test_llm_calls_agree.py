"""Both shells give each task the same model calls: one plan per task, drawn as it is submitted.

The live shell puts a task's calls in its submission (``sim.live.arrivals``);
the simulator gives them to the task as it arrives, a DAG job's nodes as the
job arrives (``sim.world.llm_task_plans.TaskPlans``, the one rule). Here the
simulator's records of every attempt that ran its calls are held against the
submissions live would send for the same scenario and seed: the same number
of calls and the same tokens, task by task — a retry included, since it runs
the task's calls again. At the spec's fleet the two had drawn in different
orders, and 46 % of the tasks made a different number of calls.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from support import SCENARIOS

from sim.live.arrivals import arrivals
from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

#: The LLM fleet scenario, short: its frontier limit binds at this hour's load too (throttled
#: calls wait, which must not change what they are), DAG jobs on, and errors, so some
#: tasks run their calls a second time.
OVERRIDES = [
    "duration=40m",
    "warmup=0s",
    "workload.dags.rate_per_min=3",
    "errors.probability=0.05",
]


def _submitted_calls(scenario: Any) -> dict[tuple[Any, ...], tuple[int, int, int, int]]:
    """Live's submissions: (calls, input, cached, output tokens) by what both shells drew."""
    out: dict[tuple[Any, ...], tuple[int, int, int, int]] = {}

    def totals(doc: dict[str, Any]) -> tuple[int, int, int, int]:
        calls = doc["llm"]["calls"]
        return (
            len(calls),
            sum(c["input_tokens"] for c in calls),
            sum(c["cached_tokens"] for c in calls),
            sum(c["output_tokens"] for c in calls),
        )

    for _, doc in arrivals(scenario):
        if doc["kind"] == "task" and "llm" in doc:
            out["task", doc["category"], round(doc["arrival_s"], 6)] = totals(doc)
        elif doc["kind"] == "job":
            for node in doc["nodes"]:
                if "llm" in node:
                    out["job", doc["job_id"], node["node"]] = totals(node)
    return out


def test_every_attempt_runs_the_calls_live_would_have_sent() -> None:
    scenario = load_scenario(SCENARIOS / "llm_rate_limits.yaml", OVERRIDES)
    result = run_scenario(scenario)
    assert result.llm is not None
    first = result.tasks.sort_values("attempt").drop_duplicates("task_id")
    keys = {
        int(t.task_id): (
            ("job", int(t.job_id), int(t.node))
            if int(t.job_id) >= 0
            else ("task", str(t.category), round(float(t.arrival_s), 6))
        )
        for t in first.itertuples()
    }
    ran = result.llm[result.llm["outcome"] == "completed"]
    ran = ran[ran["calls"] > 0]
    live = _submitted_calls(scenario)
    simulated = pd.DataFrame(
        {
            "key": ran["task_id"].astype(int).map(keys),
            "attempt": ran["attempt"].astype(int),
            "got": list(
                zip(
                    ran["calls"].astype(int),
                    ran["input_tokens"].astype(int),
                    ran["cached_tokens"].astype(int),
                    ran["output_tokens"].astype(int),
                    strict=True,
                )
            ),
        }
    )
    simulated["sent"] = simulated["key"].map(live)
    # Enough of each kind that a shuffled draw order could not pass by chance.
    assert len(simulated) > 2_000
    assert (simulated["key"].str[0] == "job").sum() > 100
    assert (simulated["attempt"] > 1).sum() > 20
    differ = simulated[simulated["got"] != simulated["sent"]]
    assert differ.empty, differ.head(10).to_string()
