"""Scaling: every evaluation interval, the autoscaler decides and the provisioner acts.

Scenario: at each multiple of ``scaling.decision_interval()`` the primary
observes the fleet over the scenario's metric window (agents serving and
starting, queue depth, mean wait, utilisation of the slots, idle share,
arrival rate) and asks the scenario's autoscaler. A scale-up is placed on
pools by ``place_agents`` and started by the provisioner; a scale-down picks
pools by ``pick_drains`` and, in each, the least loaded agent, which is told
to drain (it finishes what it holds, then leaves).

Recommendation mode (a provisioner that ``recommend``s, sim.live.remote_provisioner):
the same decision and the same placement, published for someone else to act
on; no agent is started, none is drained, and nothing is booked as starting
(the autoscaler's next look sees the fleet as it really is).
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any, Protocol, runtime_checkable

from sim.live.broker import Broker
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import Books, EventLog, ScenarioTime
from sim.live.provisioner import AgentSpec, Provisioner
from sim.live.transport import control_subject
from sim.policies.autoscale import Autoscaler, FleetObservation, ScaleDecision
from sim.policies.placement import PoolLoad, pick_drains, place_agents


@runtime_checkable
class Recommends(Protocol):
    """A provisioner in recommendation mode: it is told decisions, it starts nothing."""

    async def recommend(self, recommendation: dict[str, Any]) -> None: ...


@runtime_checkable
class Retires(Protocol):
    """A provisioner that hands a drained agent's resources back once the agent has left."""

    def retire(self, agent_id: str) -> None: ...


class Scaling:
    """The autoscaler's loop (see the module docstring)."""

    def __init__(
        self,
        books: Books,
        intake: Intake,
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        autoscaler: Autoscaler,
        provisioner: Provisioner,
        metric_window_s: float,
        pools: tuple[tuple[str, ...], tuple[str, ...]],
    ) -> None:
        self.books, self.intake, self.broker, self.time, self.event = (
            books,
            intake,
            broker,
            time,
            event,
        )
        self.autoscaler, self.provisioner = autoscaler, provisioner
        self.metric_window_s = metric_window_s
        self.zones, self.categories = pools
        #: Agents told to drain and not yet retired (a ``Retires`` provisioner is told).
        self._draining: set[str] = set()
        #: (time, busy s, wait sum, started, submitted) at each evaluation: the window's start.
        self._readings: deque[tuple[float, float, float, int, int]] = deque([(0.0, 0.0, 0.0, 0, 0)])

    def _busy(self, now: float) -> float:
        c = self.books.counters
        return c.busy_s + sum(now - s for _, _, s in self.books.in_flight.values())

    def observe(self, now: float) -> FleetObservation:
        books = self.books
        while len(self._readings) > 1 and self._readings[1][0] <= now - self.metric_window_s + 1e-9:
            self._readings.popleft()
        start, busy0, waits0, started0, submitted0 = self._readings[0]
        span = max(now - start, 1e-9)
        serving = books.serving()
        slots = sum(a.slots for a in serving)
        busy = self._busy(now) - busy0
        c = books.counters
        started = c.started - started0
        return FleetObservation(
            agents=len(serving) + len(books.requested),
            ready=len(serving),
            starting=len(books.requested),
            queue_depth=float(books.queue_depth()),
            avg_response_time_s=(c.wait_sum - waits0) / started if started else 0.0,
            cpu_utilization=min(1.0, busy / (span * slots)) if slots else 0.0,
            idle_fraction=sum(1 for a in serving if a.in_flight == 0) / len(serving)
            if serving
            else 0.0,
            in_flight=float(len(books.in_flight)),
            arrival_rate=(c.submitted - submitted0) / span,
        )

    async def evaluate(self, at: float | None = None) -> None:
        now = self.time.now() if at is None else at
        self.time.advance(now)
        observation = self.observe(now)
        decision = self.autoscaler.decide(observation, now)
        c = self.books.counters
        self._readings.append((now, self._busy(now), c.wait_sum, c.started, c.submitted))
        self._retire_left()
        if decision.delta == 0:
            return
        pools = self.pools()
        if isinstance(self.provisioner, Recommends):
            await self._recommend(decision, pools, now)
            return
        done = 0
        if decision.delta > 0:
            for zone, category in place_agents(decision.delta, pools):
                spec = AgentSpec(f"{zone}-{category}-s{secrets.token_hex(3)}", zone, category)
                self.provisioner.start(spec)
                self.books.requested[spec.agent_id] = spec
                await self.event("agent_requested", spec.agent_id, zone=zone, category=category)
                done += 1
        else:
            for zone, category in pick_drains(-decision.delta, pools):
                chosen = self.intake.drain_choice(zone, category)  # the idlest
                if chosen is None:
                    continue
                agent = self.books.agents[chosen]
                agent.draining = True
                self.intake.withdraw(agent.agent_id)
                await self.broker.notify(control_subject(agent.agent_id), b"drain")
                self._draining.add(agent.agent_id)
                await self.event("agent_draining", agent.agent_id, reason=decision.policy)
                done -= 1
        await self.event(
            "scale",
            decision.policy,
            delta=done,
            asked=decision.delta,
            target=decision.target,
            reason=decision.reason,
        )

    def _retire_left(self) -> None:
        """Drained agents that have left: their provisioner may hand their resources back."""
        if not isinstance(self.provisioner, Retires):
            self._draining.clear()
            return
        for agent_id in sorted(self._draining):
            view = self.books.agents.get(agent_id)
            if view is None or not view.healthy:
                self._draining.discard(agent_id)
                self.provisioner.retire(agent_id)

    async def _recommend(self, decision: ScaleDecision, pools: list[PoolLoad], now: float) -> None:
        """Recommendation mode: the decision and where it would go, published; nothing done."""
        assert isinstance(self.provisioner, Recommends)
        if decision.delta > 0:
            where = [{"zone": z, "category": c} for z, c in place_agents(decision.delta, pools)]
        else:
            where = []
            for zone, category in pick_drains(-decision.delta, pools):
                chosen = self.intake.drain_choice(zone, category)
                if chosen is not None:
                    where.append({"zone": zone, "category": category, "agent": chosen})
        recommendation = {
            "time_s": now,
            "delta": decision.delta,
            "target": decision.target,
            "policy": decision.policy,
            "reason": decision.reason,
            "pools": where,
        }
        for entry in where:
            await self.event("scale_recommended", decision.policy, **entry)
        await self.event(
            "scale",
            decision.policy,
            delta=0,
            asked=decision.delta,
            target=decision.target,
            reason=decision.reason,
            recommended=True,
        )
        await self.provisioner.recommend(recommendation)

    def pools(self) -> list[PoolLoad]:
        books = self.books
        loads: dict[tuple[str, str], list[int]] = {}
        for a in books.serving():
            entry = loads.setdefault((a.zone, a.category), [0, 0])
            entry[0] += 1
            entry[1] += a.in_flight
        starting: dict[tuple[str, str], int] = {}
        for spec in books.requested.values():
            starting[spec.zone, spec.category] = starting.get((spec.zone, spec.category), 0) + 1
        queued: dict[tuple[str, str], int] = {}
        for t in books.tasks.values():
            if books.waiting(t):
                where = t.zone or t.home_zone
                queued[where, t.category] = queued.get((where, t.category), 0) + 1
        return [
            PoolLoad(
                z,
                c,
                loads.get((z, c), [0, 0])[0],
                starting.get((z, c), 0),
                loads.get((z, c), [0, 0])[1],
                queued.get((z, c), 0),
            )
            for z in self.zones
            for c in self.categories
        ]
