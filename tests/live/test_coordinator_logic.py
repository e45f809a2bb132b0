"""The live coordinator's logic on the in-memory broker: no server, a wall clock we turn.

Each test builds a coordinator on ``MemoryBroker.orchestra`` (the streams and
buckets a live run lays out), writes heartbeats and results as agents would,
and steps the coordinator: ``take_over`` (catch-up), ``pump`` (handle what
the streams hold), ``check_health`` (one round). Agents "take" their tasks
through their own durable consumer, as a live agent does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import agents_answer_calls, small

from sim.live.beats import bundle, bundle_key
from sim.live.broker import encode
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.memory_broker import MemoryBroker
from sim.live.provisioner import AgentSpec
from sim.live.subjects import START_UNREPORTED
from sim.live.transport import (
    AGENTS_BUCKET,
    EVENTS,
    agent_consumer,
    agent_subject,
    result_subject,
    submit_subject,
    tasks_stream,
)
from sim.policies.health import ConsecutiveFailureDetector, PhiAccrualDetector

EPOCH = 1000.0  # wall time of scenario second 0; time-scale 1: scenario s = wall s - EPOCH
INTERVAL = 10.0  # small.yaml's health interval


async def busy_burst_primary(
    scenario: Any, provisioner: Any, busy: int, queued: int
) -> tuple[Coordinator, MemoryBroker]:
    """burst.yaml's zone A under a primary a minute on: *busy* Generic agents all busy,
    *queued* tasks submitted and read (the autoscaler's and alerts' overload, on a memory
    broker). The caller evaluates or samples at scenario second 60."""
    wall = [EPOCH]
    broker = MemoryBroker.orchestra(("A",), wall=lambda: wall[0])
    agents_answer_calls(broker)
    config = CoordinatorConfig("memory://", None, Clock(EPOCH, 1.0), wall=lambda: wall[0])
    c = Coordinator("c1", scenario, config, provisioner, ("A",), ("Generic",), broker=broker)
    for n in range(busy):
        beat = {"agent": f"g{n}", "zone": "A", "category": "Generic", "status": "busy"}
        beat.update(in_flight=1, slots=1, speed=1.0, wall=wall[0])
        await broker.kv_put(AGENTS_BUCKET, f"g{n}", json.dumps(beat).encode())
    await c.take_over()
    for n in range(queued):
        doc = {"kind": "task", "task_id": n, "category": "Generic", "zone": "A"}
        await broker.publish("orch.submit", {**doc, "work_s": 10.0, "arrival_s": 1.0})
    await c.pump()
    wall[0] = EPOCH + 60
    return c, broker


class Wall:
    """A wall clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = EPOCH

    def __call__(self) -> float:
        return self.t


class Provisioner:
    def __init__(self) -> None:
        self.started: list[AgentSpec] = []

    def start(self, spec: AgentSpec) -> None:
        self.started.append(spec)

    def kill(self, agent_id: str) -> bool:
        return False

    def running(self) -> list[str]:
        return []

    def reap(self) -> list[str]:
        return []

    def stop_all(self) -> None:
        return None


