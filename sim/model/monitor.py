"""The monitoring system: zone, global and agent metrics sampled on an interval.

Scenario: every ``metrics.interval`` the monitoring system reads each zone's
running totals (no scan of the agents), the bill so far, the message
traffic and, where the scenario has them, the provider buckets, the tiers
and the spot books; every ``metrics.agent_interval`` it reads every agent
too. Each sample is handed to the control loop, whose alert rules evaluate
it. The traffic model hears who is alive after each sample, so heartbeats
and status polls scale with the fleet.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.metrics.collector import AgentColumns, MetricsCollector, ZoneSnapshot
from sim.model.admission import Admission
from sim.model.control import ControlLoop
from sim.model.fleet import Fleet
from sim.model.ledger import Ledger
from sim.model.llm_work import LlmWork
from sim.model.roster import Roster
from sim.model.traffic import Traffic
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.scenario.observability import Metrics


class Monitor:
    """Samples one run's metrics into the collector and hands each sample to the control loop."""

    def __init__(
        self,
        env: simpy.Environment,
        metrics: Metrics,
        collector: MetricsCollector,
        *,
        zones: dict[str, ZoneState],
        core: DispatchCore[Any],
        roster: Roster,
        fleet: Fleet,
        traffic: Traffic,
        ledger: Ledger,
        control: ControlLoop,
        llm: LlmWork | None,
        admission: Admission | None,
    ) -> None:
        self.env = env
        self.metrics = metrics
        self.collector = collector
        self.zones = zones
        self.core = core
        self.roster = roster
        self.fleet = fleet
        self.traffic = traffic
        self.ledger = ledger
        self.control = control
        self.llm = llm
        self.admission = admission
        self.last_sample = 0.0
        self._last_agent_sample = 0.0
        self._previous_busy: dict[str, float] = {}

    def sampler(self) -> Generator[simpy.Event, Any, None]:
        """Zone and global metrics every interval, agents less often."""
        interval = self.metrics.interval
        agent_every = self.metrics.agent_interval
        sample_agents = bool(self.metrics.agent_level)
        while True:
            yield self.env.timeout(interval)
            self.sample(self.env.now, sample_agents and self._agents_due(agent_every))

    def _agents_due(self, every: float) -> bool:
        return self.env.now - self._last_agent_sample >= every - 1e-9

    def sample(self, now: float, agents: bool) -> None:
        """One sample of everything the scenario measures (*agents*: every agent's too)."""
        self.last_sample = now
        row = self.collector.sample(now, self._zone_snapshots(), self.fleet.cost.total(now))
        self.traffic.completed(self.ledger.completed)
        self.collector.sample_traffic(now, *self.traffic.sample(now))
        if self.llm is not None:
            self.collector.extend(self.llm.provider_rows(now))
        if self.admission is not None:
            self.collector.extend(self.admission.tier_rows(now))
        if self.fleet.market is not None:
            self.collector.extend(self.fleet.market.rows(now))
        self.fleet_traffic()
        self.control.sampled(now, row)
        if agents:
            self.collector.sample_agent_columns(now, self._agent_snapshots(now))
            self._last_agent_sample = now

    def fleet_traffic(self) -> None:
        """Tell the traffic model who is alive now: heartbeats and polls scale with it."""
        members = {team: len(agents) for team, agents in self.roster.team_members.items()}
        per_zone = {z.name: z.active_agents for z in self.zones.values()}
        self.traffic.fleet_changed(members, per_zone)

    def _zone_snapshots(self) -> list[ZoneSnapshot]:
        queued_in = self.core.queued_in
        return [
            ZoneSnapshot(
                zone=z.name,
                total_agents=z.total_agents,
                active_agents=z.active_agents,
                busy_agents=z.busy_agents,
                queue_depth=queued_in[z.name] + z.local_queued,
                in_flight=z.in_flight,
                in_system=z.in_flight + queued_in[z.name],
                slots=z.slots,
                busy_slots=z.busy_slots,
                offline_agents=z.offline_agents,
            )
            for z in self.zones.values()
        ]

    def _agent_snapshots(self, now: float) -> AgentColumns:
        """Every agent's metrics as columns: one pass over the agents, arithmetic in numpy.

        The same IEEE operations in the same order as per agent (a busy share is
        (busy - previous) / (span x slots)), so the values are identical.
        """
        span = max(now - self._last_agent_sample, 1e-9)
        agents = list(self.roster.agents.values())
        ids = [agent.id for agent in agents]
        busy = [agent.busy_slot_seconds(now) for agent in agents]
        previous = self._previous_busy
        before = np.asarray([previous.get(agent_id, 0.0) for agent_id in ids], dtype=np.float64)
        previous.update(zip(ids, busy, strict=True))
        slots = np.asarray([agent.slots for agent in agents], dtype=np.float64)
        busy_slots = np.asarray([agent.busy_slots for agent in agents], dtype=np.float64)
        completed = np.asarray([agent.completed for agent in agents], dtype=np.float64)
        served = np.asarray([agent.served_time for agent in agents], dtype=np.float64)
        average = np.full(len(agents), math.nan)
        np.divide(served, completed, out=average, where=completed > 0)
        return AgentColumns(
            agent_id=ids,
            zone=[agent.zone for agent in agents],
            status=[agent.status for agent in agents],
            current_task=np.asarray(
                [agent.current[0].id if agent.current else -1 for agent in agents],
                dtype=np.float64,
            ),
            cpu_usage=(np.asarray(busy, dtype=np.float64) - before) / (span * slots),
            memory_usage=0.25 + 0.75 * busy_slots / slots,
            tasks_completed=completed,
            error_count=np.asarray([agent.errors for agent in agents], dtype=np.float64),
            avg_task_duration_s=average,
        )
