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

from sim.model.agent import Specialist
from sim.model.workload import WorkloadError
from sim.model.world import World
from sim.scenario.schema import AgentSelector, ChaosEvent, Scenario

if TYPE_CHECKING:
    from sim.model.engine import Simulation


def select_agents(
    agents: list[Specialist], selector: AgentSelector, rng: np.random.Generator
) -> list[Specialist]:
    """The agents an event hits: named ids, else a fraction or count of the matching ones."""
    if selector.agents:
        wanted = set(selector.agents)
        return [a for a in agents if a.id in wanted]
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
    """Every agent a chaos entry names must exist in the fleet the scenario builds."""
    known = {s.agent_id for s in world.specialists}
    for index, event in enumerate(scenario.chaos):
        selector = event.kill or event.slow
        if selector is None:
            continue
        for agent_id in selector.agents:
            if agent_id not in known:
                example = min(known) if known else "none"
                raise WorkloadError(
                    f"chaos[{index}].{event.action}.agents: unknown agent {agent_id!r} "
                    f"(ids look like {example!r})"
                )


class Chaos:
    """Plays a scenario's chaos timeline into one simulation."""

    def __init__(self, sim: Simulation, rng: np.random.Generator) -> None:
        self.sim = sim
        self.rng = rng
        check_targets(sim.scenario, sim.world)

    def timeline(self) -> Generator[simpy.Event, Any, None]:
        env = self.sim.env
        for event in sorted(self.sim.scenario.chaos, key=lambda e: e.at):
            if event.at > env.now:
                yield env.timeout(event.at - env.now)
            self.inject(event)

    def inject(self, event: ChaosEvent) -> None:
        sim = self.sim
        env = sim.env
        failover = sim.failover
        if event.kill is not None:
            victims = select_agents(list(sim.fleet.agents.values()), event.kill, self.rng)
            for agent in victims:
                failover.crash(agent, "chaos kill")
            if event.restart_after is not None:
                ids = [a.id for a in victims]

                def restart(_: simpy.Event) -> None:
                    for agent_id in ids:
                        failover.restart(agent_id)

                env.timeout(event.restart_after).callbacks.append(restart)
            return
        assert event.duration is not None  # the schema requires it for every other action
        if event.zone_outage is not None:
            zone = event.zone_outage
            failover.zone_down(zone)
            env.timeout(event.duration).callbacks.append(lambda _: failover.zone_up(zone))
        elif event.latency_spike is not None:
            spike = event.latency_spike
            zones = spike.zones or list(sim.world.zones)
            sim.network.spike(zones, spike.factor)
            sim.events.add(env.now, "latency_spike", ",".join(zones), factor=spike.factor)
            env.timeout(event.duration).callbacks.append(lambda _: sim.network.spike(zones, 1.0))
        elif event.message_loss is not None:
            sim.network.loss_rate = event.message_loss.rate
            sim.events.add(env.now, "message_loss", "", rate=event.message_loss.rate)

            def stop_loss(_: simpy.Event) -> None:
                sim.network.loss_rate = 0.0

            env.timeout(event.duration).callbacks.append(stop_loss)
        elif event.slow is not None:
            slow = event.slow
            victims = select_agents(list(sim.fleet.agents.values()), slow, self.rng)
            for agent in victims:
                agent.slowdown = slow.factor
            sim.events.add(
                env.now, "agents_slow", ",".join(a.id for a in victims), factor=slow.factor
            )

            def recover(_: simpy.Event) -> None:
                for agent in victims:
                    agent.slowdown = 1.0

            env.timeout(event.duration).callbacks.append(recover)
