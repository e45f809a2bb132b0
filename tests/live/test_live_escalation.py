"""A failed attempt in live goes through the simulator's escalation, not straight to the end.

In memory (``Fleet`` of test_coordinator_logic): the team lead's retry waits
its backoff on the scenario clock and avoids the agent that failed; when the
budgets are spent the task fails for good, once, with the last attempt's
reason; a second report of the same failure changes nothing; the records
show the failed attempts as retried rows, as the simulator logs them; and a
task's pass-through fields (declared calls, payload) reach its agent; and the
periodic release of due retries opens no batch while none is due.
"""

from __future__ import annotations

from typing import Any

from test_coordinator_logic import EPOCH, Fleet, run

from sim.live.coordinator import Coordinator
from sim.live.records import build_records
from sim.live.transport import (
    EVENTS,
    SUBMIT,
    agent_consumer,
    agent_subject,
    merge_records,
    record_streams,
    result_subject,
    results_stream,
    tasks_stream,
)
from sim.world.streams import Streams
from sim.world.topology import build_world


async def fail(fleet: Fleet, task: int, agent: str, attempt: int, reason: str = "boom") -> None:
    t = fleet.wall.t - EPOCH
    document: dict[str, Any] = {
        "kind": "end",
        "task_id": task,
        "attempt": attempt,
        "agent": agent,
        "zone": fleet.zone[agent],
        "start_s": t - 1.0,
        "end_s": t,
        "outcome": "failed",
        "reason": reason,
    }
    subject = result_subject(fleet.zone[agent])  # the agent's zone's results stream
    await fleet.broker.publish(subject, document, f"e.{task}.{attempt}.{reason}")


async def settle(c: Coordinator, fleet: Fleet, seconds: float) -> None:
    """Let *seconds* of scenario time pass, then place what is due and read the streams."""
    fleet.wall.t += seconds
    await c.intake.release_due()
    await c.pump()


def test_a_failed_attempt_is_retried_elsewhere_after_the_backoff() -> None:
    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator("escalation.backoff=5s")
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fleet.result("start", 0, "a1")
        await fail(fleet, 0, "a1", 1)
        await c.pump()
        assert c.intake.escalation.waiting == 1  # the team lead's backoff: not yet placed
        await settle(c, fleet, 4.0)
        assert await fleet.take("a2") == []
        await settle(c, fleet, 1.0)
        assert await fleet.take("a2") == [(0, 2)]  # another agent, the next attempt number
        assert await fleet.take("a1") == []  # never back to the one that failed it
        await fleet.result("start", 0, "a2", 2)
        await fleet.result("end", 0, "a2", 2)
        await c.pump()
        assert c.counters.completed == 1 and c.counters.failed == 0

    run(body)


def test_when_every_budget_is_spent_the_task_fails_once_with_the_last_reason() -> None:
    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator(
            "escalation.team_retries=1", "escalation.zone_moves=[]", "escalation.chief_retries=0"
        )
        await fleet.beat("a1")
        await fleet.beat("a2")
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        await fail(fleet, 0, "a1", 1, "boom")
        await c.pump()
        await settle(c, fleet, 60.0)
        assert await fleet.take("a2") == [(0, 2)]
        await fail(fleet, 0, "a2", 2, "rate_limited")
        await fail(fleet, 0, "a2", 2, "rate_limited")  # reported twice: one failure
        await c.pump()
        await c.pump()  # the coordinator's final report comes back through the stream
        assert c.counters.failed == 1 and c.counters.completed == 0
        failed = await fleet.events("task_failed")
        assert len(failed) == 1 and failed[0]["reason"] == "rate_limited"
        results = [
            doc
            for z in ("A", "B")
            for doc in await fleet.broker.read_all(results_stream(z), result_subject(z))
        ]
        finals = [r for r in results if r.get("final")]
        assert len(finals) == 1 and finals[0]["reason"] == "rate_limited"
        # The coordinator's verdict goes on the task's zone's stream, beside its attempts.
        zone = fleet.zone["a2"]
        on_zone = await fleet.broker.read_all(results_stream(zone), result_subject(zone))
        assert [r for r in on_zone if r.get("final")] == finals
        # The records: two retried rows (the failed attempts) and the task's failure.
        scenario = c.scenario
        world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
        records = build_records(
            scenario,
            world,
            1.0,
            fleet.wall.t - EPOCH,
            await fleet.broker.read_all(SUBMIT, "orch.submit"),
            merge_records(
                [await fleet.broker.read_all(s, subj) for s, subj in record_streams(("A", "B"))]
            ),
            await fleet.broker.read_all(EVENTS, "orch.event"),
            [],
        )
        rows = records.tasks.sort_values("attempt", kind="stable")
        assert list(rows["outcome"]) == ["retried", "retried", "failed"]
        assert list(rows["reason"]) == ["boom", "rate_limited", "rate_limited"]
        # The verdict is on the attempt it judged, as the simulator logs it (the message went
        # under the next number, an id of its own): two attempts made, in both tables.
        assert finals[0]["attempt"] == 3 and list(rows["attempt"]) == [1, 2, 2]
        assert rows["start_s"].iloc[2] == rows["start_s"].iloc[1]
        assert records.counts["failed"] == 1 and records.counts["retried"] == 2

    run(body)


