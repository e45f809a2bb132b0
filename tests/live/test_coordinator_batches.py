"""The coordinator's batched publishing (``sim.live.coordinator.outbox``) on the in-memory broker.

A batch of submissions or results is routed first and its writes published
together, in two phases: every task message on its agent's subject, acks
awaited, then the assignment records. These tests check that a batch keeps
the order that makes a takeover safe (a task recorded is always on its
subject), that a fault between or inside the phases leaves nothing recorded
and missing, and that a burst is dispatched and completed exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import agents_answer_calls
from test_coordinator_logic import Fleet

from sim.live.broker import BUNDLE, unbundle
from sim.live.coordinator.outbox import Outbox, Outgoing, Pipeline
from sim.live.memory_broker import MemoryBroker
from sim.live.transport import (
    LEGACY_RECORDS,
    agent_subject,
    dispatch_stream,
    record_streams,
    tasks_stream,
)


class Faulty(MemoryBroker):
    """A memory broker that can fail chosen publishes and slow task messages down."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.fail_records = False  # every assignment record raises (a fault between the phases)
        self.fail_subject: str | None = None  # publishes to this subject raise
        self.delay_s: dict[str, float] = {}  # task subject -> how long until its ack
        #: ("begin" | "acked", kind, task id) in the order they happened.
        self.log: list[tuple[str, str, int]] = []

    async def publish(
        self, subject: str, document: dict[str, Any], msg_id: str | None = None
    ) -> None:
        # A bundle of records is logged record by record (each is begun and acked with it).
        parts = [
            (str(d.get("kind", "task")), int(d.get("task_id", -1))) for d in unbundle([document])
        ]
        self.log += [("begin", kind, task) for kind, task in parts]
        if self.fail_records and any(kind == "assign" for kind, _ in parts):
            raise RuntimeError("broker gone")
        if subject == self.fail_subject:
            raise RuntimeError(f"{subject}: no ack")
        await asyncio.sleep(self.delay_s.get(subject, 0.0))
        await super().publish(subject, document, msg_id)
        self.log += [("acked", kind, task) for kind, task in parts]


def run(body: Callable[[Fleet], Awaitable[None]], faulty: bool = True) -> None:
    fleet = Fleet()
    if faulty:
        fleet.broker = Faulty.orchestra(("A", "B"), wall=fleet.wall)
        fleet.dead = agents_answer_calls(fleet.broker)
    asyncio.run(body(fleet))


def records(fleet: Fleet, kind: str) -> list[dict[str, Any]]:
    """Every zone's records of *kind* (dispatch, assign, start, end)."""
    broker = fleet.broker
    streams = [name for name, _ in record_streams(("A", "B"))]
    return [d for s in streams for d in unbundle(broker.waiting(s)) if d["kind"] == kind]


def on_subjects(fleet: Fleet, agents: list[str]) -> dict[str, list[int]]:
    """Task ids waiting on each agent's subject (read without taking them)."""
    return {
        a: [d["task_id"] for d in fleet.broker.waiting(tasks_stream("A", a), agent_subject("A", a))]
        for a in agents
    }


def placed_ids(placed: dict[str, list[int]]) -> list[int]:
    return sorted(t for ids in placed.values() for t in ids)


def steps(broker: Faulty, step: str, kind: str) -> list[int]:
    """Where in the publish log *step* happened to a message of *kind*."""
    return [i for i, (s, k, _) in enumerate(broker.log) if (s, k) == (step, kind)]


AGENTS = ["a1", "a2", "a3", "a4"]


