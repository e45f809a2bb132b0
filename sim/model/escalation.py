"""Failed attempts travelling up the hierarchy: TASK_FAILED, retries, ESCALATION, failure.

Scenario: an attempt errors or times out on a specialist. The specialist
sends TASK_FAILED to its team lead, which retries on another agent of the
category after a backoff while its budget lasts; then it sends ESCALATION to
the zone coordinator, which moves the task (another team, the fastest agent,
another zone); then the zone escalates to the chief, which re-dispatches to
a zone where the task has not failed; when every budget is spent the task
fails for good with the reason of its last attempt.

Every decision is sim.policies.escalation's; whether an attempt fails is
sim.policies.task_faults'. This module only tells them what the fleet
looks like, moves the task and keeps time. While a task is between its
failure and its next dispatch it is counted in transit, so the conservation
check still finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import simpy

from sim.metrics.records import EventLog
from sim.model.chief import Chief
from sim.model.ledger import Ledger
from sim.model.roster import Roster
from sim.model.task import Task
from sim.model.traffic import Kind, Traffic
from sim.model.zone_dispatch import ZoneDispatch
from sim.model.zone_state import ZoneState
from sim.policies.balancing import LoadBalancer
from sim.policies.escalation import (
    Action,
    Decision,
    EscalationPolicy,
    Feasible,
    History,
    ZoneMove,
)
from sim.policies.escalation_moves import EscalationMoves, FleetView, Member
from sim.policies.keyed_draws import attempt_draws, task_key
from sim.policies.routing import ZoneRouter
from sim.policies.task_faults import Burst, Fault
from sim.world.network import Network
from sim.world.policy_set import attempt_faults, escalation_config

if TYPE_CHECKING:
    from sim.model.agent import Specialist
    from sim.scenario.schema import Scenario


def needs_escalator(scenario: Scenario) -> bool:
    """Whether any attempt of the run can fail (otherwise the hot path skips it all).

    A trace may carry per-task deadlines, so trace-driven runs always have one.
    """
    return (
        attempt_faults(scenario).active
        or any(event.error_burst is not None for event in scenario.chaos)
        or scenario.workload.arrivals.process == "trace"
        or scenario.llm is not None  # a throttled call's attempt fails as rate_limited
    )


class Escalator:
    """The fault draws and the escalation flow of one run."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        fault_seed: int,
        *,
        chief: Chief,
        zone_dispatch: ZoneDispatch,
        ledger: Ledger,
        events: EventLog,
        network: Network,
        traffic: Traffic,
        zones: dict[str, ZoneState],
        roster: Roster,
        balancer: LoadBalancer,
        router: ZoneRouter,
    ) -> None:
        self.env = env
        self.chief = chief
        self.zone_dispatch = zone_dispatch
        self.ledger = ledger
        self.events = events
        self.net = network
        self.traffic = traffic
        self.zones = zones
        self.agents = roster.agents
        self.balancer = balancer
        self.router = router
        self.faults = attempt_faults(scenario)
        self.policy = EscalationPolicy(escalation_config(scenario))
        #: The run's key for the attempts' fault draws (``policy_set.fault_seed``).
        self._seed = fault_seed
        #: Tasks failed for good by the escalation, and escalations made, per level.
        self.escalations = {"zone": 0, "chief": 0}

    # ------------------------------------------------------------------ the attempt

    def fault(self, agent: Specialist, task: Task, service_s: float) -> Fault | None:
        """Whether this attempt fails, and when: two draws keyed by the task and attempt, the
        live coordinator's for the same attempt (and, across variants, common random numbers)."""
        if task.deadline is None and not self.faults.active:
            return None
        key = task_key(self._seed, task.arrival, task.job_id, task.node)
        draws = attempt_draws(key, task.attempt)
        return self.faults.fault(task.category, agent.zone, service_s, draws, task.deadline)

    def start_burst(self, name: str, burst: Burst) -> None:
        self.faults.start_burst(name, burst)

    def end_burst(self, name: str) -> None:
        self.faults.end_burst(name)

    # ------------------------------------------------------------------ the hierarchy

    def _within_ttl(self, task: Task, send: Callable[[float], float], what: str) -> float | None:
        """Seconds until a message is delivered, resending while it arrives past its TTL.

        *send(now)* is one try's delay (network plus the receiving coordinator's
        queue). A try slower than the TTL is discarded on arrival; the sender,
        hearing nothing, sends again after the TTL — as the chief does with
        TASK_ASSIGN. None when the resend limit is spent.
        """
        ttl, now = self.net.ttl, self.env.now
        waited = 0.0
        for _ in range(self.net.resend_limit + 1):
            delay = send(now + waited)
            if delay <= ttl:
                return waited + delay
            self.ledger.expired += 1
            self.events.add(now + waited, "message_expired", what, task=task.id)
            waited += ttl
        return None

    def attempt_failed(self, agent: Specialist, task: Task, reason: str) -> None:
        """TASK_FAILED travels to the team lead, which decides when it gets there."""
        lead, zone, net = agent.lead, agent.zone, self.net

        def send(at: float) -> float:
            hop = net.zone_to_agent(zone) / 2
            return hop + (lead.through(at) if lead is not None else 0.0)

        hop = self._within_ttl(task, send, "task_failed")
        if hop is None:
            self.ledger.fail(task, "ttl_expired", attempt_counted=True)
            return
        self.ledger.in_transit += 1
        self.env.timeout(hop, (task, agent.id, agent.zone, reason)).callbacks.append(
            self._at_team_lead
        )

    def _at_team_lead(self, event: simpy.Event) -> None:
        task, agent_id, zone, reason = cast(tuple[Task, str, str, str], event.value)
        ledger = self.ledger
        ledger.in_transit -= 1
        history = task.history or History()
        feasible = self._feasible(task, history.failed(agent_id, zone, reason), zone)
        decision = self.policy.on_failure(history, agent_id, zone, reason, feasible)
        task.history = decision.history
        if decision.action is Action.FAIL:
            self.events.add(self.env.now, "task_failed", str(task.id), reason=reason)
            ledger.fail(task, reason, attempt_counted=True)
            return
        self._reset(task)
        task.attempt += 1
        ledger.retried += 1
        if decision.action is Action.RETRY:
            task.avoid = frozenset(decision.history.agents)
            ledger.in_transit += 1
            self.env.timeout(decision.delay_s, (task, zone)).callbacks.append(self._redispatch)
            return
        self._escalate(task, zone, decision)

    def _escalate(self, task: Task, zone: str, decision: Decision) -> None:
        """ESCALATION to the zone coordinator (and on to the chief when that is the level)."""
        net, now, msgs = self.net, self.env.now, self.traffic.counts
        coord = self.zones[zone].coord
        chief = self.traffic.chief_queue()
        to_chief = decision.action is Action.CHIEF

        def send(at: float) -> float:
            msgs[Kind.ESCALATION_GRPC] += 2 if to_chief else 1
            delay = net.zone_to_agent(zone) / 2  # team lead -> zone coordinator
            if coord is not None:
                delay += coord.through(at)
            if to_chief:
                delay += net.chief_to_zone(zone) if net.enabled else 0.0
                if chief is not None:
                    delay += chief.through(at + delay)
            return delay

        sent = self._within_ttl(task, send, "escalation")
        if sent is None:
            self.ledger.fail(task, "ttl_expired", attempt_counted=True)
            return
        delay = sent
        self.escalations["chief" if to_chief else "zone"] += 1
        self.events.add(
            now,
            "escalation",
            str(task.id),
            level=decision.action.value,
            move=decision.move.value if decision.move is not None else "",
            zone=zone,
        )
        self.ledger.in_transit += 1
        self.env.timeout(delay, (task, zone, decision)).callbacks.append(self._escalated)

    def _escalated(self, event: simpy.Event) -> None:
        task, zone, decision = cast(tuple[Task, str, Decision], event.value)
        self.ledger.in_transit -= 1
        failed_agents = frozenset(decision.history.agents)
        if decision.action is Action.CHIEF:
            task.avoid = failed_agents
            self.chief.send(task, self.env.now, zone=self._chief_zone(task, decision.history))
            return
        move = decision.move
        if move is ZoneMove.ANOTHER_TEAM:
            task.avoid = self._team_mates(task.category, zone, failed_agents)
            self.zone_dispatch.receive(task, zone, self.env.now)
        elif move is ZoneMove.BIGGER_AGENT:
            task.avoid = failed_agents
            task.critical = True  # every balancer sends critical work to the fastest agent
            task.info = None
            self.zone_dispatch.receive(task, zone, self.env.now)
        else:
            target = self._other_zone(task.category, zone, decision.history)
            task.avoid = failed_agents
            self.traffic.counts[Kind.ESCALATION_NATS] += 1
            latency = self.net.cross_zone(zone, target) if self.net.enabled else 0.0
            self.ledger.in_transit += 1
            self.env.timeout(latency, (task, target)).callbacks.append(self._redispatch)

    def _redispatch(self, event: simpy.Event) -> None:
        task, zone = cast(tuple[Task, str], event.value)
        self.ledger.in_transit -= 1
        self.zone_dispatch.receive(task, zone, self.env.now)

    @staticmethod
    def _reset(task: Task) -> None:
        task.dispatch = -1.0
        task.start = -1.0
        task.transfer = 0.0
        task.agent = ""

    # ------------------------------------------------------------------ what is feasible

    @property
    def moves(self) -> EscalationMoves:
        """The escalation's moves over the fleet as it is now (``escalation_moves``)."""
        return EscalationMoves(
            FleetView(
                self.router, self._pool, self._known, self.balancer.size, self.chief.core.dark
            )
        )

    def _pool(self, category: str, zone: str) -> list[Member]:
        return [
            Member(a.id, a.spec.team, a.speed)
            for a in self.agents.values()
            if a.category == category and a.zone == zone and not a.crashed and not a.draining
        ]

    def _known(self, agent_id: str) -> Member | None:
        agent = self.agents.get(agent_id)
        return None if agent is None else Member(agent.id, agent.spec.team, agent.speed)

    def _feasible(self, task: Task, history: History, zone: str) -> Feasible:
        return self.moves.feasible(task.category, zone, history)

    def _other_zone(self, category: str, zone: str, history: History) -> str:
        return self.moves.other_zone(category, zone, history)

    def _chief_zone(self, task: Task, history: History) -> str:
        return self.moves.chief_zone(task.category, task.home_zone, history)

    def _team_mates(self, category: str, zone: str, failed: frozenset[str]) -> frozenset[str]:
        return self.moves.team_mates(category, zone, failed)
