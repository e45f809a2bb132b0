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

from sim.metrics.level_rows import purchase_rows
from sim.scenario.schema import ChaosEvent
from sim.scenario.spot import Spot, SpotReclaim
from sim.world.spot_books import SpotBooks, zone_reclaims

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
        #: The pools' sizes and spot counts (sim.world.spot_books: the live shell's too).
        self.books = SpotBooks(spot)
        #: Each join of an id is a new incarnation: a timer of an earlier one is void.
        self._incarnation: dict[str, int] = {}
        self.on_reclaim: Callable[[ChaosEvent], None] | None = None

    @property
    def price_factor(self) -> float:
        """What a spot agent pays, as a share of the on-demand price."""
        return 1.0 - self.spot.discount

    def is_spot(self, agent_id: str) -> bool:
        return self.books.is_spot(agent_id)

    def joined(self, agent_id: str, zone: str, category: str) -> bool:
        """An agent joins its pool: True if it runs on spot (the pool's share decides)."""
        incarnation = self._incarnation.get(agent_id, 0) + 1
        self._incarnation[agent_id] = incarnation
        if not self.books.joined(agent_id, zone, category):
            return False
        if self.spot.reclaim_rate > 0:
            delay = float(self._rng.exponential(3600.0 / self.spot.reclaim_rate))
            timer = self.env.timeout(delay, (agent_id, incarnation))
            timer.callbacks.append(self._fire)
        return True

    def left(self, agent_id: str) -> None:
        """The agent is out of the fleet (drained, failed or reclaimed)."""
        self.books.left(agent_id)

    def rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows (level ``purchase``): specialists on spot and on demand now.

        ``total_agents`` counts the specialists in the fleet (and on the bill) at
        *now*, a reclaimed one until it has left; coordinators are not counted.
        """
        spot = len(self.books.on_spot)
        return purchase_rows(now, spot, self.books.members() - spot)

    def _fire(self, event: simpy.Event) -> None:
        agent_id, incarnation = cast(tuple[str, int], event.value)
        if self._incarnation.get(agent_id) != incarnation or not self.books.is_spot(agent_id):
            return  # that life of the agent is over
        if self.on_reclaim is not None:
            entry = ChaosEvent(at=self.env.now, spot_reclaim=SpotReclaim(agents=[agent_id]))
            self.on_reclaim(entry)
