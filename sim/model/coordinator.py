"""The coordinators: the chief routes, zone coordinators dispatch, team leads relay.

Scenario: a task reaches the chief coordinator, which sends it (over gRPC,
a TASK_ASSIGN message with a TTL) to the zone that should serve it. The zone
coordinator asks the load balancer for a specialist of the task's category
with room; if there is one the task goes down through the agent's team lead,
if not and another zone has a free agent the task spills there through NATS,
and otherwise it waits in the zone's queue (critical DAG work first) until a
specialist pulls it. Finished work is reported back up the same path; for a
DAG node, the report releases its successors.

Every choice here is one call into sim.policies: the dispatch core
(``sim.policies.dispatch``: zone routing, placement, spill, the pool queues
and pulls, evacuation, retries, and who holds what) and DagProgress for DAG
order. This module only moves records and keeps time: latency, coordinator
queues, message counts, waking the slots of a team the bulkhead reopened,
and the breakers' timers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import simpy

from sim.metrics.collector import MetricsCollector
from sim.metrics.records import EventLog, TaskLog
from sim.model.agent import Specialist
from sim.model.calls import Call, wake_with
from sim.model.task import Task
from sim.model.traffic import Coordinator, Kind, Traffic
from sim.policies.balancing import LoadBalancer
from sim.policies.dispatch import RETRIES_EXHAUSTED, DispatchCore
from sim.world.dag_job import DagJob
from sim.world.network import AgentMessage, MessageType, Network

if TYPE_CHECKING:
    from sim.model.control_plane import ControlPlane
    from sim.model.escalation import Escalator
    from sim.model.llm_work import LlmWork
from sim.policies.resilience import BreakerBoard
from sim.policies.routing import ZoneRouter

#: Message counter indexes as plain ints: an IntEnum lookup per message shows on the hot path.
_ASSIGN_GRPC, _ASSIGN_NATS = int(Kind.ASSIGN_GRPC), int(Kind.ASSIGN_NATS)
_FAILED_GRPC = int(Kind.FAILED_GRPC)


@dataclass(slots=True)
class ZoneState:
    """A zone coordinator's running totals for the metrics (its queues are the core's)."""

    name: str
    region: str
    local_queued: int = 0
    in_flight: int = 0
    busy_agents: int = 0
    busy_slots: int = 0
    total_agents: int = 0
    active_agents: int = 0
    slots: int = 0
    #: Agents failed and not yet back or replaced (the spec's offline agents).
    offline_agents: int = 0
    #: The zone coordinator is unreachable (region outage); whether the chief knows, and
    #: whether it sends the zone work, is the core's zone gate's (``core.zones``).
    down: bool = False
    #: TASK_ASSIGN messages that reached the zone while its coordinator was down.
    stranded: list[Task] = field(default_factory=list)
    #: The queue of the coordinator that processes the zone's messages (None: unlimited).
    coord: Coordinator | None = None


@dataclass(slots=True)
class JobRecord:
    job_id: int
    shape: str
    nodes: int
    arrival_s: float
    complete_s: float
    cp_bound_s: float
    work_s: float


class Dispatcher:
    """The chief and zone coordinators' dispatch logic, in simulated time."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        balancer: LoadBalancer,
        router: ZoneRouter,
        zones: dict[str, ZoneState],
        agents: dict[str, Specialist],
        collector: MetricsCollector,
        task_log: TaskLog,
        events: EventLog,
        core: DispatchCore[Task],
    ) -> None:
        self.env = env
        self.net = network
        self.balancer = balancer
        self.router = router
        #: Every dispatch decision and the books behind them (queues, holdings).
        self.core = core
        self.zones = zones
        self.agents = agents
        self.collector = collector
        self.task_log = task_log
        self.events = events
        #: Control traffic: message counters and the coordinators' queues (set by the engine).
        self.traffic: Traffic | None = None
        self._msgs = [0] * len(Kind)
        self._chief: Coordinator | None = None
        #: Each zone coordinator's address, spelled once rather than per message sent.
        self._coord_names = {name: f"{name}-coord" for name in zones}
        #: Failed attempts' escalation (None: attempts never fail).
        self.escalator: Escalator | None = None
        #: Model calls under provider limits for categories with an anatomy (None: no llm section).
        self.llm: LlmWork | None = None
        #: Attempts that ended in an error or a timeout.
        self.attempt_errors = 0
        self._ids = itertools.count(1)
        #: Every task submitted and not yet finished, by id: the conservation ledger.
        self.live: dict[int, Task] = {}
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0
        self.expired = 0
        #: Completions per category, kept only for a live display (count_categories).
        self.completed_by_category: dict[str, int] = {}
        self.count_categories = False
        #: TASK_ASSIGN messages sent again after a loss (chaos message loss).
        self.resent = 0
        #: TASK_ASSIGN messages between the chief and a zone, not yet delivered.
        self.in_transit = 0
        #: DAG nodes whose job has arrived but whose predecessors have not all finished.
        self.blocked = 0
        self.jobs: list[JobRecord] = []
        self.on_job_node_done: Callable[[DagJob, int], None] | None = None
        self.on_job_node_failed: Callable[[DagJob, int], None] | None = None
        self.on_agent_stopped: Callable[[Specialist], None] | None = None
        self.resend_limit = network.resend_limit
        #: Circuit breakers on calls to agents (None: calls to dead agents just hang).
        self.breakers: BreakerBoard | None = None
        self.control_plane: ControlPlane | None = None
        self.breaker_open_s = 30.0
        self.call_failures = 0
        #: Agents that have a breaker at all (a set: the hot path checks it per delivery).
        self._breaker_targets: set[str] = set()
        #: Each team's agents (the traffic model's heartbeats, a dead lead's team); the
        #: team bulkhead's books and rule are the core's.
        self.team_members: dict[str, list[Specialist]] = {}
        #: Teams whose lead is dead (chaos): no new work reaches them until replaced.
        self.headless_teams: set[str] = set()
        #: Busy slots fleet-wide, and their integral over time (slot-seconds): utilisation
        #: over any window is a difference of two readings, with no scan of the agents.
        self.busy_slots = 0
        #: Services started and the sum of their waits: mean response time over a window.
        self.started = 0
        self.wait_sum = 0.0
        self._busy_area = 0.0
        self._busy_since = 0.0

    def new_task_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------ chief

    def submit(self, task: Task) -> None:
        """A task reaches the chief: the leader commits it to the log, then routes it over gRPC."""
        self.live[task.id] = task
        plane = self.control_plane
        if plane is None:
            self._send_to_zone(task)
        elif plane.detailed:
            plane.hold(task)  # no healthy leader: dispatch waits
        else:
            self._send_to_zone(task, plane.steady_commit_s)

    def committed(self, task: Task) -> None:
        """A held task's assignment is committed by a leader: dispatch it."""
        self._send_to_zone(task)

    def use_traffic(self, traffic: Traffic) -> None:
        """Count messages into *traffic* and queue them at its coordinators."""
        self.traffic = traffic
        self._msgs = traffic.counts
        self._chief = traffic.chief_queue()
        for name, zone in self.zones.items():
            zone.coord = traffic.zone_coordinator(name)

    def _send_to_zone(self, task: Task, extra: float = 0.0, zone: str = "") -> None:
        now = self.env._now
        if not zone:
            zone = self.core.home_zone(task, now)
        task.zone = zone
        self._msgs[_ASSIGN_GRPC] += 1
        if self._chief is not None:
            extra += self._chief.through(now)
        net = self.net
        if net.loss_rate and net.lost(zone):
            # Chaos message loss: no acknowledgement comes; the chief sends again after the TTL.
            self.in_transit += 1
            self.resent += 1
            self.env.timeout(self.net.ttl, task).callbacks.append(self._resend)
            return
        latency = (net.chief_to_zone(zone) if net.enabled else 0.0) + extra
        if latency <= 0:
            self.zone_receive(task, zone)
            return
        message = AgentMessage(
            MessageType.TASK_ASSIGN, "chief", self._coord_names[zone], task, now, self.net.ttl
        )
        self.in_transit += 1
        Call(self.env, latency, message, self._delivered_to_zone)

    def _resend(self, event: simpy.Event) -> None:
        self.in_transit -= 1
        self._send_to_zone(cast(Task, event.value))

    def send_to(self, task: Task, zone: str) -> None:
        """The chief dispatches *task* to a zone of its choosing (an escalation's re-dispatch)."""
        self._send_to_zone(task, zone=zone)

    def _delivered_to_zone(self, event: simpy.Event) -> None:
        message: AgentMessage = event._value  # a triggered Timeout's value, without the property
        task: Task = message.payload  # type: ignore[assignment]  # (typing.cast is a call)
        now = self.env._now
        self.in_transit -= 1
        zone = self.zones[task.zone]
        if zone.down:
            if self.breakers is not None and self._zone_call_failed(zone):
                self._send_to_zone(task)  # the breaker opened: route around the zone now
            else:
                zone.stranded.append(task)  # nobody answers; re-driven at detection
            return
        gate = self.core.zones
        if zone.name in gate.breaker_zones:
            gate.call_ok(zone.name, now)
            self._drain_breaker_events()
        if message.expired(now):
            # The chief hears no acknowledgement and sends the task again.
            self.expired += 1
            self.events.add(now, "message_expired", message.to, task=task.id)
            if task.attempt > self.resend_limit:
                self.fail(task, "ttl_expired")
                return
            self.retried += 1
            task.attempt += 1
            self._send_to_zone(task)
            return
        self.zone_receive(task, task.zone)

    # ------------------------------------------------------------------ zone coordinator

    def zone_receive(self, task: Task, zone: str) -> None:
        """The zone coordinator places the task on an agent, spills it, or queues it."""
        state = self.zones[zone]
        now = self.env._now
        # The zone coordinator processes the message whatever it decides.
        delay = state.coord.through(now) if state.coord is not None else 0.0
        agent_id = self.core.place(task, zone, now)
        if agent_id is None:
            task.enqueued = now  # the core queued it
            return
        agent = self.agents[agent_id]
        other = agent.zone
        if other == zone:
            self._assign(agent, task, delay + self.net.zone_to_agent(zone))
        else:
            self._msgs[_ASSIGN_NATS] += 1  # spilled to the nearest zone with a free agent
            latency = self.net.cross_zone(zone, other) + self.net.zone_to_agent(other)
            self._assign(agent, task, delay + latency)

    def _assign(self, agent: Specialist, task: Task, latency: float) -> None:
        self._msgs[_ASSIGN_GRPC] += 2  # zone coordinator -> team lead -> specialist
        now = self.env._now
        if agent.lead is not None:
            latency += agent.lead.through(now)
        self.zones[agent.zone].in_flight += 1
        self.core.hold(task, agent.id)
        task.dispatch = now
        task.agent = agent.id
        task.zone = agent.zone
        if latency > 0:
            agent.incoming[task.id] = task
        if agent.idle:
            # A slot is asleep waiting for work: the message wakes it on arrival, task in hand.
            wake_with(self.env, agent.idle.pop(), task, latency)
        elif latency <= 0:
            self._deliver(agent, task)
        else:
            Call(self.env, latency, (agent, task), self._delivered_to_agent)

    def _delivered_to_agent(self, event: simpy.Event) -> None:
        agent: Specialist
        task: Task
        agent, task = event._value
        if agent.incoming.pop(task.id, None) is None:
            return  # redistributed while on its way (the agent's failure was detected)
        self._deliver(agent, task)

    def _deliver(self, agent: Specialist, task: Task) -> None:
        if agent.crashed:
            if self.breakers is not None:
                self._call_failed(agent, task)
            else:
                agent.stranded.append(task)  # nobody there to take it; found at detection
            return
        if agent.id in self._breaker_targets:
            assert self.breakers is not None
            self.breakers.record_success(agent.id, self.env._now)
            self._breaker_moved(agent)
        if agent.draining and agent.live_slots == 0:
            # The agent finished draining while this task was on its way: place it anew.
            self.core.release(task, agent.id)
            self.zones[agent.zone].in_flight -= 1
            self.wake_reopened()
            task.agent = ""
            self.zone_receive(task, agent.zone)
            return
        task.enqueued = self.env._now
        agent.local.append(task)
        self.zones[agent.zone].local_queued += 1
        if agent.idle:
            agent.idle.pop().succeed()

    # ------------------------------------------------------------------ agent side

    def local_taken(self, agent: Specialist, task: Task) -> None:
        task.queued += self.env._now - task.enqueued
        task.enqueued = -1.0
        self.zones[agent.zone].local_queued -= 1
        self.core.sync(agent.id)

    def pull(self, agent: Specialist) -> tuple[Task, float] | None:
        """An agent with a free slot asks for queued work: its zone first, then the nearest."""
        core = self.core
        if core.closed_teams and core.team_closed(agent.id):
            return None  # its team's bulkhead is full: wait to be woken
        if self.headless_teams and agent.spec.team in self.headless_teams:
            return None  # its team lead is dead: no work reaches it until one takes over
        # Nothing waits anywhere most of the time: then there is nothing to look through.
        found = core.pull_one(agent.id, agent.zone, agent.category) if core.waiting else None
        if found is None:
            if core.sync(agent.id) == 0 and agent.busy_slots == 0:
                agent.status = "idle"
            return None
        task, source = found
        now = self.env._now
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
        for pred, data_mb in job.progress.predecessors(task.node):
            where = job.placement.get(pred)
            if where is None or where[0] == agent.id:
                continue
            slowest = max(slowest, self.net.transfer(data_mb, where[1], agent.zone))
            if self.traffic is not None:
                self.traffic.data_moved(data_mb, where[1] == agent.zone)
        return slowest

    def busy_area(self, now: float) -> float:
        """Slot-seconds of service delivered fleet-wide up to *now*."""
        return self._busy_area + self.busy_slots * (now - self._busy_since)

    def _busy_changed(self, now: float, delta: int) -> None:
        self._busy_area += self.busy_slots * (now - self._busy_since)
        self._busy_since = now
        self.busy_slots += delta

    def service_started(self, agent: Specialist, task: Task) -> None:
        now = self.env._now
        self._busy_area += self.busy_slots * (now - self._busy_since)  # _busy_changed, inlined
        self._busy_since = now
        self.busy_slots += 1
        task.start = now
        self.started += 1
        self.wait_sum += now - task.arrival
        zone = self.zones[agent.zone]
        if agent.busy_slots == 0:
            zone.busy_agents += 1
        agent.busy_slots += 1
        zone.busy_slots += 1
        agent.status = "busy"
        agent.busy_since.append(now)
        agent.current.append(task)

    def _attempt_over(self, agent: Specialist, task: Task, now: float) -> None:
        """An attempt stops serving (done or failed): free its slot and close its books."""
        # slot_freed and _busy_changed, written in: every attempt ends here.
        self._busy_area += self.busy_slots * (now - self._busy_since)
        self._busy_since = now
        self.busy_slots -= 1
        zone = self.zones[agent.zone]
        zone.busy_slots -= 1
        agent.busy_slots -= 1
        if agent.busy_slots == 0:
            zone.busy_agents -= 1
        current = agent.current
        if len(current) == 1:  # one slot (the common case): no search
            current.clear()
            started = agent.busy_since.pop()
        else:
            started = agent.busy_since.pop(current.index(task))
            current.remove(task)
        agent.busy_time += now - started
        core = self.core
        core.release(task, agent.id)
        zone.in_flight -= 1
        if core.reopened:  # wake_reopened's own first test, before the call
            self.wake_reopened()

    def service_ended(self, agent: Specialist, task: Task) -> None:
        now = self.env._now
        self._attempt_over(agent, task, now)
        agent.completed += 1
        service = now - task.start
        agent.served_time += service
        report = self.net.report(agent.zone)
        if self._chief is not None:
            report += self._through_up(agent, now)
        complete = now + report
        job = task.job
        self.task_log.record(task, "completed", now, complete, service)
        del self.live[task.id]
        self.completed += 1
        if self.count_categories:
            by_category = self.completed_by_category
            by_category[task.category] = by_category.get(task.category, 0) + 1
        self.collector.task_finished(agent.zone, complete - task.arrival, task.start - task.arrival)
        if job is not None:
            job.placement[task.node] = (agent.id, agent.zone)
            if self.on_job_node_done is not None:
                if report > 0:
                    Call(self.env, report, (job, task.node), self._reported)
                else:
                    self.on_job_node_done(job, task.node)

    def _through_up(self, agent: Specialist, now: float) -> float:
        """Processing on the way up: the team lead, the zone coordinator, the chief."""
        assert self._chief is not None
        return self._chief.through_chain(now, agent.lead, self.zones[agent.zone].coord)

    def attempt_failed(self, agent: Specialist, task: Task, reason: str) -> None:
        """An attempt ended in an error or a timeout: free the slot, tell the team lead.

        The agent reports TASK_FAILED to its team lead; what happens next is
        the escalation policy's call (sim.model.escalation).
        """
        now = self.env.now
        self._attempt_over(agent, task, now)
        agent.errors += 1
        agent.status = "error"
        self.attempt_errors += 1
        served = now - task.start
        self.task_log.record(task, "retried", now, now, served, reason)
        self.collector.attempt_failed(agent.zone)
        self._msgs[_FAILED_GRPC] += 1
        assert self.escalator is not None
        self.escalator.attempt_failed(agent, task, reason)

    def fail(self, task: Task, reason: str, *, attempt_counted: bool = False) -> None:
        """The task fails for good: recorded with its reason, never silently dropped.

        *attempt_counted*: its last attempt's failure is already in the error
        rate (an error or timeout), so the collector does not count it twice.
        """
        now = self.env.now
        job = task.job
        self.task_log.record(task, "failed", now, now, 0.0, reason)
        del self.live[task.id]
        self.failed += 1
        self.collector.task_finished(
            task.zone, now - task.arrival, failed=True, attempt_counted=attempt_counted
        )
        if job is not None and self.on_job_node_failed is not None:
            self.on_job_node_failed(job, task.node)

    def _reported(self, event: simpy.Event) -> None:
        job, node = cast(tuple[DagJob, int], event.value)
        assert self.on_job_node_done is not None
        self.on_job_node_done(job, node)

    def _call_failed(self, agent: Specialist, task: Task) -> None:
        """The call to a dead agent fails: place the task anew, and count it against the agent.

        Nothing ran, so the task's retry budget is untouched; the breaker is
        what stops the coordinator from trying the same dead agent again.
        """
        assert self.breakers is not None
        now = self.env.now
        self.core.release(task, agent.id)
        self.zones[agent.zone].in_flight -= 1
        self.wake_reopened()
        self.call_failures += 1
        task.agent = ""
        task.dispatch = -1.0
        self._breaker_targets.add(agent.id)
        self.breakers.record_failure(agent.id, now)
        self._breaker_moved(agent)
        self.zone_receive(task, agent.zone)

    def _breaker_moved(self, agent: Specialist) -> None:
        """Act on the breaker's transitions: open = out of the pool; half-open = one probe back."""
        assert self.breakers is not None
        if agent.id in self._drain_breaker_events():
            self.core.withdraw(agent.id)
            self.env.timeout(self.breaker_open_s, agent).callbacks.append(self._half_open)

    def _zone_call_failed(self, zone: ZoneState) -> bool:
        """The chief's call to a silent zone coordinator failed; True once its breaker is open."""
        call = self.core.zones.call_failed(zone.name, self.env.now)  # the gate's verdict
        self._drain_breaker_events()
        if call.opened:
            stranded, zone.stranded = zone.stranded, []
            for task in stranded:
                self._send_to_zone(task)
            self.env.timeout(self.breaker_open_s, zone).callbacks.append(self._zone_probe)
        return call.refused

    def _zone_probe(self, event: simpy.Event) -> None:
        """Half-open: let the chief try the zone again, unless its failure is already known."""
        zone = cast(ZoneState, event.value)
        # (Nothing when the health checks declared it: failover owns the routing now.)
        if self.core.zones.probe(zone.name, self.env.now):
            self._drain_breaker_events()

    def _drain_breaker_events(self) -> set[str]:
        """Log breaker transitions; the targets that just opened."""
        assert self.breakers is not None
        opened = set()
        for target, transition in self.breakers.drain_transitions():
            state = transition.to_state.value
            self.events.add(transition.time, "breaker", target, state=state, why=transition.reason)
            if state == "open":
                opened.add(target)
        return opened

    def _half_open(self, event: simpy.Event) -> None:
        agent = cast(Specialist, event.value)
        if self.agents.get(agent.id) is not agent or not agent.crashed:
            return  # detected and removed, or back as a new incarnation: nothing to probe
        assert self.breakers is not None
        self.breakers.allow(agent.id, self.env.now)  # open -> half-open: let a probe through
        self._breaker_moved(agent)
        self.core.admit(agent.info)

    def wake_reopened(self) -> None:
        """The team bulkhead reopened teams: their members' sleeping slots may pull now."""
        core = self.core
        if not core.reopened:
            return
        for agent_id in core.take_reopened():
            member = self.agents.get(agent_id)
            while member is not None and member.idle:
                member.idle.pop().succeed()

    def slot_freed(self, agent: Specialist, now: float) -> None:
        """A slot stops serving (its task ended, or its agent crashed): close the busy books."""
        self._busy_changed(now, -1)
        zone = self.zones[agent.zone]
        zone.busy_slots -= 1
        agent.busy_slots -= 1
        if agent.busy_slots == 0:
            zone.busy_agents -= 1

    def retry(self, task: Task, agent_id: str, reason: str, *, counted: bool = True) -> bool:
        """An attempt died with its agent: record it, then dispatch again within the budget.

        Whether it goes again is the core's call; returns False when the
        budget is spent and the task has failed for good. Not *counted* (a
        spot reclaim: not the task's fault), it always goes again, off budget.
        """
        now = self.env.now
        served = (now - task.start) if task.start >= 0 else 0.0
        if task.enqueued >= 0:
            task.queued += now - task.enqueued
            task.enqueued = -1.0
        self.task_log.record(task, "retried", now, now, served, reason)
        if not counted:
            self.core.requeue(task, agent_id)
        elif not self.core.retry(task, agent_id):
            self.fail(task, RETRIES_EXHAUSTED)
            return False
        self.retried += 1
        task.dispatch = -1.0
        task.start = -1.0
        task.transfer = 0.0
        task.agent = ""
        self._send_to_zone(task)
        return True

    def evacuate(self, zone_name: str) -> int:
        """The zone's coordinator is declared dead: send its waiting tasks elsewhere."""
        zone = self.zones[zone_name]
        moved: list[Task] = sorted(
            [*zone.stranded, *self.core.evacuate(zone_name)], key=lambda t: t.id
        )
        zone.stranded.clear()
        now = self.env.now
        for task in moved:
            if task.enqueued >= 0:
                task.queued += now - task.enqueued
                task.enqueued = -1.0
            self._send_to_zone(task)
        return len(moved)

    def set_down(self, zone_name: str, down: bool) -> None:
        """The zone's coordinator becomes unreachable (or reachable): its queue with it."""
        self.zones[zone_name].down = down
        self.core.mark_dark(zone_name, down)

    def release_stranded(self, zone_name: str) -> None:
        """The zone is back before anyone noticed: deliver what waited at its door."""
        zone = self.zones[zone_name]
        stranded, zone.stranded = zone.stranded, []
        for task in stranded:
            self.zone_receive(task, zone_name)

    def agent_stopped(self, agent: Specialist) -> None:
        """An agent's last slot loop ended (it drained or stopped)."""
        self.core.sync(agent.id)
        if self.on_agent_stopped is not None:
            self.on_agent_stopped(agent)

    # ------------------------------------------------------------------ books

    def physically_present(self) -> int:
        """Tasks found where they should be: queues, agents, messages, blocked DAG nodes."""
        queued = self.core.queued()
        held = sum(self.core.load(agent_id) for agent_id in self.agents)
        stranded = sum(len(zone.stranded) for zone in self.zones.values())
        if self.control_plane is not None:
            stranded += len(self.control_plane.held)
        return queued + held + self.in_transit + self.blocked + stranded
