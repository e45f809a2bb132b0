"""A zone coordinator's crash and its standby's promotion, as the simulator's failover plays it.

Scenario (the spec's zone failure): a zone's coordinator dies; its agents do
not. The chief's calls to the zone fail at once, so work sent there waits at
its door (or goes elsewhere once the zone's breaker opens), while the zone's
agents keep serving what they hold and pulling from the zone's own queue.
The chief's checks declare the coordinator dead (``coordinator_detector``,
the simulator's, with its check phases); ``health.zone_promotion`` later
the standby is promoted and what waited at the door is placed in the zone.
A zone with no standby is declared down instead and evacuated, until its
coordinator restarts (the chaos event's ``restart_after``).

Live zones have no coordinator process of their own (zone dispatch runs in
the chiefs), so chaos announces the crash in ``zone_coordinators_down`` as
it announces a zone outage; this module turns the announcement into the
simulator's sequence (``Failover.zone_coordinator_down``), event for event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector
from sim.scenario.schema import Scenario


@dataclass
class Crash:
    """One zone coordinator's crash: when, and where its failover stands."""

    since: float
    detect_at: float
    promote_at: float | None = None  # set at detection when the zone has a standby
    declared: bool = False  # detected with no standby: routed around until it restarts
    promoted: bool = False


class ZoneFailover:
    """Plays announced zone-coordinator crashes (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        time: ScenarioTime,
        event: EventLog,
        intake: Intake,
        detector: ConsecutiveFailureDetector,
        set_dark: Callable[[str], None],
    ) -> None:
        self.time, self.event, self.intake = time, event, intake
        self.detector = detector
        #: Re-marks a zone dark or reachable from every reason the health checks hold.
        self.set_dark = set_dark
        self.standby = {z.name: z.standby for z in scenario.topology.zones}
        self.promotion_s = scenario.health.zone_promotion
        #: Crashes under way (or promoted, until chaos clears the announcement).
        self.crashes: dict[str, Crash] = {}

    def dark(self, zone: str) -> bool:
        """Whether the chief cannot reach *zone*'s coordinator now (crashed, not promoted)."""
        crash = self.crashes.get(zone)
        return crash is not None and not crash.promoted

    async def check(self, down: dict[str, float]) -> None:
        """One look at the announcement (*down*: crashed zone coordinators, by the second
        each crashed) and the failovers' clocks."""
        announced = {zone: since for zone, since in down.items() if zone in self.standby}
        now = self.time.now()
        for zone, since in sorted(announced.items()):
            crash = self.crashes.get(zone)
            if crash is None or crash.since != since:
                when = self.detector.detection_time(f"{zone}-coord", min(now, since))
                self.crashes[zone] = Crash(since, max(now, when))
                self.set_dark(zone)
        for zone in sorted(self.crashes):
            crash = self.crashes[zone]
            if zone not in announced:
                await self._restarted(zone, crash)
            elif not crash.declared and crash.promote_at is None and crash.detect_at <= now:
                await self._detected(zone, crash, now)
            elif crash.promote_at is not None and not crash.promoted and crash.promote_at <= now:
                await self._promoted(zone, crash, now)

    async def _detected(self, zone: str, crash: Crash, now: float) -> None:
        coordinator = f"{zone}-coord"
        await self.event("coordinator_detected", coordinator, detect_s=now - crash.since)
        self.detector.forget(coordinator)
        if self.standby[zone]:
            crash.promote_at = now + self.promotion_s
            return
        crash.declared = True
        self.intake.dispatcher.zones.declare_down(zone)
        moved = await self.intake.evacuate_zone(zone)
        await self.event("zone_redistributed", zone, tasks=moved)

    async def _promoted(self, zone: str, crash: Crash, now: float) -> None:
        crash.promoted = True
        self.set_dark(zone)
        await self.intake.zone_back(zone)
        await self.event("standby_promoted", f"{zone}-standby", downtime_s=now - crash.since)

    async def _restarted(self, zone: str, crash: Crash) -> None:
        """The announcement is cleared: the crashed coordinator is back (a restart)."""
        del self.crashes[zone]
        if crash.promoted:
            return  # its standby took over long since: nothing to give back
        self.detector.forget(f"{zone}-coord")
        self.set_dark(zone)
        if crash.declared:
            self.intake.dispatcher.zones.declare_up(zone)
        await self.intake.zone_back(zone)
        await self.event("coordinator_restart", f"{zone}-coord")
