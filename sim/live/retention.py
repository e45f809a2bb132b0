"""Retention for a long-running service: the broker holds a window, the segments hold history.

Scenario: a service runs for months. Without retention its streams grow by
a few records per task for ever, and a standby taking over reads them all.
So every ``every_s`` the primary compacts (``Compactor.compact``):

1. the **cut**: records stored before it may leave the broker. It is at
   least ``retain_s`` old; with continuous records on, it is also before the
   start of the first window not yet written, minus the clock skew the
   segment writer reads back (``skew_s``) — what a segment will still read
   stays; and it never passes what this primary's own stream followers have
   acknowledged (their consumers' ack floors);
2. the **snapshot** (``sim.live.snapshot``): the last one, folded with each
   record stream's messages up to its cut, stored in ``orch_snapshot``. The
   record streams are ``ORCH_SUBMIT`` and every zone's ``ORCH_DISPATCH_<zone>``
   and ``ORCH_RESULTS_<zone>`` (plus the fleet-wide ``ORCH_DISPATCH`` /
   ``ORCH_RESULTS`` a store of the earlier layout still has): each has its own
   sequences, hence its own cut, skip and purge;
3. this primary's books forget the finished work the snapshot remembers by
   id (``sim.live.coordinator.restore.forget``);
4. the **purge**, only after the snapshot is stored and only while this
   replica still holds the lease: the record streams below their cuts, and
   ``ORCH_EVENTS`` / ``ORCH_METRICS`` below the cut (they serve the
   segments only). ``ORCH_REPLIES`` keeps one reply per task for
   ``dedupe_s`` (its ``max_age``), the span in which a resubmitted id is
   answered from it.

Crash anywhere: before the snapshot is stored nothing changed; after it, a
takeover reads the snapshot and skips the stream messages it folded in
(purged or not). The residual risk is a primary that stalls past its lease
between its lease check and its purge while another takes over: the
newcomer may then miss the records between the two snapshots. The check is
made just before purging, so the window is one broker round trip.

Without ``--records`` the cut is ``retain_s`` ago alone: the broker is not
an archive, and what it drops is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from nats.js.errors import NotFoundError

from sim.live.broker import Broker, decode
from sim.live.cancel import stop_if_cancelled
from sim.live.clock import Clock
from sim.live.segments import LOOKBACK_S, RECORDS_KEY
from sim.live.snapshot import (
    SNAPSHOT_BUCKET,
    Snapshot,
    chunks_of,
    fold,
    load,
    store,
)
from sim.live.stream_window import reader_from
from sim.live.task_message import Pools
from sim.live.transport import (
    EVENTS,
    LEASE_BUCKET,
    LEGACY_RECORDS,
    METRICS,
    REPLIES,
    RESULTS_PREFIX,
    SUBMIT,
    record_streams,
)

#: The streams purged by the cut's time alone (they serve the segments only).
SEGMENT_STREAMS = ((EVENTS, "orch.event"), (METRICS, "orch.metric"))


def followed(stream: str) -> bool:
    """A record stream this primary follows (its consumers' ack floors bound the cut):
    the submissions and every zone's results, not its own dispatch records."""
    return stream == SUBMIT or stream.startswith(RESULTS_PREFIX)


@dataclass(frozen=True)
class RetentionSettings:
    """How a service bounds its broker (wall seconds); ``every_s`` 0 turns compaction off."""

    every_s: float = 300.0
    #: Records younger than this always stay on the broker.
    retain_s: float = 3600.0
    #: How long a finished task or job id is still recognised after its records were
    #: compacted (and its reply kept): a resubmission in that span is answered, not run.
    dedupe_s: float = 6 * 3600.0
    #: How far before a window's start the segment writer reads (clients' clocks differ).
    skew_s: float = LOOKBACK_S

    @property
    def enabled(self) -> bool:
        return self.every_s > 0


@dataclass(frozen=True)
class Compaction:
    """What one compaction did."""

    generation: int
    cut_wall: float
    seqs: dict[str, int]
    open_records: int
    remembered_ids: int
    snapshot_bytes: int
    purged: dict[str, int]
    forgotten: int


async def first_at(js: JetStreamContext, stream: str, subject: str, wall: float) -> int:
    """The sequence of *stream*'s first message stored at or after *wall* (last + 1: none)."""
    info = await js.stream_info(stream)
    last = int(info.state.last_seq)
    if int(info.state.messages) == 0:
        return last + 1
    async with reader_from(js, stream, subject, "cut", wall=wall) as sub:
        pending = (await sub.consumer_info()).num_pending or 0
        if pending == 0:
            return last + 1
        batch = await sub.fetch(1, timeout=2.0)
        return int(batch[0].metadata.sequence.stream)


async def read_range(
    js: JetStreamContext, stream: str, subject: str, after: int, upto: int
) -> list[dict[str, Any]]:
    """*stream*'s messages with sequence in (after, upto], decoded, in order."""
    info = await js.stream_info(stream)
    if upto <= after or int(info.state.messages) == 0 or int(info.state.first_seq) > upto:
        return []
    out: list[dict[str, Any]] = []
    async with reader_from(js, stream, subject, "compact", sequence=after + 1) as sub:
        while True:
            try:
                batch = await sub.fetch(1024, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                stop_if_cancelled()
                break
            seq = 0
            for message in batch:
                seq = int(message.metadata.sequence.stream)
                if seq > upto:
                    break
                out.append(decode(message.data))
            if seq >= upto:
                break
    return out


async def ack_floor(js: JetStreamContext, stream: str, prefix: str) -> float:
    """The lowest sequence this replica's followers (consumers named *prefix*…) acknowledged
    through on *stream*; minus infinity when it has none (it is not following yet)."""
    floors = [
        int(info.ack_floor.stream_seq)
        for info in await js.consumers_info(stream)
        if (info.name or "").startswith(prefix)
        and info.config.ack_policy == AckPolicy.EXPLICIT
        and info.ack_floor is not None
    ]
    return float(min(floors)) if floors else -math.inf


async def bound_replies(js: JetStreamContext, dedupe_s: float) -> None:
    """``ORCH_REPLIES`` keeps each reply for the dedupe window, not for ever (idempotent)."""
    info = await js.stream_info(REPLIES)
    config = info.config
    if config.max_age == dedupe_s:
        return
    config.max_age = dedupe_s
    config.duplicate_window = min(float(config.duplicate_window or dedupe_s), dedupe_s)
    await js.update_stream(config)


class Compactor:
    """The primary's retention chore (see the module docstring)."""

    def __init__(
        self,
        js: JetStreamContext,
        broker: Broker,
        name: str,
        clock: Clock,
        pools: Pools,
        settings: RetentionSettings,
        *,
        records: bool,
        is_primary: Callable[[], bool],
        forget: Callable[[Snapshot], int],
        zones: Iterable[str],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.js, self.broker, self.name, self.clock = js, broker, name, clock
        self.pools, self.settings, self.records = pools, settings, records
        self.is_primary, self.forget, self.wall = is_primary, forget, wall
        #: (stream, subject) of the zones' record streams, in the order a catch-up reads them.
        self.zone_records = record_streams(zones)
        self.done: list[Compaction] = []

    async def record_streams(self) -> list[tuple[str, str]]:
        """Every record stream to fold, in a catch-up's order: an earlier layout's fleet-wide
        streams when the store still has them, the zones' streams, then the submissions."""
        legacy = []
        for stream, subject in LEGACY_RECORDS:
            with contextlib.suppress(NotFoundError):
                if int((await self.js.stream_info(stream)).state.last_seq) > 0:
                    legacy.append((stream, subject))
        return [*legacy, *self.zone_records, (SUBMIT, "orch.submit")]

    async def cut_wall(self, now: float) -> float:
        """The wall time before which records may leave the broker (module docstring, 1)."""
        cut = now - self.settings.retain_s
        if self.records:
            through_s = 0.0
            with contextlib.suppress(Exception):
                entry = await (await self.js.key_value(LEASE_BUCKET)).get(RECORDS_KEY)
                through_s = float(decode(entry.value or b"{}")["through_s"])
            written = self.clock.epoch + through_s / self.clock.scale
            cut = min(cut, written - self.settings.skew_s)
        return cut

    async def _still_primary(self) -> bool:
        """This replica holds the lease, with a margin (read from the broker, not memory)."""
        if not self.is_primary():
            return False
        entry = await (await self.js.key_value(LEASE_BUCKET)).get("primary")
        lease = decode(entry.value or b"{}")
        margin = 0.5
        return lease.get("holder") == self.name and float(lease["expires"]) > self.wall() + margin

    async def compact(self) -> Compaction | None:
        """One compaction (module docstring); None when there is nothing it may do now."""
        now = self.wall()
        cut_wall = await self.cut_wall(now)
        previous = await load(self.broker) or Snapshot()
        previous_chunks = await chunks_of(self.broker)
        cuts: dict[str, int] = {}
        fresh: dict[str, list[dict[str, Any]]] = {}
        streams = await self.record_streams()
        for stream, subject in streams:
            cut = await first_at(self.js, stream, subject, cut_wall) - 1
            if followed(stream):
                floor = await ack_floor(self.js, stream, f"co_{self.name}_")
                if floor == -math.inf:
                    return None  # not following yet (a takeover in progress)
                cut = min(cut, int(floor))
            cut = max(cut, previous.seqs.get(stream, 0))
            cuts[stream] = cut
            after = previous.seqs.get(stream, 0)
            fresh[stream] = await read_range(self.js, stream, subject, after, cut)
        # Pure, on its own data: in a thread, so a large fold never holds up the lease.
        snapshot = await asyncio.to_thread(
            fold, previous, fresh, cuts, now, self.settings.dedupe_s, self.pools
        )
        if not await self._still_primary():
            return None
        size = await store(self.broker, snapshot, previous_chunks)
        forgotten = self.forget(snapshot)
        purged: dict[str, int] = {}
        if not await self._still_primary():
            return None
        for stream, subject in (*streams, *SEGMENT_STREAMS):
            upto = cuts.get(stream)
            if upto is None:
                upto = await first_at(self.js, stream, subject, cut_wall) - 1
            first = int((await self.js.stream_info(stream)).state.first_seq)
            purged[stream] = max(0, upto + 1 - first)  # limits streams: no gaps below the cut
            if purged[stream]:
                await self.js.purge_stream(stream, seq=upto + 1)
        report = Compaction(
            snapshot.generation,
            cut_wall,
            dict(cuts),
            snapshot.open_records(),
            len(snapshot.done),
            size,
            purged,
            forgotten,
        )
        self.done.append(report)
        return report

    async def run(self) -> None:
        """Until cancelled: compact every ``every_s`` while this replica is the primary."""
        try:
            await bound_replies(self.js, self.settings.dedupe_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the replies stay unbounded; the compaction goes on
            stop_if_cancelled()
            print(f"{self.name}: bounding {REPLIES}: {type(exc).__name__}: {exc}", flush=True)
        while True:
            stop_if_cancelled()
            await asyncio.sleep(self.settings.every_s)
            if not self.is_primary():
                continue
            try:
                report = await self.compact()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup: compacted next time
                stop_if_cancelled()
                print(f"{self.name}: compaction: {type(exc).__name__}: {exc}", flush=True)
                continue
            if report is not None:
                print(
                    f"{self.name}: compacted (snapshot {report.generation}: "
                    f"{report.open_records} open records, {report.remembered_ids} ids, "
                    f"{report.snapshot_bytes} B; purged {sum(report.purged.values())})",
                    flush=True,
                )


async def ensure_snapshot_bucket(js: JetStreamContext) -> None:
    """The ``orch_snapshot`` bucket (idempotent; one revision per key)."""
    from nats.js.api import KeyValueConfig, StorageType

    try:
        await js.key_value(SNAPSHOT_BUCKET)
    except Exception:  # not there yet (nats-py raises BucketNotFoundError)
        await js.create_key_value(
            KeyValueConfig(bucket=SNAPSHOT_BUCKET, history=1, storage=StorageType.FILE)
        )
