"""Zones the chief cannot reach: a region gone dark, a partition's cut, a dead zone coordinator.

Scenario: chaos announces a ``zone_outage`` (the region and its agents are
gone), a ``partition`` that leaves a zone off the chiefs' majority (its
agents work on, out of the chief's reach), or a zone coordinator's crash
(its agents work on; its standby, if it has one, is promoted). Any of them
and the chief's calls to the zone fail at once — its work waits at the door,
or goes elsewhere once the zone's breaker opens (``zone_calls``) — and the
chief's checks of the zone's coordinator judge it (``coordinator_detector``,
the simulator's, with its check phases, counted from when the zone went out
of reach, not from when this round read the key):

* an outage's or a cut's verdict declares the zone: what waited at its door
  and in its queues goes elsewhere; an outage's agents are declared dead
  with it (they are gone), a cut zone's are not (they are alive);
* a crashed coordinator's verdict promotes its standby
  ``health.zone_promotion`` later, or, with none, declares the zone until
  the coordinator restarts (chaos clears the announcement).

The rules for overlaps are the simulator's, from the same book
(``sim.policies.health.zone_reasons``): the zone is reachable again only
when the last reason ends (declared up, what waited at its door placed
there); a second reason is judged by the checks failing since the first; an
outage ends a coordinator's crash (no promotion in a dark region, and its
return brings a fresh coordinator), and a crash announced while the region
is dark is nothing to play. This is their live driver: it reads chaos's
announcements each round, where the simulator's (``sim.model.zone_reach``)
sets timers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector
from sim.policies.health.zone_reasons import COORDINATOR, CUT_OFF, OUTAGE, ZoneReasons

__all__ = ["COORDINATOR", "CUT_OFF", "OUTAGE", "UnreachableZones"]


@dataclass
class Crash:
    """One zone coordinator's crash, by the second it crashed: where its failover stands."""

    since: float
    detect_at: float
    detected: bool = False
    promote_at: float | None = None  # set at detection when the zone has a standby
    over: bool = False  # promoted, or ended by an outage: announced still, played out


