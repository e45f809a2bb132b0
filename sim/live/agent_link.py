"""An agent's way to the broker: its connection, the registry bucket, the run's epoch.

Why a module of its own: an agent process opens one link of its own, a
simulated fleet (``provisioner.SimulatedFleet``) opens a few and shares them
among thousands of agents; the epoch watch and the start-up retry
(``while_swamped``) are shared the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from sim.live.clock import Clock
from sim.live.transport import AGENTS_BUCKET, LEASE_BUCKET, connect, decode


class EpochWatch:
    """The run's clock, once the runtime has published its epoch (scenario second 0).

    The runtime writes the epoch into ``orch_lease`` only when the whole fleet
    heartbeats, so agents start without it (their heartbeats then carry
    ``time_s = -1``). One watch reads the key at most every *poll_s* wall
    seconds however many agents ask: a simulated fleet shares one.
    """

    def __init__(
        self, lease: KeyValue, time_scale: float, epoch: float | None, poll_s: float = 0.05
    ) -> None:
        self._lease, self._scale, self._poll_s = lease, time_scale, poll_s
        self.clock: Clock | None = Clock(epoch, time_scale) if epoch is not None else None
        self._next_read = 0.0

    async def poll(self) -> Clock | None:
        """The clock if known; otherwise one read of the key (if the last is old enough)."""
        if self.clock is None and time.monotonic() >= self._next_read:
            self._next_read = time.monotonic() + self._poll_s
            with contextlib.suppress(Exception):
                entry = await self._lease.get("epoch")
                self.clock = Clock(float(decode(entry.value or b"{}")["epoch"]), self._scale)
        return self.clock

    async def wait(self) -> Clock:
        while (clock := await self.poll()) is None:
            await asyncio.sleep(self._poll_s)
        return clock


@dataclass
class AgentLink:
    """What an agent uses of the broker: a connection, its JetStream, the registry, the epoch.

    An agent process opens its own; a simulated fleet opens a few and shares them.
    """

    nc: Client
    js: JetStreamContext
    registry: KeyValue
    epoch: EpochWatch

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None,
        name: str,
        time_scale: float,
        epoch: float | None = None,
        *,
        watch: EpochWatch | None = None,
        reconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> AgentLink:
        """A new connection; *watch* shares another link's epoch watch."""
        nc = await connect(url, token, name, reconnected=reconnected)
        js = nc.jetstream()
        registry = await js.key_value(AGENTS_BUCKET)
        if watch is None:
            watch = EpochWatch(await js.key_value(LEASE_BUCKET), time_scale, epoch)
        return cls(nc, js, registry, watch)


_R = TypeVar("_R")


async def while_swamped(action: Callable[[], Awaitable[_R]], tries: int = 21) -> _R:
    """A start-up step, tried again with backoff (0.1 s doubling to 2 s) while it fails.

    Many agents starting at once — 173 processes on two cores, or thousands of
    simulated agents — put more JetStream API requests in flight than the
    broker answers within their timeout; each step of joining is idempotent,
    so trying it again is safe. The last failure propagates.
    """
    for attempt in itertools.count():
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except Exception:
            if attempt >= tries - 1:
                raise
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError("unreachable")  # pragma: no cover (itertools.count never ends)
