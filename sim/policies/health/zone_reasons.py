"""Why each zone is out of the chief's reach: the rules for outages, cuts and crashes together.

Scenario: the chief reaches a zone through its zone coordinator, and three
things take that away — a region's outage (everything in it gone), a
partition's cut (its agents work on, out of reach), the zone coordinator's
crash (its agents work on; its standby may be promoted). They overlap, and
both shells must play an overlap the same way, so the rules live here once
and each shell (the simulator's ``sim.model.zone_reach``, live's
``sim.live.coordinator.unreachable_zones``) drives this book and acts on
what it answers:

* a zone is out of reach while any reason holds, from the moment the first
  began (its coordinator's checks fail from then: one verdict judges them
  all), and back only when the last ends;
* an outage ends a crash under way: the region takes the coordinator and
  its standby with it (no promotion in the dark), and its return brings a
  fresh coordinator;
* a crash in a dark region, or of a coordinator already down, is nothing to
  play.

Overlapping reasons of one kind (two outages of a zone) count: the kind ends
with the last of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COORDINATOR", "CUT_OFF", "OUTAGE", "Began", "ZoneReasons"]

#: The reasons (the first two are also the events the simulator logs as they begin).
OUTAGE, CUT_OFF, COORDINATOR = "zone_outage", "zone_cut_off", "coordinator_crash"


@dataclass(frozen=True)
class Began:
    """What beginning a reason did (all False: nothing to play)."""

    #: No reason of this kind held before: the shell plays its start.
    new: bool
    #: The zone was reachable until now: calls to it fail from here.
    went_dark: bool
    #: An outage ended the coordinator's crash under way.
    crash_ended: bool = False


class ZoneReasons:
    """Per zone, the reasons it is out of the chief's reach (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[str, dict[str, int]] = {}
        self._since: dict[str, float] = {}

    def dark(self, zone: str) -> bool:
        """Whether the chief cannot reach *zone*, for any reason."""
        return zone in self._held

    def holds(self, zone: str, kind: str) -> bool:
        return kind in self._held.get(zone, {})

    def dark_since(self, zone: str) -> float:
        """When the zone went out of reach (its coordinator's checks fail from then)."""
        return self._since[zone]

    def begin(self, zone: str, kind: str, at: float) -> Began:
        """A reason begins at *at* (the scenario second it began)."""
        held = self._held.get(zone, {})
        if kind == COORDINATOR and (OUTAGE in held or COORDINATOR in held):
            return Began(new=False, went_dark=False)  # nothing (more) to crash
        went_dark = not held
        if went_dark:
            self._held[zone] = held
            self._since[zone] = at
        held[kind] = held.get(kind, 0) + 1
        crash_ended = kind == OUTAGE and held.pop(COORDINATOR, 0) > 0
        return Began(new=held[kind] == 1, went_dark=went_dark, crash_ended=crash_ended)

    def end(self, zone: str, kind: str) -> tuple[bool, bool]:
        """A reason ends: (whether it was the last of its kind, whether the zone is back).

        A crash an outage already ended is not held: its end changes nothing.
        """
        held = self._held.get(zone, {})
        if kind not in held:
            return False, False
        held[kind] -= 1
        if held[kind] > 0:
            return False, False
        del held[kind]
        if held:
            return True, False
        del self._held[zone], self._since[zone]
        return True, True
