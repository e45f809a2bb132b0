"""Scaling: every evaluation interval, the autoscaler decides and the provisioner acts.

Scenario: at each multiple of ``scaling.decision_interval()`` the primary
counts the fleet's totals and hands them to the scaling loop of the one
core (``sim.policies.scaling_loop``: the metric window, the autoscaler, where
agents go and which pools give them up). A scale-up is started by the
provisioner; a scale-down drains, in each pool the plan names, the least
loaded agent (it finishes what it holds, then leaves).

A started agent joins a team of its zone by the simulator's rule
(``sim.policies.placement.team_for``: the zone's teams in turn, by the
agent's number from the reserve pool, 1 up) and carries it (``--team``,
then in its heartbeats), so the team bulkhead counts it as the simulator
counts its own. (The numbering is this replica's: a standby that takes over
numbers from 1 again.) A dead agent's replacement (``health.replace_failed``,
started by the health check) and a reclaimed one's come from the same pool.
What can start is the reserve pool's to say
(``ReservePool``, the simulator's books): a plan's spawns beyond it are not
made, and a drained agent that has left gives its place back.

Recommendation mode (a provisioner that ``recommend``s, sim.live.remote_provisioner):
the same decision and the same placement, published for someone else to act
on; no agent is started, none is drained, and nothing is booked as starting
(the autoscaler's next look sees the fleet as it really is).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from sim.live.broker import Broker
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import Books, EventLog, ScenarioTime
from sim.live.provisioner import AgentSpec, Provisioner
from sim.live.transport import control_subject
from sim.metrics.scaling_rows import SCALING_LEVEL, evaluation_row
from sim.policies.autoscale.billing import DrainCandidate, drain_choice
from sim.policies.placement import PoolLoad, ReservePool, team_for
from sim.policies.scaling_loop import FleetTotals, ScalePlan, ScalingLoop, scale_record


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
        loop: ScalingLoop,
        provisioner: Provisioner,
        actuation_delay_s: float,
        pools: tuple[tuple[str, ...], tuple[str, ...]],
        teams: Mapping[str, tuple[str, ...]],
        reserve: ReservePool,
        drain_unit_s: float | None = None,
        *,
        spot_rule: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.books, self.intake, self.broker, self.time, self.event = (
            books,
            intake,
            broker,
            time,
            event,
        )
        self.loop, self.provisioner = loop, provisioner
        self.actuation_delay_s = actuation_delay_s
        self.zones, self.categories = pools
        #: Each zone's team ids, and the reserve pool's numbering of the agents it lends.
        self.teams = teams
        self._lent = itertools.count(1)
        #: What the reserve pool can still lend (the simulator's books, the same rule).
        self.reserve = reserve
        #: The billing unit when a scale-down drains near the end of a paid unit, else None.
        self.drain_unit_s = drain_unit_s
        self._actuating: set[asyncio.Task[None]] = set()
        #: Agents told to drain and not yet retired (a ``Retires`` provisioner is told).
        self._draining: set[str] = set()
        #: Whether an agent started in (zone, category) runs on spot (None: none does).
        self.spot_rule = spot_rule

    def totals(self, now: float) -> FleetTotals:
        """The fleet's levels and running totals now, as the scaling loop reads them."""
        books, counts = self.books, self.intake.counts
        serving = books.serving()
        busy = counts.busy_agents()
        c = books.counters
        return FleetTotals(
            serving=len(serving),
            starting=len(books.requested),
            slots=sum(a.slots for a in serving),
            idle=sum(1 for a in serving if a.agent_id not in busy),
            queue_depth=float(counts.waiting()),
            in_flight=float(counts.held()),
            busy_area=c.busy_s + sum(now - s for _, _, s in books.in_flight.values()),
            wait_sum=c.wait_sum,
            started=c.started,
            submitted=c.submitted,
        )

    async def resume(self, history: list[dict[str, Any]]) -> None:
        """Taking over: the predecessor's scale changes from the event log, so cooldowns and
        rate limits run on (the spec's chiefs keep them through Raft). Without them, a new
        primary at the spec's fleet scaled down again 4 minutes after the first primary
        had, inside the step policy's cooldown, where the simulator's autoscaler held."""
        scales = [
            scale_record(float(doc["time_s"]), json.loads(str(doc["detail"])))
            for doc in history
            if doc.get("kind") == "scale"
        ]
        now = self.time.now()
        self.loop.resume(now, self.totals(now), scales)

    async def evaluate(self, at: float | None = None) -> None:
        now = self.time.now() if at is None else at
        self.time.advance(now)
        plan = self.loop.evaluate(now, self.totals(now), self.pools)
        # Every evaluation, holds too, on the metrics stream (a successor reads them on).
        row = evaluation_row(now, plan)
        await self.broker.publish("orch.metric", {"level": SCALING_LEVEL, **row})
        decision = plan.decision
        self._retire_left()
        if decision.delta == 0:
            return
        if isinstance(self.provisioner, Recommends):
            await self._recommend(plan, now)
            return
        done = 0
        for zone, category in plan.spawn:
            spec = self._lend(zone, category)
            if spec is None:
                break  # the reserve pool is empty: the rest of the plan is not made
            # Counted as starting from the decision on (the autoscaler's contract), even
            # while the actuation delay holds the provisioner back.
            self.books.requested[spec.agent_id] = spec
            await self.event("agent_requested", spec.agent_id, zone=zone, category=category)
            self._start(spec)
            done += 1
        for zone, category in plan.drain:
            chosen = self._drain_choice(zone, category, now)
            if chosen is None:
                continue
            agent = self.books.agents[chosen]
            agent.draining = True
            self.intake.withdraw(agent.agent_id)
            await self.broker.notify(control_subject(agent.agent_id), b"drain")
            self._draining.add(agent.agent_id)
            await self.event("agent_draining", agent.agent_id, reason=decision.policy)
            done -= 1
        await self.event("scale", decision.policy, **plan.record(done))

    async def replace(self, zone: str, category: str, reason: str) -> str | None:
        """Start one agent in (zone, category) in place of one that is going: its id.

        As the simulator's failover asks the reserve pool for a replacement
        (``health.replace_failed``): counted as starting from now, on spot if
        its pool is below its share. None in recommendation mode (nothing is
        started there, or the reserve pool is empty).
        """
        if isinstance(self.provisioner, Recommends):
            return None
        spec = self._lend(zone, category)
        if spec is None:
            return None  # the reserve pool is empty, as the simulator's spawn finds it
        self.books.requested[spec.agent_id] = spec
        await self.event(
            "agent_requested", spec.agent_id, zone=zone, category=category, reason=reason
        )
        self._start(spec)
        return spec.agent_id

    def _lend(self, zone: str, category: str) -> AgentSpec | None:
        """One agent from the reserve pool for (zone, category), or None when it is empty.

        As the simulator's fleet spawns: the pool lends, the lent number picks the
        zone's team in turn, and the pool's spot rule says whether it runs on spot.
        """
        if not self.reserve.lend():
            return None
        team = team_for(next(self._lent), self.teams[zone])
        spot = self.spot_rule is not None and self.spot_rule(zone, category)
        agent_id = f"{zone}-{category}-s{secrets.token_hex(3)}"
        return AgentSpec(agent_id, zone, category, team=team, spot=spot)

    def _drain_choice(self, zone: str, category: str, now: float) -> str | None:
        """The pool's agent to drain: the core's rule (``billing.drain_choice``), as simulated."""

        def candidates() -> list[DrainCandidate]:
            return [
                DrainCandidate(a.agent_id, now - a.joined_s, self.intake.held(a.agent_id))
                for a in self.books.agents.values()
                if a.zone == zone and a.category == category and a.healthy and not a.draining
            ]

        return drain_choice(
            lambda: self.intake.drain_choice(zone, category), candidates, self.drain_unit_s
        )

    def _start(self, spec: AgentSpec) -> None:
        """Start the agent now, or after the pipeline's actuation delay (scenario seconds)."""
        if self.actuation_delay_s <= 0:
            self.provisioner.start(spec)
            return

        async def later() -> None:
            await asyncio.sleep(self.time.clock.wall(self.actuation_delay_s))
            if spec.agent_id in self.books.requested:
                self.provisioner.start(spec)

        task = asyncio.get_running_loop().create_task(later())
        self._actuating.add(task)
        task.add_done_callback(self._actuating.discard)

    def _retire_left(self) -> None:
        """Drained agents that have left: back in the reserve pool, and their provisioner
        may hand their resources back."""
        for agent_id in sorted(self._draining):
            view = self.books.agents.get(agent_id)
            if view is None or not view.healthy:
                self._draining.discard(agent_id)
                self.reserve.give_back()
                if isinstance(self.provisioner, Retires):
                    self.provisioner.retire(agent_id)

    async def _recommend(self, plan: ScalePlan, now: float) -> None:
        """Recommendation mode: the decision and where it would go, published; nothing done."""
        assert isinstance(self.provisioner, Recommends)
        decision = plan.decision
        where: list[dict[str, str]] = [{"zone": z, "category": c} for z, c in plan.spawn]
        for zone, category in plan.drain:
            chosen = self._drain_choice(zone, category, now)
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
        await self.event("scale", decision.policy, **plan.record(0), recommended=True)
        await self.provisioner.recommend(recommendation)

    def pools(self) -> list[PoolLoad]:
        """Each pool as the scaler sees it: serving agents, starting, busy slots, queued.

        Busy slots are the attempts the coordinator's books hold as started and not
        ended — its own record, as the simulator's are its agents' busy slots — not
        the agents' heartbeats, which are as old as the health check's last read:
        the drain choice (``pick_drains``) ranks pools by this, and stale counts sent
        a full fleet's first scale-down to other pools than the simulator's. Queued is
        the pool's queue in the dispatch core, not a task on its way to a free slot
        (``FleetCounts``): such a task kept a pool from giving up an agent.
        """
        books = self.books
        loads: dict[tuple[str, str], list[int]] = {}
        pool_of: dict[str, tuple[str, str]] = {}
        for a in books.serving():
            pool_of[a.agent_id] = (a.zone, a.category)
            loads.setdefault((a.zone, a.category), [0, 0])[0] += 1
        for who, _zone, _start in books.in_flight.values():
            pool = pool_of.get(who)
            if pool is not None:
                loads[pool][1] += 1
        starting: dict[tuple[str, str], int] = {}
        for spec in books.requested.values():
            starting[spec.zone, spec.category] = starting.get((spec.zone, spec.category), 0) + 1
        queued = self.intake.counts.pool_queued
        return [
            PoolLoad(
                z,
                c,
                loads.get((z, c), [0, 0])[0],
                starting.get((z, c), 0),
                loads.get((z, c), [0, 0])[1],
                queued(z, c),
            )
            for z in self.zones
            for c in self.categories
        ]