def test_a_fault_between_the_phases_leaves_every_task_on_its_subject_unrecorded() -> None:
    async def body(fleet: Fleet) -> None:
        broker = fleet.broker
        assert isinstance(broker, Faulty)
        for agent in AGENTS:
            await fleet.beat(agent)
        first = fleet.coordinator(name="c1")
        await first.take_over()
        await fleet.submit(*range(6))
        broker.fail_records = True
        with pytest.raises(RuntimeError, match="broker gone"):
            await first.pump()  # one batch: phase 1 acked, every phase-2 record fails
        # Phase 1 went out whole: four tasks on four subjects (one slot each), two queued.
        placed = on_subjects(fleet, AGENTS)
        assert sorted(t for ts in placed.values() for t in ts) == [0, 1, 2, 3]
        assert records(fleet, "assign") == []
        assert sorted(d["task_id"] for d in records(fleet, "dispatch")) == list(range(6))
        # A takeover finds them unrecorded and places them again: the same agents in the same
        # join order, the same message ids, so the broker keeps one copy of each.
        broker.fail_records = False
        second = fleet.coordinator(name="c2")
        await second.take_over()
        assert on_subjects(fleet, AGENTS) == placed
        assigned = Counter(d["task_id"] for d in records(fleet, "assign"))
        assert assigned == Counter({0: 1, 1: 1, 2: 1, 3: 1})
        assert second.dispatcher.queued() == 2
        # Run to the end: every task completes once.
        for _ in range(3):
            for agent in AGENTS:
                for task, attempt in await fleet.take(agent):
                    for kind in ("start", "end"):
                        await fleet.result(kind, task, agent, attempt)
            await second.pump()
        c = second.counters
        assert (c.submitted, c.completed, c.duplicates) == (6, 6, 0)

    run(body)


def test_a_task_message_that_fails_in_phase_1_gets_no_record_and_the_others_do() -> None:
    async def body(fleet: Fleet) -> None:
        broker = fleet.broker
        assert isinstance(broker, Faulty)
        for agent in AGENTS:
            await fleet.beat(agent)
        first = fleet.coordinator(name="c1")
        await first.take_over()
        await fleet.submit(0, 1, 2, 3)
        broker.fail_subject = agent_subject("A", "a2")
        with pytest.raises(RuntimeError, match="no ack"):
            await first.pump()
        placed = on_subjects(fleet, AGENTS)
        assert placed["a2"] == [] and placed_ids(placed) == [0, 2, 3]
        # Recorded exactly the tasks that are on a subject: never recorded and missing.
        assert sorted(d["task_id"] for d in records(fleet, "assign")) == [0, 2, 3]
        broker.fail_subject = None
        second = fleet.coordinator(name="c2")
        await second.take_over()
        placed = on_subjects(fleet, AGENTS)
        assert placed_ids(placed) == [0, 1, 2, 3]  # task 1 placed again, once
        assert sorted(d["task_id"] for d in records(fleet, "assign")) == [0, 1, 2, 3]

    run(body)


def test_every_task_of_a_batch_is_acked_before_any_of_its_records_is_published() -> None:
    async def body(fleet: Fleet) -> None:
        broker = fleet.broker
        assert isinstance(broker, Faulty)
        for agent in AGENTS:
            await fleet.beat(agent)
        # Acks come back out of order: the first agent's slowest.
        broker.delay_s = {agent_subject("A", a): 0.004 * (4 - i) for i, a in enumerate(AGENTS)}
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1, 2, 3)
        broker.log.clear()
        await c.pump()
        tasks_acked = steps(broker, "acked", "task")
        records_begun = steps(broker, "begin", "assign")
        assert len(tasks_acked) == 4 and len(records_begun) == 4
        assert max(tasks_acked) < min(records_begun)
        # Concurrent, not one after another: every task publish began before the first ack.
        tasks_begun = steps(broker, "begin", "task")
        assert max(tasks_begun) < min(tasks_acked)

    run(body)


def test_a_burst_is_dispatched_and_completed_exactly_once() -> None:
    n, agents = 600, [f"a{i:02d}" for i in range(20)]

    async def body(fleet: Fleet) -> None:
        for agent in agents:
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(*range(n))
        handled = await c.pump()  # the follower's batches: 256, 256, 88
        assert handled == n
        assert c.dispatcher.queued() == n - len(agents)
        sent: Counter[int] = Counter()
        while c.counters.completed < n:
            took = 0
            for agent in agents:
                for task, attempt in await fleet.take(agent):
                    sent[task] += 1
                    took += 1
                    for kind in ("start", "end"):
                        await fleet.result(kind, task, agent, attempt)
            assert took > 0  # every round frees slots that pull queued work
            await c.pump()
        assert sent == Counter(range(n))
        assert Counter(d["task_id"] for d in records(fleet, "assign")) == sent
        assert Counter(d["task_id"] for d in records(fleet, "dispatch")) == sent
        counters = c.counters
        assert (counters.submitted, counters.completed, counters.duplicates) == (n, n, 0)

    run(body, faulty=False)


