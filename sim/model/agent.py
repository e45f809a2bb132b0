"""Specialist agents: long-lived processes that loop over their work.

Scenario: a specialist loops — take the next task (its own queue first, then
its zone's queue), fetch any input data its DAG predecessors left on other
agents, hold for ``work / speed`` seconds, report the result, go back. Each
concurrency slot of an agent is one such loop; an idle slot sleeps on a
wake-up event until work is pushed to it.

The process decides nothing: which task to pull and where data comes from
are the coordinators' (``sim.model.slots``, and through them the policies')
business. The agent does keep its own books — busy slots and time, what it
serves, completions, errors, status — which the coordinators ask it to open
and close (``start``, ``end``) rather than writing its fields.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from sim.model.calls import Sleep, hand_over, idle_event
from sim.model.task import Task
from sim.policies.dag_locality import slot_frees_in
from sim.policies.types import AgentInfo
from sim.world.topology import SpecialistSpec

if TYPE_CHECKING:
    from sim.model.llm_work import FaultDraw, LlmWork
    from sim.model.traffic import Coordinator


#: The plan of a slot that has none (planned dispatch off): always empty.
_NO_PLAN: deque[Task] = deque()


class SlotHost(Protocol):
    """What a slot loop asks of the coordinators and reports to them (``sim.model.slots``).

    Declared here, where it is used, so the agent needs nothing of the
    dispatch side's modules: they depend on the agent, not the other way.
    """

    @property
    def escalator(self) -> FaultDraw | None: ...

    @property
    def llm(self) -> LlmWork | None: ...

    def local_taken(self, agent: Specialist, task: Task) -> None: ...

    def planned_taken(self, agent: Specialist, task: Task) -> None: ...

    def pull(self, agent: Specialist) -> tuple[Task, float] | None: ...

    def transfer_time(self, task: Task, agent: Specialist) -> float: ...

    def service_started(self, agent: Specialist, task: Task) -> None: ...

    def service_ended(self, agent: Specialist, task: Task) -> None: ...

    def attempt_failed(self, agent: Specialist, task: Task, reason: str) -> None: ...

    def agent_stopped(self, agent: Specialist) -> None: ...


class Specialist:
    """A specialist's runtime state; ``spec`` is what it was built as."""

    __slots__ = (
        "busy_since",
        "busy_slots",
        "busy_time",
        "category",
        "completed",
        "crashed",
        "current",
        "draining",
        "env",
        "errors",
        "id",
        "idle",
        "incoming",
        "info",
        "lead",
        "live_slots",
        "local",
        "plan_wake",
        "planned",
        "processes",
        "served_time",
        "slots",
        "slowdown",
        "spec",
        "speed",
        "status",
        "stranded",
        "zone",
    )

    def __init__(
        self, env: simpy.Environment, spec: SpecialistSpec, lead: Coordinator | None = None
    ) -> None:
        self.env = env
        self.spec = spec
        self.id = spec.agent_id
        self.category = spec.category
        self.zone = spec.zone
        self.speed = spec.speed
        self.slots = spec.slots
        self.info = AgentInfo(
            agent_id=spec.agent_id,
            category=spec.category,
            zone=spec.zone,
            speed=spec.speed,
            slots=spec.slots,
            capacity=spec.capacity,
            team=spec.team,
        )
        self.status = "idle"
        self.local: deque[Task] = deque()
        self.idle: list[simpy.Event] = []
        self.busy_slots = 0
        self.current: list[Task] = []
        self.completed = 0
        self.errors = 0
        #: Slot-seconds of service, closed intervals only; busy_since holds open ones.
        self.busy_time = 0.0
        self.busy_since: list[float] = []
        self.served_time = 0.0
        #: Draining: takes no new work, finishes what it holds, then goes offline.
        self.draining = False
        #: Slot loops still running; the agent is offline when the last one ends.
        self.live_slots = 0
        self.processes: list[simpy.Process] = []
        #: Crashed: its slots are dead; the coordinators learn it only at detection.
        self.crashed = False
        #: Tasks on their way to the agent (by id), and tasks that reached it after a crash.
        self.incoming: dict[int, Task] = {}
        self.stranded: list[Task] = []
        #: Service-time multiplier for a slow ("gray") agent; 1.0 when healthy.
        self.slowdown = 1.0
        #: The queue of the team lead its messages pass through (None: not modelled).
        self.lead = lead
        #: Planned dispatch: per slot, the DAG nodes it must run, in planned order, and the
        #: event a slot sleeps on while its next one waits for inputs (None: not used).
        self.planned: list[deque[Task]] | None = None
        self.plan_wake: list[simpy.Event | None] = []

    # ------------------------------------------------------------------ its slots and inbox

    def start_slots(self, host: SlotHost) -> None:
        """One looping process per concurrency slot, each asking *host* for work."""
        for slot in range(self.slots):
            self.processes.append(self.env.process(self.work_loop(host, slot)))

    def assigned(self, task: Task, latency: float) -> bool:
        """*task* is sent to the agent, arriving in *latency* seconds.

        True when a sleeping slot takes it on arrival (the message itself wakes
        the slot, task in hand: one event, not a delivery and a wake-up); False
        when the sender must deliver it (:meth:`queue`) on arrival.
        """
        if latency > 0:
            self.incoming[task.id] = task  # a crash before it arrives finds it here
        if self.idle:
            hand_over(self.env, self.idle.pop(), task, latency)
            return True
        return False

    def arrived(self, task: Task) -> bool:
        """The message carrying *task* arrives; False if it was taken back on its way."""
        return self.incoming.pop(task.id, None) is not None

    def queue(self, task: Task) -> None:
        """*task* joins the local queue; a sleeping slot wakes to take it."""
        self.local.append(task)
        if self.idle:
            self.idle.pop().succeed()

    def strand(self, task: Task) -> None:
        """*task* reached the agent after its crash: nobody takes it until detection."""
        self.stranded.append(task)

    def slow_down(self, factor: float) -> None:
        """Gray failure: service takes *factor* times as long (1.0: healthy again)."""
        self.slowdown = factor

    # ------------------------------------------------------------------ its own books

    def start(self, task: Task, now: float) -> bool:
        """A slot starts serving *task*; True when no other slot was busy."""
        first = self.busy_slots == 0
        self.busy_slots += 1
        self.status = "busy"
        self.busy_since.append(now)
        self.current.append(task)
        return first

    def end(self, task: Task, now: float, done: bool) -> bool:
        """A slot stops serving *task*: *done* (completed) or failed (an error, a timeout).

        True when no slot is busy now.
        """
        self.busy_slots -= 1
        current = self.current
        if len(current) == 1:  # one slot (the common case): no search
            current.clear()
            started = self.busy_since.pop()
        else:
            started = self.busy_since.pop(current.index(task))
            current.remove(task)
        self.busy_time += now - started
        if done:
            self.completed += 1
            self.served_time += now - task.start
        else:
            self.errors += 1
            self.status = "error"
        return self.busy_slots == 0

    def rest(self) -> None:
        """A slot found no work: with no slot busy, the agent is idle."""
        if self.busy_slots == 0:
            self.status = "idle"

    def crash(self) -> int:
        """The agent dies: its local queue is stranded (found at detection); how many tasks.

        What it was serving stays in ``current`` for the failover to rescue;
        its slots are stopped by :meth:`stop_slots`.
        """
        self.crashed = True
        self.status = "error"
        count = len(self.local)
        self.stranded.extend(self.local)
        self.local.clear()
        return count

    def stop_slots(self, why: str, now: float) -> int:
        """Interrupt every slot (a crash, a reclaim's deadline); how many were serving.

        The time served so far is booked and the slots are free; what the
        agent held is the caller's to place.
        """
        for process in self.processes:
            if process.is_alive:
                process.interrupt(why)
        self.idle.clear()
        # No slot waits on its plan any more: a planned node taken back later must not
        # look for the stopped slot's wake-up among the idle (the list is empty now).
        self.plan_wake[:] = [None] * len(self.plan_wake)
        freed = len(self.current)
        self.busy_slots -= freed
        self.busy_time += sum(now - t for t in self.busy_since)
        self.busy_since.clear()
        return freed

    def forget_work(self) -> None:
        """The coordinators took back everything it held: serving, stranded, on its way."""
        self.current.clear()
        self.stranded.clear()
        self.incoming.clear()

    def drop_local(self) -> int:
        """Its local queue is taken back by the coordinators; how many tasks it held."""
        count = len(self.local)
        self.local.clear()
        return count

    def start_draining(self) -> None:
        """Take no new work: sleeping slots wake, see the drain, and stop."""
        self.draining = True
        idle, self.idle = self.idle, []
        for wake in idle:
            wake.succeed()

    def wake_all(self) -> None:
        """Every sleeping slot wakes to look for work (its team may pull again)."""
        while self.idle:
            self.idle.pop().succeed()

    def offline(self) -> None:
        """Drained or reclaimed: the agent has left the fleet."""
        self.status = "offline"

    # ------------------------------------------------------------------ reading

    def frees_in(self, now: float) -> float:
        """Expected seconds until a slot frees (``slot_frees_in``, as the live shell asks it)."""
        serving = [
            (t.start, t.job.dag_node(t.node).work_s if t.job is not None else None)
            for t in self.current
        ]
        return slot_frees_in(now, self.speed, serving, bool(self.local))

    def busy_slot_seconds(self, now: float) -> float:
        """Slot-seconds spent serving up to *now*, open services included."""
        return self.busy_time + sum(now - t for t in self.busy_since)

    def work_loop(self, host: SlotHost, slot: int = 0) -> Generator[simpy.Event, Any, None]:
        """One concurrency slot (number *slot*): take work, fetch inputs, serve, report, repeat.

        Planned DAG work comes first (``sim.model.staging``); a crash interrupts the slot
        anywhere. (One generator: each resume is on the hot path.)"""
        env, incoming = self.env, self.incoming
        escalator, llm = host.escalator, host.llm  # set before the run; None: not in this run
        self.live_slots += 1
        try:
            while True:
                plan = self.planned[slot] if self.planned is not None else _NO_PLAN
                if self.draining and not self.local and not plan:
                    break
                # A task waiting to start is in incoming, where a crash finds it (no wait: not).
                from_plan = plan and not plan[0].waiting  # (its inputs are all here)
                if from_plan:
                    task = plan.popleft()
                    host.planned_taken(self, task)
                elif self.local:
                    task = self.local.popleft()
                    host.local_taken(self, task)
                else:
                    pulled = host.pull(self)
                    if pulled is None:
                        self.idle.append(wake := idle_event(env))
                        if plan:  # its next planned node's inputs (or assignment) wake it too
                            self.plan_wake[slot] = wake
                        handed = yield wake
                        if plan:
                            self.plan_wake[slot] = None
                        if handed is None:
                            continue  # woken because work reached the local queue
                        task = handed  # may be in incoming since its assignment
                    else:
                        task, fetch_s = pulled
                        if fetch_s > 0:
                            self.incoming[task.id] = task
                            yield Sleep(env, fetch_s)
                if task.job is not None and not from_plan:
                    transfer_s = host.transfer_time(task, self)
                    if transfer_s > 0:
                        self.incoming[task.id] = task
                        task.transfer = transfer_s
                        yield Sleep(env, transfer_s)
                incoming.pop(task.id, None)
                host.service_started(self, task)
                if llm is not None and task.category in llm.sources:  # (sim.model.llm_work)
                    reason = yield from llm.serve(self, task, escalator)
                else:
                    service = task.work / self.speed * self.slowdown
                    fault = escalator.fault(self, task, service) if escalator is not None else None
                    yield Sleep(env, service if fault is None else fault.after_s)
                    reason = None if fault is None else fault.reason
                if reason is None:
                    host.service_ended(self, task)
                    continue
                host.attempt_failed(self, task, reason)
        except simpy.Interrupt:
            return
        self._slot_stopped(host)

    def _slot_stopped(self, host: SlotHost) -> None:
        """A slot left its loop (drained): the last one out tells the coordinators."""
        self.live_slots -= 1
        if self.live_slots == 0:
            host.agent_stopped(self)
