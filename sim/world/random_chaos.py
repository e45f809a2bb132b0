"""Random failures for soak runs (``chaos_random``), drawn once for both shells.

Per agent, per chief and per zone: up for an exponential time (the MTBF),
down for another (the MTTR), repeat until the run's end. Drawn from their
own streams, per component name, so they depend on nothing else in the run;
each becomes an ordinary chaos event, so the simulator plays it, a live run
plays it on the real fleet, and either's event log replays it exactly (a
replay turns ``chaos_random`` off: its failures are in the log).
"""

from __future__ import annotations

from collections.abc import Iterator

from sim.scenario.schema import AgentSelector, ChaosEvent, Scenario
from sim.world.streams import Streams
from sim.world.topology import World


def random_failures(scenario: Scenario, world: World) -> list[ChaosEvent]:
    """Failures for a soak run: per agent and per zone, exponential gaps (MTBF) and repairs (MTTR).

    Drawn from their own stream, per component name, so they do not depend on
    anything else in the run — and they are recorded like any other chaos
    event, so a soak's failures can be replayed exactly.
    """
    spec = scenario.chaos_random
    if not spec.enabled:
        return []
    streams = Streams(scenario.seed)
    start = scenario.warmup if spec.start is None else spec.start

    def failures(
        name: str, mtbf: float, mttr: float, least: float
    ) -> Iterator[tuple[float, float]]:
        """(failure time, repair time) pairs: up for Exp(mtbf), down for Exp(mttr), repeat."""
        rng = streams.get(f"chaos.random.{name}")
        t = start
        while True:
            t += float(rng.exponential(mtbf))
            if t >= scenario.duration:
                return
            repair = max(least, float(rng.exponential(mttr)))
            yield t, repair
            t += repair

    events: list[ChaosEvent] = []
    for agent in world.specialists:
        for at, repair in failures(agent.agent_id, spec.agent_mtbf, spec.agent_mttr, 0.0):
            selector = AgentSelector(agents=[agent.agent_id])
            events.append(ChaosEvent(at=at, kill=selector, restart_after=repair))
    if spec.chief_mtbf is not None:
        for index in range(scenario.topology.control_plane.chiefs):
            chief = f"chief-{index + 1}"
            for at, repair in failures(chief, spec.chief_mtbf, spec.chief_mttr, 0.1):
                events.append(ChaosEvent(at=at, coordinator_crash=chief, restart_after=repair))
    if spec.zone_mtbf is not None:
        for zone in world.zones:
            for at, outage in failures(f"zone.{zone}", spec.zone_mtbf, spec.zone_mttr, 1.0):
                events.append(ChaosEvent(at=at, zone_outage=zone, duration=outage))
    return events
