"""Who is in the fleet now, by id and by team, and which teams have lost their lead.

Scenario: the fleet adds and removes specialists; the coordinators look them
up by id when a message reaches one, the team lead's relay needs its team's
members, and a team whose lead died takes no new work until a member takes
over. When the dispatch core's team bulkhead reopens a team, its members'
sleeping slots wake to pull — whoever freed the room (an attempt's end, a
call that failed, a dead agent's work moved) asks the roster to wake them.
"""

from __future__ import annotations

from typing import Any

from sim.model.agent import Specialist
from sim.policies.dispatch import DispatchCore


class Roster:
    """The specialists by id and by team; the teams without a lead."""

    def __init__(self, core: DispatchCore[Any]) -> None:
        self.core = core
        self.agents: dict[str, Specialist] = {}
        #: Each team's agents (the traffic model's heartbeats, a dead lead's team); the
        #: team bulkhead's books and rule are the core's.
        self.team_members: dict[str, list[Specialist]] = {}
        #: Teams whose lead is dead (chaos): no new work reaches them until replaced.
        self.headless_teams: set[str] = set()

    def wake_reopened(self) -> None:
        """The team bulkhead reopened teams: their members' sleeping slots may pull now."""
        core = self.core
        if not core.reopened:
            return
        for agent_id in core.take_reopened():
            member = self.agents.get(agent_id)
            if member is not None:
                member.wake_all()
