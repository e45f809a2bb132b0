"""Zones out of the chief's reach: a region gone dark, a partition's cut, a dead zone coordinator.

Scenario: the chief reaches a zone through its zone coordinator. Three
things take that away — a ``zone_outage`` (the region and everything in it
gone), a ``partition`` cutting the zone off (its agents work on, out of
reach), a ``coordinator_crash`` of the zone's coordinator (its agents work
on; its standby, if it has one, is promoted). The chief's calls to the zone
fail from the first of them; its checks of the coordinator declare the zone
(``coordinator_detector``), and then its queue is sent elsewhere and routing
goes around it.

They overlap, and the rules are the same whichever comes first:

* the zone is out of reach while any of them holds, and back only when the
  last one ends (declared up, what waited at its door delivered);
* the coordinator's checks fail from when the zone first went out of reach,
  so a second reason is judged by the same verdict, not a fresh one;
* an outage takes the region's agents down whenever it starts, whatever
  else holds, and the zone coordinator with its standby: a crash under way
  ends there (no promotion in a dark region), and the region's return
  brings a fresh coordinator;
* a restarted host's agent serves again unless its region is dark; a cut or
  a dead coordinator does not stop a process starting.

The rules are ``sim.policies.health.zone_reasons``, which live's coordinator
plays too (``sim.live.coordinator.unreachable_zones``); this is their SimPy
driver: timers for the checks' verdicts and the standby's promotion.

Before these were one set of reasons, a coordinator's crash and an outage
were two machines: an outage starting while the coordinator was down took no
agent down, and the standby's promotion opened the dark zone to work.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import simpy

from sim.metrics.records import EventLog
from sim.model.chief import Chief
from sim.policies.dispatch import DispatchCore
from sim.policies.health import ConsecutiveFailureDetector
from sim.policies.health.zone_reasons import COORDINATOR, CUT_OFF, OUTAGE, Began, ZoneReasons
from sim.scenario.schema import Scenario


class ZoneReach:
    """Which zones the chief cannot reach, and why (see the module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        chief: Chief,
        core: DispatchCore[Any],
        events: EventLog,
        detector: ConsecutiveFailureDetector,
        crash_agents: Callable[[str], None],
        restart_agents: Callable[[str], None],
    ) -> None:
        self.env, self.chief, self.core, self.events = env, chief, core, events
        self.detector = detector
        #: Takes the zone's agents down (an outage), and brings their hosts back.
        self.crash_agents, self.restart_agents = crash_agents, restart_agents
        self.standby = {z.name: z.standby for z in scenario.topology.zones}
        self.promotion_s = scenario.health.zone_promotion
        #: The reasons each zone is out of reach (the rules both shells play).
        self.reasons = ZoneReasons()
        #: Per zone, its coordinator's crash under way (an id; gone when it ends).
        self._crashes: dict[str, int] = {}
        self._crash_ids = itertools.count(1)
        self._generation: dict[str, int] = {}

    def region_dark(self, zone: str) -> bool:
        """Whether the zone's region is in an outage (its hosts are gone)."""
        return self.reasons.holds(zone, OUTAGE)

    # ------------------------------------------------------------------ outages and cuts

    def zone_down(self, zone: str) -> None:
        """A whole region goes dark: its agents, its coordinator and its standby."""
        began = self.reasons.begin(zone, OUTAGE, self.env.now)
        if began.crash_ended:
            del self._crashes[zone]  # the region's return brings a fresh coordinator
        if began.new:  # (overlapping outages: the first took the agents)
            self._unreachable(zone, OUTAGE, began)
            self.crash_agents(zone)

    def zone_up(self, zone: str) -> None:
        """The region is back with a fresh coordinator; its agents' hosts are back."""
        last, back = self.reasons.end(zone, OUTAGE)
        if not last:
            return  # overlapping outages: dark until the last one ends
        if back:
            self._back(zone)
        self.restart_agents(zone)
        if back:
            self.chief.release_stranded(zone)
        self.events.add(self.env.now, "zone_restored", zone)

    def zone_cut_off(self, zone: str) -> None:
        """A partition separates the zone from the chiefs: its agents work on, unreachable."""
        began = self.reasons.begin(zone, CUT_OFF, self.env.now)
        if began.new:
            self._unreachable(zone, CUT_OFF, began)

    def zone_reconnected(self, zone: str) -> None:
        """The partition heals: the chief reaches the zone again unless something else holds."""
        last, back = self.reasons.end(zone, CUT_OFF)
        if not (last and back):
            return
        self._back(zone)
        self.chief.release_stranded(zone)
        self.events.add(self.env.now, "zone_reconnected", zone)

    def _unreachable(self, zone: str, kind: str, began: Began) -> None:
        """The chief loses the zone for *kind*: its calls fail; its checks will declare it."""
        now = self.env.now
        if began.went_dark:
            self.chief.set_down(zone, True)
        self.events.add(now, kind, zone)
        if zone in self.core.zones.declared:
            return  # another reason's verdict routes around it already
        when = self.detector.detection_time(f"{zone}-coord", self.reasons.dark_since(zone))
        self._generation[zone] = generation = self._generation.get(zone, 0) + 1
        timer = self.env.timeout(max(0.0, when - now), (zone, generation))
        timer.callbacks.append(lambda event: self._zone_detected(*event.value))

    def _zone_detected(self, zone: str, generation: int) -> None:
        held = self.reasons.holds(zone, OUTAGE) or self.reasons.holds(zone, CUT_OFF)
        if not held or generation != self._generation[zone]:
            return  # the outage or cut ended (maybe to come again) before this verdict
        self._redistribute(zone)

    def _redistribute(self, zone: str) -> None:
        """The checks declared the zone's coordinator dead: route around the zone, and what
        waited in its queue and at its door goes elsewhere."""
        self.core.zones.declare_down(zone)
        waiting = self.chief.evacuate(zone)
        self.events.add(self.env.now, "zone_redistributed", zone, tasks=waiting)

    def _back(self, zone: str) -> None:
        """No reason holds the zone any more: it answers and takes work."""
        self.chief.set_down(zone, False)
        self.core.zones.declare_up(zone)
        self.detector.forget(f"{zone}-coord")

    # ------------------------------------------------------------------ a coordinator's crash

    def coordinator_down(self, zone: str, restart_after: float | None) -> None:
        """The zone coordinator dies (its agents do not): the standby takes over.

        Work the chief sends meanwhile waits at the zone's door; the agents keep
        serving what they hold and pulling from the zone's queue (the queue is
        in the replicated store, not in the coordinator). When the chief's
        checks declare the coordinator dead, the standby is promoted after
        ``health.zone_promotion``; with no standby the zone is routed around
        until the coordinator restarts. In a dark region there is nothing to crash.
        """
        now = self.env.now
        began = self.reasons.begin(zone, COORDINATOR, now)
        if not began.new:
            return
        if began.went_dark:
            self.chief.set_down(zone, True)
        self._crashes[zone] = crash = next(self._crash_ids)
        coordinator = f"{zone}-coord"
        self.events.add(now, "coordinator_crash", coordinator)
        when = self.detector.detection_time(coordinator, self.reasons.dark_since(zone))
        standby = self.standby[zone]

        def under_way() -> bool:
            return self._crashes.get(zone) == crash  # not ended by an outage or a restart

        def detected(_: simpy.Event) -> None:
            if not under_way():
                return
            self.events.add(
                self.env.now, "coordinator_detected", coordinator, detect_s=self.env.now - now
            )
            self.detector.forget(coordinator)
            if standby:
                self.env.timeout(self.promotion_s).callbacks.append(promoted)
            else:
                self._redistribute(zone)

        def promoted(_: simpy.Event) -> None:
            if not under_way():
                return
            if self._crash_ended(zone):
                self.chief.release_stranded(zone)
            self.events.add(
                self.env.now, "standby_promoted", f"{zone}-standby", downtime_s=self.env.now - now
            )

        def restarted(_: simpy.Event) -> None:
            if not under_way():
                return
            if self._crash_ended(zone):
                self.chief.release_stranded(zone)
            self.events.add(self.env.now, "coordinator_restart", coordinator)

        self.env.timeout(max(0.0, when - now)).callbacks.append(detected)
        if restart_after is not None and not standby:
            self.env.timeout(restart_after).callbacks.append(restarted)

    def _crash_ended(self, zone: str) -> bool:
        """The crash is over (promoted, restarted); True when the zone is reachable again."""
        del self._crashes[zone]
        _, back = self.reasons.end(zone, COORDINATOR)
        if back:
            self._back(zone)
        return back
