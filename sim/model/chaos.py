"""The chaos timeline: failures injected at the times a scenario names.

Scenario: at each entry's time the named thing breaks — agents crash (and
maybe restart), a whole zone goes dark, a region's links slow down, dispatch
messages get lost, some agents turn slow ("gray" failures) — and, after the
entry's duration, recovers. Which agents a selector hits is drawn from the
chaos stream, so the same scenario and seed break the same agents.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.metrics.records import EventLog
from sim.model.agent import Specialist
from sim.model.control_plane import ControlPlane
from sim.model.failover import Failover
from sim.model.fleet import Fleet
from sim.model.spot import zone_reclaims
from sim.scenario.faults import ErrorBurst, OneWayPartition, WalStall
from sim.scenario.schema import AgentSelector, ChaosEvent, Loss, Scenario, Slow
from sim.scenario.spot import SpotReclaim
from sim.world.network import Network
from sim.world.partition import partition_sides
from sim.world.policy_set import burst_of
from sim.world.random_chaos import random_failures
from sim.world.topology import World
from sim.world.workload import WorkloadError

if TYPE_CHECKING:
    from sim.model.escalation import Escalator


def select_agents(
    agents: list[Specialist], selector: AgentSelector, rng: np.random.Generator
) -> list[Specialist]:
    """The agents an event hits: named ids, else a fraction or count of the matching ones."""
    if selector.agents is not None:
        wanted = set(selector.agents)
        return sorted((a for a in agents if a.id in wanted), key=lambda a: a.id)
    matching = sorted(
        (
            a
            for a in agents
            if (selector.category is None or a.category == selector.category)
            and (selector.zone is None or a.zone == selector.zone)
            and not a.crashed
            and not a.draining
        ),
        key=lambda a: a.id,
    )
    if selector.count is not None:
        size = min(selector.count, len(matching))
    elif selector.fraction is not None:
        size = max(1, round(selector.fraction * len(matching))) if matching else 0
    else:
        size = len(matching)
    if size >= len(matching):
        return matching
    picked = sorted(rng.choice(len(matching), size, replace=False).tolist())
    return [matching[i] for i in picked]


def check_targets(scenario: Scenario, world: World) -> None:
    """Every agent a chaos entry names must exist in the fleet the scenario builds.

    Agents lent by the reserve pool during a run (``A-CodeGen-r007``) can be
    named too — a replayed log does — as long as their zone and category exist,
    and so can the agents a ``join`` names.
    """
    known = {s.agent_id for s in world.specialists}
    known |= {e.join.agent for e in scenario.chaos if e.join is not None and e.join.agent}
    pools = {f"{zone}-{category}" for zone in world.zones for category in world.categories}
    for index, event in enumerate(scenario.chaos):
        if event.spot_reclaim is not None and scenario.purchase.spot is None:
            raise WorkloadError(
                f"chaos[{index}].spot_reclaim: no agent runs on spot; expected a "
                "purchase.spot section"
            )
        selector = event.kill or event.slow or event.spot_reclaim
        if selector is None:
            continue
        for agent_id in selector.agents or ():
            pool, _, number = agent_id.rpartition("-")
            lent = pool in pools and number.startswith("r") and number[1:].isdigit()
            if agent_id not in known and not lent:
                example = min(known) if known else "none"
                raise WorkloadError(
                    f"chaos[{index}].{event.action}.agents: unknown agent {agent_id!r} "
                    f"(ids look like {example!r})"
                )


class Chaos:
    """Plays a scenario's chaos timeline into one simulation."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        world: World,
        rng: np.random.Generator,
        *,
        events: EventLog,
        network: Network,
        fleet: Fleet,
        failover: Failover,
        control_plane: ControlPlane,
        escalator: Escalator | None,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.world = world
        self.rng = rng
        self.events = events
        self.network = network
        self.fleet = fleet
        self.failover = failover
        self.control_plane = control_plane
        #: The escalation flow, whose fault draws an error burst raises (None: no faults).
        self.escalator = escalator
        self.zones = list(world.zones)
        check_targets(scenario, world)

    def plan(self) -> list[ChaosEvent]:
        """The scenario's timeline plus any random failures, in time order."""
        scenario, world = self.scenario, self.world
        events = [
            *scenario.chaos,
            *random_failures(scenario, world),
            *zone_reclaims(scenario, list(world.zones)),
        ]
        return sorted(events, key=lambda e: e.at)

    def timeline(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for event in self.plan():
            if event.at > env.now:
                yield env.timeout(event.at - env.now)
            self.inject(event)

    def _record(self, event: ChaosEvent, victims: list[Specialist] | None = None) -> None:
        """Log the event as it happened — selectors resolved to ids — so it can be replayed."""
        resolved = event.model_copy(update={"at": self.env.now})
        if victims is not None:
            ids = sorted(a.id for a in victims)
            if event.kill is not None:
                resolved = resolved.model_copy(update={"kill": AgentSelector(agents=ids)})
            elif event.slow is not None:
                slow = Slow(agents=ids, factor=event.slow.factor)
                resolved = resolved.model_copy(update={"slow": slow})
            elif event.spot_reclaim is not None:
                reclaim = SpotReclaim(agents=ids, fraction=None)
                resolved = resolved.model_copy(update={"spot_reclaim": reclaim})
        document = resolved.model_dump(mode="json", exclude_none=True)
        self.events.add(self.env.now, "chaos", event.action, event=document)

    def _partition(self, groups: list[list[str]], duration: float) -> None:
        """Split the chiefs as the groups say; zones away from the chiefs' majority are cut off."""
        chiefs = [f"chief-{i}" for i in self.control_plane.ids]
        sides = partition_sides(groups, chiefs, list(self.zones))
        if len(sides.chief_sides) >= 2:
            self.control_plane.partition(sides.chief_sides)
            self.env.timeout(duration).callbacks.append(lambda _: self.control_plane.heal())
        for zone in sorted(set(sides.cut_zones)):
            self.failover.reach.zone_cut_off(zone)
            self.env.timeout(duration, zone).callbacks.append(self._reconnect)

    def _reconnect(self, event: simpy.Event) -> None:
        self.failover.reach.zone_reconnected(str(event.value))

    def _crash_coordinator(self, event: ChaosEvent) -> None:
        name = event.coordinator_crash
        assert name is not None
        if name.endswith("-coord"):
            zone = name.removesuffix("-coord")
            self.failover.reach.coordinator_down(zone, event.restart_after)
            return
        node = self.control_plane.resolve(name)
        if node is None:
            return
        self.control_plane.crash(node)
        if event.restart_after is not None:
            self.env.timeout(event.restart_after).callbacks.append(
                lambda _: self.control_plane.restart(node)
            )

    def _one_way(self, spec: OneWayPartition, duration: float) -> None:
        """A chief's links work one way only for *duration* (Raft sorts out who leads)."""
        plane = self.control_plane
        node = plane.resolve(spec.chief)
        if node is None:
            return
        links = plane.cut_one_way(node, spec.direction)
        self.env.timeout(duration).callbacks.append(lambda _: plane.heal_one_way(links))

    def _wal_stall(self, spec: WalStall, duration: float) -> None:
        """A chief's fsyncs take seconds for *duration*; its loop waits for each."""
        plane = self.control_plane
        node = plane.resolve(spec.chief)
        if node is None:
            return
        plane.stall_disk(node, spec.fsync)
        self.env.timeout(duration).callbacks.append(lambda _: plane.unstall_disk(node))

    def _error_burst(self, spec: ErrorBurst, duration: float) -> None:
        """Attempts error more often for a while (a bad model rollout, a flaky dependency)."""
        escalator = self.escalator
        assert escalator is not None  # a scenario with an error burst always has one
        name = f"burst-{self.env.now:.6f}"
        escalator.start_burst(name, burst_of(spec))
        self.events.add(
            self.env.now,
            "error_burst",
            ",".join(spec.categories) or "all",
            probability=spec.probability,
            zones=",".join(spec.zones) or "all",
        )

        def end(_: simpy.Event) -> None:
            escalator.end_burst(name)
            self.events.add(self.env.now, "error_burst_end", ",".join(spec.categories) or "all")

        self.env.timeout(duration).callbacks.append(end)

    def _spot_reclaim(self, event: ChaosEvent, reclaim: SpotReclaim) -> None:
        """The provider takes spot agents back: each gets its notice (``Failover.reclaim``)."""
        market = self.fleet.market
        if market is None:
            return  # check_targets refuses such a scenario; a replay on another one hits nobody
        agents = self.fleet.agents
        if reclaim.agents is not None:  # named (a random reclaim, a replay): no scan of the fleet
            named = (agents[i] for i in reclaim.agents if i in agents)
            on_spot = [a for a in named if market.is_spot(a.id)]
        else:
            on_spot = [a for a in agents.values() if market.is_spot(a.id)]
        selector = AgentSelector(
            agents=reclaim.agents,
            zone=reclaim.zone,
            category=reclaim.category,
            fraction=reclaim.fraction,
            count=reclaim.count,
        )
        victims = [a for a in select_agents(on_spot, selector, self.rng) if not a.draining]
        victims = [a for a in victims if not a.crashed]
        self._record(event, victims)
        for agent in victims:
            self.failover.reclaim(agent)

    def inject(self, event: ChaosEvent) -> None:
        """Play one chaos event now (a replayed or a random one, or a spot reclaim's)."""
        failover = self.failover
        if event.kill is not None:
            self._kill(event, event.kill)
        elif event.coordinator_crash is not None:
            self._record(event)
            self._crash_coordinator(event)
        elif event.spot_reclaim is not None:
            self._spot_reclaim(event, event.spot_reclaim)
        elif event.team_lead_crash is not None:
            self._record(event)
            failover.team_lead_down(event.team_lead_crash)
        elif event.join is not None:
            join = event.join
            agent_id = self.fleet.arrive_on_its_own(join.zone, join.category, join.agent)
            named = join.model_copy(update={"agent": agent_id})
            self._record(event.model_copy(update={"join": named}))
        else:
            self._for_a_while(event)

    def _kill(self, event: ChaosEvent, selector: AgentSelector) -> None:
        """Agents crash now; ``restart_after`` later their hosts are back (and they restart)."""
        failover = self.failover
        victims = select_agents(list(self.fleet.agents.values()), selector, self.rng)
        self._record(event, victims)
        for agent in victims:
            failover.crash(agent, "chaos kill")
        if event.restart_after is not None:
            ids = [a.id for a in victims]

            def restart(_: simpy.Event) -> None:
                for agent_id in ids:
                    failover.host_back(agent_id)

            self.env.timeout(event.restart_after).callbacks.append(restart)

    def _for_a_while(self, event: ChaosEvent) -> None:
        """The actions that last ``duration``: start now, undone when it runs out."""
        env, failover = self.env, self.failover
        assert event.duration is not None  # the schema requires it for every other action
        if event.slow is None:
            self._record(event)
        if event.partition is not None:
            self._partition(event.partition.groups, event.duration)
        elif event.zone_outage is not None:
            zone = event.zone_outage
            reach = failover.reach
            reach.zone_down(zone)
            env.timeout(event.duration).callbacks.append(lambda _: reach.zone_up(zone))
        elif event.latency_spike is not None:
            spike = event.latency_spike
            zones = spike.zones or list(self.world.zones)
            self.network.spike(zones, spike.factor)
            self.events.add(env.now, "latency_spike", ",".join(zones), factor=spike.factor)
            env.timeout(event.duration).callbacks.append(lambda _: self.network.spike(zones, 1.0))
        elif event.message_loss is not None:
            self._message_loss(event.message_loss, event.duration)
        elif event.error_burst is not None:
            self._error_burst(event.error_burst, event.duration)
        elif event.one_way_partition is not None:
            self._one_way(event.one_way_partition, event.duration)
        elif event.wal_stall is not None:
            self._wal_stall(event.wal_stall, event.duration)
        elif event.slow is not None:
            self._slow(event, event.slow, event.duration)

    def _message_loss(self, loss: Loss, duration: float) -> None:
        """Messages to the named zones (all, if none) are lost at *rate* for *duration*."""
        network = self.network
        network.loss_rate = loss.rate
        network.loss_zones = frozenset(loss.zones or ())
        self.events.add(self.env.now, "message_loss", ",".join(loss.zones or ()), rate=loss.rate)

        def stop_loss(_: simpy.Event) -> None:
            network.loss_rate = 0.0
            network.loss_zones = frozenset()

        self.env.timeout(duration).callbacks.append(stop_loss)

    def _slow(self, event: ChaosEvent, slow: Slow, duration: float) -> None:
        """Gray failure: the chosen agents serve *factor* times slower for *duration*."""
        victims = select_agents(list(self.fleet.agents.values()), slow, self.rng)
        self._record(event, victims)
        for agent in victims:
            agent.slow_down(slow.factor)
        self.events.add(
            self.env.now, "agents_slow", ",".join(a.id for a in victims), factor=slow.factor
        )

        def recover(_: simpy.Event) -> None:
            for agent in victims:
                agent.slow_down(1.0)

        self.env.timeout(duration).callbacks.append(recover)
