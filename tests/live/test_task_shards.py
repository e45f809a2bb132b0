"""A zone's work queue in shards (``subjects.TASK_SHARDS``): each agent's subject in one.

The shard is a hash of the agent's id, so every party (the agent, the
coordinator, a restarted agent) names the same stream without asking; the
shards split a zone's agents about evenly; a store of the earlier layout
(one ``ORCH_TASKS_<zone>`` whose subjects overlap the shards') is migrated,
what waited in it moved onto its agents' new subjects.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from nats.js.api import ConsumerConfig, RetentionPolicy, StreamConfig

from sim.live.broker import decode, encode, subject_matches
from sim.live.layout import _set_legacy_queue_aside
from sim.live.subjects import TASK_SHARDS
from sim.live.transport import (
    EmbeddedServer,
    agent_subject,
    connect,
    ensure_zone_stream,
    legacy_tasks_stream,
    task_shard,
    tasks_stream,
    zone_task_subjects,
    zone_tasks_streams,
)


def test_each_agents_subject_lies_in_its_own_shard_and_no_other() -> None:
    for agent in ("a1", "us-east-1-codegen-001", "A-CodeGen-s9e7859"):
        streams = dict(zone_tasks_streams("us-east-1"))
        subject = agent_subject("us-east-1", agent)
        holding = [name for name, pattern in streams.items() if subject_matches(pattern, subject)]
        assert holding == [tasks_stream("us-east-1", agent)]
        assert subject_matches(zone_task_subjects("us-east-1"), subject)
        assert task_shard(agent) == task_shard(agent)  # (no per-process salt)


def test_shards_split_a_zones_agents_about_evenly() -> None:
    counts = Counter(task_shard(f"A-CodeGen-{n:05d}") for n in range(10_000))
    assert sorted(counts) == list(range(TASK_SHARDS))
    # Binomial: 1,250 expected, standard deviation ~33; 250 is over seven of them.
    assert all(abs(c - 10_000 / TASK_SHARDS) < 250 for c in counts.values())


async def migrate(server: EmbeddedServer, stopped_half_way: bool) -> None:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()
    try:
        old = StreamConfig(
            name=legacy_tasks_stream("A"),
            subjects=[zone_task_subjects("A")],
            retention=RetentionPolicy.WORK_QUEUE,
        )
        await js.add_stream(old)
        for n, agent in enumerate(("a1", "a2", "a3")):  # waiting in the old queue
            subject = f"orch.task.A.{agent}"
            await js.publish(subject, encode({"task_id": n}), headers={"Nats-Msg-Id": f"t.{n}"})
        consumer = ConsumerConfig(durable_name="agent-a1", filter_subject="orch.task.A.a1")
        await js.add_consumer(legacy_tasks_stream("A"), consumer)  # an agent's, of that layout
        if stopped_half_way:
            # A start that set the old queue aside and stopped before moving what waited.
            assert await _set_legacy_queue_aside(js, "A") == legacy_tasks_stream("A")
            moved_before = list(zone_tasks_streams("A"))[task_shard("a2")][0]
            await js.add_stream(
                StreamConfig(
                    name=moved_before,
                    subjects=[dict(zone_tasks_streams("A"))[moved_before]],
                    retention=RetentionPolicy.WORK_QUEUE,
                )
            )  # ...and one that had moved a2's task already: moved again, it is one
            await js.publish(
                agent_subject("A", "a2"), encode({"task_id": 1}), headers={"Nats-Msg-Id": "t.1"}
            )
        await ensure_zone_stream(js, "A")
        names = {str(info.config.name) for info in await js.streams_info()}
        assert legacy_tasks_stream("A") not in names
        assert {name for name, _ in zone_tasks_streams("A")} <= names
        await ensure_zone_stream(js, "A")  # idempotent
        for n, agent in enumerate(("a1", "a2", "a3")):  # each on its agent's new subject, once
            moved = await js.get_last_msg(tasks_stream("A", agent), agent_subject("A", agent))
            assert decode(moved.data or b"") == {"task_id": n}
        counts = [
            (await js.stream_info(name)).state.messages for name, _ in zone_tasks_streams("A")
        ]
        assert sum(counts) == 3
    finally:
        await nc.close()


@pytest.mark.parametrize("stopped_half_way", [False, True])
def test_a_store_of_the_one_stream_layout_is_migrated(
    nats_server: EmbeddedServer, stopped_half_way: bool
) -> None:
    """The old queue (and an agent's consumer on it) gives way to the shards, its tasks moved.

    Stopped half-way (the old queue set aside, one task moved already), the next start
    moves the rest and the task moved twice is stored once (its message id).
    """
    asyncio.run(asyncio.wait_for(migrate(nats_server, stopped_half_way), 60.0))