def test_a_batch_records_travel_in_one_message_per_zone_and_phase() -> None:
    """Forty submissions, four free agents in zone A: one routing bundle, one assignment one."""

    async def body(fleet: Fleet) -> None:
        broker = fleet.broker
        for agent in AGENTS:
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(*range(40))
        assert await c.pump() == 40
        stored = broker.waiting(dispatch_stream("A"))
        assert [d["kind"] for d in stored] == [BUNDLE, BUNDLE]  # phase 1, then phase 2
        assert [len(d["records"]) for d in stored] == [40, 4]
        assert broker.waiting(dispatch_stream("B")) == []
        assert sorted(d["task_id"] for d in records(fleet, "dispatch")) == list(range(40))
        assert sorted(d["task_id"] for d in records(fleet, "assign")) == [0, 1, 2, 3]
        # A takeover opens the bundles: the same four assignments are adopted, none re-sent.
        second = fleet.coordinator(name="c2")
        await second.take_over()
        assert placed_ids(on_subjects(fleet, AGENTS)) == [0, 1, 2, 3]
        assert second.dispatcher.queued() == 36
        assert len(broker.waiting(dispatch_stream("A"))) == 2

    run(body, faulty=False)


def test_a_takeover_reads_the_fleet_wide_record_streams_of_an_earlier_layout() -> None:
    """A store upgraded in place: what ORCH_RESULTS recorded is done, not placed again."""

    async def body(fleet: Fleet) -> None:
        broker = fleet.broker
        for (stream, subject), docs in zip(
            LEGACY_RECORDS,
            (
                [{"kind": "assign", "task_id": 0, "attempt": 1, "agent": "a1", "assign_s": 0.0}],
                [
                    {"kind": "start", "task_id": 0, "attempt": 1, "agent": "a1", "zone": "A"}
                    | {"start_s": 0.0},
                    {"kind": "end", "task_id": 0, "attempt": 1, "agent": "a1", "zone": "A"}
                    | {"start_s": 0.0, "end_s": 1.0, "outcome": "completed"},
                ],
            ),
            strict=True,
        ):
            broker.add_stream(stream, [subject])
            for doc in docs:
                await broker.publish(subject, doc)
        for agent in AGENTS:
            await fleet.beat(agent)
        await fleet.submit(0, 1)
        c = fleet.coordinator()
        await c.take_over()
        assert (c.counters.submitted, c.counters.completed) == (2, 1)
        assert placed_ids(on_subjects(fleet, AGENTS)) == [1]  # task 0 is not run again

    run(body, faulty=False)


def test_a_followers_pipeline_keeps_at_most_its_depth_of_flushes_in_flight() -> None:
    """Flushes overlap up to the depth (the follower reads on meanwhile), each keeps its two
    phases in order, and a failed flush is raised to the follower."""

    async def body() -> None:
        broker = Faulty()
        broker.add_stream("SLOW", ["slow"])
        broker.add_stream("RECORDS", ["rec"])
        broker.delay_s["slow"] = 0.05
        in_flight: list[int] = []
        peaks: list[int] = []
        original = broker.publish

        async def counting(subject: str, document: dict[str, Any], msg_id: str | None = None):  # type: ignore[no-untyped-def]
            in_flight.append(1)
            peaks.append(len(in_flight))
            try:
                await original(subject, document, msg_id)
            finally:
                in_flight.pop()

        broker.publish = counting  # type: ignore[method-assign]
        pipeline = Pipeline(broker, depth=3)
        for n in range(6):
            outbox = Outbox()
            outbox.put(Outgoing("slow", {"kind": "task", "task_id": n}, f"t.{n}"),
                       Outgoing("rec", {"kind": "assign", "task_id": n}, f"a.{n}"))  # fmt: skip
            await pipeline.put(outbox)
        await pipeline.drain()
        assert max(peaks) == 3  # three batches' task messages written at once, never a fourth
        order = [(event, kind, task) for event, kind, task in broker.log]
        for n in range(6):  # each batch: its task acked before its record begins
            assert order.index(("acked", "task", n)) < order.index(("begin", "assign", n))
        broker.fail_subject = "slow"
        failing = Outbox()
        failing.put(Outgoing("slow", {"kind": "task", "task_id": 9}, "t.9"))
        await pipeline.put(failing)
        with pytest.raises(RuntimeError, match="no ack"):
            await pipeline.drain()  # (or a later put, once it has failed)

    asyncio.run(body())