class Fleet:
    """The broker, the clock, and what agents would write and read.

    *bundled*: the agents beat as a simulated fleet's do (``sim.live.beats``):
    an agent's first beat (its join) and its ``offline`` on its own key, every
    other beat in the fleet's bundle, which carries the agents that beat at
    the bundle's wall time and no one else.
    """

    def __init__(self, bundled: bool = False) -> None:
        self.wall = Wall()
        self.broker = MemoryBroker.orchestra(("A", "B"), wall=self.wall)
        #: Agents that no longer answer their coordinator's calls (killed).
        self.dead = agents_answer_calls(self.broker)
        self.zone: dict[str, str] = {}
        self.bundled = bundled
        self._joined: set[str] = set()
        self._bundle: tuple[float, dict[str, dict[str, Any]]] = (EPOCH, {})

    def coordinator(self, *overrides: str, name: str = "c1", lease_s: float = 1.5) -> Coordinator:
        scenario = small("policies.load_balancing=round_robin", *overrides)
        config = CoordinatorConfig(
            "memory://", None, Clock(EPOCH, 1.0), lease_s=lease_s, wall=self.wall, autoscale=False
        )
        return Coordinator(
            name,
            scenario,
            config,
            Provisioner(),
            ("A", "B"),
            ("CodeGen", "Review"),
            broker=self.broker,
        )

    async def beat(
        self,
        agent: str,
        zone: str = "A",
        status: str = "idle",
        held: int = 0,
        incarnation: str = "first",
        team: str = "",
        calls: bool = True,
    ) -> None:
        self.zone[agent] = zone
        document = {
            "agent": agent,
            "zone": zone,
            "category": "CodeGen",
            "status": status,
            "in_flight": held,
            "slots": 1,
            "speed": 1.0,
            "wall": self.wall.t,
            "incarnation": incarnation,
            "team": team,
            "calls": calls,
        }
        if not self.bundled or agent not in self._joined or status == "offline":
            self._joined.add(agent)
            await self.broker.kv_put(AGENTS_BUCKET, agent, encode(document))
            return
        wall, carried = self._bundle
        if wall != self.wall.t:  # a new period: the bundle carries who beat in it
            carried = {}
            self._bundle = (self.wall.t, carried)
        carried[agent] = {k: v for k, v in document.items() if k != "wall"}
        value = bundle(carried.values(), self.wall.t, self.wall.t - EPOCH)
        await self.broker.kv_put(AGENTS_BUCKET, bundle_key("test", 0), value)

    async def submit(
        self, *task_ids: int, zone: str = "A", subject: str = "orch.submit", apart_s: float = 0.0
    ) -> None:
        """Tasks arriving now (*apart_s*: each that much after the one before: arrivals the
        keyed draws of faults and losses tell apart, as a workload's are)."""
        for i, n in enumerate(task_ids):
            document = {
                "kind": "task",
                "task_id": n,
                "category": "CodeGen",
                "zone": zone,
                "arrival_s": self.wall.t - EPOCH + i * apart_s,
                "work_s": 10.0,
            }
            await self.broker.publish(subject, document, f"sub.{n}.task")

    async def take(self, agent: str) -> list[tuple[int, int]]:
        """(task, attempt) of what waits on the agent's subject, taken as the agent takes it."""
        zone = self.zone[agent]
        follower = self.broker.follow(
            tasks_stream(zone, agent), agent_subject(zone, agent), agent_consumer(agent)
        )
        return [
            (m.document()["task_id"], m.document()["attempt"]) for m in await follower.read(50, 0.0)
        ]

    async def result(
        self, kind: str, task: int, agent: str, attempt: int = 1, **extra: Any
    ) -> None:
        t = self.wall.t - EPOCH
        document: dict[str, Any] = {
            "kind": kind,
            "task_id": task,
            "attempt": attempt,
            "agent": agent,
            "zone": self.zone[agent],
            "start_s": t,
        }
        if kind == "end":
            document.update(outcome="completed", end_s=t)
        document.update(extra)
        subject = result_subject(self.zone[agent])  # the agent's zone's results stream
        await self.broker.publish(subject, document, f"{kind[0]}.{task}.{attempt}")

    async def events(self, kind: str) -> list[dict[str, Any]]:
        docs = await self.broker.read_all(EVENTS, "orch.event")
        return [{**d, **json.loads(d["detail"])} for d in docs if d["kind"] == kind]


#: Events that follow from heartbeats: the same whether an agent beats on its own key or in
#: its fleet's bundle (other events may name fresh random ids: a replacement agent's).
BEAT_EVENTS = ("agent_joined", "agent_restarted", "agent_left", "agent_detected")


def run(body: Callable[[Fleet], Awaitable[None]]) -> None:
    """*body* with agents beating on their own keys, then bundled: the same verdicts either way."""
    logs = []
    for bundled in (False, True):
        fleet = Fleet(bundled)
        asyncio.run(body(fleet))
        events = asyncio.run(fleet.broker.read_all(EVENTS, "orch.event"))
        logs.append(([e for e in events if e["kind"] in BEAT_EVENTS], [e["kind"] for e in events]))
    assert logs[0] == logs[1]


