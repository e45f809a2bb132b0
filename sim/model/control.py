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

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.policies.alerts import AlertEvaluator, AlertEvent, alert_sample
from sim.policies.autoscale import Autoscaler, FleetObservation, ScaleDecision
from sim.policies.placement import PoolLoad, pick_drains, place_agents

if TYPE_CHECKING:
    from sim.model.engine import Simulation


class ControlLoop:
    """Autoscaling and alerting for one simulation."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        scaling = sim.scenario.scaling
        self.scaling = scaling
        self.enabled = scaling.auto_scale.enabled
        # Only specialists are added or drained: the policies see the specialist bounds
        # that the spec's whole-fleet bounds leave after the coordinating agents.
        self._control_agents = sim.scenario.control_agents()
        self.autoscaler: Autoscaler = sim.policies.autoscaler
        self.alerts: AlertEvaluator = sim.policies.alerts
        #: Readings of the fleet's running totals at each evaluation: (time, busy
        #: slot-seconds, sum of waits, services started, tasks submitted). The metric
        #: window's averages are differences between now and the reading a window ago.
        self._readings: deque[tuple[float, float, float, int, int]] = deque([(0.0, 0.0, 0.0, 0, 0)])

    # ------------------------------------------------------------------ autoscaling

    def autoscaling(self) -> Generator[simpy.Event, Any, None]:
        """Every evaluation interval: observe, decide, act."""
        every = self.scaling.decision_interval()
        while True:
            yield self.sim.env.timeout(every)
            self.evaluate()

    def observe(self) -> FleetObservation:
        sim = self.sim
        now = sim.env.now
        fleet, dispatcher = sim.fleet, sim.dispatcher
        start, busy0, waits0, started0, submitted0 = self._window_start(now)
        span = max(now - start, 1e-9)
        slots = sum(zone.slots for zone in sim.zones.values())
        busy = dispatcher.busy_area(now) - busy0
        serving = fleet.serving
        busy_agents = sum(zone.busy_agents for zone in sim.zones.values())
        arrivals = dispatcher.submitted - submitted0
        wait_sum = dispatcher.wait_sum - waits0
        wait_count = dispatcher.started - started0
        return FleetObservation(
            agents=serving + fleet.starting,
            ready=serving,
            starting=fleet.starting,
            queue_depth=float(
                dispatcher.core.queued() + sum(z.local_queued for z in sim.zones.values())
            ),
            avg_response_time_s=wait_sum / wait_count if wait_count else 0.0,
            cpu_utilization=min(1.0, busy / (span * slots)) if slots else 0.0,
            idle_fraction=(serving - busy_agents) / serving if serving else 0.0,
            in_flight=float(sum(z.in_flight for z in sim.zones.values())),
            arrival_rate=arrivals / span,
        )

    def _window_start(self, now: float) -> tuple[float, float, float, int, int]:
        """The latest reading at least one metric window old (the oldest kept, early on)."""
        window = self.scaling.metric_window
        readings = self._readings
        while len(readings) > 1 and readings[1][0] <= now - window + 1e-9:
            readings.popleft()
        return readings[0]

    def evaluate(self) -> ScaleDecision | None:
        """One evaluation: decide on the window just ended, then start the next window."""
        sim = self.sim
        now = sim.env.now
        if not self.enabled:
            return None
        observation = self.observe()
        decision = self.autoscaler.decide(observation, now)
        d = sim.dispatcher
        self._readings.append((now, d.busy_area(now), d.wait_sum, d.started, d.submitted))
        if decision.delta != 0:
            self.apply(decision)
        return decision

    def apply(self, decision: ScaleDecision) -> None:
        sim = self.sim
        now = sim.env.now
        pools = self._pools()
        done = 0
        if decision.delta > 0:
            for zone, category in place_agents(decision.delta, pools):
                reason = f"{decision.policy}: {decision.reason}"
                if sim.fleet.spawn(zone, category, self.scaling.spawn_delay, reason) is None:
                    break
                done += 1
        else:
            for zone, category in pick_drains(-decision.delta, pools):
                agent = sim.dispatcher.core.drain_choice(zone, category)
                if agent is not None and sim.fleet.drain(agent, decision.policy):
                    done -= 1
        sim.events.add(
            now,
            "scale",
            decision.policy,
            delta=done,
            asked=decision.delta,
            target=decision.target,
            reason=decision.reason,
        )

    def _pools(self) -> list[PoolLoad]:
        sim = self.sim
        core = sim.dispatcher.core
        agents: dict[tuple[str, str], list[int]] = {}
        for agent in sim.fleet.agents.values():
            if agent.draining:
                continue
            entry = agents.setdefault((agent.zone, agent.category), [0, 0])
            entry[0] += 1
            entry[1] += agent.busy_slots
        starting = sim.fleet.starting_by_pool()
        pools = []
        for zone in sim.world.zones:
            for category in sim.world.categories:
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
            self.sim.events.add(
                now,
                "alert",
                event.name,
                state=event.state,
                severity=event.severity,
                action=event.action,
                value=event.value,
                metric=event.metric,
            )
            if event.state == "firing" and event.action == "scale_up_immediate" and self.enabled:
                self.autoscaler.force_scale_up(now, f"alert {event.name}")
                self.evaluate()
        return transitions
