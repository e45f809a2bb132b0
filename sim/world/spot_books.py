"""Which agents run on spot, kept as agents come and go: the spot books both shells keep.

Neutral ground (no SimPy, no asyncio): the simulator's market
(``sim.model.spot``) and the live shell (the run marking its fleet, the
coordinator marking the agents it starts) ask the same books, which ask the
pure rule (``sim.policies.spot.joins_as_spot``) per (zone, category) pool.
Filling a pool in the same order gives the same agents on spot in both.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.policies.spot import joins_as_spot
from sim.scenario.schema import ChaosEvent, Scenario
from sim.scenario.spot import Spot, SpotReclaim
from sim.world.streams import Streams

__all__ = ["ReclaimDraws", "SpotBooks", "initial_reclaims", "initial_spot", "zone_reclaims"]


class SpotBooks:
    """Pool sizes and spot counts, and the agents on spot now (see the module docstring)."""

    def __init__(self, spot: Spot) -> None:
        self.spot = spot
        #: (zone, category) -> [agents, of which on spot]
        self.pools: dict[tuple[str, str], list[int]] = {}
        #: Agents on spot now, with the pool they count in.
        self.on_spot: dict[str, tuple[str, str]] = {}
        self._pool_of: dict[str, tuple[str, str]] = {}

    def is_spot(self, agent_id: str) -> bool:
        return agent_id in self.on_spot

    def joined(self, agent_id: str, zone: str, category: str) -> bool:
        """An agent joins its pool: True if it runs on spot (the pool's share decides)."""
        pool = (zone, category)
        counts = self.pools.setdefault(pool, [0, 0])
        counts[0] += 1
        self._pool_of[agent_id] = pool
        if not joins_as_spot(self.spot.share_of(zone, category), counts[1], counts[0]):
            return False
        counts[1] += 1
        self.on_spot[agent_id] = pool
        return True

    def left(self, agent_id: str) -> None:
        """The agent is out of the fleet (drained, failed or reclaimed)."""
        pool = self._pool_of.pop(agent_id, None)
        if pool is None:
            return
        counts = self.pools[pool]
        counts[0] -= 1
        if self.on_spot.pop(agent_id, None) is not None:
            counts[1] -= 1

    def members(self) -> int:
        """Agents in the books now, spot or not."""
        return sum(counts[0] for counts in self.pools.values())


def initial_spot(spot: Spot | None, fleet: Iterable[tuple[str, str, str]]) -> set[str]:
    """The agents of a starting fleet ((id, zone, category), in join order) that run on spot."""
    if spot is None:
        return set()
    books = SpotBooks(spot)
    return {
        agent_id for agent_id, zone, category in fleet if books.joined(agent_id, zone, category)
    }


class ReclaimDraws:
    """Random reclaim times of spot agents, drawn as they join, as the simulator's market draws.

    The simulator's market draws one exponential time per spot join, at the
    scenario's rate per agent-hour, from the ``spot.reclaims`` stream, in
    join order — the starting fleet first, then every spot agent started
    later (a replacement, an autoscaler's start). A live run plays the
    provider with one of these: the starting fleet's draws up front, then
    one per spot agent as it starts, so the n-th spot join draws the n-th
    time in both shells.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        spot = scenario.purchase.spot
        #: Mean seconds to a spot agent's reclaim (None: no random reclaims).
        self.mean_s = (
            3600.0 / spot.reclaim_rate if spot is not None and spot.reclaim_rate > 0 else None
        )
        self._rng = Streams(scenario.seed, 0).get("spot.reclaims")

    def joined(self, agent_id: str, at: float) -> ChaosEvent | None:
        """The reclaim of spot agent *agent_id*, joined at *at*; None if past the duration."""
        if self.mean_s is None:
            return None
        when = at + float(self._rng.exponential(self.mean_s))
        if when >= self.scenario.duration:
            return None
        return ChaosEvent(at=when, spot_reclaim=SpotReclaim(agents=[agent_id]))


def initial_reclaims(
    scenario: Scenario, on_spot: Iterable[str], draws: ReclaimDraws | None = None
) -> list[ChaosEvent]:
    """Random reclaims of the starting fleet's spot agents (*on_spot*, in join order, at 0).

    Drawn from *draws* (a fresh one if None), which later joins go on drawing
    from. Entries past the duration are left out.
    """
    draws = draws if draws is not None else ReclaimDraws(scenario)
    events = (draws.joined(agent_id, 0.0) for agent_id in on_spot)
    return [event for event in events if event is not None]


def zone_reclaims(scenario: Scenario, zones: list[str]) -> list[ChaosEvent]:
    """Correlated mass reclaims: per zone, exponential gaps at ``zone_reclaim_mtbf``.

    Each takes the zone's whole spot share at once. Drawn from a stream per
    zone, like the soak's random failures, and played as chaos entries.
    """
    spot = scenario.purchase.spot
    if spot is None or spot.zone_reclaim_mtbf is None:
        return []
    streams = Streams(scenario.seed)
    events: list[ChaosEvent] = []
    for zone in zones:
        rng = streams.get(f"spot.zone.{zone}")
        t = scenario.warmup
        while True:
            t += float(rng.exponential(spot.zone_reclaim_mtbf))
            if t >= scenario.duration:
                break
            events.append(ChaosEvent(at=t, spot_reclaim=SpotReclaim(zone=zone)))
    return events
