"""A drained primary hands its lease back, even when its last renewal went unseen.

A service read its lease's revision before stopping its coordinator, whose
renewal loop ran until the stop: a renewal that landed in between left the
hand-back naming a stale revision, the compare-and-set failed, and the lease
stayed held until it lapsed (a fresh-clone CI run, 2026-12-07). The service
reads the revision after the stop now, and the hand-back follows a renewal
it did not see, never clearing a lease someone else has taken.

In memory, on the broker's compare-and-set; the same on NATS in
``test_serve.py``'s story.
"""

from __future__ import annotations

import asyncio

from sim.live.broker import decode
from sim.live.coordinator.leadership import KEY, Lease
from sim.live.memory_broker import MemoryBroker
from sim.live.transport import LEASE_BUCKET

NOW = 1000.0


async def _expires(broker: MemoryBroker) -> tuple[str, float]:
    entry = await broker.kv_get(LEASE_BUCKET, KEY)
    assert entry is not None
    document = decode(entry.value)
    return str(document["holder"]), float(document["expires"])


def test_a_release_after_a_renewal_it_did_not_see_hands_the_lease_back() -> None:
    async def body() -> tuple[bool, tuple[str, float]]:
        broker = MemoryBroker.orchestra(("A",))
        lease = Lease(broker, "one", 1.5, lambda: NOW)
        assert await lease.try_take()
        seen = lease.revision
        await lease.renew()  # landed, but the service still holds the revision before it
        lease.revision = seen
        return await lease.release(), await _expires(broker)

    released, (holder, expires) = asyncio.run(body())
    assert released and holder == "one" and expires == 0.0


def test_a_release_never_clears_a_lease_another_replica_took() -> None:
    async def body() -> tuple[bool, tuple[str, float]]:
        broker = MemoryBroker.orchestra(("A",))
        lease = Lease(broker, "one", 1.5, lambda: NOW)
        assert await lease.try_take()
        other = Lease(broker, "two", 1.5, lambda: NOW + 10.0)  # "one"'s lease has lapsed
        assert await other.try_take()
        return await lease.release(), await _expires(broker)

    released, (holder, expires) = asyncio.run(body())
    assert not released and holder == "two" and expires == NOW + 10.0 + 1.5
