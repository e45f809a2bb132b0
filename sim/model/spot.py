"""Spot capacity in the SimPy shell: which agents run on spot, and when they are taken back.

Scenario: as specialists join, each pool (zone, category) keeps its spot
share (``sim.policies.spot``); spot agents cost ``1 - discount`` of the
on-demand price. A spot agent may be reclaimed: at random (an exponential
time per agent at the scenario's rate per agent-hour), by a chaos
``spot_reclaim`` entry, or in a correlated mass reclaim that takes a whole
zone's spot share at once (exponential gaps per zone). Every reclaim reaches
the failover as a chaos entry naming its agents, so the log replays it; the
failover gives the notice, the agent drains, and what it still holds at the
deadline is re-queued (``Failover.reclaim``).

This module decides nothing about the agents' work and holds no reference
to the simulation: it keeps the spot books and fires reclaim timers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import simpy

from sim.policies.spot import joins_as_spot
from sim.scenario.schema import ChaosEvent, Scenario
from sim.scenario.spot import Spot, SpotReclaim
from sim.world.streams import Streams

__all__ = ["SpotMarket", "zone_reclaims"]


class SpotMarket:
    """The spot books of one run: pool sizes and spot counts, and random reclaim timers.

    ``on_reclaim`` (set by the engine) receives a chaos entry for each random
    reclaim as it fires; it must name agents still on spot.
    """

    def __init__(self, env: simpy.Environment, spot: Spot, rng: np.random.Generator) -> None:
        self.env = env
        self.spot = spot
        self._rng = rng
        #: (zone, category) -> [agents, of which on spot]
        self._pools: dict[tuple[str, str], list[int]] = {}
        #: Agents on spot now, with the pool they count in.
        self._on_spot: dict[str, tuple[str, str]] = {}
        self._pool_of: dict[str, tuple[str, str]] = {}
        #: Each join of an id is a new incarnation: a timer of an earlier one is void.
        self._incarnation: dict[str, int] = {}
        self.on_reclaim: Callable[[ChaosEvent], None] | None = None

    @property
    def price_factor(self) -> float:
        """What a spot agent pays, as a share of the on-demand price."""
        return 1.0 - self.spot.discount

    def is_spot(self, agent_id: str) -> bool:
        return agent_id in self._on_spot

    def joined(self, agent_id: str, zone: str, category: str) -> bool:
        """An agent joins its pool: True if it runs on spot (the pool's share decides)."""
        pool = (zone, category)
        counts = self._pools.setdefault(pool, [0, 0])
        counts[0] += 1
        self._pool_of[agent_id] = pool
        incarnation = self._incarnation.get(agent_id, 0) + 1
        self._incarnation[agent_id] = incarnation
        if not joins_as_spot(self.spot.share_of(zone, category), counts[1], counts[0]):
            return False
        counts[1] += 1
        self._on_spot[agent_id] = pool
        if self.spot.reclaim_rate > 0:
            delay = float(self._rng.exponential(3600.0 / self.spot.reclaim_rate))
            timer = self.env.timeout(delay, (agent_id, incarnation))
            timer.callbacks.append(self._fire)
        return True

    def left(self, agent_id: str) -> None:
        """The agent is out of the fleet (drained, failed or reclaimed)."""
        pool = self._pool_of.pop(agent_id, None)
        if pool is None:
            return
        counts = self._pools[pool]
        counts[0] -= 1
        if self._on_spot.pop(agent_id, None) is not None:
            counts[1] -= 1

    def rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows (level ``purchase``): specialists on spot and on demand now.

        ``total_agents`` counts the specialists in the fleet (and on the bill) at
        *now*, a reclaimed one until it has left; coordinators are not counted.
        """
        spot = len(self._on_spot)
        on_demand = sum(counts[0] for counts in self._pools.values()) - spot
        return [
            {
                "time_s": now,
                "level": "purchase",
                "id": name,
                "zone": None,
                "status": None,
                "total_agents": float(count),
            }
            for name, count in (("spot", spot), ("on_demand", on_demand))
        ]

    def _fire(self, event: simpy.Event) -> None:
        agent_id, incarnation = cast(tuple[str, int], event.value)
        if self._incarnation.get(agent_id) != incarnation or agent_id not in self._on_spot:
            return  # that life of the agent is over
        if self.on_reclaim is not None:
            entry = ChaosEvent(at=self.env.now, spot_reclaim=SpotReclaim(agents=[agent_id]))
            self.on_reclaim(entry)


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
