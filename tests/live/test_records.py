"""The live record contract, from hand-written stream documents (no broker needed).

Each test feeds ``build_records`` the documents a live run leaves on its
streams and checks one clause of the contract: the window ends at the
duration, what ran on is in flight there and drained apart, attempts count
from 1, a retried attempt ends when the task was assigned again, a DAG node
arrives when released, agents are present until they leave or are declared
dead, one row per incarnation.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest
from conftest import small

from sim.live.records import build_records
from sim.metrics.summary import summarize
from sim.world.streams import Streams
from sim.world.topology import build_world

END = 100.0


def task(task_id: int, arrival: float, work: float = 5.0) -> dict[str, Any]:
    return {
        "kind": "task",
        "task_id": task_id,
        "category": "CodeGen",
        "zone": "A",
        "arrival_s": arrival,
        "work_s": work,
    }


def ran(
    task_id: int, attempt: int, agent: str, routed: float, start: float, end: float | None
) -> list[dict[str, Any]]:
    """The result documents of one attempt: routing (first only), assignment, start, end."""
    docs: list[dict[str, Any]] = []
    if attempt == 1:
        docs.append({"kind": "dispatch", "task_id": task_id, "zone": "A", "dispatch_s": routed})
    base = {"task_id": task_id, "attempt": attempt, "agent": agent, "zone": "A"}
    docs.append({"kind": "assign", **base, "assign_s": routed})
    docs.append({"kind": "start", **base, "start_s": start})
    if end is not None:
        docs.append({"kind": "end", **base, "outcome": "completed", "start_s": start, "end_s": end})
    return docs


def event(time_s: float, kind: str, subject: str, **detail: Any) -> dict[str, Any]:
    return {"time_s": time_s, "kind": kind, "subject": subject, "detail": json.dumps(detail)}


def records(submits: list[dict[str, Any]], results: list[dict[str, Any]], events=()):  # type: ignore[no-untyped-def]
    scenario = small(f"duration={END}", "topology.specialists=4")
    world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
    return scenario, world, build_records(scenario, world, 10.0, END, submits, results, events, [])


def test_work_that_ends_after_the_duration_is_in_flight_there_and_drained_apart() -> None:
    agent = "A-CodeGen-001"
    results = ran(0, 1, agent, 10.0, 10.0, 20.0) + ran(1, 1, agent, 90.0, 90.0, 130.0)
    scenario, _, built = records([task(0, 10.0), task(1, 90.0)], results)
    tasks = built.tasks.set_index("task_id")
    assert tasks.loc[0, "outcome"] == "completed" and tasks.loc[0, "end_s"] == 20.0
    assert tasks.loc[1, "outcome"] == "in_flight"
    assert math.isnan(tasks.loc[1, "end_s"]) and math.isnan(tasks.loc[1, "complete_s"])
    assert tasks.loc[1, "start_s"] == 90.0 and tasks.loc[1, "service_s"] == END - 90.0
    assert built.counts["completed"] == 1 and built.counts["in_flight"] == 1
    assert list(built.drained["task_id"]) == [1] and list(built.drained["complete_s"]) == [130.0]
    summary = summarize(
        scenario,
        built.tasks,
        built.metrics,
        built.events,
        built.agents,
        built.jobs,
        built.counts,
        "",
        drained=built.drained,
    )
    assert summary["throughput_per_min"] == pytest.approx(1 * 60.0 / END)
    assert summary["drained"]["tasks"] == 1 and summary["drained"]["complete_s"] == [130.0]
    # Busy slot time stops at the duration: 10 s of task 0, 10 s of task 1 before the end.
    slots = (built.agents["role"] == "specialist").sum()
    assert summary["utilization"] == pytest.approx(20.0 / (slots * END))


def test_attempts_count_from_one_and_a_retried_attempt_ends_when_placed_again() -> None:
    first = ran(0, 1, "A-CodeGen-001", 5.0, 5.0, None)  # its agent died serving it
    results = [*first, *ran(0, 2, "A-CodeGen-002", 40.0, 41.0, 50.0)]
    _, _, built = records([task(0, 5.0)], results)
    rows = built.tasks.sort_values("attempt")
    assert list(rows["attempt"]) == [1, 2]
    assert list(rows["outcome"]) == ["retried", "completed"]
    retried = rows.iloc[0]
    assert retried["end_s"] == 40.0 and retried["service_s"] == 35.0
    assert rows.iloc[1]["dispatch_s"] == 40.0  # its own assignment, not the first routing
    assert built.counts["retried"] == 1


def test_a_task_never_assigned_by_the_end_waited_in_its_queue_all_along() -> None:
    results = [{"kind": "dispatch", "task_id": 0, "zone": "A", "dispatch_s": 60.0}]
    _, _, built = records([task(0, 60.0)], results)
    row = built.tasks.iloc[0]
    assert row["outcome"] == "in_flight" and row["attempt"] == 1
    assert math.isnan(row["dispatch_s"]) and math.isnan(row["start_s"])
    assert row["queue_s"] == END - 60.0
    assert built.unfinished == 1


def test_a_dag_node_arrives_when_released_and_an_unreleased_one_has_no_row() -> None:
    job = {
        "kind": "job",
        "job_id": 0,
        "shape": "pipeline",
        "zone": "A",
        "arrival_s": 10.0,
        "nodes": [
            {"task_id": 0, "node": 0, "category": "CodeGen", "work_s": 5.0},
            {"task_id": 1, "node": 1, "category": "CodeGen", "work_s": 5.0},
            {"task_id": 2, "node": 2, "category": "CodeGen", "work_s": 5.0},
        ],
        "edges": [[0, 1, 1.0], [1, 2, 1.0]],
    }
    agent = "A-CodeGen-001"
    results = ran(0, 1, agent, 10.0, 10.0, 30.0) + ran(1, 1, agent, 31.0, 31.0, 200.0)
    # Node 2 is released while the run drains, after the window (live's table had held
    # it as an in-flight task arriving at 201 s, where the simulator's holds nothing).
    results += ran(2, 1, agent, 201.0, 201.0, 206.0)
    _, _, built = records([job], results)
    tasks = built.tasks.set_index("task_id")
    assert tasks.loc[0, "arrival_s"] == 10.0  # an entry node arrives with its job
    assert tasks.loc[1, "arrival_s"] == 31.0  # the next when its predecessor released it
    assert 2 not in tasks.index  # not released by the end: counted in flight, no row
    assert built.counts["in_flight"] == 2 and built.counts["submitted"] == 3
    assert built.jobs.empty  # the job ends after the window


@pytest.mark.parametrize("restarted", ["agent_restarted", "agent_rejoined"])  # (an older log's)
def test_agents_are_present_until_they_leave_or_are_declared_dead_one_row_a_life(
    restarted: str,
) -> None:
    events = [
        event(20.0, "agent_failed", "A-CodeGen-001", cause="chaos"),
        event(35.0, "agent_detected", "A-CodeGen-001", zone="A"),
        event(60.0, restarted, "A-CodeGen-001", zone="A"),
        event(40.0, "agent_joined", "A-CodeGen-s1", zone="A", category="CodeGen"),
        event(150.0, "agent_left", "A-CodeGen-s1"),  # after the window: not seen
    ]
    _, _, built = records([], [], sorted(events, key=lambda e: e["time_s"]))
    agents: pd.DataFrame = built.agents
    lives = agents[agents["agent"] == "A-CodeGen-001"].sort_values("joined_s")
    assert list(zip(lives["joined_s"], lives["left_s"], lives["failed"], strict=True)) == [
        (0.0, 35.0, True),
        (60.0, END, False),
    ]
    new = agents[agents["agent"] == "A-CodeGen-s1"].iloc[0]
    assert new["joined_s"] == 40.0 and new["left_s"] == END and new["from_reserve"]
    assert (built.events["time_s"] <= END).all()


def test_zone_record_streams_merge_in_an_order_their_contents_fix() -> None:
    """However the zones' streams interleaved, the merged records are the same list."""
    from sim.live.broker import BUNDLE
    from sim.live.transport import merge_records

    dispatch_a = [
        {
            "kind": BUNDLE,
            "records": [
                {"kind": "dispatch", "task_id": 1, "zone": "A", "dispatch_s": 1.0},
                {"kind": "dispatch", "task_id": 2, "zone": "A", "dispatch_s": 1.0},
            ],
        },
        {"kind": "assign", "task_id": 1, "attempt": 1, "agent": "a", "assign_s": 1.5},
    ]
    dispatch_b = [{"kind": "assign", "task_id": 2, "attempt": 1, "agent": "b", "assign_s": 1.2}]
    results_a = [
        {"kind": "start", "task_id": 1, "attempt": 1, "start_s": 1.6},
        {"kind": "end", "task_id": 1, "attempt": 1, "start_s": 1.6, "end_s": 3.0},
    ]
    results_b = [{"kind": "start", "task_id": 2, "attempt": 1, "start_s": 1.5}]
    merged = merge_records([dispatch_a, dispatch_b, results_a, results_b])
    order = [(d["kind"], d["task_id"]) for d in merged]
    assert order == [
        ("dispatch", 1),
        ("dispatch", 2),
        ("assign", 2),
        ("assign", 1),  # 1.5: an assignment before a start at the same time (stream order)
        ("start", 2),
        ("start", 1),
        ("end", 1),
    ]
    # Equal times follow the streams' order: results before dispatch records, then the start.
    swapped = merge_records([results_b, dispatch_b, results_a, dispatch_a])
    assert [(d["kind"], d["task_id"]) for d in swapped][3:5] == [("start", 2), ("assign", 1)]
    assert len(merge_records([[], dispatch_b, [], results_b])) == 2