def test_tasks_go_to_the_balancers_agent_queue_when_full_and_a_freed_slot_pulls() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        assert sorted(c.agents) == ["a1", "a2"]
        await fleet.submit(0, 1, 2)
        await c.pump()
        # Round robin in join order, one slot each and no queue on the agent: the third waits.
        assert await fleet.take("a1") == [(0, 1)]
        assert await fleet.take("a2") == [(1, 1)]
        assert c.dispatcher.queued() == 1
        await fleet.result("start", 0, "a1")
        await fleet.result("end", 0, "a1")
        await c.pump()
        assert await fleet.take("a1") == [(2, 1)]  # the freed slot pulled the queued task
        assert await fleet.take("a2") == []
        assert c.dispatcher.queued() == 0 and c.counters.completed == 1

    run(body)


def test_an_end_that_stands_for_its_unreported_start_counts_as_both() -> None:
    """An attempt shorter than the agent's start grace reports only its end (marked): the
    coordinator books the start from it (started, wait), frees the slot, and a takeover
    rebuilds the same books from the streams."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1, 2)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        fleet.wall.t += 2.0  # task 0 waited 2 s before its (instant) attempt
        await fleet.result("end", 0, "a1", **{START_UNREPORTED: True})
        await fleet.result("end", 1, "a2")  # an older agent's end, its start never read
        await c.pump()
        assert await fleet.take("a1") == [(2, 1)]  # the freed slot pulled the queued task
        assert c.counters.completed == 2
        assert c.counters.started == 1  # task 0's, from its end; task 1's start is unknown
        assert c.counters.wait_sum == pytest.approx(2.0)
        assert c.in_flight == {}  # booked and ended: nothing left in flight
        standby = fleet.coordinator(name="c2")
        await standby.take_over()
        assert standby.counters.completed == 2 and standby.counters.duplicates == 0
        assert standby.in_flight == {}  # the marked end closed the start it stood for

    run(body)


def test_submissions_on_the_zones_streams_are_followed_and_caught_up_once() -> None:
    """An arrival may come on ``orch.submit`` or on its zone's ``orch.submit.<zone>``: the
    primary follows both, and a takeover reads both without placing anything twice."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0)
        await fleet.submit(1, 2, subject=submit_subject("A"))
        await c.pump()
        assert c.counters.submitted == 3
        taken = [await fleet.take(a) for a in ("a1", "a2", "a3")]
        assert sorted(t for held in taken for t, _ in held) == [0, 1, 2]
        standby = fleet.coordinator(name="c2")
        await standby.take_over()
        assert standby.counters.submitted == 3 and standby.dispatcher.queued() == 0
        assert [await fleet.take(a) for a in ("a1", "a2", "a3")] == [[], [], []]  # none again

    run(body)


def test_a_takeover_resumes_from_the_streams_exactly_once() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        first = fleet.coordinator(name="c1")
        await first.take_over()
        await fleet.submit(0, 1, 2, 3)
        await first.pump()
        assert await fleet.take("a1") == [(0, 1)] and await fleet.take("a2") == [(1, 1)]
        for kind in ("start", "end"):
            await fleet.result(kind, 0, "a1")
        await first.pump()
        assert await fleet.take("a1") == [(2, 1)]
        await fleet.result("start", 2, "a1")
        # The first primary is gone; a redelivered copy of task 0 ends again on a2.
        await fleet.result("end", 0, "a2", attempt=2)
        second = fleet.coordinator(name="c2")
        await second.take_over()
        c = second.counters
        assert (c.submitted, c.completed, c.duplicates) == (4, 1, 1)
        # What the streams show held by live agents stays there: nothing is sent again.
        assert await fleet.take("a1") == [] and await fleet.take("a2") == []
        assert second.dispatcher.queued() == 1  # task 3 still waits for a slot
        for kind in ("start", "end"):
            await fleet.result(kind, 1, "a2")
        await second.pump()
        assert await fleet.take("a2") == [(3, 1)]
        await fleet.result("end", 2, "a1")
        for kind in ("start", "end"):
            await fleet.result(kind, 3, "a2")
        await second.pump()
        assert (c.completed, c.duplicates) == (4, 1)
        assert all(t.done for t in second.tasks.values())

    run(body)


