"""Stream catch-up and follow: how a primary rebuilds its books and then keeps up.

Scenario: a coordinator takes the lease. It reads every zone's
``ORCH_DISPATCH_<zone>`` (where the previous primaries routed and assigned
each task) and ``ORCH_RESULTS_<zone>`` (attempts started and ended) from the
first message, then checks the fleet's
heartbeats (the pools, before anything is placed), then reads
``ORCH_SUBMIT`` from the first message. Only what is unfinished goes out
again: a task the streams show assigned to an agent still in its pool stays
there (its subject holds it); the rest is placed anew — once every
submission stream is read, so that all the agents hold is adopted first
(a zone's stream read later may show an agent serving that an earlier
stream's task would have been queued behind), in the order it arrived. Dispatch is idempotent
(a message id per assignment) and so is completion (a task id counts once),
so a takeover resumes exactly where the broker is. Then it follows results
and submissions, handing each message to intake as it comes; its own
dispatch records it writes but never reads back while it leads. The record
streams are read one after the other (``record_streams``: every zone's
dispatch records, then every zone's results), not interleaved: the books they
rebuild do not depend on that order (the latest attempt of a task wins,
whichever stream names it; an end counts once). Live, each zone's results
stream has its own follower, so the zones' results are handled side by side,
and each follower routes its next batch while the last ones are still being
written (``outbox.Pipeline``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sim.live.broker import Broker, Follower, StreamMessage, unbundle
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.outbox import Outbox, Pipeline
from sim.live.coordinator.state import Books, ScenarioTime
from sim.live.lag import LagMonitor
from sim.live.transport import (
    LEGACY_RECORDS,
    SUBMIT,
    dispatch_stream,
    dispatch_subject,
    result_subject,
    results_stream,
    submit_streams,
)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

#: Batches of one follower being written at once (``Pipeline``): enough to keep each zone's
#: streams busy while the next batch is routed, few enough that a broker outage holds back
#: only a few batches' writes.
FLUSHES_IN_FLIGHT = 4


def stamp(doc: dict[str, Any]) -> float | None:
    """The scenario time a stream message was written at (its own time field), if any."""
    for key in ("end_s", "start_s", "assign_s", "dispatch_s", "arrival_s"):
        value = doc.get(key)
        if value is not None:
            return float(value)
    return None


class StreamFollow:
    """Catch-up, then follow, of the results and submissions streams (module docstring)."""

    def __init__(
        self,
        name: str,
        broker: Broker,
        books: Books,
        intake: Intake,
        time: ScenarioTime,
        lag: LagMonitor,
        zones: Iterable[str],
    ) -> None:
        self.name, self.broker, self.books, self.intake = name, broker, books, intake
        self.time, self.lag = time, lag
        suffix = self.suffix = secrets.token_hex(3)
        zones = tuple(zones)
        #: (stream, follower) per zone, in the zones' order.
        self.dispatches: list[tuple[str, Follower]] = [
            (
                dispatch_stream(z),
                broker.follow(dispatch_stream(z), dispatch_subject(z), f"co_{name}_d{i}_{suffix}"),
            )
            for i, z in enumerate(zones)
        ]
        self.results: list[tuple[str, Follower]] = [
            (
                results_stream(z),
                broker.follow(results_stream(z), result_subject(z), f"co_{name}_r{i}_{suffix}"),
            )
            for i, z in enumerate(zones)
        ]
        #: (stream, follower) per submission stream: ``ORCH_SUBMIT``, then the zones' (those
        #: the broker has: a service has none, see ``subjects``).
        self.submits: list[tuple[str, Follower]] = [
            (stream, broker.follow(stream, subject, f"co_{name}_s{i}_{suffix}"))
            for i, (stream, subject) in enumerate(submit_streams(zones))
        ]
        #: Messages stamped before this scenario time are backlog, not lag (set after catch-up).
        self.following_from = float("inf")
        #: A snapshot's share (``sim.live.snapshot``): per stream, the records it kept, read
        #: before the stream, and the last sequence it folded in, skipped in the stream.
        self.prelude: dict[str, list[dict[str, Any]]] = {}
        self.skip: dict[str, int] = {}

    async def catch_up(self, check_health: Callable[[], Awaitable[None]]) -> None:
        """Records first, then the fleet, then submissions (see the module docstring)."""
        self.books.catching_up = True
        try:
            await self._read_legacy()
            for stream, follower in (*self.dispatches, *self.results):
                await self.read_through(follower, self.intake.on_result, stream)
        finally:
            self.books.catching_up = False
        await check_health()  # the pools, before anything is placed
        # Joined by id: their order among equal loads is restored before the first placing.
        self.books.order_stale = True
        present = []
        self.books.deferred = []
        try:
            for stream, follower in self.submits:
                if stream != SUBMIT and not await self._exists(stream):
                    await follower.close()
                    continue
                present.append((stream, follower))
                await self.read_through(follower, self.intake.on_submit, stream)
        finally:
            deferred, self.books.deferred = self.books.deferred, None
        self.submits = present
        # Then what is to be placed anew, in the order it reached the chiefs, as the
        # simulator's new leader re-drives what waited for it (by arrival, then id).
        async with self.intake.batch():
            for task in sorted(deferred, key=lambda t: (t.arrival_s, t.task_id)):
                await self.intake.dispatch(task)
        self.books.recovered.clear()
        self.books.routed_before.clear()
        self.following_from = self.time.raw()

    async def _exists(self, stream: str) -> bool:
        try:
            await self.broker.last_sequence(stream)
        except Exception:  # not there (nats: NotFoundError; memory: KeyError)
            return False
        return True

    async def _read_legacy(self) -> None:
        """The fleet-wide record streams of an earlier layout, if the store still has them."""
        for index, (stream, subject) in enumerate(LEGACY_RECORDS):
            try:
                empty = await self.broker.last_sequence(stream) == 0
            except Exception:  # not there (nats: NotFoundError; memory: KeyError)
                empty = True
            if empty:  # (a snapshot may still keep open work's records from it)
                async with self.intake.batch():
                    for doc in self.prelude.get(stream, ()):
                        await self.intake.on_result(doc)
                continue
            follower = self.broker.follow(stream, subject, f"co_{self.name}_l{index}_{self.suffix}")
            try:
                await self.read_through(follower, self.intake.on_result, stream)
            finally:
                await follower.close()

    async def read_through(self, follower: Follower, handle: Handler, stream: str) -> None:
        """Feed *handle* every message of *stream* up to its last one now."""
        async with self.intake.batch():
            for doc in self.prelude.get(stream, ()):
                await handle(doc)
        last = await self.broker.last_sequence(stream)
        seen = skip = self.skip.get(stream, 0)
        while seen < last:
            batch = await follower.read(512, 0.5)
            async with self.intake.batch():
                for message in batch:
                    seen = max(seen, message.sequence)
                    if message.sequence > skip:
                        await handle(message.document())
            if not batch:
                last = await self.broker.last_sequence(stream)

    async def pump(self) -> int:
        """Handle whatever the followed streams hold now, without waiting (tests step with this)."""
        handled = 0
        for follower, handle in self._pairs():
            while batch := await follower.read(256, 0.0):
                await self._handle_batch(handle, batch)
                handled += len(batch)
        return handled

    async def follow(self) -> None:
        """Follow every zone's results and the submissions until cancelled."""

        async def one(follower: Follower, handle: Handler) -> None:
            # A pull for one message returns the moment it is stored; a pull for many waits
            # out its whole timeout for the rest (nats-py), which held every lone submission
            # back by up to that long. So: block for one, then take what is already there,
            # and handle them as one batch (routed first, published together).
            # Its writes are flushed while the next batch is read and routed (``Pipeline``).
            pipeline = Pipeline(self.broker, FLUSHES_IN_FLIGHT)
            try:
                while True:
                    batch = await follower.read(1, 0.5)
                    if batch:
                        batch += await follower.read(255, 0.002)
                        outbox = Outbox()
                        try:
                            with self.intake.collecting(outbox):
                                await self._route_batch(handle, batch)
                        finally:
                            await pipeline.put(outbox)
            finally:
                await pipeline.cancel()  # cancelled: no longer leading, nothing more written

        await asyncio.gather(*(one(f, h) for f, h in self._pairs()))

    async def _handle_batch(self, handle: Handler, batch: list[StreamMessage]) -> None:
        """Route the whole batch, then publish its writes together (``Intake.batch``)."""
        async with self.intake.batch():
            await self._route_batch(handle, batch)

    async def _route_batch(self, handle: Handler, batch: list[StreamMessage]) -> None:
        for message in batch:
            doc = message.document()
            # A bundle's records (a fleet's gathered ends) each say when they were written.
            for record in unbundle([doc]):
                written = stamp(record)
                if written is not None and written >= self.following_from:
                    self.lag.follow(self.time.raw() - written)
            await handle(doc)

    def _pairs(self) -> list[tuple[Follower, Handler]]:
        results = [(follower, self.intake.on_result) for _, follower in self.results]
        return [*results, *((follower, self.intake.on_submit) for _, follower in self.submits)]

    async def close(self) -> None:
        """Every reader at once: one after the other, a stopping coordinator's dozen consumer
        deletions (a broker round trip each) on a loaded host outlasted its 15 s to stop (a
        CI run: a standby cancelled at the run's end, mid-takeover, was left behind)."""
        readers = (*self.dispatches, *self.results, *self.submits)
        await asyncio.gather(*(follower.close() for _, follower in readers))
