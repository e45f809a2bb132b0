"""Where new agents go and which agents leave: the autoscaler's "how many" made concrete.

The spec's autoscaler decides how many agents to add or remove; it says
nothing about which zone and category. Adding a CodeGen agent does nothing
for a Security backlog, so new agents go where the load per agent is highest
(queued plus busy work over agents, counting those still starting), one at a
time so a large step spreads over the hungriest pools; agents are drained
from where it is lowest, never emptying a pool that still has work or that
is its category's last one in the zone.

Which team a new agent joins is decided here too (:func:`team_for`): the
zone's teams in turn, by the agent's number — the rule the topology uses for
the first fleet, and the one both shells use for the agents the reserve pool
lends, so the team bulkhead counts a started agent the same way in both.
How many it can lend is the :class:`ReservePool`'s books, also kept the
same way in both shells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolLoad:
    """One (zone, category) pool as the scaler sees it."""

    zone: str
    category: str
    agents: int  # serving agents (not draining)
    starting: int  # requested, not yet serving
    busy: float  # busy slots (or tasks in service)
    queued: float  # tasks waiting for this pool


class ReservePool:
    """The agents the reserve pool can still lend: the spec's 0-50.

    A scale-up (or, in the simulator, a failed agent's replacement) borrows
    one agent per start; a drained agent that has left gives its place back.
    A plan's spawns beyond what is left are not made (the shell stops at the
    first refusal and reports how many it did in the ``scale`` record).
    """

    def __init__(self, size: int) -> None:
        self.left = size

    def lend(self) -> bool:
        """Borrow one agent: False (nothing changes) when the pool is empty."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def give_back(self) -> None:
        """A drained agent left: its place is the pool's again."""
        self.left += 1


def _pressure(load: float, agents: int) -> float:
    return (load + 1.0) / (agents + 1.0)


def place_agents(n: int, pools: Sequence[PoolLoad]) -> list[tuple[str, str]]:
    """The pools that get the next *n* agents, most pressed first (ties by order given)."""
    if n <= 0 or not pools:
        return []
    load = [p.busy + p.queued for p in pools]
    agents = [p.agents + p.starting for p in pools]
    chosen: list[tuple[str, str]] = []
    for _ in range(n):
        best = max(range(len(pools)), key=lambda i: (_pressure(load[i], agents[i]), -i))
        agents[best] += 1
        chosen.append((pools[best].zone, pools[best].category))
    return chosen


def team_for(number: int, teams: Sequence[str]) -> str:
    """The team of a zone's *number*-th agent: the zone's *teams* in turn.

    The topology numbers a zone's first specialists from 0; the reserve pool
    numbers the agents it lends from 1, across zones, in the order the
    scaler (or the failover) asks for them.
    """
    if not teams:
        raise ValueError("a zone with specialists has at least one team")
    return teams[number % len(teams)]


def pick_drains(n: int, pools: Sequence[PoolLoad], keep_per_pool: int = 1) -> list[tuple[str, str]]:
    """The pools that give up the next *n* agents, least pressed first.

    A pool keeps at least *keep_per_pool* agents, and a pool with queued work
    gives none: removing capacity where tasks wait would only lengthen the wait.
    """
    if n <= 0:
        return []
    load = [p.busy + p.queued for p in pools]
    agents = [p.agents for p in pools]
    chosen: list[tuple[str, str]] = []
    for _ in range(n):
        candidates = [i for i, p in enumerate(pools) if agents[i] > keep_per_pool and p.queued <= 0]
        if not candidates:
            break
        best = min(candidates, key=lambda i: (_pressure(load[i], agents[i] - 1), i))
        agents[best] -= 1
        chosen.append((pools[best].zone, pools[best].category))
    return chosen
