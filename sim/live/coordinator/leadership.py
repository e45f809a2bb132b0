"""The coordinator lease: one primary at a time, taken by compare-and-set on a revision.

A coordinator holds the key ``primary`` of ``orch_lease`` or waits as a
standby until the lease expires. The revision, not the clock, decides who
holds it: every write names the revision it read, and a write that lost the
race fails (:class:`~sim.live.broker.CasFailed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sim.live.broker import Broker, CasFailed, encode
from sim.live.cancel import stop_if_cancelled
from sim.live.coordinator.state import LeaseLost
from sim.live.transport import LEASE_BUCKET

KEY = "primary"


class Lease:
    """One replica's hold on the lease (see the module docstring)."""

    def __init__(
        self, broker: Broker, name: str, lease_s: float, wall: Callable[[], float]
    ) -> None:
        self.broker, self.name, self.lease_s, self.wall = broker, name, lease_s, wall
        self.revision: int | None = None

    def _value(self) -> bytes:
        return encode({"holder": self.name, "expires": self.wall() + self.lease_s})

    async def try_take(self) -> bool:
        """Take the lease if nobody holds a live one.

        Clock assumption: a lease's ``expires`` is the holder's wall clock plus
        ``lease_s``, and a standby compares it with *its own* wall clock. That
        is safe only while the replicas' clocks agree to well within
        ``lease_s`` — true for replicas on one host, as here, and for
        NTP-synced hosts with a lease of seconds. A standby whose clock runs
        ahead by more than the lease takes over a live primary early; the
        compare-and-set then makes the primary's next renewal (every
        ``lease_s / 3``) fail with LeaseLost and it stops leading, so two
        primaries overlap for at most about one renewal period.
        """
        value = self._value()
        try:
            entry = await self.broker.kv_get(LEASE_BUCKET, KEY)
            if entry is None:
                self.revision = await self.broker.kv_create(LEASE_BUCKET, KEY, value)
                return True
            holder = entry.document()
            if holder.get("holder") != self.name and float(holder.get("expires", 0)) > self.wall():
                return False
            self.revision = await self.broker.kv_update(LEASE_BUCKET, KEY, value, entry.revision)
            return True
        except (TimeoutError, CasFailed):
            return False
        except Exception:
            stop_if_cancelled()
            await asyncio.sleep(0.1)  # broker unavailable: try again later
            return False

    async def renew(self) -> None:
        """Extend the lease; LeaseLost when someone else took it (or the broker stayed away)."""
        value = self._value()
        deadline = self.wall() + self.lease_s
        while True:
            try:
                if self.revision is None:
                    raise LeaseLost(self.name)
                self.revision = await self.broker.kv_update(LEASE_BUCKET, KEY, value, self.revision)
                return
            except CasFailed:
                raise LeaseLost(self.name) from None
            except LeaseLost:
                raise
            except Exception:
                stop_if_cancelled()
                if self.wall() > deadline + 5 * self.lease_s:
                    raise LeaseLost(self.name) from None  # broker gone for long: let go
                await asyncio.sleep(0.1)

    async def release(self) -> bool:
        """Hand the lease back at once (a drained primary): a standby need not wait it out.

        Written as expired at the revision this replica holds, so it never
        clears a lease that someone else has taken since.
        """
        if self.revision is None:
            return False
        value = encode({"holder": self.name, "expires": 0.0})
        try:
            try:
                await self.broker.kv_update(LEASE_BUCKET, KEY, value, self.revision)
            except CasFailed:
                # A renewal cancelled in flight may have landed: still ours, at its revision.
                entry = await self.broker.kv_get(LEASE_BUCKET, KEY)
                if entry is None or entry.document().get("holder") != self.name:
                    return False
                await self.broker.kv_update(LEASE_BUCKET, KEY, value, entry.revision)
        except Exception:
            stop_if_cancelled()
            return False
        self.revision = None
        return True
