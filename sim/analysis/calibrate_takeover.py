"""Calibration of a coordinator takeover: how long live's fleet was leaderless.

Scenario: the spec's Raft group elects a new leader in a fraction of a
second; live's chiefs are a lease-based primary and standbys, and a standby
takes seconds to take the lease and rebuild its books. ``orchestra
calibrate`` measures each takeover from the chiefs' chaos that ended the
primary, and sets the replay's election timeouts so that it is leaderless as
long as live was.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

#: The chiefs' chaos that can end live's primary.
LEADER_CHAOS = ("coordinator_crash", "partition", "one_way_partition")


def takeover_gaps(events: pd.DataFrame, tasks: pd.DataFrame | None = None) -> list[float]:
    """Seconds from the chaos that ended each primary until its backlog is dispatched.

    Each takeover (a ``coordinator_primary`` after the first) is charged to
    the latest of the chiefs' chaos before it not charged already, leaving
    out what spares the primary (a follower's crash or one-way cut, as live
    logs the role hit, and a zone coordinator's crash). From there, the first primary
    after it, then the dispatch of what arrived while nobody led: a standby
    taking over rebuilds its books from the streams before it places
    anything (4.5 s of 15.6 s at the spec's fleet, x10) and places that
    backlog over about a second as it catches up, where the replay's leader
    places it all the moment it is elected. The backlog's median dispatch
    stands for it (its first dispatch if none).
    """
    chaos = events[(events["kind"] == "chaos") & events["subject"].isin(LEADER_CHAOS)]
    causes = [
        at
        for at, detail in zip(
            chaos["time_s"].astype(float), chaos["detail"].astype(str), strict=True
        )
        if not _spares_the_primary(detail)
    ]
    primaries = sorted(events.loc[events["kind"] == "coordinator_primary", "time_s"].astype(float))
    placed = tasks.dropna(subset=["dispatch_s"]) if tasks is not None else None
    gaps = []
    charged = -math.inf
    for took in primaries[1:]:
        before = [at for at in causes if charged < at <= took]
        if not before:
            continue  # not chaos's doing (nothing this run's chaos did ended a primary)
        at = charged = before[-1]
        resumed = took
        if placed is not None:
            later = placed[placed["dispatch_s"].astype(float) >= took]
            backlog = later[later["arrival_s"].astype(float).between(at, took)]
            if len(backlog):
                resumed = float(backlog["dispatch_s"].astype(float).median())
            elif len(later):
                resumed = float(later["dispatch_s"].astype(float).min())
        gaps.append(resumed - at)
    return gaps


def _spares_the_primary(detail: str) -> bool:
    """Whether the chaos record (as live logs it: the role a crash or a one-way cut hit)
    left live's primary alone: a follower's, or a zone coordinator's crash."""
    try:
        event = json.loads(detail).get("event", {})
    except (ValueError, AttributeError):
        return False
    if not isinstance(event, dict):
        return False
    crashed = event.get("coordinator_crash")
    if isinstance(crashed, str):
        return crashed == "follower" or crashed.endswith("-coord")
    one_way = event.get("one_way_partition")
    return isinstance(one_way, dict) and one_way.get("chief") == "follower"


def election_timeout(takeover_s: float, scenario: Any) -> list[float]:
    """The chiefs' election timeouts that leave a replay leaderless *takeover_s* on average.

    The first of the N - 1 followers to time out wins: over [low, low + width]
    that is low + width / N on average. The spread keeps Raft's split votes
    rare (two followers timing out within a vote's round trip of each other),
    as its randomised timeouts are meant to: ten heartbeats wide, and no more
    than needed, so that one replay's draw lands near the fitted takeover.
    """
    plane = scenario.topology.control_plane
    target = max(takeover_s, 20 * plane.heartbeat)
    width = min(0.5 * target, 10 * plane.heartbeat)
    low = target - width / plane.chiefs
    return [round(low, 6), round(low + width, 6)]