async def rounds(
    fleet: Fleet, c: Coordinator, n: int, beating: tuple[str, ...], late: float = 0.0
) -> None:
    """*n* health rounds one interval apart; the *beating* agents beat before each."""
    for _ in range(n):
        fleet.wall.t += INTERVAL
        for agent in beating:
            await fleet.beat(agent, fleet.zone[agent])
        await c.check_health(late)


def test_a_dead_agent_is_detected_on_the_third_missed_check_and_its_task_placed_anew() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        assert isinstance(c.detector, ConsecutiveFailureDetector)
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fleet.result("start", 0, "a1")
        await c.pump()
        await rounds(fleet, c, 2, beating=("a2",))
        assert await fleet.events("agent_detected") == []  # two missed checks: not yet
        await rounds(fleet, c, 1, beating=("a2",))
        [detected] = await fleet.events("agent_detected")
        assert detected["subject"] == "a1" and detected["redistributed"] == 1
        assert detected["detect_s"] == 3 * INTERVAL
        assert await fleet.take("a2") == [(0, 2)]  # placed anew, as the next attempt
        assert not c.agents["a1"].healthy and c.agents["a2"].healthy

    run(body)


def test_an_agent_that_died_undeclared_before_a_takeover_is_declared_by_the_new_primary() -> None:
    """The spec's chiefs keep their pools through Raft: an agent that died just before its
    primary did, not yet declared, is declared by the next one and replaced; what it held is
    placed anew. Live's new primary had dropped its stale registry key unseen (never declared,
    never replaced), as it rightly drops one its predecessor already declared."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3", "a4"):
            await fleet.beat(agent)
        first = fleet.coordinator("health.replace_failed=true", name="c1")
        await first.take_over()
        await fleet.submit(0)
        await first.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fleet.result("start", 0, "a1")
        await first.pump()
        fleet.dead.add("a4")
        await rounds(fleet, first, 3, beating=("a1", "a2", "a3"))  # a4: declared by c1
        fleet.dead.add("a1")
        await rounds(fleet, first, 1, beating=("a2", "a3"))  # a1: one missed check; c1 dies
        fleet.wall.t += 3 * INTERVAL  # the lease lapses; a1's key is now long stale
        for agent in ("a2", "a3"):
            await fleet.beat(agent)
        second = fleet.coordinator("health.replace_failed=true", name="c2")
        await second.take_over()
        assert "a1" in second.agents and "a4" not in second.agents
        assert await fleet.take("a2") == [] and await fleet.take("a3") == []  # it waits on a1
        await rounds(fleet, second, 3, beating=("a2", "a3"))
        declared = await fleet.events("agent_detected")
        detected = [(e["subject"], e["redistributed"]) for e in declared]
        assert detected == [("a4", 0), ("a1", 1)]  # each once, a1 by the new primary
        replaced = [e["subject"] for e in await fleet.events("agent_replaced")]
        assert replaced == ["a4", "a1"]
        assert [spec.category for spec in second.provisioner.started] == ["CodeGen"]
        taken = await fleet.take("a2") + await fleet.take("a3")
        assert taken == [(0, 2)]  # placed anew, as its next attempt

    # Both ways of beating, but not ``run``'s equal logs: a bundle no longer carries a dead
    # agent, so the new primary knows only its first beat, and its ``detect_s`` is longer.
    for bundled in (False, True):
        asyncio.run(body(Fleet(bundled)))


def test_a_call_to_a_dead_agent_fails_at_once_and_its_breaker_opens_as_the_simulators() -> None:
    """``policies.circuit_breaker``: the zone coordinator calls an agent before it sends work.
    A call to a dead agent fails at once and the task goes to the next agent, still its first
    attempt (nothing ran); the failures open the agent's breaker (out of the pool), and after
    ``open`` one probe may go. Live had built the breakers and never called: its tasks waited
    on a killed agent's subject until the detector declared it (about 30 s at the spec's
    fleet), where the simulator's had gone elsewhere at once."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3", "a4"):
            await fleet.beat(agent)
        # Room for three tasks each: a dead agent's failed calls leave its load as the
        # balancer last heard it (the simulator's books), so it is tried until it is full.
        c = fleet.coordinator("topology.specialist.queue_limit=2")
        await c.take_over()
        fleet.dead.add("a1")  # killed: its beats have not yet gone stale
        await fleet.submit(0)
        await c.pump()
        # Round robin's turn was a1's: the call failed, the task went to a2 as attempt 1.
        assert await fleet.take("a1") == [] and await fleet.take("a2") == [(0, 1)]
        assert c.intake.agent_calls.failed == 1 and c.dispatcher.load("a1") == 0
        for n in range(1, 12):
            await fleet.submit(n)
            await c.pump()
        assert await fleet.take("a1") == []
        assert c.intake.agent_calls.failed == 3
        breakers = [(e["subject"], e["state"]) for e in await fleet.events("breaker")]
        assert breakers == [("a1", "open")]
        assert "a1" not in c.dispatcher.members
        # Back before its declaration, it answers the probe once ``open`` has passed.
        fleet.dead.discard("a1")
        fleet.wall.t += c.scenario.policies.circuit_breaker.open
        for agent in ("a1", "a2", "a3", "a4"):
            await fleet.beat(agent)
        await c.check_zones()  # (the periodic look that turns open breakers half-open)
        assert "a1" in c.dispatcher.members
        await fleet.submit(12)
        await c.pump()
        assert await fleet.take("a1") == [(12, 1)]
        states = [e["state"] for e in await fleet.events("breaker")]
        assert states == ["open", "half_open", "closed"]

    run(body)


