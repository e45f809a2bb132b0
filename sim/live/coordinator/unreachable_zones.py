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

The rules for overlaps are the simulator's (``sim.model.zone_reach``): the
zone is reachable again only when the last reason ends (declared up, what
waited at its door placed there); a second reason is judged by the checks
failing since the first; an outage ends a coordinator's crash (no promotion
in a dark region, and its return brings a fresh coordinator), and a crash
announced while the region is dark is nothing to play.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector

__all__ = ["COORDINATOR", "CUT_OFF", "OUTAGE", "UnreachableZones"]

#: The reasons a zone is out of reach, as the announcements say.
OUTAGE, CUT_OFF, COORDINATOR = "zone_outage", "zone_cut_off", "coordinator_crash"


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
        self.zones: Collection[str] = sorted(standby)
        self.standby, self.promotion_s = dict(standby), promotion_s
        self.time, self.event, self.intake = time, event, intake
        self.detector = detector
        #: Re-marks a zone dark or reachable from every reason the health checks hold.
        self.set_dark = set_dark
        #: Declares an outage's agents dead with their zone (the health checks' verdict).
        self.declare_agents = declare_agents
        #: Per zone out of reach: its reasons, by the second each began.
        self.reasons: dict[str, dict[str, float]] = {}
        #: When each zone out of reach went out of reach (its checks fail from then).
        self._dark_since: dict[str, float] = {}
        #: Outages and cuts not declared yet: the scenario time their declaration is due.
        self.detect_at: dict[str, float] = {}
        #: Zones this mechanism declared down (and alone may declare up).
        self.declared: set[str] = set()
        #: Crashed zone coordinators, while chaos announces them.
        self.crashes: dict[str, Crash] = {}

    def dark(self, zone: str) -> bool:
        """Whether the chief cannot reach *zone* now, for any reason."""
        return bool(self.reasons.get(zone))

    async def check(self, announced: dict[str, dict[str, float]]) -> None:
        """One look at the announcements (per reason: the zones, by the second each began)
        and at the verdicts and promotions due."""
        now = self.time.now()
        for zone in self.zones:
            seen = {why: zones[zone] for why, zones in announced.items() if zone in zones}
            await self._crash_seen(zone, seen.pop(COORDINATOR, None), now)
            held = self.reasons.get(zone, {})
            for why in (OUTAGE, CUT_OFF):
                if why in seen and why not in held:
                    await self._unreachable(zone, why, seen[why], now)
            ended = [why for why in (OUTAGE, CUT_OFF) if why in held and why not in seen]
            if ended:
                for why in ended:
                    del held[why]
                await self._reachable(zone, ended)
        for zone, when in sorted(self.detect_at.items()):
            if when <= now:
                del self.detect_at[zone]
                await self._declare(zone, now)
        for zone, crash in sorted(self.crashes.items()):
            await self._crash_clock(zone, crash, now)

    # ------------------------------------------------------------------ outages and cuts

    def _hold(self, zone: str, why: str, since: float, now: float) -> None:
        reasons = self.reasons.setdefault(zone, {})
        if not reasons:
            self._dark_since[zone] = min(now, since)
        reasons[why] = since
        self.set_dark(zone)

    async def _unreachable(self, zone: str, why: str, since: float, now: float) -> None:
        self._hold(zone, why, since, now)
        crash = self.crashes.get(zone)
        if why == OUTAGE and crash is not None and not crash.over:
            crash.over = True  # the region took its coordinator and the standby with it
            del self.reasons[zone][COORDINATOR]
        if why == CUT_OFF:
            await self.event("zone_cut_off", zone)
        if zone not in self.declared and zone not in self.detect_at:
            when = self.detector.detection_time(f"{zone}-coord", self._dark_since[zone])
            self.detect_at[zone] = max(now, when)

    async def _declare(self, zone: str, now: float) -> None:
        """The checks declare the zone's coordinator dead: route around it, evacuate it
        (and, for an outage, declare its agents with it)."""
        held = self.reasons.get(zone, {})
        if OUTAGE not in held and CUT_OFF not in held:
            return  # only a crash holds it now: its own verdict judges it
        self.declared.add(zone)
        self.intake.dispatcher.zones.declare_down(zone)
        if OUTAGE in held:
            await self.event("zone_down", zone)
            await self.intake.evacuate_zone(zone)
            await self.declare_agents(zone, now)
            await self.intake.evacuate_stranded()
            return
        moved = await self.intake.evacuate_zone(zone)
        await self.event("zone_redistributed", zone, tasks=moved)

    async def _reachable(self, zone: str, ended: list[str]) -> None:
        """Some reasons ended (*ended*); the zone answers again if they were the last."""
        if self.reasons.get(zone):
            return
        self.reasons.pop(zone, None)
        self._dark_since.pop(zone, None)
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

    # ------------------------------------------------------------------ a coordinator's crash

    async def _crash_seen(self, zone: str, since: float | None, now: float) -> None:
        """The announcement of *zone*'s crashed coordinator (None: none, or it restarted)."""
        crash = self.crashes.get(zone)
        if crash is not None and crash.since != since:
            del self.crashes[zone]
            if not crash.over:  # a restart: the crash is over, the zone may answer
                del self.reasons[zone][COORDINATOR]
                await self._reachable(zone, [COORDINATOR])
                await self.event("coordinator_restart", f"{zone}-coord")
            crash = None
        if since is None or crash is not None:
            return
        if OUTAGE in self.reasons.get(zone, {}):
            self.crashes[zone] = Crash(since, now, over=True)  # nothing to crash in the dark
            return
        self._hold(zone, COORDINATOR, since, now)
        when = self.detector.detection_time(f"{zone}-coord", self._dark_since[zone])
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
            self.declared.add(zone)
            self.intake.dispatcher.zones.declare_down(zone)
            moved = await self.intake.evacuate_zone(zone)
            await self.event("zone_redistributed", zone, tasks=moved)
        elif crash.promote_at is not None and crash.promote_at <= now:
            crash.over = True
            del self.reasons[zone][COORDINATOR]
            await self._reachable(zone, [COORDINATOR])
            await self.event("standby_promoted", f"{zone}-standby", downtime_s=now - crash.since)
