"""Creating the broker's streams, buckets and consumers (idempotent), and listing the queues.

What each stream holds and why it is laid out so: ``sim.live.subjects``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError

from sim.live.broker import DEDUPE_WINDOW_S
from sim.live.subjects import (
    AGENTS_BUCKET,
    EVENTS,
    LEASE_BUCKET,
    LEGACY_TASKS,
    MAX_AGENTS_PER_ZONE,
    METRICS,
    REPLIES,
    SUBMIT,
    TASKS_PREFIX,
    agent_consumer,
    agent_subject,
    dispatch_stream,
    dispatch_subject,
    legacy_tasks_stream,
    result_subject,
    results_stream,
    retired_task_subjects,
    submit_stream,
    submit_subject,
    tasks_stream,
    zone_task_subjects,
    zone_tasks_streams,
)

#: JetStream's error codes for a durable that exists with other settings: "storage type
#: can not be updated", "consumer already exists".
STORED_CONSUMER = (10012, 10148)


@dataclass(frozen=True)
class Layout:
    """Stream and bucket settings, in wall seconds."""

    zones: tuple[str, ...]
    categories: tuple[str, ...]
    ack_wait_s: float
    heartbeat_ttl_s: float
    #: The zones' submission streams (``subjects.submit_stream``); a service has none.
    zone_submits: bool = True


async def ensure_layout(js: JetStreamContext, layout: Layout) -> None:
    """Create the streams and buckets if they do not exist yet (idempotent)."""
    storage = StorageType.FILE
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(LEGACY_TASKS)  # a run purges the task queues anyway
    for name, subjects, retention in (
        (SUBMIT, ["orch.submit"], RetentionPolicy.LIMITS),
        (EVENTS, ["orch.event"], RetentionPolicy.LIMITS),
        (METRICS, ["orch.metric"], RetentionPolicy.LIMITS),
    ):
        await _ensure_stream(js, name, subjects, retention)
    for zone in layout.zones:
        await ensure_zone_stream(js, zone)
        if layout.zone_submits:
            await _ensure_stream(
                js, submit_stream(zone), [submit_subject(zone)], RetentionPolicy.LIMITS
            )
    for bucket, ttl in ((AGENTS_BUCKET, layout.heartbeat_ttl_s), (LEASE_BUCKET, None)):
        try:
            await js.key_value(bucket)
        except Exception:  # the bucket does not exist yet (nats-py raises BucketNotFoundError)
            await js.create_key_value(
                KeyValueConfig(bucket=bucket, ttl=ttl, history=1, storage=storage)
            )


async def _ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: list[str],
    retention: RetentionPolicy,
    max_consumers: int | None = None,
    per_subject: int | None = None,
) -> None:
    config = StreamConfig(
        name=name,
        subjects=subjects,
        retention=retention,
        storage=StorageType.FILE,
        duplicate_window=DEDUPE_WINDOW_S,
        max_consumers=max_consumers,
        max_msgs_per_subject=per_subject if per_subject is not None else -1,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)


async def ensure_replies_stream(js: JetStreamContext) -> None:
    """``ORCH_REPLIES`` (idempotent): a service's replies to its clients (``live serve`` only).

    Not part of ``ensure_layout``: a live run has no client to answer, so its broker
    carries no stream it does not use.
    """
    await _ensure_stream(js, REPLIES, ["orch.reply.>"], RetentionPolicy.LIMITS, per_subject=1)


async def ensure_zone_stream(js: JetStreamContext, zone: str) -> None:
    """*zone*'s streams (idempotent): its work queue, its results and its dispatch records.

    An agent started by hand makes sure of them (it reports on its zone's results stream).
    """
    await _ensure_stream(js, results_stream(zone), [result_subject(zone)], RetentionPolicy.LIMITS)
    await _ensure_stream(
        js, dispatch_stream(zone), [dispatch_subject(zone)], RetentionPolicy.LIMITS
    )
    legacy = await _set_legacy_queue_aside(js, zone)
    for stream, subjects in zone_tasks_streams(zone):
        await _ensure_stream(
            js, stream, [subjects], RetentionPolicy.WORK_QUEUE, max_consumers=MAX_AGENTS_PER_ZONE
        )
    if legacy is not None:
        await _move_legacy_queue(js, zone, legacy)


async def _set_legacy_queue_aside(js: JetStreamContext, zone: str) -> str | None:
    """*zone*'s one work-queue stream of the earlier layout, if the store has it, moved off
    the shards' subjects (its messages kept); its name, or None.

    Its subjects (``orch.task.<zone>.>``) overlap its shards', so the shards cannot be
    made beside it: it takes a subject of its own first (``retired_task_subjects``), then
    what waits in it goes onto the shards (:func:`_move_legacy_queue`), then it goes. Each
    step leaves the store in a state the next start takes up, so a broker or coordinator
    stopped half-way loses nothing (a task moved twice is one by its message id).
    """
    legacy = legacy_tasks_stream(zone)
    try:
        info = await js.stream_info(legacy)
    except NotFoundError:
        return None
    subjects = list(info.config.subjects or ())
    if subjects == [retired_task_subjects(zone)]:
        return legacy  # set aside by an earlier start that stopped before the move
    if subjects != [zone_task_subjects(zone)]:
        return None  # (another zone's shard that happens to bear the name)
    for consumer in await js.consumers_info(legacy):  # the agents' (made anew on the shards)
        await js.delete_consumer(legacy, str(consumer.name))
    info.config.subjects = [retired_task_subjects(zone)]
    await js.update_stream(info.config)
    return legacy


async def _move_legacy_queue(js: JetStreamContext, zone: str, legacy: str) -> None:
    """Each task still waiting in the set-aside stream onto its agent's subject in its shard,
    with its message id; then the stream is deleted."""
    info = await js.stream_info(legacy)
    seq, left = int(info.state.first_seq), int(info.state.messages)
    while left > 0:
        try:
            message = await js.get_msg(legacy, seq, subject=zone_task_subjects(zone), next=True)
        except NotFoundError:
            break
        agent_token = (message.subject or "").rsplit(".", 1)[-1]
        await js.publish(
            agent_subject(zone, agent_token), message.data or b"", headers=message.headers
        )
        seq, left = int(message.seq or seq) + 1, left - 1
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(legacy)


async def ensure_agent_consumer(
    js: JetStreamContext, zone: str, agent_id: str, ack_wait_s: float
) -> None:
    """The agent's own durable pull consumer on its zone's stream (idempotent).

    Its state (what it delivered, what was acked) is kept in the broker's
    memory, not in its store (``mem_storage``). Why: with ``sync_interval:
    always`` a file-backed consumer fsyncs its state file at each delivery and
    ack, three fsyncs a task against two for the task's own message (stored,
    then removed on its ack), and the disk's fsyncs are what bounds the
    dispatch rate (``benchmarks/bench_live.py``). Nothing is lost with it:
    the work-queue stream itself keeps every task until its ack, so the
    consumer a broker restart forgets is made again by its agent (``_slot``
    binds anew when a pull fails) and delivers what is still there. What a
    restart does forget is the delivery count: a task in hand when the
    broker died comes again as a first delivery, under the same attempt
    number, so its second run's reports share their message ids with the
    first's and are deduplicated (completion counts once by task id anyway).
    """
    durable = agent_consumer(agent_id)
    config = ConsumerConfig(
        durable_name=durable,
        name=durable,
        filter_subject=agent_subject(zone, agent_id),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=-1,
        max_ack_pending=-1,
        mem_storage=True,
    )
    try:
        await js.add_consumer(tasks_stream(zone, agent_id), config)
    except APIError as exc:
        # The consumer exists in the store (a store from before mem_storage): made anew,
        # which loses nothing (the stream keeps the unacked tasks, see above).
        if exc.err_code not in STORED_CONSUMER:
            raise
        await js.delete_consumer(tasks_stream(zone, agent_id), durable)
        await js.add_consumer(tasks_stream(zone, agent_id), config)


@dataclass(frozen=True)
class TaskStream:
    """A zone work-queue stream as the broker reports it (what a run leaves behind)."""

    name: str
    subjects: tuple[str, ...]
    #: Messages stored since the stream was created (its last sequence: a purge does not
    #: reset it, and acks delete work-queue messages).
    stored: int
    waiting: int  # messages still in it


async def task_streams(js: JetStreamContext) -> list[TaskStream]:
    """Every work-queue stream on the broker, by name (``ORCH_TASKS`` and ``ORCH_TASKS_*``)."""
    out = []
    for info in await js.streams_info():
        name = info.config.name or ""
        if name == LEGACY_TASKS or name.startswith(TASKS_PREFIX):
            subjects = tuple(info.config.subjects or ())
            out.append(
                TaskStream(name, subjects, int(info.state.last_seq), int(info.state.messages))
            )
    return sorted(out, key=lambda s: s.name)
