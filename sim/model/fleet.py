"""Provisioning: specialists join, drain and leave while the simulation runs.

Scenario: the fleet starts with the topology's specialists. A scale-up asks
the reserve pool for agents; each becomes available after a spawn delay and
joins the load balancer's pool for its zone and category. A scale-down
drains an agent: it leaves the balancer at once (no new work), finishes what
it already holds, and goes offline when its last slot stops — no running
task is ever killed. Every agent's life is recorded (joined, left), which is
what cost is computed from.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim.metrics.cost import CostMeter
from sim.metrics.records import EventLog, coordinator_rows
from sim.model.agent import SlotHost, Specialist
from sim.model.roster import Roster
from sim.model.spot import SpotMarket
from sim.model.traffic import Traffic
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.policies.placement import ReservePool, team_for
from sim.scenario.schema import Scenario
from sim.world.start_turns import StartTurns
from sim.world.startup import startup_sampler
from sim.world.topology import SpecialistSpec, World, specialist_template


class Fleet:
    """The specialists that exist, are starting, or are draining — and the reserve pool."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        world: World,
        zones: dict[str, ZoneState],
        roster: Roster,
        core: DispatchCore[Any],
        traffic: Traffic,
        slots: SlotHost,
        events: EventLog,
        rng: np.random.Generator,
        startup_rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.world = world
        self.zones = zones
        self.roster = roster
        self.core = core
        self.traffic = traffic
        #: What every slot loop of every agent asks for work and reports to.
        self.slots = slots
        self.events = events
        self._rng = rng
        self._template = specialist_template(scenario)
        #: One new agent's start-up (``scaling.spawn_delay`` and its spread), in seconds.
        self.startup_s = startup_sampler(scenario.scaling, startup_rng)
        #: The provisioner's start rate (``scaling.spawn_gap``): a burst takes turns.
        self.turns = StartTurns(scenario.scaling.spawn_gap)
        self._teams = world.teams
        self.agents: dict[str, Specialist] = roster.agents
        #: Agents the reserve pool can still lend (the spec's 0-50).
        self.reserve = ReservePool(scenario.topology.reserve_pool)
        self.starting = 0
        self.draining = 0
        self._spawned = itertools.count(1)
        self._self_started = itertools.count(1)  # chaos joins, numbered apart
        self._starting_pools: dict[tuple[str, str], int] = {}
        #: Failed agents removed from the fleet, by id (a restart brings them back).
        self.failed: dict[str, SpecialistSpec] = {}
        #: Earlier lives of agents that failed and came back (for agents.parquet).
        self._history: list[dict[str, Any]] = []
        self._replacing: dict[str, str] = {}
        self._offline: dict[str, str] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        #: Dollars spent so far: every agent's price, integrated over its life.
        self.cost = CostMeter(scenario.cost)
        for c in world.coordinators:
            if c.role != "zone_standby" or scenario.cost.include_standbys:
                self.cost.joined(0.0, c.region, c.vcpu, c.mem_gb)
        self.on_change: Callable[[], None] | None = None
        self.on_join: Callable[[Specialist], Any] | None = None
        #: Spot books (sim.model.spot), when the scenario buys spot capacity.
        self.market: SpotMarket | None = None

    # ------------------------------------------------------------------ life cycle

    def provision(self) -> None:
        """Start the topology's specialists at time zero."""
        for spec in self.world.specialists:
            self._join(spec, reserve=False)

    def spawn(
        self,
        zone: str,
        category: str,
        startup_s: float,
        reason: str,
        replaces: str | None = None,
        actuation_s: float = 0.0,
    ) -> str | None:
        """Ask the reserve pool for one specialist; None when the pool is empty.

        The provisioner gets the request *actuation_s* from now and starts the
        agent at its turn (``scaling.spawn_gap``); it serves *startup_s* later.
        """
        if not self.reserve.lend():
            return None
        delay_s = actuation_s + startup_s + self.turns.wait(self.env.now + actuation_s)
        self.starting += 1
        self._starting_pools[zone, category] = self._starting_pools.get((zone, category), 0) + 1
        number = next(self._spawned)
        team = team_for(number, self._teams[zone])
        agent_id = f"{zone}-{category}-r{number:03d}"
        spec = self._template.build(agent_id, category, zone, team, self._rng)
        if replaces is not None:
            self._replacing[agent_id] = replaces
        self.events.add(self.env.now, "agent_requested", spec.agent_id, reason=reason)
        if delay_s <= 0:
            self._arrive(spec)
        else:
            self.env.timeout(delay_s, spec).callbacks.append(
                lambda event: self._arrive(event.value)
            )
        return spec.agent_id

    def arrive_on_its_own(self, zone: str, category: str, agent_id: str | None = None) -> str:
        """A specialist that started itself joins now (chaos ``join``): no reserve pool, no
        start-up, no request before it — a service's agent, as a record window saw it."""
        number = next(self._self_started)  # (the reserve's numbering and teams stay as live's)
        if agent_id is None or agent_id in self.agents:
            agent_id = f"{zone}-{category}-j{number:03d}"
        spec = self._template.build(
            agent_id, category, zone, team_for(number, self._teams[zone]), self._rng
        )
        self._join(spec, reserve=False)
        self.events.add(self.env.now, "agent_joined", spec.agent_id, zone=spec.zone)
        self._changed()
        return spec.agent_id

    def _arrive(self, spec: SpecialistSpec) -> None:
        replaced = self._replacing.pop(spec.agent_id, None)
        if replaced is not None:
            self.back_online(replaced)  # the failed agent's place is filled
        self.starting -= 1
        self._starting_pools[spec.zone, spec.category] -= 1
        self._join(spec, reserve=True)
        self.events.add(self.env.now, "agent_joined", spec.agent_id, zone=spec.zone)
        self._changed()

    def _join(self, spec: SpecialistSpec, *, reserve: bool) -> None:
        agent = Specialist(self.env, spec, self.traffic.team_lead(spec.team))
        self.agents[agent.id] = agent
        zone = self.zones[spec.zone]
        zone.total_agents += 1
        zone.active_agents += 1
        zone.slots += spec.slots
        self.roster.team_members.setdefault(spec.team, []).append(agent)
        self.core.enroll(agent.info)
        if not self.core.team_closed(agent.id) and spec.team not in self.roster.headless_teams:
            # (a full team's newcomer joins the pool when the team has room again;
            # a headless team's when its new lead is in place)
            self.core.admit(agent.info)
        market = self.market
        spot = market is not None and market.joined(spec.agent_id, spec.zone, spec.category)
        factor = market.price_factor if market is not None and spot else 1.0
        region = self.world.regions[spec.zone]
        self.cost.joined(self.env.now, region, spec.vcpu, spec.mem_gb, factor)
        agent.start_slots(self.slots)
        if self.on_join is not None:
            self.on_join(agent)
        self._rows[agent.id] = {
            "agent": spec.agent_id,
            "role": "specialist",
            "category": spec.category,
            "zone": spec.zone,
            "team": spec.team,
            "region": self.world.regions[spec.zone],
            "vcpu": spec.vcpu,
            "mem_gb": spec.mem_gb,
            "speed": spec.speed,
            "slots": spec.slots,
            "from_reserve": reserve,
            "joined_s": self.env.now,
            "left_s": float("nan"),
            "failed": False,
        }
        if market is not None:
            self._rows[agent.id]["spot"] = spot

    def remove_failed(self, agent: Specialist) -> None:
        """A failed agent leaves the books (detected, or restarting as a new incarnation)."""
        del self.agents[agent.id]
        self._forget_member(agent)
        zone = self.zones[agent.zone]
        zone.total_agents -= 1
        self._rows[agent.id]["left_s"] = self.env.now
        self._rows[agent.id]["failed"] = True
        self._stop_paying(agent)
        self.failed[agent.id] = agent.spec

    def _forget_member(self, agent: Specialist) -> None:
        members = self.roster.team_members.get(agent.spec.team, [])
        if agent in members:
            members.remove(agent)

    def went_offline(self, agent: Specialist) -> None:
        """A failure takes the agent offline until it restarts or a replacement joins."""
        if agent.id not in self._offline:
            self._offline[agent.id] = agent.zone
            self.zones[agent.zone].offline_agents += 1

    def back_online(self, agent_id: str) -> None:
        zone = self._offline.pop(agent_id, None)
        if zone is not None:
            self.zones[zone].offline_agents -= 1

    def rejoin(self, spec: SpecialistSpec) -> None:
        """A failed agent is back (restarted): it joins again under its own id."""
        self.failed.pop(spec.agent_id, None)
        self.back_online(spec.agent_id)
        previous = self._rows.pop(spec.agent_id)
        self._history.append(previous)
        self._join(spec, reserve=bool(previous["from_reserve"]))

    def drain(self, agent_id: str, reason: str) -> bool:
        """Stop giving *agent_id* work; it leaves when it has finished what it holds."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.draining:
            return False
        self.draining += 1
        self.core.drain(agent_id)
        zone = self.zones[agent.zone]
        zone.active_agents -= 1
        zone.slots -= agent.slots
        self.events.add(self.env.now, "agent_draining", agent_id, reason=reason)
        agent.start_draining()  # sleeping slots wake up, see the drain, and stop
        self._changed()
        return True

    def _stop_paying(self, agent: Specialist) -> None:
        """The agent leaves the bill (and the spot books)."""
        spec = agent.spec
        factor = 1.0
        if self.market is not None:
            factor = self.market.price_factor if self.market.is_spot(agent.id) else 1.0
            self.market.left(agent.id)
        region = self.world.regions[spec.zone]
        self.cost.left(self.env.now, region, spec.vcpu, spec.mem_gb, factor)

    def stopped(self, agent: Specialist) -> None:
        """The agent is offline (drained, or reclaimed): out of the books, back in the reserve."""
        self.draining -= 1
        agent.offline()
        self.zones[agent.zone].total_agents -= 1
        del self.agents[agent.id]
        self.core.leave(agent.id)
        self._forget_member(agent)
        self._rows[agent.id]["left_s"] = self.env.now
        self._stop_paying(agent)
        self.reserve.give_back()
        self.events.add(self.env.now, "agent_left", agent.id)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ books

    def joined_at(self, agent_id: str) -> float:
        """When the agent's current life began (what its bill counts from)."""
        return float(self._rows[agent_id]["joined_s"])

    def starting_by_pool(self) -> dict[tuple[str, str], int]:
        """Agents requested and not yet serving, by (zone, category)."""
        return dict(self._starting_pools)

    @property
    def serving(self) -> int:
        """Specialists accepting work (joined, not draining)."""
        return len(self.agents) - self.draining

    def frame(self, replication: int, end_s: float) -> pd.DataFrame:
        """``agents.parquet``: every agent's life, coordinators included."""
        rows = [dict(row) for row in [*self._history, *self._rows.values()]]
        for row in rows:
            if row["left_s"] != row["left_s"]:  # NaN: still there at the end
                row["left_s"] = end_s
        rows += coordinator_rows(self.world.coordinators, end_s)
        frame = pd.DataFrame(rows)
        frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
        return frame