class UnreachableZones:
    """The zones out of the chief's reach, and why (see the module docstring)."""

    def __init__(
        self,
        standby: Mapping[str, bool],
        promotion_s: float,
        time: ScenarioTime,
        event: EventLog,
        intake: Intake,
        detector: ConsecutiveFailureDetector,
        set_dark: Callable[[str], None],
        declare_agents: Callable[[str, float], Awaitable[None]],
    ) -> None:
        self.zones = sorted(standby)
        self.standby, self.promotion_s = dict(standby), promotion_s
        self.time, self.event, self.intake = time, event, intake
        self.detector = detector
        #: Re-marks a zone dark or reachable from every reason the health checks hold.
        self.set_dark = set_dark
        #: Declares an outage's agents dead with their zone (the health checks' verdict).
        self.declare_agents = declare_agents
        #: The reasons each zone is out of reach (the rules both shells play).
        self.reasons = ZoneReasons()
        #: Per zone, the outages and cuts announced and played, by the second each began.
        self._begun: dict[str, dict[str, float]] = {}
        #: Outages and cuts not declared yet: the scenario time their declaration is due.
        self.detect_at: dict[str, float] = {}
        #: Zones this mechanism declared down (and alone may declare up).
        self.declared: set[str] = set()
        #: Crashed zone coordinators, while chaos announces them.
        self.crashes: dict[str, Crash] = {}

    def dark(self, zone: str) -> bool:
        """Whether the chief cannot reach *zone* now, for any reason."""
        return self.reasons.dark(zone)

    async def check(self, announced: dict[str, dict[str, float]]) -> None:
        """One look at the announcements (per reason: the zones, by the second each began)
        and at the verdicts and promotions due."""
        now = self.time.now()
        for zone in self.zones:
            seen = {why: zones[zone] for why, zones in announced.items() if zone in zones}
            await self._crash_seen(zone, seen.pop(COORDINATOR, None), now)
            begun = self._begun.setdefault(zone, {})
            for why in (OUTAGE, CUT_OFF):
                if why in seen and why not in begun:
                    begun[why] = seen[why]
                    await self._unreachable(zone, why, seen[why], now)
            ended, back = [], False
            for why in (OUTAGE, CUT_OFF):
                if why in begun and why not in seen:
                    del begun[why]
                    ended.append(why)
                    last, back_now = self.reasons.end(zone, why)
                    back = back_now or back
                    if why == OUTAGE and last:  # (a cut may hold it on: restored all the same)
                        await self.event("zone_restored", zone)
            if back:
                await self._reachable(zone, ended)
        for zone, when in sorted(self.detect_at.items()):
            if when <= now:
                del self.detect_at[zone]
                await self._declare(zone, now)
        for zone, crash in sorted(self.crashes.items()):
            await self._crash_clock(zone, crash, now)

    # ------------------------------------------------------------------ outages and cuts

    async def _unreachable(self, zone: str, why: str, since: float, now: float) -> None:
        began = self.reasons.begin(zone, why, min(now, since))
        if began.crash_ended:
            self.crashes[zone].over = True  # the region took its coordinator and standby
        self.set_dark(zone)
        await self.event(why, zone)  # zone_outage or zone_cut_off, as the simulator logs it
        if zone not in self.declared and zone not in self.detect_at:
            when = self.detector.detection_time(f"{zone}-coord", self.reasons.dark_since(zone))
            self.detect_at[zone] = max(now, when)

    async def _declare(self, zone: str, now: float) -> None:
        """The checks declare the zone's coordinator dead: route around it, evacuate it
        (and, for an outage, declare its agents with it)."""
        outage = self.reasons.holds(zone, OUTAGE)
        if not outage and not self.reasons.holds(zone, CUT_OFF):
            return  # only a crash holds it now: its own verdict judges it
        if not outage:
            await self._redistribute(zone)
            return
        self.declared.add(zone)
        self.intake.dispatcher.zones.declare_down(zone)
        await self.event("zone_down", zone)  # (live's own: its records read the agents gone)
        moved = await self.intake.evacuate_zone(zone)
        await self.event("zone_redistributed", zone, tasks=moved)
        await self.declare_agents(zone, now)
        await self.intake.evacuate_stranded()

    async def _redistribute(self, zone: str) -> None:
        """The checks declared the zone's coordinator dead (a cut, or a crash with no
        standby): route around the zone; what waited at its door and in its queues goes
        elsewhere. Its agents are alive and stay in their pools."""
        self.declared.add(zone)
        self.intake.dispatcher.zones.declare_down(zone)
        moved = await self.intake.evacuate_zone(zone)
        await self.event("zone_redistributed", zone, tasks=moved)

    async def _reachable(self, zone: str, ended: list[str]) -> None:
        """The last reason ended (*ended*: those that ended this round): the zone answers."""
        self.detect_at.pop(zone, None)
        self.detector.forget(f"{zone}-coord")
        self.set_dark(zone)
        declared = zone in self.declared
        self.declared.discard(zone)
        if declared:
            self.intake.dispatcher.zones.declare_up(zone)
        await self.intake.zone_back(zone)
        if CUT_OFF in ended:
            await self.event("zone_reconnected", zone)

    # ------------------------------------------------------------------ a coordinator's crash

    async def _crash_seen(self, zone: str, since: float | None, now: float) -> None:
        """The announcement of *zone*'s crashed coordinator (None: none, or it restarted)."""
        crash = self.crashes.get(zone)
        if crash is not None and crash.since != since:
            del self.crashes[zone]
            if not crash.over:  # a restart: the crash is over, the zone may answer
                if self.reasons.end(zone, COORDINATOR)[1]:
                    await self._reachable(zone, [COORDINATOR])
                await self.event("coordinator_restart", f"{zone}-coord")
            crash = None
        if since is None or crash is not None:
            return
        if not self.reasons.begin(zone, COORDINATOR, min(now, since)).new:
            self.crashes[zone] = Crash(since, now, over=True)  # nothing to crash in the dark
            return
        self.set_dark(zone)
        when = self.detector.detection_time(f"{zone}-coord", self.reasons.dark_since(zone))
        self.crashes[zone] = Crash(since, max(now, when))

    async def _crash_clock(self, zone: str, crash: Crash, now: float) -> None:
        """The crash's verdict and its standby's promotion, when due."""
        if crash.over:
            return
        if not crash.detected and crash.detect_at <= now:
            crash.detected = True
            coordinator = f"{zone}-coord"
            await self.event("coordinator_detected", coordinator, detect_s=now - crash.since)
            self.detector.forget(coordinator)
            if self.standby[zone]:
                crash.promote_at = now + self.promotion_s
                return
            await self._redistribute(zone)
        elif crash.promote_at is not None and crash.promote_at <= now:
            crash.over = True
            if self.reasons.end(zone, COORDINATOR)[1]:
                await self._reachable(zone, [COORDINATOR])
            await self.event("standby_promoted", f"{zone}-standby", downtime_s=now - crash.since)
