"""Zones cut off from the chiefs by a partition, as the simulator's failover plays them.

Scenario: a network partition leaves a zone on a side without a majority of
the chiefs. Its agents work on, but the chief can no longer reach its
coordinator: calls to the zone fail at once (its work waits at the door, or
goes elsewhere once its breaker opens); the chief's checks of the
coordinator declare it after their detection time (``coordinator_detector``,
the simulator's, with its check phases), and then what waited at its door
and in its queues is sent to the zones the chief can reach
(``zone_redistributed``). Its agents are not declared dead: they are alive,
only out of reach. When the partition heals the zone is reachable again:
declared up, and what waited at its door is placed there
(``zone_reconnected``). This is ``Failover.zone_cut_off`` and
``zone_reconnected`` in the simulator.

Live zones have no link of their own to cut, so chaos announces the cut in
``zones_cut_off`` (``sim.live.announcements``), as it announces an outage.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import EventLog, ScenarioTime
from sim.policies.health import ConsecutiveFailureDetector

__all__ = ["ZoneCutOffs"]


@dataclass
class CutOff:
    """One zone's cut: since when, when its coordinator is declared, whether it was."""

    since: float
    detect_at: float
    declared: bool = False


class ZoneCutOffs:
    """Plays announced cuts (see the module docstring)."""

    def __init__(
        self,
        zones: Collection[str],
        time: ScenarioTime,
        event: EventLog,
        intake: Intake,
        detector: ConsecutiveFailureDetector,
        set_dark: Callable[[str], None],
    ) -> None:
        self.zones = frozenset(zones)
        self.time, self.event, self.intake = time, event, intake
        self.detector = detector
        #: Re-marks a zone dark or reachable from every reason the health checks hold.
        self.set_dark = set_dark
        self.cut: dict[str, CutOff] = {}

    def dark(self, zone: str) -> bool:
        """Whether a partition keeps the chief from *zone* now."""
        return zone in self.cut

    async def check(self, announced: dict[str, float]) -> None:
        """One look at the announcement (zones cut off, by the second each was) and at
        the declarations due."""
        now = self.time.now()
        for zone, since in sorted(announced.items()):
            known = self.cut.get(zone)
            if zone not in self.zones or (known is not None and known.since == since):
                continue
            # Its coordinator's checks fail from the cut on, not from this look (up to a
            # poll later): a check between the two would otherwise be missed.
            when = self.detector.detection_time(f"{zone}-coord", min(now, since))
            self.cut[zone] = CutOff(since, max(now, when))
            self.set_dark(zone)
            await self.event("zone_cut_off", zone)
        for zone in sorted(self.cut):
            cut = self.cut[zone]
            if zone not in announced:
                await self._reconnected(zone, cut)
            elif not cut.declared and cut.detect_at <= now:
                cut.declared = True
                self.intake.dispatcher.zones.declare_down(zone)
                moved = await self.intake.evacuate_zone(zone)
                await self.event("zone_redistributed", zone, tasks=moved)

    async def _reconnected(self, zone: str, cut: CutOff) -> None:
        del self.cut[zone]
        self.detector.forget(f"{zone}-coord")
        self.set_dark(zone)
        if cut.declared:
            self.intake.dispatcher.zones.declare_up(zone)
        await self.intake.zone_back(zone)
        await self.event("zone_reconnected", zone)
