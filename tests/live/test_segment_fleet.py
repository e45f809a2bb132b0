"""A record window replays on the fleet it had, placed where it was (``sim.live.segment_fleet``).

Scenario (the one a loaded CI machine hit): the service's first window closed
when one agent had reported; the other three joined in the next window, and
one of them was killed in it. The next window's replay was dealt one
specialist by the nominal shares — a CodeGen agent — and the simulator
refused the window's Review work. Each story below builds a window's
scenario, runs it in the simulator, and checks the fleet and the work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import HERE

from sim.live.segment_fleet import (
    Roster,
    join_records,
    self_joins,
    with_window_fleet,
    work_mix,
)
from sim.live.segments import Window, trace_frame, window_scenario
from sim.metrics.store import write_parquet
from sim.model.engine import run_scenario
from sim.replay import chaos_from_events
from sim.scenario.load import load_scenario
from sim.scenario.schema import ChaosEvent
from sim.world.topology import build_world, check_staffed

SMALL = load_scenario(HERE / "small.yaml")
WINDOW = Window(6.0, 36.0)


def join(at: float, agent: str, zone: str, category: str) -> dict[str, Any]:
    detail = json.dumps({"category": category, "zone": zone})
    return {"time_s": at, "kind": "agent_joined", "subject": agent, "detail": detail}


def tasks(pools: list[tuple[str, str]], count: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "task",
            "task_id": n,
            "category": pools[n % len(pools)][1],
            "zone": pools[n % len(pools)][0],
            "work_s": 0.5,
            "arrival_s": 0.2 * n,
        }
        for n in range(count)
    ]


def replay(
    tmp_path: Path,
    submits: list[dict[str, Any]],
    fleet: Roster,
    joins: list[ChaosEvent] | None = None,
) -> pd.DataFrame:
    """Run the window's scenario; its tasks."""
    trace = tmp_path / "trace.parquet"
    write_parquet(trace, trace_frame(submits))
    scenario = window_scenario(SMALL, WINDOW, submits, fleet, trace, joins)
    world = build_world(scenario, np.random.default_rng(0))
    check_staffed(scenario, world)
    return run_scenario(scenario, 0).tasks


def completed(tasks: pd.DataFrame) -> dict[str, int]:
    """Tasks completed by zone and category of the agent."""
    done = tasks[tasks["outcome"] == "completed"]
    return {f"{z}/{c}": int(n) for (z, c), n in done.groupby(["zone", "category"]).size().items()}


def test_agents_that_joined_the_window_on_their_own_join_its_replay_when_they_did(
    tmp_path: Path,
) -> None:
    """Present at the start: in the fleet from second 0. Joined in the window: a chaos join
    at its second, so the work that arrived before found no agent of its pool yet. Asked
    for by the coordinator (a scale-up): the replay's own scaler asks again, not a join."""
    roster = {"ext-A-CodeGen": ("A", "CodeGen")}  # all the first window saw
    events = [
        join(2.0, "ext-A-Review", "A", "Review"),
        join(2.5, "ext-B-CodeGen", "B", "CodeGen"),
        join(3.0, "ext-B-Review", "B", "Review"),
        {"time_s": 3.5, "kind": "agent_detected", "subject": "ext-B-Review", "detail": "{}"},
        join(9.0, "ext-A-CodeGen", "A", "CodeGen"),  # a rejoin: no join of its own
        {"time_s": 4.0, "kind": "agent_requested", "subject": "A-CodeGen-s1", "detail": "{}"},
        join(8.0, "A-CodeGen-s1", "A", "CodeGen"),  # the scaler's: not a join
    ]
    joins = self_joins(roster, events)
    assert [(j.at, j.join and j.join.agent) for j in joins] == [
        (2.0, "ext-A-Review"),
        (2.5, "ext-B-CodeGen"),
        (3.0, "ext-B-Review"),
    ]
    pools = [("A", "CodeGen"), ("A", "Review"), ("B", "CodeGen"), ("B", "Review")]
    submits = tasks(pools, 40)  # one every 0.2 s from 0
    scenario = window_scenario(SMALL, WINDOW, submits, roster, Path("trace.parquet"), joins)
    world = build_world(scenario, np.random.default_rng(0))
    assert [(s.zone, s.category) for s in world.specialists] == [("A", "CodeGen")]
    assert scenario.topology.specialists == 1 and scenario.duration == 30.0
    done = replay(tmp_path, submits, roster, joins)
    assert sum(completed(done).values()) == 40
    # Nothing of Review started before the first Review agent joined.
    review = done[(done["category"] == "Review") & (done["outcome"] == "completed")]
    assert review["start_s"].min() >= 2.0
    first = review.sort_values("arrival_s").iloc[0]
    assert first["arrival_s"] < 1.0 and first["wait_s"] > 1.0  # it waited for the join
    # The joins are the events table's chaos records too, which a replay plays again.
    records = join_records(joins)
    assert chaos_from_events(pd.DataFrame(records)) == joins


