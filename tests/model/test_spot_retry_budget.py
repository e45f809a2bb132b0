"""Work re-queued at a spot reclaim's deadline is not charged to the tasks' retry budgets.

A one-hour baseline with half the fleet on spot, a retry budget of 0 (any
lost attempt fails the task) and a 1-second notice, so agents still hold work
when the provider takes them: a reclaim of every spot agent at 20 minutes
must re-queue that work and fail none of it (before, each such task failed
for good with ``retries_exhausted``).
"""

from __future__ import annotations

import json
from typing import Any

from support import short_baseline

from sim.model.engine import Simulation
from sim.policies.dispatch.core import RETRIES_EXHAUSTED
from sim.scenario.schema import Scenario


def _with(scenario: Scenario, **sections: Any) -> Scenario:
    document = scenario.model_dump(mode="json")
    document.update(sections)
    return Scenario.model_validate(document)


def test_a_task_at_its_budget_survives_a_reclaim() -> None:
    base = short_baseline(hours=0.6)
    scenario = _with(
        base,
        purchase={"spot": {"share": 0.5, "notice": 1.0}},
        retry={**base.retry.model_dump(mode="json"), "budget": 0},
        chaos=[{"at": 1200.0, "spot_reclaim": {}}],
    )
    result = Simulation(scenario).run()
    events = result.events
    reclaimed = events[events["kind"] == "agent_reclaimed"]
    assert len(reclaimed) >= 5
    details = [json.loads(d) for d in reclaimed["detail"]]
    assert sum(d["redistributed"] for d in details) > 0  # work held at the deadline: re-queued
    assert all(d["failed_for_good"] == 0 for d in details)
    tasks = result.tasks
    assert not (tasks["reason"] == RETRIES_EXHAUSTED).any()
    # with a budget of 0, a second attempt exists only because the reclaim did not count
    requeued = set(tasks.loc[tasks["reason"] == "spot_reclaim", "task_id"])
    second = tasks[tasks["task_id"].isin(requeued) & (tasks["attempt"] == 2)]
    assert len(second) == len(requeued) > 0
    assert (second["outcome"] == "completed").sum() >= len(requeued) - 5  # in flight at the end
    assert result.counts["lost"] == 0
    assert result.counts["failed"] == 0
