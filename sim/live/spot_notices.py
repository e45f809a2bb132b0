"""Spot reclaim notices in a live run: who the provider takes back, and by when.

The run plays the cloud provider (``chaos: spot_reclaim``, and the correlated
mass reclaims the scenario draws): it picks the spot agents a reclaim hits,
writes their notices — agent id -> deadline, scenario seconds — under one
key of the lease bucket, and at each deadline kills what is still running.
The primary coordinator reads the key (``sim.live.coordinator.spot``): from
the notice the agent takes no new work and drains; what it still holds at the
deadline goes back to the queues, off the retry budget, as in the simulator.
A key rather than a message: a coordinator taking over reads it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sim.live.provisioner import AgentSpec
from sim.scenario.spot import SpotReclaim

__all__ = ["SPOT_HANDLED_KEY", "SPOT_NOTICES_KEY", "notices_from", "reclaim_victims"]

#: The lease bucket's key holding every notice given so far: {"notices": {agent: deadline_s}}.
SPOT_NOTICES_KEY = "spot_notices"
#: The key of the notices a primary has acted on ({"agents": [...]}): a primary taking over
#: drains those agents again but neither logs their notice again nor replaces them twice.
SPOT_HANDLED_KEY = "spot_handled"


def reclaim_victims(
    reclaim: SpotReclaim,
    running: Iterable[str],
    specs: Mapping[str, AgentSpec],
    noticed: Iterable[str],
) -> list[str]:
    """The running spot agents a reclaim takes, by id; none already given a notice.

    Named agents, else the ``fraction`` (or ``count``) of the spot agents of
    ``zone`` and ``category``, the first by id (live picks no random draw:
    the recorded chaos event names them, so a replay takes the same ones).
    """
    skip = set(noticed)
    on_spot = sorted(a for a in running if a in specs and specs[a].spot and a not in skip)
    if reclaim.agents is not None:
        wanted = set(reclaim.agents)
        return [a for a in on_spot if a in wanted]
    matching = [
        a
        for a in on_spot
        if (reclaim.zone is None or specs[a].zone == reclaim.zone)
        and (reclaim.category is None or specs[a].category == reclaim.category)
    ]
    if reclaim.count is not None:
        size = min(reclaim.count, len(matching))
    elif reclaim.fraction is not None:
        size = max(1, round(reclaim.fraction * len(matching))) if matching else 0
    else:
        size = len(matching)
    return matching[:size]


def notices_from(document: Mapping[str, Any]) -> dict[str, float]:
    """The notices of the key's document (agent id -> deadline, scenario seconds)."""
    notices = document.get("notices", {})
    if not isinstance(notices, dict):
        return {}
    return {str(agent): float(deadline) for agent, deadline in notices.items()}