def test_a_zone_without_agents_replays_empty_and_its_work_is_served_elsewhere(
    tmp_path: Path,
) -> None:
    fleet = {"a1": ("A", "CodeGen"), "a2": ("A", "CodeGen"), "a3": ("A", "Review")}
    submits = tasks([("B", "CodeGen"), ("B", "Review"), ("A", "Review")], 30)
    scenario = window_scenario(SMALL, WINDOW, submits, fleet)
    world = build_world(scenario, np.random.default_rng(0))
    assert [s.zone for s in world.specialists] == ["A", "A", "A"]
    assert [z.specialists for z in scenario.topology.zones] == [3, 0]
    assert scenario.topology.categories == {"CodeGen": 2.0, "Review": 1.0}
    assert sum(completed(replay(tmp_path, submits, fleet)).values()) == 30


def test_the_window_s_mix_is_its_work_so_a_category_without_work_needs_no_agent(
    tmp_path: Path,
) -> None:
    fleet = {"a1": ("A", "CodeGen"), "b1": ("B", "CodeGen")}
    submits = tasks([("A", "CodeGen"), ("B", "CodeGen")], 20)
    job = {"kind": "job", "job_id": 0, "zone": "A", "arrival_s": 1.0, "nodes": [], "edges": []}
    job["nodes"] = [{"node": 0, "task_id": 99, "category": "CodeGen", "work_s": 0.1}]
    assert work_mix([*submits, job], ["CodeGen", "Review"]) == {"CodeGen": 21.0, "Review": 0.0}
    scenario = window_scenario(SMALL, WINDOW, submits, fleet)
    assert scenario.workload.mix == {"CodeGen": 20.0, "Review": 0.0}
    assert scenario.topology.categories == SMALL.topology.categories  # shares stay positive
    assert sum(completed(replay(tmp_path, submits, fleet)).values()) == 20


def test_work_no_agent_of_the_window_could_take_is_refused_in_one_line() -> None:
    fleet = {"a1": ("A", "CodeGen")}
    submits = tasks([("A", "Review")], 5)
    scenario = window_scenario(SMALL, WINDOW, submits, fleet)
    with pytest.raises(ValueError, match=r"^workload\.mix\.Review: .* no zone has a Review"):
        check_staffed(scenario, build_world(scenario, np.random.default_rng(0)))


def test_agents_the_scenario_does_not_know_and_an_empty_fleet_change_nothing() -> None:
    assert with_window_fleet(SMALL, {}) == SMALL
    # Nobody at the start but a join: an empty fleet from second 0, the join its first agent.
    [joined] = self_joins({}, [join(5.0, "x", "A", "CodeGen")])
    alone = with_window_fleet(SMALL, {}, [joined])
    assert alone.topology.specialists == 0 and alone.chaos == [joined]
    assert with_window_fleet(SMALL, {"x": ("Z", "CodeGen"), "y": ("A", "Poetry")}) == SMALL
    assert work_mix([], ["CodeGen", "Review"]) == {}
    scenario = window_scenario(SMALL, WINDOW, [], {})
    assert scenario.topology == SMALL.topology and scenario.workload.mix == SMALL.workload.mix
