"""What chaos tells the coordinator: which zones, zone coordinators or team leads are down.

Live zones, zone coordinators and team leads have no process of their own to
fall silent, so chaos announces what the coordinator's checks would learn
from the silence, each kind in its ``orch_lease`` key (``zones_down``,
``zone_coordinators_down``, ``team_leads_down``), all in one document: the
names, and the scenario second each went down (the checks fail from then on,
whenever the coordinator next reads the key). Written and read here, so the
two sides share one format.
"""

from __future__ import annotations

from collections.abc import Mapping

from sim.live.broker import KvEntry, encode


def announcement(since: Mapping[str, float]) -> bytes:
    """The key's value for the names down now, by the second each went down."""
    names = sorted(since)
    return encode({"zones": names, "since": {name: since[name] for name in names}})


def announced(entry: KvEntry | None, now: float) -> dict[str, float]:
    """The names a key's value says are down, by the second each went down (*now* when
    the writer did not say: an announcement of an earlier version)."""
    document = entry.document() if entry is not None else {}
    since = document.get("since", {})
    return {str(name): float(since.get(name, now)) for name in document.get("zones", [])}