def test_an_agent_that_does_not_answer_calls_is_sent_work_uncalled() -> None:
    """An agent of an earlier version (its heartbeats do not say it answers calls) is sent
    work as before a call existed: in a rolling upgrade its silence must not read as death
    (every call would fail and its breaker open, the whole fleet's at once)."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", calls=False)
        await fleet.beat("a2")
        c = fleet.coordinator()
        await c.take_over()
        fleet.dead.add("a1")  # no answer on its control subject (it never listens for calls)
        await fleet.submit(0)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        assert c.intake.agent_calls.failed == 0 and await fleet.events("breaker") == []

    run(body)


def test_a_task_placed_anew_waits_again_and_its_next_start_counts_its_whole_wait() -> None:
    """What the autoscaler reads (queue depth, the mean wait of the attempts started) counts
    a dead agent's task as the simulator's slots count it: waiting again once placed anew,
    and its next start's wait measured from its arrival. Live had counted a task's first
    start only, so after a zone outage at the spec's fleet its autoscaler saw a mean wait
    below the threshold its replay saw over it, and only the replay scaled up."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1)
        await c.pump()
        await fleet.result("start", 0, "a1")
        await fleet.result("start", 1, "a2")
        await c.pump()
        assert (c.counters.started, c.queue_depth()) == (2, 0)
        await rounds(fleet, c, 3, beating=("a2",))
        [detected] = await fleet.events("agent_detected")
        assert detected["subject"] == "a1"
        # Task 0 waits again (a2's one slot is busy with task 1): the queue counts it.
        assert c.queue_depth() == 1
        await fleet.result("start", 0, "a1")  # a late report of the dead agent's attempt
        await c.pump()
        assert c.queue_depth() == 1 and c.counters.started == 2  # counts for nothing
        await fleet.result("end", 1, "a2")
        await c.pump()
        assert await fleet.take("a2") == [(1, 1), (0, 2)]
        await fleet.result("start", 0, "a2", attempt=2)
        await c.pump()
        assert c.queue_depth() == 0
        assert c.counters.started == 3
        assert c.counters.wait_sum == pytest.approx(3 * INTERVAL)  # from its arrival

    run(body)


