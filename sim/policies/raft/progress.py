"""A leader's view of each follower's log, and the majority arithmetic around it.

The paper's leader keeps ``nextIndex`` and ``matchIndex`` per follower
(Figure 2). Like etcd, this leader also keeps a small flow-control state on
top, so that a stream of proposals does not resend every unacknowledged entry
each time:

- **probe**: the leader does not know where the follower's log matches its
  own. It sends one AppendEntries at ``next_index - 1`` and waits for the
  answer (or the next heartbeat) before sending again; a rejection moves
  ``next_index`` back (paper §5.3), a success moves to replicate.
- **replicate**: the logs are known to match up to ``match_index``. The
  leader streams entries and advances ``next_index`` optimistically as it
  sends; any rejection (a lost message, say) falls back to probe from
  ``match_index + 1``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Progress", "ProgressState", "quorum_index"]


class ProgressState(enum.Enum):
    """Flow-control state of one follower, as the leader sees it."""

    PROBE = "Probe"
    REPLICATE = "Replicate"


class Progress:
    """What the leader knows of one follower's log (including its own, for counting).

    Invariant: ``match_index < next_index``. ``match_index`` only grows
    within a term: a follower never gives up entries that match its leader's
    log, so every successful AppendEntriesResponse states a lasting fact.
    ``recent_active`` records whether the follower answered since the last
    quorum check (check_quorum, Raft dissertation §6.2).
    """

    __slots__ = ("match_index", "next_index", "probe_sent", "recent_active", "state")

    def __init__(self, next_index: int, match_index: int = 0) -> None:
        self.match_index = match_index
        self.next_index = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.recent_active = False

    @property
    def paused(self) -> bool:
        """A probe is in flight: wait for its answer or the next heartbeat."""
        return self.state is ProgressState.PROBE and self.probe_sent

    def become_probe(self) -> None:
        """Forget optimism: resend from just after the last known match."""
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.next_index = self.match_index + 1

    def become_replicate(self) -> None:
        """The logs match up to match_index: stream from there."""
        self.state = ProgressState.REPLICATE
        self.probe_sent = False
        self.next_index = self.match_index + 1

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.value}, match={self.match_index}, next={self.next_index}"
            f"{', paused' if self.paused else ''})"
        )


def quorum_index(match_indices: Iterable[int], quorum: int) -> int:
    """The highest index stored on at least *quorum* of the given logs.

    Sorting the match indices in descending order, the one at position
    ``quorum - 1`` is held by that many nodes and no higher index is.
    """
    ordered = sorted(match_indices, reverse=True)
    return ordered[quorum - 1]
