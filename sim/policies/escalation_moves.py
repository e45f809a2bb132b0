"""What an escalation can do for a failed task, read off the fleet: written once for both shells.

The escalation policy (``sim.policies.escalation``) decides from a
:class:`~sim.policies.escalation.Feasible` — is there another agent, another
team, a bigger agent, another zone — and the shell carries the move out:
which zone the task goes to next, which agents a move to another team must
avoid. Both answers depend only on the fleet as the shell sees it, so they
live here, over a small view each shell provides (:class:`FleetView`): the
serving members of a pool, what is known of an agent that failed the task
(it may have left), the pool sizes, and the zones that are dark.

A zone is "tried" when the task failed there; untried zones are taken
nearest first (the router's order), skipping zones without an agent of the
category and zones whose coordinator cannot be reached. An agent without a
team (live agents may say none) is its own team.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from sim.policies.escalation import Feasible, History
from sim.policies.routing import ZoneRouter

__all__ = ["EscalationMoves", "FleetView", "Member"]


@dataclass(frozen=True, slots=True)
class Member:
    """An agent as the escalation sees it: its team and speed."""

    agent_id: str
    team: str
    speed: float

    @property
    def team_key(self) -> str:
        """The team it counts in: its own id when it has none."""
        return self.team or f"agent:{self.agent_id}"


@dataclass(frozen=True, slots=True)
class FleetView:
    """The shell's fleet, read-only: each callable is called when a move needs it.

    *pool(category, zone)* is the pool's serving members (not dead, not
    draining); *known(agent_id)* an agent still in the fleet, or None;
    *size(zone, category)* the balancer's pool size; *dark* the zones whose
    coordinator cannot be reached.
    """

    router: ZoneRouter
    pool: Callable[[str, str], Sequence[Member]]
    known: Callable[[str], Member | None]
    size: Callable[[str, str], int]
    dark: Collection[str]


class EscalationMoves:
    """Feasibility and targets of the escalation's moves (see the module docstring)."""

    def __init__(self, fleet: FleetView) -> None:
        self.fleet = fleet

    def feasible(self, category: str, zone: str, history: History) -> Feasible:
        """What can be done for a task of *category* that failed in *zone* (*history* so far)."""
        failed = set(history.agents)
        others = [a for a in self.fleet.pool(category, zone) if a.agent_id not in failed]
        failed_teams = self._teams_of(failed)
        speeds = [m.speed for m in self._known(failed)]
        fastest_failed = max(speeds, default=0.0)
        size = self.fleet.size
        return Feasible(
            other_agents=bool(others),
            other_team=any(a.team_key not in failed_teams for a in others),
            bigger_agent=any(a.speed > fastest_failed for a in others),
            other_zone=self.untried_zones(category, zone, history) != [],
            any_zone=any(size(z, category) for z in self.fleet.router.zones),
        )

    def untried_zones(self, category: str, zone: str, history: History) -> list[str]:
        """Zones nearest *zone* first where the task has not failed and could run now."""
        fleet = self.fleet
        return [
            z
            for z in fleet.router.neighbours[zone]
            if z not in history.zones and fleet.size(z, category) > 0 and z not in fleet.dark
        ]

    def other_zone(self, category: str, zone: str, history: History) -> str:
        """The zone coordinator's "another zone": the nearest untried one (else its own)."""
        untried = self.untried_zones(category, zone, history)
        return untried[0] if untried else zone

    def chief_zone(self, category: str, home_zone: str, history: History) -> str:
        """The chief's pick: the task's home zone if it has not failed there, else the nearest."""
        fleet = self.fleet
        home = fleet.router.home_zone(category, home_zone, fleet.size)
        if home not in history.zones:
            return home
        untried = self.untried_zones(category, home, history)
        return untried[0] if untried else home

    def team_mates(self, category: str, zone: str, failed: frozenset[str]) -> frozenset[str]:
        """Everyone of the category in the teams where it failed: a move to another team
        avoids them all."""
        teams = self._teams_of(failed)
        mates = {a.agent_id for a in self.fleet.pool(category, zone) if a.team_key in teams}
        return frozenset(mates | failed)

    def _known(self, agent_ids: Iterable[str]) -> list[Member]:
        known = (self.fleet.known(a) for a in agent_ids)
        return [m for m in known if m is not None]

    def _teams_of(self, agent_ids: Iterable[str]) -> set[str]:
        """The teams of the agents still in the fleet (a replaced agent's team is gone with it)."""
        return {m.team_key for m in self._known(agent_ids)}
