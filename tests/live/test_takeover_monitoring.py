"""A new primary's monitoring goes on from its predecessor's samples.

The simulator has one monitor whoever leads: a change of leader moves no
interval and loses no completion. Live's new primary started its own: its
first interval ran from second 0, its cumulative count from zero, the
completions between the predecessor's last sample and the takeover were
read by the catch-up but never counted, and its alert rules forgot what was
firing. After a full-fleet partition (x10, 2026-12-07) live's first sample
after the takeover read 22 tasks a minute where its replay read 132, and
live alone fired ``low_throughput``.

In memory, on a wall clock the test turns (time-scale 1, arrivals at 0):
the first primary samples at 10 s with one completion; a second task ends
at 12 s while no primary runs; the second primary takes over at 15 s and
samples at 20 s, after a third completion.

A DAG node arrives when its predecessors' ends release it, and its wait (the
autoscaler's ``avg_response_time``, the alerts' latency) runs from then. A
new primary booked the nodes its predecessor had released with the job's
arrival instead: after the full-fleet partition its autoscaler read an
average response of 6.4-7.6 s where the nodes' own waits gave 5.1, and its
p99 wait 139 s where the replay's was 22.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_coordinator_logic import EPOCH, Fleet, submit_job

AGENTS = ("a1", "a2", "a3", "a4")


async def _two_primaries(fleet: Fleet) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first primary's sample at 10 s and the second's at 20 s (global rows)."""
    for agent in AGENTS:
        await fleet.beat(agent)
    first = fleet.coordinator(name="c1")
    await first.take_over()
    await fleet.submit(0, 1, 2, 3)
    await first.pump()
    assert [await fleet.take(a) for a in AGENTS] == [[(n, 1)] for n in range(4)]
    fleet.wall.t = EPOCH + 1
    for n, agent in enumerate(AGENTS):
        await fleet.result("start", n, agent)
    fleet.wall.t = EPOCH + 5
    await fleet.result("end", 0, "a1", start_s=1.0)
    await first.pump()
    await first.monitoring.sample(10.0)
    before = first.collector.recent(1)[0]
    fleet.wall.t = EPOCH + 12
    await fleet.result("end", 1, "a2", start_s=1.0)  # nobody leads: read by the catch-up
    fleet.wall.t = EPOCH + 15
    second = fleet.coordinator(name="c2")
    await second.take_over()
    fleet.wall.t = EPOCH + 20
    await fleet.result("end", 2, "a3", start_s=1.0)
    await second.pump()
    await second.monitoring.sample(20.0)
    return before, second.collector.recent(1)[0]


def test_the_next_sample_covers_its_interval_and_counts_every_end_in_it_once() -> None:
    before, after = asyncio.run(_two_primaries(Fleet()))
    assert before["tasks_completed"] == 1 and before["throughput_per_min"] == 6.0
    # Ends at 12 s (no primary) and 20 s, over the 10 s since the last sample; the end at
    # 5 s was counted by the first primary's sample and is not counted again.
    assert after["tasks_completed"] == 3
    assert after["throughput_per_min"] == pytest.approx(2 * 60.0 / 10.0)
    assert after["avg_latency_s"] == pytest.approx((12.0 + 20.0) / 2)
    assert after["avg_wait_s"] == pytest.approx(1.0)


def test_an_alert_firing_before_the_takeover_stays_firing_and_is_not_fired_again() -> None:
    fleet = Fleet()
    asyncio.run(_two_primaries(fleet))
    fired = asyncio.run(fleet.events("alert"))
    low = [(e["time_s"], e["state"]) for e in fired if e["subject"] == "low_throughput"]
    assert low == [(10.0, "firing")]  # 6 and then 12 a minute, both under 50: one firing


def test_a_dag_node_released_before_the_takeover_arrived_at_its_release() -> None:
    """Node 0 ends at 5 s and releases nodes 1 and 2 (routed then), the first primary samples
    at 6 s, node 1 starts at 8 s, and
    the second primary takes over at 10 s: both nodes arrived at 5 s, not
    with the job at 0 s."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        first = fleet.coordinator(name="c1")
        await first.take_over()
        await submit_job(fleet)  # job 7 at 0 s: nodes 10, 11, 12
        await first.pump()
        assert await fleet.take("a1") == [(10, 1)]
        await fleet.result("start", 10, "a1")
        fleet.wall.t = EPOCH + 5
        await fleet.result("end", 10, "a1", start_s=0.0)
        await first.pump()  # releases 11 and 12 at 5 s
        await first.monitoring.sample(6.0)  # node 10's end is in this sample
        placed = [held for a in ("a1", "a2") for held in await fleet.take(a)]
        assert sorted(placed) == [(11, 1), (12, 1)]
        fleet.wall.t = EPOCH + 8
        await fleet.result("start", 11, "a1")
        fleet.wall.t = EPOCH + 10
        second = fleet.coordinator(name="c2")
        await second.take_over()
        assert second.tasks[10].arrival_s == 0.0  # the root arrived with the job
        assert second.tasks[11].arrival_s == 5.0 and second.tasks[12].arrival_s == 5.0
        fleet.wall.t = EPOCH + 12
        await fleet.result("end", 11, "a1", start_s=8.0)
        await second.pump()
        await second.monitoring.sample(20.0)
        row = second.collector.recent(1)[0]
        assert row["avg_wait_s"] == pytest.approx(3.0)  # started at 8, released at 5
        assert row["avg_latency_s"] == pytest.approx(7.0)

    asyncio.run(body(Fleet()))


def test_a_dag_node_the_takeover_releases_arrives_at_the_takeover() -> None:
    """Node 0 ends at 5 s, but its primary dies before acting on it: the second primary,
    taking over at 10 s, releases nodes 1 and 2 then, and they arrive then."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1")
        first = fleet.coordinator(name="c1")
        await first.take_over()
        await submit_job(fleet)
        await first.pump()
        assert await fleet.take("a1") == [(10, 1)]
        fleet.wall.t = EPOCH + 5
        await fleet.result("end", 10, "a1", start_s=0.0)  # never read by the first primary
        fleet.wall.t = EPOCH + 10
        second = fleet.coordinator(name="c2")
        await second.take_over()
        assert second.tasks[11].arrival_s == 10.0 and second.tasks[12].arrival_s == 10.0

    asyncio.run(body(Fleet()))
