"""The control loop: the chief's autoscaler and the monitoring system's alert rules.

Scenario: every evaluation interval the chief coordinator looks at the fleet
over the last metric window — queue depth, mean response time, utilisation,
idle share — and asks the autoscaling policy how many agents there should
be. New agents are requested from the reserve pool for the most pressed
(zone, category) pools and serve after the spawn delay; surplus agents are
drained from the least pressed pools, finishing what they hold. After every
metrics sample the alert rules are evaluated; ``scale_up_immediate`` pushes
the autoscaler past its cooldown at once, the other actions are recorded on
the timeline (the live adapter turns them into webhooks).

The numbers decided here all come from sim.policies (autoscale, placement,
alerts); this module measures, asks and carries out.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.metrics.records import EventLog
from sim.metrics.scaling_rows import evaluation_row
from sim.model.control_plane import ControlPlane
from sim.model.fleet import Fleet
from sim.model.ledger import Ledger
from sim.model.slots import SlotBooks
from sim.model.zone_state import ZoneState
from sim.policies.alerts import AlertEvaluator, AlertEvent, alert_sample
from sim.policies.autoscale import FleetObservation, ScaleDecision
from sim.policies.autoscale.billing import DrainCandidate, drain_choice
from sim.policies.dispatch import DispatchCore
from sim.policies.placement import PoolLoad
from sim.policies.scaling_loop import FleetTotals, ScalingLoop, alert_fields, react_to_alert
from sim.scenario.schema import Scenario
from sim.world.policy_set import PolicySet
from sim.world.topology import World


class ControlLoop:
    """Autoscaling and alerting for one simulation."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        policies: PolicySet,
        *,
        world: World,
        fleet: Fleet,
        zones: dict[str, ZoneState],
        core: DispatchCore[Any],
        slots: SlotBooks,
        ledger: Ledger,
        events: EventLog,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.world = world
        self.fleet = fleet
        self.zones = zones
        self.core = core
        self.slots = slots
        self.ledger = ledger
        self.events = events
        scaling = scenario.scaling
        self.scaling = scaling
        self.enabled = scaling.auto_scale.enabled
        # Only specialists are added or drained: the policies see the specialist bounds
        # that the spec's whole-fleet bounds leave after the coordinating agents.
        self._control_agents = scenario.control_agents()
        self.loop: ScalingLoop = policies.scaling_loop
        self.alerts: AlertEvaluator = policies.alerts
        #: The chiefs' Raft group (the engine sets it): its leader runs the autoscaler.
        self.control_plane: ControlPlane | None = None
        #: Every evaluation's row (``scaling.parquet``), holds included.
        self.evaluations: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ autoscaling

    def autoscaling(self) -> Generator[simpy.Event, Any, None]:
        """Every evaluation interval: observe, decide, act."""
        every = self.scaling.decision_interval()
        while True:
            yield self.env.timeout(every)
            self.evaluate()

    def totals(self) -> FleetTotals:
        """The fleet's levels and running totals now, as the scaling loop reads them."""
        now = self.env.now
        fleet, slots, zones = self.fleet, self.slots, self.zones.values()
        serving = fleet.serving
        return FleetTotals(
            serving=serving,
            starting=fleet.starting,
            slots=sum(zone.slots for zone in zones),
            idle=serving - sum(zone.busy_agents for zone in zones),
            queue_depth=float(self.core.queued() + sum(z.local_queued for z in zones)),
            in_flight=float(sum(z.in_flight for z in zones)),
            busy_area=slots.busy_area(now),
            wait_sum=slots.wait_sum,
            started=slots.started,
            submitted=self.ledger.submitted,
        )

    def new_leader(self) -> None:
        """A new leader's metric windows start now (``ScalingLoop.new_leader``)."""
        self.loop.new_leader(self.env.now, self.totals())

    def observe(self) -> FleetObservation:
        return self.loop.observe(self.env.now, self.totals())

    def evaluate(self) -> ScaleDecision | None:
        """One evaluation: decide on the window just ended, then carry the plan out."""
        now = self.env.now
        if not self.enabled:
            return None
        plane = self.control_plane
        if plane is not None and plane.leaderless:
            return None  # nobody to decide: live has no primary to evaluate either
        plan = self.loop.evaluate(now, self.totals(), self._pools)
        self.evaluations.append(evaluation_row(now, plan))
        decision = plan.decision
        if decision.delta == 0:
            return decision
        done = 0
        reason = f"{decision.policy}: {decision.reason}"
        actuation = self.scaling.pipeline.actuation_delay
        for zone, category in plan.spawn:
            startup = self.fleet.startup_s()
            if self.fleet.spawn(zone, category, startup, reason, actuation_s=actuation) is None:
                break
            done += 1
        for zone, category in plan.drain:
            agent = self._drain_choice(zone, category)
            if agent is not None and self.fleet.drain(agent, decision.policy):
                done -= 1
        self.events.add(now, "scale", decision.policy, **plan.record(done))
        return decision

    def _drain_choice(self, zone: str, category: str) -> str | None:
        """The pool's agent to drain: the core's rule (``billing.drain_choice``)."""
        core = self.core
        unit_s = self.scenario.purchase.billing.drain_unit_s

        def candidates() -> list[DrainCandidate]:
            now = self.env.now
            return [
                DrainCandidate(agent.id, now - self.fleet.joined_at(agent.id), core.load(agent.id))
                for agent in self.fleet.agents.values()
                if agent.zone == zone
                and agent.category == category
                and not agent.draining
                and not agent.crashed
            ]

        return drain_choice(lambda: core.drain_choice(zone, category), candidates, unit_s)

    def _pools(self) -> list[PoolLoad]:
        core = self.core
        agents: dict[tuple[str, str], list[int]] = {}
        for agent in self.fleet.agents.values():
            if agent.draining:
                continue
            entry = agents.setdefault((agent.zone, agent.category), [0, 0])
            entry[0] += 1
            entry[1] += agent.busy_slots
        starting = self.fleet.starting_by_pool()
        pools = []
        for zone in self.world.zones:
            for category in self.world.categories:
                count, busy = agents.get((zone, category), [0, 0])
                queued = core.pool_queued(zone, category)
                pools.append(
                    PoolLoad(zone, category, count, starting.get((zone, category), 0), busy, queued)
                )
        return pools

    # ------------------------------------------------------------------ alerts

    def sampled(self, now: float, row: dict[str, Any]) -> list[AlertEvent]:
        """Evaluate the alert rules on the sample just taken and act on what fires."""
        sample = alert_sample(row, self._control_agents)
        transitions = self.alerts.evaluate(now, sample)
        for event in transitions:
            self.events.add(now, "alert", event.name, **alert_fields(event))
            reaction = react_to_alert(event, self.enabled)
            if reaction.force_scale_up is not None:
                self.loop.force(now, reaction.force_scale_up)
                self.evaluate()
        return transitions
