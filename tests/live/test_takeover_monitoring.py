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
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_coordinator_logic import EPOCH, Fleet

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
