"""Specialist agents: long-lived processes that loop over their work.

Scenario: a specialist loops — take the next task (its own queue first, then
its zone's queue), fetch any input data its DAG predecessors left on other
agents, hold for ``work / speed`` seconds, report the result, go back. Each
concurrency slot of an agent is one such loop; an idle slot sleeps on a
wake-up event until work is pushed to it.

The process decides nothing: which task to pull and where data comes from
are the dispatcher's (and through it, the policies') business.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.model.calls import Sleep, idle_event
from sim.model.task import Task
from sim.policies.dag import slot_frees_in
from sim.policies.types import AgentInfo
from sim.world.topology import SpecialistSpec

if TYPE_CHECKING:
    from sim.model.coordinator import Dispatcher
    from sim.model.traffic import Coordinator


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

    def __init__(self, env: simpy.Environment, spec: SpecialistSpec) -> None:
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
        self.lead: Coordinator | None = None

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

    def work_loop(self, dispatcher: Dispatcher) -> Generator[simpy.Event, Any, None]:
        """One concurrency slot: take work, fetch inputs, serve, report, repeat.

        A crash interrupts the slot wherever it is; what it held is
        redistributed when the crash is detected. (One generator, no
        ``yield from``: every resume of a slot is on the hot path.)
        """
        env = self.env
        escalator = dispatcher.escalator  # set before the run starts; None: attempts never fail
        incoming = self.incoming
        self.live_slots += 1
        try:
            while True:
                if self.draining and not self.local:
                    break
                # A task is held in incoming across every wait before its service
                # starts, so a crash mid-fetch or mid-transfer finds it (incoming is
                # what the failover rescues); with no wait it need not pass through.
                if self.local:
                    task = self.local.popleft()
                    dispatcher.local_taken(self, task)
                else:
                    pulled = dispatcher.pull(self)
                    if pulled is None:
                        wake = idle_event(env)
                        self.idle.append(wake)
                        handed = yield wake
                        if handed is None:
                            continue  # woken because work reached the local queue
                        task = handed  # may be in incoming since its assignment
                    else:
                        task, fetch_s = pulled
                        if fetch_s > 0:
                            self.incoming[task.id] = task
                            yield Sleep(env, fetch_s)
                if task.job is not None:
                    transfer_s = dispatcher.transfer_time(task, self)
                    if transfer_s > 0:
                        self.incoming[task.id] = task
                        task.transfer = transfer_s
                        yield Sleep(env, transfer_s)
                incoming.pop(task.id, None)
                dispatcher.service_started(self, task)
                llm = dispatcher.llm
                if llm is not None and task.category in llm.sources:
                    # An AI agent's task: its model calls and tool steps (sim.model.llm_work).
                    reason = yield from llm.serve(self, task, escalator)
                    if reason is None:
                        dispatcher.service_ended(self, task)
                    else:
                        dispatcher.attempt_failed(self, task, reason)
                    continue
                service = task.work / self.speed * self.slowdown
                fault = escalator.fault(self, task, service) if escalator is not None else None
                if fault is None:
                    yield Sleep(env, service)
                    dispatcher.service_ended(self, task)
                else:
                    yield Sleep(env, fault.after_s)
                    dispatcher.attempt_failed(self, task, fault.reason)
        except simpy.Interrupt:
            return
        self.live_slots -= 1
        if self.live_slots == 0:
            dispatcher.agent_stopped(self)