@pytest.mark.parametrize("replace", [True, False])
def test_a_dead_agent_is_replaced_from_the_reserve_pool_as_the_simulator_replaces_it(
    replace: bool,
) -> None:
    """``health.replace_failed``: the simulator's failover asks the reserve pool for one agent
    per death (``agent_requested``, then ``agent_replaced`` naming it); live did not, so at
    the spec's fleet a chaos kill left live five agents short of its replay."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator(f"health.replace_failed={str(replace).lower()}")
        await c.take_over()
        await rounds(fleet, c, 3, beating=("a2",))
        assert [e["subject"] for e in await fleet.events("agent_detected")] == ["a1"]
        started = c.provisioner.started
        if not replace:
            assert started == [] and await fleet.events("agent_replaced") == []
            return
        [spec] = started
        assert (spec.zone, spec.category) == ("A", "CodeGen")
        [requested] = await fleet.events("agent_requested")
        [replaced] = await fleet.events("agent_replaced")
        assert requested["subject"] == replaced["replacement"] == spec.agent_id
        assert replaced["subject"] == "a1" and requested["reason"] == "replace a1"
        assert spec.agent_id in c.books.requested  # counted as starting, as a scale-up's

    run(body)


def test_rounds_that_run_late_or_find_the_whole_fleet_stale_declare_no_one_dead() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        # The coordinator (or the machine) fell behind: every heartbeat is old together.
        await rounds(fleet, c, 5, beating=())
        # Only a1 is silent, but each round woke half an interval late: no verdict.
        await rounds(fleet, c, 5, beating=("a2", "a3"), late=0.5 * INTERVAL)
        assert await fleet.events("agent_detected") == []
        assert c.lag.abstained_rounds == 10
        # On time again, a1's silence counts: detected at the third check.
        await rounds(fleet, c, 3, beating=("a2", "a3"))
        assert [e["subject"] for e in await fleet.events("agent_detected")] == ["a1"]

    run(body)


def test_rounds_before_second_zero_join_agents_but_judge_no_one() -> None:
    """The fleet starts before scenario second 0 (173 processes at once on a small machine):
    a start-up's silence is not a death, and health checks start at 0, as the simulator's."""

    async def body(fleet: Fleet) -> None:
        fleet.wall.t = EPOCH - 10 * INTERVAL
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await rounds(fleet, c, 9, beating=("a2",))  # seconds -90 to -10: a1 silent throughout
        assert await fleet.events("agent_detected") == []
        assert c.agents["a1"].healthy and c.lag.abstained_rounds == 0  # not lag: start-up
        await rounds(fleet, c, 2, beating=("a2",))  # seconds 0 and 10: two failed checks
        assert await fleet.events("agent_detected") == []
        await rounds(fleet, c, 1, beating=("a2",))  # second 20: the third
        assert [e["subject"] for e in await fleet.events("agent_detected")] == ["a1"]

    run(body)


@pytest.mark.parametrize(
    ("outage", "detected_at_round"),
    [
        ("one failed read", 4),  # its own round is skipped, nothing more
        ("two failed reads", 8),  # a real outage: rounds abstain 3 intervals + 2 s after it
        ("a reconnect", 7),  # the connection saw it: the same grace, from the reconnect
    ],
)
def test_the_broker_grace_follows_a_real_outage_not_one_failed_read(
    outage: str, detected_at_round: int
) -> None:
    """A single failed registry read must not hold back a real detection by the whole grace.

    a1 dies at the start; a2 beats every round. One failed read skips its
    round only (a1 is declared at the third counted check); two in a row, or
    a reconnect the connection reports, are an outage: every agent's beats
    were held up, so rounds abstain for BROKER_GAP_INTERVALS plus
    BROKER_RECOVERY_WALL_S (32 s here) after it before anyone is judged.
    """

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        failing = {"one failed read": 1, "two failed reads": 2}.get(outage, 0)
        if outage == "a reconnect":
            fleet.broker.reconnected += 1
        read = fleet.broker.kv_entries

        async def flaky(bucket: str) -> Any:
            nonlocal failing
            if failing:
                failing -= 1
                raise TimeoutError("registry read timed out")
            return await read(bucket)

        fleet.broker.kv_entries = flaky  # type: ignore[method-assign]
        await rounds(fleet, c, detected_at_round - 1, beating=("a2",))
        assert await fleet.events("agent_detected") == []
        await rounds(fleet, c, 1, beating=("a2",))
        assert [e["subject"] for e in await fleet.events("agent_detected")] == ["a1"]

    run(body)


def test_the_team_bulkhead_holds_live_as_in_the_simulator() -> None:
    """policies.team_limit=2: a team's agents hold two tasks between them, then take no more.

    a1, a2 and a3 form team T; b1 is in no team. Round robin hands tasks 0
    and 1 to a1 and a2; the team is full, so a3 (idle) is out of the pool
    and task 2 goes to b1, task 3 waits. When task 0 ends on a1, the team
    reopens: a1's freed slot pulls task 3 first (it filled the team again).
    When a2's task ends too, a2 pulls nothing (the queue is empty) and a3 is
    back in the pool: the next task goes to the team, the one after waits.
    """

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent, team="T")
        await fleet.beat("b1")
        c = fleet.coordinator("policies.team_limit=2", "topology.specialist.queue_limit=0")
        await c.take_over()
        await fleet.submit(0, 1, 2, 3)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)] and await fleet.take("a2") == [(1, 1)]
        assert await fleet.take("a3") == []  # idle, but its team holds its limit
        assert await fleet.take("b1") == [(2, 1)]
        assert c.dispatcher.closed_teams == {"T"} and c.dispatcher.queued() == 1
        for kind in ("start", "end"):
            await fleet.result(kind, 0, "a1")
        await c.pump()
        assert await fleet.take("a1") == [(3, 1)] and await fleet.take("a3") == []
        assert c.dispatcher.team_load == {"T": 2}
        for kind in ("start", "end"):
            await fleet.result(kind, 1, "a2")
        await c.pump()
        assert c.dispatcher.closed_teams == set() and "a3" in c.dispatcher.members
        await fleet.submit(4, 5)
        await c.pump()
        taken = {agent: await fleet.take(agent) for agent in ("a2", "a3", "b1")}
        # One more for team T fills it (a1 holds task 3); b1 finished nothing: 5 waits.
        assert sorted(t for got in taken.values() for t in got) == [(4, 1)]
        assert taken["b1"] == [] and c.dispatcher.team_load == {"T": 2}
        assert c.dispatcher.closed_teams == {"T"} and c.dispatcher.queued() == 1

    run(body)


def test_phi_accrual_when_the_scenario_says_so() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator("health.detector=phi_accrual")
        assert isinstance(c.detector, PhiAccrualDetector)
        await c.take_over()
        await rounds(fleet, c, 6, beating=("a1", "a2", "a3"))
        last_beat = fleet.wall.t
        await rounds(fleet, c, 1, beating=("a2", "a3"))
        assert await fleet.events("agent_detected") == []  # one interval late: not yet suspect
        await rounds(fleet, c, 3, beating=("a2", "a3"))
        [detected] = await fleet.events("agent_detected")
        assert detected["subject"] == "a1" and detected["reason"].startswith("phi ")
        assert INTERVAL < detected["time_s"] - (last_beat - EPOCH) <= 3 * INTERVAL

    run(body)


def test_the_circuit_breaker_exists_only_when_enabled() -> None:
    fleet = Fleet()
    assert fleet.coordinator("policies.circuit_breaker.enabled=false").breakers is None
    assert fleet.coordinator("policies.circuit_breaker.enabled=true").breakers is not None


def test_a_pool_left_without_agents_sends_its_queue_to_the_nearest_staffed_zone() -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        await fleet.beat("b1", "B")
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1, 2)  # a1 takes 0, b1 takes 1 (spill), 2 waits in A's queue
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)] and await fleet.take("b1") == [(1, 1)]
        assert c.tasks[2].zone == "A" and c.dispatcher.queued() == 1
        await rounds(fleet, c, 3, beating=("b1",))
        [evacuated] = await fleet.events("pool_evacuated")
        assert (evacuated["subject"], evacuated["category"], evacuated["tasks"]) == (
            "A",
            "CodeGen",
            1,
        )
        assert c.tasks[2].zone == "B" and c.tasks[0].zone == "B"
        assert c.dispatcher.queued() == 2
        for kind in ("start", "end"):
            await fleet.result(kind, 1, "b1")
        await c.pump()
        assert len(await fleet.take("b1")) == 1  # b1's freed slot takes one of them

    run(body)


async def submit_job(fleet: Fleet) -> None:
    """Node 0 feeds node 1 (100 MB) and node 2 (1 MB); task ids 10, 11, 12."""
    document = {
        "kind": "job",
        "job_id": 7,
        "zone": "A",
        "arrival_s": fleet.wall.t - EPOCH,
        "shape": "fork",
        "nodes": [
            {"node": n, "task_id": 10 + n, "category": "CodeGen", "work_s": 10.0} for n in range(3)
        ],
        "edges": [[0, 1, 100.0], [0, 2, 1.0]],
    }
    await fleet.broker.publish("orch.submit", document, "sub.7.job")


def test_a_released_dag_node_goes_to_the_agent_holding_its_input_when_locality_is_on() -> None:
    """The simulator's locality rule, live: node 1 follows its 100 MB input to a3.

    Task 0 keeps a1 busy; task 1 ran on a2 and node 0 on a3, both now free.
    Least connections alone sends node 1 to a2, the first of the two idle.
    """

    async def placements(fleet: Fleet, *overrides: str) -> list[list[tuple[int, int]]]:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator(*overrides)
        await c.take_over()
        await fleet.submit(0, 1)
        await c.pump()
        await submit_job(fleet)
        await c.pump()
        assert [await fleet.take(a) for a in ("a1", "a2", "a3")] == [[(0, 1)], [(1, 1)], [(10, 1)]]
        for task, agent in ((1, "a2"), (10, "a3")):
            await fleet.result("start", task, agent)
            await fleet.result("end", task, agent)
            await c.pump()
        return [await fleet.take(agent) for agent in ("a1", "a2", "a3")]

    async def body(fleet: Fleet) -> None:
        assert await placements(
            fleet, "policies.load_balancing=least_connections", "policies.dag.data_locality=true"
        ) == [
            [],
            [(12, 1)],
            [(11, 1)],
        ]

    async def without(fleet: Fleet) -> None:
        assert await placements(fleet, "policies.load_balancing=least_connections") == [
            [],
            [(11, 1)],
            [(12, 1)],
        ]

    run(body)
    run(without)


def test_a_death_verdict_the_same_process_refutes_marks_the_run_as_not_keeping_up() -> None:
    """a1 stops beating long enough to be declared dead, then beats again from the same process.

    Its beats were late, not missing (a starved agent or broker): the verdict
    is recorded as false and the run as one that could not keep up. A beat
    from a new process under the same id (a restart) refutes nothing.
    """

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await rounds(fleet, c, 3, beating=("a2", "a3"))
        [detected] = await fleet.events("agent_detected")
        assert detected["subject"] == "a1"
        assert c.lag.false_detections == [] and c.lag.behind(fleet.wall.t) is None
        fleet.wall.t += 1.0
        await fleet.beat("a1")  # the same process: alive all along
        await c.check_health()
        assert [agent for agent, _ in c.lag.false_detections] == ["a1"]
        message = c.lag.behind(fleet.wall.t)
        assert message is not None and "declared dead while still alive" in message
        assert "first a1" in message

    async def restarted(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        await rounds(fleet, c, 3, beating=("a2", "a3"))
        fleet.wall.t += 1.0
        await fleet.beat("a1", incarnation="second")  # killed and started again
        await c.check_health()
        assert c.lag.false_detections == []

    run(body)
    run(restarted)


def test_agents_silent_while_the_broker_was_down_are_not_judged_until_they_could_beat() -> None:
    """Two registry reads failed in a row start a grace: the agents' silence is the broker's.

    For three intervals (plus the broker's recovery) after the outage, no one
    is declared dead; an agent still silent after that is. (One failed read
    alone skips its round only: see the test after this one.)
    """

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        entries = fleet.broker.kv_entries

        async def down(bucket: str) -> Any:
            raise ConnectionError("broker restarting")

        fleet.broker.kv_entries = down  # type: ignore[method-assign]
        for _ in range(2):
            fleet.wall.t += INTERVAL
            await c.check_health()  # the broker is gone: no verdict; the second starts the grace
        fleet.broker.kv_entries = entries  # type: ignore[method-assign]
        await rounds(fleet, c, 3, beating=("a2",))
        assert await fleet.events("agent_detected") == []
        await rounds(fleet, c, 3, beating=("a2",))
        [detected] = await fleet.events("agent_detected")
        assert detected["subject"] == "a1"

    run(body)
