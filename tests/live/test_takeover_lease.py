"""A primary keeps its lease while its takeover catches up, however long that takes.

A takeover reads the run's whole history before it places anything. At the
spec's full fleet under a partition (x10), that took longer than the lease
(1.5 wall s): the new primary lost the lease to the next standby 1.8 wall s
after taking it, a second takeover live had and its replay did not. The
lease is now renewed from the moment it is taken.

In memory, on a wall clock the test turns: the takeover's catch-up lasts
three leases of that clock (it moves while the takeover reads), and a
standby asks for the lease all along.
"""

from __future__ import annotations

import asyncio
from typing import Any

from test_coordinator_logic import Fleet

from sim.live.transport import EVENTS

LEASE_S = 0.3


def test_a_long_takeover_keeps_its_lease_and_the_standby_waits() -> None:
    async def body(fleet: Fleet) -> tuple[bool, bool, list[Any]]:
        first = fleet.coordinator(name="c1", lease_s=LEASE_S)
        standby = fleet.coordinator(name="c2", lease_s=LEASE_S)
        original = first.take_over

        async def slow_takeover() -> None:
            for _ in range(9):  # 0.9 s of the test's wall: three leases
                fleet.wall.t += 0.1
                await asyncio.sleep(0.05)
            await original()

        first.take_over = slow_takeover  # type: ignore[method-assign]
        leading = asyncio.ensure_future(first.run())
        while not first.is_primary:
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(standby.run())
        await asyncio.sleep(1.0)  # the takeover, then a while of leading
        kept, taken = first.is_primary, standby.is_primary
        for task in (leading, waiting):
            task.cancel()
        await asyncio.gather(leading, waiting, return_exceptions=True)
        events = await fleet.broker.read_all(EVENTS, "orch.event")
        return kept, taken, [(e["kind"], e["subject"]) for e in events]

    kept, taken, events = asyncio.run(body(Fleet()))
    assert kept and not taken
    assert ("coordinator_primary", "c1") in events
    assert ("coordinator_lost_lease", "c1") not in events
    assert ("coordinator_primary", "c2") not in events