def test_queueing_is_what_the_coordinator_knew_at_the_assignment() -> None:
    """Slow to start on an agent with a slot free is dispatch, not queueing; waiting in the
    pool's queue, or at an agent with every slot taken, is. A record without the mark is
    read as before: the whole span beyond the transport's slack (0.5 s at x10)."""

    def attempt(
        task_id: int, routed: float, assigned: float, start: float, free: bool | None
    ) -> list[dict[str, Any]]:
        docs = ran(task_id, 1, "A-CodeGen-001", routed, start, start + 5.0)
        docs[1]["assign_s"] = assigned
        if free is not None:
            docs[1]["slot_free"] = free
        return docs

    results = [
        *attempt(0, 10.0, 10.0, 10.9, True),  # free slot, 0.9 s to start: no queueing
        *attempt(1, 20.0, 24.0, 24.2, True),  # 4 s in the pool's queue, then a free slot
        *attempt(2, 30.0, 30.0, 33.0, False),  # assigned to a full agent: 3 s at the agent
        *attempt(3, 40.0, 40.0, 40.9, None),  # no mark (an older run): the span, beyond 0.5 s
    ]
    _, _, built = records([task(n, 10.0 * (n + 1)) for n in range(4)], results)
    queued = built.tasks.set_index("task_id")["queue_s"]
    assert queued.to_dict() == pytest.approx({0: 0.0, 1: 4.0, 2: 3.0, 3: 0.9})
