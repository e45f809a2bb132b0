"""Zones the chief cannot reach: a region gone dark, or a partition cutting a zone off.

Scenario: chaos announces a ``zone_outage`` (the region and its agents are
gone) or a ``partition`` that leaves a zone off the chiefs' majority (its
agents work on, out of the chief's reach). Either way the chief's calls to
the zone fail at once — its work waits at the door, or goes elsewhere once
the zone's breaker opens (``zone_calls``) — and the chief's checks of the
zone's coordinator declare it when they would (``coordinator_detector``, the
simulator's, with its check phases, counted from when the zone went out of
reach, not from when this round read the key). Then what waited at its door
and in its queues goes elsewhere; an outage's agents are declared dead with
it (they are gone), a cut zone's are not (they are alive). When the last
reason ends the zone is reachable again: declared up, and what waited at its
door is placed there.

One mechanism for both, as the simulator's failover has one
(``Failover._unreachable``/``_reachable``): reasons may overlap, and a zone
stays out of reach until the last of them ends — an outage ending while a
partition still cuts the zone off must not declare it up or open its door.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector

__all__ = ["CUT_OFF", "OUTAGE", "UnreachableZones"]

#: The reasons a zone is out of reach, as the announcements say.
OUTAGE, CUT_OFF = "zone_outage", "zone_cut_off"


class UnreachableZones:
    """The zones out of the chief's reach, and why (see the module docstring)."""

    def __init__(
        self,
        zones: Collection[str],
        time: ScenarioTime,
        event: EventLog,
        intake: Intake,
        detector: ConsecutiveFailureDetector,
        set_dark: Callable[[str], None],
        declare_agents: Callable[[str, float], Awaitable[None]],
    ) -> None:
        self.zones = frozenset(zones)
        self.time, self.event, self.intake = time, event, intake
        self.detector = detector
        #: Re-marks a zone dark or reachable from every reason the health checks hold.
        self.set_dark = set_dark
        #: Declares an outage's agents dead with their zone (the health checks' verdict).
        self.declare_agents = declare_agents
        #: Per zone out of reach: its reasons, by the second each began.
        self.reasons: dict[str, dict[str, float]] = {}
        #: Zones not declared yet: the scenario time their declaration is due.
        self.detect_at: dict[str, float] = {}
        #: Zones this mechanism declared down (and alone may declare up).
        self.declared: set[str] = set()

    def dark(self, zone: str) -> bool:
        """Whether the chief cannot reach *zone* now, for any reason."""
        return zone in self.reasons

    async def check(self, announced: dict[str, dict[str, float]]) -> None:
        """One look at the announcements (per reason: the zones, by the second each began)
        and at the declarations due."""
        now = self.time.now()
        for zone in sorted(self.zones):
            reasons = {why: zones[zone] for why, zones in announced.items() if zone in zones}
            if reasons and zone not in self.reasons:
                await self._unreachable(zone, reasons, now)
            elif zone in self.reasons and not reasons:
                await self._reachable(zone, self.reasons.pop(zone))
            elif reasons:
                self.reasons[zone] = reasons  # another reason, or one of several ended
        for zone, when in sorted(self.detect_at.items()):
            if when <= now:
                del self.detect_at[zone]
                await self._declare(zone, now)

    async def _unreachable(self, zone: str, reasons: dict[str, float], now: float) -> None:
        self.reasons[zone] = reasons
        self.set_dark(zone)
        if CUT_OFF in reasons:
            await self.event("zone_cut_off", zone)
        when = self.detector.detection_time(f"{zone}-coord", min(now, *reasons.values()))
        self.detect_at[zone] = max(now, when)

    async def _declare(self, zone: str, now: float) -> None:
        """The checks declare the zone's coordinator dead: route around it, evacuate it
        (and, for an outage, declare its agents with it)."""
        self.declared.add(zone)
        self.intake.dispatcher.zones.declare_down(zone)
        if OUTAGE in self.reasons.get(zone, {}):
            await self.event("zone_down", zone)
            await self.intake.evacuate_zone(zone)
            await self.declare_agents(zone, now)
            await self.intake.evacuate_stranded()
            return
        moved = await self.intake.evacuate_zone(zone)
        await self.event("zone_redistributed", zone, tasks=moved)

    async def _reachable(self, zone: str, ended: dict[str, float]) -> None:
        """The last reason ended (*ended*: the reasons that held it until now)."""
        self.detect_at.pop(zone, None)
        self.detector.forget(f"{zone}-coord")
        self.set_dark(zone)
        declared = zone in self.declared
        self.declared.discard(zone)
        if declared:
            self.intake.dispatcher.zones.declare_up(zone)
            if OUTAGE in ended:
                await self.event("zone_up", zone)  # its agents rejoin as their beats resume
        await self.intake.zone_back(zone)
        if CUT_OFF in ended:
            await self.event("zone_reconnected", zone)
