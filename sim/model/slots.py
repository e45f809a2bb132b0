"""The coordinators' side of a specialist's slot loop: hand out work, close the books.

Scenario: a specialist's free slot takes the next task from its agent's
local queue, or asks for queued work — its zone's first, then the nearest
zone's — unless its team's bulkhead is full or its team lead is dead. A DAG
node first waits for the inputs its predecessors left on other agents.
When the slot starts serving, the fleet's busy books open; when the attempt
ends they close, the task's booking is released (which may reopen its team),
and the result is reported up through the team lead, the zone coordinator
and the chief. A failed attempt goes to the escalation flow instead; a DAG
node's report releases its successors.

The agent keeps its own books (``Specialist.start`` / ``end``); this module
keeps the zones' and the fleet's, and the time the messages take.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from sim.metrics.collector import MetricsCollector
from sim.metrics.records import TaskLog
from sim.model.agent import Specialist
from sim.model.calls import Call
from sim.model.ledger import Ledger
from sim.model.roster import Roster
from sim.model.task import Task
from sim.model.traffic import Coordinator, Kind, Traffic
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.policies.keyed_draws import task_key
from sim.world.dag_job import DagJob
from sim.world.network import Network

if TYPE_CHECKING:
    from sim.model.escalation import Escalator
    from sim.model.llm_work import LlmWork
    from sim.model.staging import StagedDags

_ASSIGN_GRPC, _ASSIGN_NATS = int(Kind.ASSIGN_GRPC), int(Kind.ASSIGN_NATS)
_FAILED_GRPC = int(Kind.FAILED_GRPC)


class SlotBooks:
    """What the slot loops ask for and report (``agent.SlotHost``), and the fleet's busy books."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        core: DispatchCore[Any],
        zones: dict[str, ZoneState],
        roster: Roster,
        ledger: Ledger,
        traffic: Traffic,
        collector: MetricsCollector,
        task_log: TaskLog,
        draw_seed: int = 0,
    ) -> None:
        self.env = env
        #: The run's key for the draws both shells key by task (``policy_set.fault_seed``).
        self.draw_seed = draw_seed
        self.net = network
        self.core = core
        self.zones = zones
        self.roster = roster
        self.ledger = ledger
        self.traffic = traffic
        self.collector = collector
        self.task_log = task_log
        self._msgs = traffic.counts
        self._chief: Coordinator | None = traffic.chief_queue()
        #: A live fleet's own cost of handing queued work to a freed slot (seconds, fitted by
        #: calibration; 0 in the spec's model): added to every pull that finds work.
        self.handoff_s = traffic.handoff_s
        #: Failed attempts' escalation (None: attempts never fail).
        self.escalator: Escalator | None = None
        #: Model calls under provider limits for categories with an anatomy (None: no llm section).
        self.llm: LlmWork | None = None
        #: A DAG node's completion reached the chief (it releases the node's successors).
        self.on_job_node_done: Callable[[DagJob, int], None] | None = None
        #: Planned DAG dispatch (None: every DAG node is released and placed dynamically).
        self.staging: StagedDags | None = None
        #: An agent's last slot loop ended (it drained, or it stopped).
        self.on_agent_stopped: Callable[[Specialist], None] | None = None
        #: Busy slots fleet-wide, and their integral over time (slot-seconds): utilisation
        #: over any window is a difference of two readings, with no scan of the agents.
        self.busy_slots = 0
        #: Services started and the sum of their waits: mean response time over a window.
        self.started = 0
        self.wait_sum = 0.0
        self._busy_area = 0.0
        self._busy_since = 0.0

    # ------------------------------------------------------------------ taking work

    def local_taken(self, agent: Specialist, task: Task) -> None:
        task.queued += self.env.now - task.enqueued
        task.enqueued = -1.0
        self.zones[agent.zone].local_queued -= 1
        self.core.sync(agent.id)

    def planned_taken(self, agent: Specialist, task: Task) -> None:
        """A slot takes the next node of its plan, every input already staged at the agent."""
        assert self.staging is not None
        self.staging.started(task)

    def pull(self, agent: Specialist) -> tuple[Task, float] | None:
        """An agent with a free slot asks for queued work: its zone first, then the nearest."""
        core = self.core
        if core.closed_teams and core.team_closed(agent.id):
            return None  # its team's bulkhead is full: wait to be woken
        headless = self.roster.headless_teams
        if headless and agent.spec.team in headless:
            return None  # its team lead is dead: no work reaches it until one takes over
        # Nothing waits anywhere most of the time: then there is nothing to look through.
        found = core.pull_one(agent.id, agent.zone, agent.category) if core.waiting else None
        if found is None:
            if core.sync(agent.id) == 0:
                agent.rest()
            return None
        task, source = found
        now = self.env.now
        task.queued += now - task.enqueued
        task.enqueued = -1.0
        self.zones[agent.zone].in_flight += 1
        core.hold(task, agent.id)
        task.dispatch = now
        task.agent = agent.id
        task.zone = agent.zone
        fetch = self.net.pull(agent.zone, source)
        coord = self.zones[source].coord or self._chief  # flat: the chief keeps every queue
        if coord is not None:
            fetch += coord.through(now)
        if self.handoff_s:
            fetch += self.handoff_s
        if source == agent.zone:
            self._msgs[_ASSIGN_GRPC] += 2  # the request and the task handed back
        else:
            self._msgs[_ASSIGN_NATS] += 2
        return task, fetch

    def transfer_time(self, task: Task, agent: Specialist) -> float:
        """Wait for the inputs a DAG node's predecessors left on other agents (the slowest one)."""
        job = task.job
        assert job is not None
        slowest = 0.0
        key = task_key(self.draw_seed, task.arrival, job.job_id, task.node)
        for pred, data_mb in job.progress.predecessors(task.node):
            where = job.placement.get(pred)
            if where is None or where[0] == agent.id:
                continue
            move = self.net.transfer(data_mb, where[1], agent.zone, key, task.attempt, pred)
            slowest = max(slowest, move)
            self.traffic.data_moved(data_mb, where[1] == agent.zone)
        return slowest

    # ------------------------------------------------------------------ serving

    def busy_area(self, now: float) -> float:
        """Slot-seconds of service delivered fleet-wide up to *now*."""
        return self._busy_area + self.busy_slots * (now - self._busy_since)

    def _busy_changed(self, now: float, delta: int) -> None:
        self._busy_area += self.busy_slots * (now - self._busy_since)
        self._busy_since = now
        self.busy_slots += delta

    def service_started(self, agent: Specialist, task: Task) -> None:
        now = self.env.now
        self._busy_area += self.busy_slots * (now - self._busy_since)  # _busy_changed, inlined
        self._busy_since = now
        self.busy_slots += 1
        task.start = now
        self.started += 1
        self.wait_sum += now - task.arrival
        zone = self.zones[agent.zone]
        if agent.start(task, now):
            zone.busy_agents += 1
        zone.busy_slots += 1

    def _attempt_over(self, agent: Specialist, task: Task, now: float, done: bool) -> None:
        """An attempt stops serving (*done*, or failed): free its slot and close its books."""
        # _busy_changed, written in: every attempt ends here.
        self._busy_area += self.busy_slots * (now - self._busy_since)
        self._busy_since = now
        self.busy_slots -= 1
        zone = self.zones[agent.zone]
        zone.busy_slots -= 1
        if agent.end(task, now, done):
            zone.busy_agents -= 1
        core = self.core
        core.release(task, agent.id)
        zone.in_flight -= 1
        if core.reopened:  # (checked here: every attempt ends here, a reopening seldom)
            self.roster.wake_reopened()

    def service_ended(self, agent: Specialist, task: Task) -> None:
        now = self.env.now
        self._attempt_over(agent, task, now, True)
        service = now - task.start
        report = self.net.report(agent.zone)
        if self._chief is not None:
            # Processing on the way up: the team lead, the zone coordinator, the chief.
            report += self._chief.through_chain(now, agent.lead, self.zones[agent.zone].coord)
        self.ledger.complete(task, agent.zone, now, now + report, service)
        job = task.job
        if job is not None:
            job.placement[task.node] = (agent.id, agent.zone)
            if self.staging is not None:
                self.staging.produced(job, task.node, agent)
            if self.on_job_node_done is not None:
                if report > 0:
                    Call(self.env, report, (job, task.node), self._reported)
                else:
                    self.on_job_node_done(job, task.node)

    def _reported(self, event: Call) -> None:
        assert self.on_job_node_done is not None
        self.on_job_node_done(*event.payload)

    def attempt_failed(self, agent: Specialist, task: Task, reason: str) -> None:
        """An attempt ended in an error or a timeout: free the slot, tell the team lead.

        The agent reports TASK_FAILED to its team lead; what happens next is
        the escalation policy's call (sim.model.escalation).
        """
        now = self.env.now
        self._attempt_over(agent, task, now, False)
        self.ledger.attempt_errors += 1
        served = now - task.start
        self.task_log.record(task, "retried", now, now, served, reason)
        self.collector.attempt_failed(agent.zone)
        self._msgs[_FAILED_GRPC] += 1
        assert self.escalator is not None
        self.escalator.attempt_failed(agent, task, reason)

    # ------------------------------------------------------------------ stopping

    def slots_stopped(self, agent: Specialist, now: float, why: str) -> None:
        """Every slot of the agent stops at once (a crash, a reclaim's deadline): books closed."""
        zone = self.zones[agent.zone]
        freed = agent.stop_slots(why, now)
        for _ in range(freed):
            self._busy_changed(now, -1)
            zone.busy_slots -= 1
        if freed and agent.busy_slots == 0:
            zone.busy_agents -= 1

    def agent_stopped(self, agent: Specialist) -> None:
        """An agent's last slot loop ended (it drained or stopped)."""
        self.core.sync(agent.id)
        if self.on_agent_stopped is not None:
            self.on_agent_stopped(agent)
