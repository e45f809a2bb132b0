"""The Broker seam's contract, held by both implementations: a real nats-server and memory.

Each test body runs twice, once per broker, so the in-memory broker the
coordinator's unit tests use cannot drift from what JetStream does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from sim.live.broker import Broker, CasFailed, encode
from sim.live.memory_broker import MemoryBroker
from sim.live.nats_broker import NatsBroker
from sim.live.transport import (
    AGENTS_BUCKET,
    LEASE_BUCKET,
    EmbeddedServer,
    Layout,
    agent_subject,
    ensure_layout,
    result_subject,
    results_stream,
    tasks_stream,
)

RESULTS, RESULT = results_stream("A"), result_subject("A")

ZONES = ("A", "B")


@pytest.fixture(params=["memory", "nats"])
def make_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], object]]:
    """A factory of an async context giving a laid-out broker of either kind."""
    server: EmbeddedServer | None = None
    if request.param == "nats":
        server = EmbeddedServer(tmp_path / "store")
        server.start()

    async def open_broker() -> AsyncIterator[Broker]:
        if server is None:
            yield MemoryBroker.orchestra(ZONES)
            return
        broker = await NatsBroker.connect(server.url, server.token, "contract")
        layout = Layout(ZONES, ("Gen",), ack_wait_s=30.0, heartbeat_ttl_s=60.0)
        await ensure_layout(broker.js, layout)
        try:
            yield broker
        finally:
            await broker.close()

    yield open_broker
    if server is not None:
        server.stop()


def run(make_broker: Callable[[], object], body: Callable[[Broker], object]) -> None:
    async def main() -> None:
        agen = make_broker()
        broker = await agen.__anext__()  # type: ignore[attr-defined]
        try:
            await body(broker)  # type: ignore[misc]
        finally:
            await agen.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_key_value_create_and_compare_and_set(make_broker: Callable[[], object]) -> None:
    async def body(broker: Broker) -> None:
        assert await broker.kv_get(LEASE_BUCKET, "primary") is None
        first = await broker.kv_create(LEASE_BUCKET, "primary", b'{"holder": "x"}')
        with pytest.raises(CasFailed):
            await broker.kv_create(LEASE_BUCKET, "primary", b"{}")  # the key exists
        second = await broker.kv_update(LEASE_BUCKET, "primary", b'{"holder": "y"}', first)
        assert second > first
        with pytest.raises(CasFailed):
            await broker.kv_update(LEASE_BUCKET, "primary", b"{}", first)  # a stale revision
        entry = await broker.kv_get(LEASE_BUCKET, "primary")
        assert entry is not None and entry.revision == second
        assert entry.document() == {"holder": "y"}
        await broker.kv_delete(LEASE_BUCKET, "primary")
        assert await broker.kv_get(LEASE_BUCKET, "primary") is None

    run(make_broker, body)


def test_every_entry_of_a_bucket_in_one_read(make_broker: Callable[[], object]) -> None:
    async def body(broker: Broker) -> None:
        assert await broker.kv_entries(AGENTS_BUCKET) == {}
        assert await broker.kv_keys(AGENTS_BUCKET) == []
        for n in range(5):
            await broker.kv_put(AGENTS_BUCKET, f"a{n}", encode({"beat": 0}))
        await broker.kv_put(AGENTS_BUCKET, "a3", encode({"beat": 1}))
        await broker.kv_delete(AGENTS_BUCKET, "a4")
        entries = await broker.kv_entries(AGENTS_BUCKET)
        assert sorted(entries) == ["a0", "a1", "a2", "a3"]
        assert entries["a3"].document() == {"beat": 1}
        assert sorted(await broker.kv_keys(AGENTS_BUCKET)) == ["a0", "a1", "a2", "a3"]

    run(make_broker, body)


def test_a_message_id_is_stored_once(make_broker: Callable[[], object]) -> None:
    async def body(broker: Broker) -> None:
        for _ in range(3):
            await broker.publish(RESULT, {"kind": "dispatch", "task_id": 1}, "d.1")
        await broker.publish(RESULT, {"kind": "dispatch", "task_id": 2}, "d.2")
        await broker.publish(RESULT, {"kind": "dispatch", "task_id": 2})  # no id: kept
        assert await broker.last_sequence(RESULTS) == 3
        documents = await broker.read_all(RESULTS, RESULT)
        assert [d["task_id"] for d in documents] == [1, 2, 2]

    run(make_broker, body)


def test_a_follower_reads_from_the_first_message_in_order(
    make_broker: Callable[[], object],
) -> None:
    async def body(broker: Broker) -> None:
        for n in range(10):
            await broker.publish(RESULT, {"n": n})
        follower = broker.follow(RESULTS, RESULT, "reader_1")
        got: list[int] = []
        while len(got) < 10:
            batch = await follower.read(4, 1.0)
            assert batch, got
            assert len(batch) <= 4
            got += [m.document()["n"] for m in batch]
        assert got == list(range(10))
        assert await follower.read(4, 0.05) == []  # nothing more: an empty batch, no error
        await follower.close()

    run(make_broker, body)


def test_a_work_queue_forgets_what_is_acked_and_purges_a_subject(
    make_broker: Callable[[], object],
) -> None:
    async def body(broker: Broker) -> None:
        stream = tasks_stream("A", "a1")  # (the zone's stream that holds a1's subject)
        mine, other = agent_subject("A", "a1"), agent_subject("A", "a2")
        for n in range(3):
            await broker.publish(mine, {"task_id": n}, f"t.{n}.0.a1")
        await broker.publish(other, {"task_id": 9}, "t.9.0.a2")
        await broker.publish(mine, {"task_id": 0}, "t.0.0.a1")  # a re-dispatch: deduped
        follower = broker.follow(stream, mine, "agent_a1")
        first = await follower.read(1, 1.0, ack=False)
        assert [m.document()["task_id"] for m in first] == [0] and first[0].delivered == 1
        await follower.ack(first[0])
        await follower.close()
        # (A work queue allows one consumer per subject: read it through the agent's own.)
        again = broker.follow(stream, mine, "agent_a1")
        rest = await again.read(5, 1.0, ack=False)
        assert [m.document()["task_id"] for m in rest] == [1, 2]  # 0 was acked: gone
        await again.close()
        await broker.purge(stream, mine)
        after = broker.follow(stream, mine, "agent_a1")
        assert await after.read(5, 0.2) == []
        await after.close()
        theirs = broker.follow(tasks_stream("A", "a2"), other, "agent_a2")
        assert [m.document()["task_id"] for m in await theirs.read(5, 1.0)] == [9]
        await theirs.close()

    run(make_broker, body)


def test_memory_redelivers_what_was_not_acked_after_the_ack_wait() -> None:
    """(Memory only: JetStream's ack wait is the live tests' kill -9 case.)"""
    now = [0.0]
    broker = MemoryBroker.orchestra(ZONES, wall=lambda: now[0], ack_wait_s=5.0)

    async def body() -> None:
        subject = agent_subject("A", "a1")
        await broker.publish(subject, {"task_id": 7})
        follower = broker.follow(tasks_stream("A", "a1"), subject, "agent_a1")
        assert [m.delivered for m in await follower.read(5, 0.0, ack=False)] == [1]
        now[0] = 4.0
        again = broker.follow(tasks_stream("A", "a1"), subject, "agent_a1")  # a restart
        assert await again.read(5, 0.0, ack=False) == []
        now[0] = 5.0
        redelivered = await again.read(5, 0.0, ack=False)
        assert [(m.document()["task_id"], m.delivered) for m in redelivered] == [(7, 2)]

    asyncio.run(body())


def test_a_request_is_answered_or_told_at_once_that_nobody_listens(
    make_broker: Callable[[], object],
) -> None:
    """The zone coordinator's call to an agent (``agent_calls``): an answer from a responder,
    a pattern's responder included; "no responders" at once for a subject nobody serves
    (a dead agent), not a wait for the timeout."""

    async def body(broker: Broker) -> None:
        stop = await broker.respond("orch.ctl.*", lambda s, d: b"ok " + s.encode() + d)
        await asyncio.sleep(0.05)  # (a real subscription reaches the server)
        assert await broker.request("orch.ctl.a1", b" call", 2.0) == b"ok orch.ctl.a1 call"
        await stop()
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        asked = loop.time()
        with pytest.raises(ConnectionError):
            await broker.request("orch.ctl.a1", b"call", 5.0)
        assert loop.time() - asked < 1.0  # told, not timed out

    run(make_broker, body)
