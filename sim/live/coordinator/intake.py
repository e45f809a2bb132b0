"""Intake: submissions in, tasks out to agents, results back — every call to the dispatcher.

Scenario: a submission arrives on ``orch.submit``. A task is routed to a
zone (``ZoneRouter``) and to an agent by the scenario's load balancer, or
waits in its pool's queue; a DAG job's ready nodes go out in upward-rank
order (``DagProgress``). The chosen agent's work-queue subject (on its zone's
stream) carries the task. Results come back on ``orch.result.<zone>``: a start
moves the attempt in flight, an end frees the slot (which pulls the next
queued task), counts a completion once per task id and releases DAG
successors. When an agent dies or leaves, what it held is placed anew and
pools left without agents send their queues to the nearest staffed zone.

Every decision is the dispatch core's (``sim.policies.dispatch``, the one the
simulator runs):
the intake is the one place that calls it, so the coordinator's other parts
speak of agents joining and leaving, never of queues.

Its jobs live one a module, each class the base of the next: ``outbound``
(writes and batches), ``placement`` (the dispatcher's calls for agents and
zones), ``submissions`` (and replies), ``results`` (and retries). This module
builds the books they share.
"""

from __future__ import annotations

from typing import Any

from sim.live.broker import Broker
from sim.live.coordinator.admission import LiveAdmission
from sim.live.coordinator.agent_calls import AgentCalls
from sim.live.coordinator.attempt_faults import FaultDraws
from sim.live.coordinator.dag_transfers import DagTransfers
from sim.live.coordinator.escalation import Escalation
from sim.live.coordinator.fleet_counts import FleetCounts
from sim.live.coordinator.message_loss import MessageLoss
from sim.live.coordinator.results import Results
from sim.live.coordinator.state import Books, EventLog, ScenarioTime
from sim.live.coordinator.zone_calls import ZoneCalls
from sim.live.task import LiveTask
from sim.live.task_message import Pools
from sim.metrics.collector import MetricsCollector
from sim.policies.dispatch import DispatchCore
from sim.policies.resilience import BreakerBoard
from sim.scenario.schema import Scenario


class Intake(Results):
    """Submissions, dispatch and results (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        books: Books,
        dispatcher: DispatchCore[LiveTask],
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        collector: MetricsCollector,
        escalation: Escalation,
        *,
        replies: bool = False,
        admission: LiveAdmission | None = None,
        breakers: BreakerBoard | None = None,
        fault_draws: FaultDraws | None = None,
        transfers: DagTransfers | None = None,
        losses: MessageLoss | None = None,
    ) -> None:
        self.scenario, self.books, self.dispatcher = scenario, books, dispatcher
        #: What waits, what is held, who serves: the simulator's counts, from the records.
        self.counts = FleetCounts(books, dispatcher)
        self.broker, self.time, self.event = broker, time, event
        #: Told of every finished task (latency and wait per zone).
        self.collector = collector
        self.queue_limit = scenario.topology.specialist.queue_limit
        self.zones = {z.name for z in scenario.topology.zones}
        #: What a submission may name: anybody may publish one, so each is checked.
        tiers = scenario.tiers
        self.pools = Pools(
            frozenset(self.zones),
            frozenset(scenario.topology.categories),
            frozenset(level.name for level in tiers.levels) if tiers else None,
            frozenset(tiers.tenants) if tiers else None,
        )
        #: Tiers, tenants and shedding (the scenario's ``tiers`` section; None: all admitted).
        self.admission = admission
        #: Publish each task's outcome on its reply subject (a service; a live run has no
        #: client waiting, and skips the write).
        self.replies = replies
        #: False once a service drains: new submissions stay in ORCH_SUBMIT for the next
        #: primary (which reads the stream from its first message), none is booked here.
        self.accepting = True
        #: End reports read by a catch-up before their submission (for the reply).
        self._early_ends: dict[int, dict[str, Any]] = {}
        #: What a failed attempt leads to: the simulator's escalation policy.
        self.escalation = escalation
        self.fault_draws = fault_draws
        self.transfers = transfers
        #: The chief's calls to zones: the zone gate's verdicts, doors and probes.
        self.calls = ZoneCalls(dispatcher, losses)
        #: The zone coordinator's calls to agents, and their breakers (None: no calls).
        self.agent_calls = AgentCalls(
            breakers,
            scenario.policies.circuit_breaker.open,
            broker,
            time,
            event,
            books,
            dispatcher,
        )

    # ------------------------------------------------------------------ the dispatcher
