"""A dead agent's tasks past the retry budget fail for good, and the records say why."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import HERE, run_live

from sim.scenario.load import load_scenario


def test_tasks_lost_with_their_agent_fail_for_good_when_the_budget_is_spent(
    tmp_path: Path,
) -> None:
    """evacuate.yaml kills zone A's whole pool mid-task; with budget 0 nothing goes again."""
    scenario = load_scenario(HERE / "evacuate.yaml", ["retry.budget=0"])
    live = run_live(scenario, tmp_path, time_scale=30.0)
    events, tasks, counts = live.result.events, live.result.tasks, live.summary["tasks"]
    victims = set(events.loc[events["kind"] == "agent_failed", "subject"])
    assert len(victims) == 2
    detected = events[(events["kind"] == "agent_detected") & events["subject"].isin(victims)]
    held = sum(int(json.loads(str(d))["redistributed"]) for d in detected["detail"])
    assert held >= 1  # the overloaded pool's agents held work when they died

    failed = tasks[tasks["outcome"] == "failed"]
    assert counts["failed"] == len(failed) == held
    assert set(failed["reason"]) == {"retries_exhausted"}
    # Failed for good: never completed anywhere afterwards, and every other task completed,
    # by the scenario's end or while the run drained (reported apart, as the contract says).
    done = tasks[tasks["outcome"] == "completed"]
    drained = live.drained
    assert drained is not None
    assert (drained["outcome"] == "completed").all()
    finished = set(done["task_id"]) | set(drained["task_id"])
    assert not set(failed["task_id"]) & finished
    assert counts["completed"] + len(drained) + counts["failed"] == counts["submitted"]
    assert live.summary["drained"]["unfinished"] == 0
