"""The pools a predecessor left: which agents it counted as members, from the event log.

Scenario: the spec's chiefs replicate their state with Raft, so a new
leader knows every agent the old one had in its pools, including one that
died a moment before the old leader did and was not yet declared. Live, a
new primary learns the fleet from the heartbeats' registry; an entry whose
last beat is old may be an agent already declared dead (not to be joined,
handed work and declared a second time) or one that died undeclared. The
event log tells the two apart: the predecessor's last word on each agent.
An undeclared one is joined and judged by the detector as any other, so it
is declared and replaced in due time; before this, it was dropped unseen
and its replacement never asked for (a test that took over within the
detection time of a kill lost the agent for good).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Events that put an agent in its pool (``agent_rejoined``: an earlier version's name for
#: ``agent_restarted``, still read in logs it wrote).
JOINING = ("agent_joined", "agent_restarted", "agent_rejoined")
#: Events that end an agent's incarnation (``zone_down`` declares its zone's agents one by
#: one with ``agent_detected``).
LEAVING = ("agent_left", "agent_detected", "agent_reclaimed")


def members(history: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The agents whose last membership event in *history* (the event log) put them in."""
    present: set[str] = set()
    for doc in history:
        kind = doc.get("kind")
        if kind in JOINING:
            present.add(str(doc["subject"]))
        elif kind in LEAVING:
            present.discard(str(doc["subject"]))
    return frozenset(present)
