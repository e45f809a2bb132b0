"""Zone routing: which zone serves a task, and where idle agents look for work.

The chief coordinator sends a task to its home zone — where it arrived and
where its data lives — unless that zone has no agent of the task's category
at all, in which case the nearest zone that has one takes it. A zone
coordinator with no free agent may spill the task to the nearest zone that
has one (paying the cross-region path), and an agent whose own zone's queue
is empty may take the oldest task queued in another zone, nearest first.
Together these make the four zones one pool per category with a strong
preference for locality, which is what the spec's zone design intends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence


class ZoneRouter:
    """Zone choices from RTTs between zones; pure and deterministic."""

    def __init__(self, zones: Sequence[str], rtt_ms: Mapping[tuple[str, str], float]) -> None:
        self.zones = tuple(zones)
        #: Zones whose coordinator is known to be dead.
        self.down: set[str] = set()
        order = {z: i for i, z in enumerate(self.zones)}
        #: For each zone, the other zones nearest first (ties by declaration order).
        self.neighbours: dict[str, tuple[str, ...]] = {}
        for zone in self.zones:
            others = sorted((rtt_ms[zone, o], order[o], o) for o in self.zones if o != zone)
            self.neighbours[zone] = tuple(o for _, _, o in others)

    def mark_down(self, zone: str) -> None:
        """The zone's coordinator is declared dead: route around it."""
        self.down.add(zone)

    def mark_up(self, zone: str) -> None:
        self.down.discard(zone)

    def home_zone(self, category: str, home: str, size: Callable[[str, str], int]) -> str:
        """The zone that should hold a task: its home, or the nearest live zone staffed for it."""
        down = self.down
        if home not in down and size(home, category) > 0:
            return home
        for zone in self.neighbours[home]:
            if zone not in down and size(zone, category) > 0:
                return zone
        for zone in self.neighbours[home]:
            if zone not in down:
                return zone  # nobody staffed for it anywhere: wait in the nearest live zone
        return home

    def spill_target(
        self, category: str, zone: str, has_room: Callable[[str, str], bool]
    ) -> str | None:
        """The nearest other live zone with a free agent of *category*, or None."""
        for other in self.neighbours[zone]:
            if other not in self.down and has_room(other, category):
                return other
        return None

    def replacement_zone(self, zone: str, dark: Collection[str]) -> str:
        """Where a failed agent's replacement starts: its own zone, unless that zone is *dark*.

        A dark region cannot host it: it goes to the nearest live zone (the
        spec's "scale up remaining zones"), or stays home if every zone is dark.
        *dark* is the shell's zones that cannot be reached now, declared or not.
        """
        if zone not in dark:
            return zone
        return next((other for other in self.neighbours[zone] if other not in dark), zone)
