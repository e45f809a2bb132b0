"""A team lead's crash and its replacement by a member, as the simulator's failover plays it.

Scenario (``team_lead_crash: A-T01-lead``): the lead dies; its team's
agents do not, but the zone coordinator can no longer reach them through
it, so they take no new work — neither routed to them nor pulled by their
free slots — and finish what they hold. The zone coordinator's checks
declare the lead dead (the coordinators' detector, with its check phases);
``health.zone_promotion`` later a member takes over as lead and the team
takes work again, unless its bulkhead holds it out still
(``Failover.team_lead_down`` in the simulator, event for event).

Live teams have no lead process of their own (the chiefs route to each
team's agents directly), so chaos announces the crash in ``team_leads_down``
and this module plays the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector


@dataclass
class Headless:
    """One team whose lead crashed: when, and when its replacement is due."""

    since: float
    detect_at: float
    replace_at: float | None = None


class TeamLeadFailover:
    """Plays announced team-lead crashes (see the module docstring)."""

    def __init__(
        self,
        time: ScenarioTime,
        event: EventLog,
        intake: Intake,
        detector: ConsecutiveFailureDetector,
        promotion_s: float,
    ) -> None:
        self.time, self.event, self.intake = time, event, intake
        self.detector, self.promotion_s = detector, promotion_s
        #: Teams without a lead now, by team name; leads already replaced, by lead and since.
        self.headless: dict[str, Headless] = {}
        self._done: set[tuple[str, float]] = set()

    async def check(self, down: dict[str, float]) -> None:
        """One look at the announcement (*down*: crashed leads, by the second each crashed)
        and the replacements' clocks."""
        now = self.time.now()
        for lead, since in sorted(down.items()):
            team = lead.removesuffix("-lead")
            if (lead, since) in self._done or team in self.headless:
                continue
            when = self.detector.detection_time(lead, min(now, since))
            self.headless[team] = Headless(since, max(now, when))
        for team in sorted(self.headless):
            state = self.headless[team]
            self._hold(team)  # (members that joined meanwhile are held out too)
            if state.replace_at is None and state.detect_at <= now:
                lead = f"{team}-lead"
                await self.event("team_lead_detected", lead, detect_s=now - state.since)
                self.detector.forget(lead)
                state.replace_at = now + self.promotion_s
            elif state.replace_at is not None and state.replace_at <= now:
                await self._replaced(team, state, now)

    def _members(self, team: str) -> list[str]:
        dispatcher = self.intake.dispatcher
        return sorted(a for a, info in dispatcher.agents.items() if info.team == team)

    def _hold(self, team: str) -> None:
        """The team's agents take no new work: out of their pools, holding what they hold."""
        dispatcher = self.intake.dispatcher
        for agent_id in self._members(team):
            if agent_id in dispatcher.members:
                dispatcher.withdraw(agent_id)

    async def _replaced(self, team: str, state: Headless, now: float) -> None:
        """A member leads the team now: its agents take work again (bulkhead permitting)."""
        del self.headless[team]
        lead = f"{team}-lead"
        self._done.add((lead, state.since))
        dispatcher = self.intake.dispatcher
        if team not in dispatcher.closed_teams:
            for agent_id in self._members(team):
                view = self.intake.books.agents.get(agent_id)
                if view is None or not view.healthy or agent_id in dispatcher.draining:
                    continue
                dispatcher.admit(dispatcher.agents[agent_id], report_load=True)
                await self.intake.send_all(dispatcher.pull(agent_id))
        await self.event("team_lead_replaced", lead, downtime_s=now - state.since)