def test_a_zone_move_sends_the_task_to_the_nearest_other_zone() -> None:
    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator(
            "escalation.team_retries=0",
            "escalation.zone_moves=[another_zone]",
            "escalation.chief_retries=0",
        )
        await fleet.beat("a1", zone="A")
        await fleet.beat("b1", zone="B")
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        await fail(fleet, 0, "a1", 1)
        await c.pump()
        assert await fleet.take("b1") == [(0, 2)]  # at once: a move waits no backoff
        moves = await fleet.events("escalation")
        assert [(m["level"], m["move"], m["zone"]) for m in moves] == [
            ("zone", "another_zone", "A")
        ]

    run(body)


def test_declared_calls_and_a_payload_reach_the_agent() -> None:
    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator()
        await fleet.beat("a1")
        await c.take_over()
        calls = {"model": "m", "calls": [{"input_tokens": 3, "output_tokens": 1}]}
        document = {
            "kind": "task",
            "task_id": 7,
            "category": "CodeGen",
            "zone": "A",
            "arrival_s": 0.0,
            "work_s": 1.0,
            "llm": calls,
            "payload": {"prompt": "fix it"},
        }
        await fleet.broker.publish("orch.submit", document, "sub.7")
        await c.pump()
        follower = fleet.broker.follow(
            tasks_stream("A", "a1"), agent_subject("A", "a1"), agent_consumer("a1")
        )
        (message,) = await follower.read(5, 0.0)
        sent = message.document()
        assert sent["llm"] == calls and sent["payload"] == {"prompt": "fix it"}

    run(body)


def test_a_team_move_avoids_every_member_of_the_team_that_failed_it() -> None:
    """As the simulator's zone coordinator: "another team" skips the failed agent's team mates
    (a2, next in round robin), not only the failed agent; live agents carry their team."""

    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator(
            "escalation.team_retries=0",
            "escalation.zone_moves=[another_team]",
            "escalation.chief_retries=0",
        )
        await fleet.beat("a1", zone="A", team="A-T01")
        await fleet.beat("a2", zone="A", team="A-T01")
        await fleet.beat("a3", zone="A", team="A-T02")
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fail(fleet, 0, "a1", 1)
        await c.pump()
        assert await fleet.take("a2") == [] and await fleet.take("a3") == [(0, 2)]
        moves = await fleet.events("escalation")
        assert [(m["level"], m["move"]) for m in moves] == [("zone", "another_team")]

    run(body)


def test_release_due_opens_no_batch_until_a_retry_is_due() -> None:
    """Called every ~0.1 s: with no retry due it returns at once, without a batch to flush."""

    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator("escalation.backoff=5s")
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        await fleet.result("start", 0, "a1")
        await fail(fleet, 0, "a1", 1)
        await c.pump()
        opened: list[float] = []
        real = c.intake.batch

        def counting() -> Any:
            opened.append(fleet.wall.t)
            return real()

        c.intake.batch = counting  # type: ignore[method-assign]
        await c.intake.release_due()  # nothing due at all
        fleet.wall.t += 4.0
        await c.intake.release_due()  # the backoff not over yet
        assert opened == []
        fleet.wall.t += 1.0
        await c.intake.release_due()  # due: placed, in one batch
        assert len(opened) == 1
        assert await fleet.take("a2") == [(0, 2)]

    run(body)
