"""What a node tracks about the other members: votes, each follower's log, majorities.

Like etcd's ``tracker`` package, :class:`Tracker` holds the votes a
(pre-)candidate has collected and the per-member :class:`Progress` a leader
keeps, and answers the majority questions over both: has the election been
won or lost, which index does a majority hold, has a majority been heard
from lately.

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
from collections.abc import Iterable, Sequence

__all__ = ["Progress", "ProgressState", "Tracker", "VoteResult", "quorum_index"]


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


class VoteResult(enum.Enum):
    """Where an election stands after counting a vote."""

    WON = "won"
    LOST = "lost"
    PENDING = "pending"


class Tracker:
    """Votes and progress for a fixed set of voting members.

    ``quorum`` is a strict majority of ``members``. ``votes`` lives from the
    start of a (pre-)campaign to the next role change; ``progress`` only
    while the node leads (it is empty otherwise).
    """

    __slots__ = ("members", "progress", "quorum", "votes")

    def __init__(self, members: Sequence[int]) -> None:
        self.members = tuple(members)
        self.quorum = len(self.members) // 2 + 1
        self.votes: dict[int, bool] = {}
        self.progress: dict[int, Progress] = {}

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, voter: int, *, granted: bool) -> VoteResult:
        """Count *voter*'s answer (a duplicate answer counts once) and tally."""
        self.votes.setdefault(voter, granted)
        yes = sum(self.votes.values())
        if yes >= self.quorum:
            return VoteResult.WON
        if len(self.votes) - yes >= self.quorum:
            return VoteResult.LOST
        return VoteResult.PENDING

    def reset_progress(self, leader: int, last_index: int) -> None:
        """A new leader's view (Figure 2): nextIndex just past its log, matchIndex 0.

        The leader's own entry says its whole log matches and that it is
        active, so it counts itself in every majority.
        """
        self.progress = {m: Progress(next_index=last_index + 1) for m in self.members}
        me = self.progress[leader]
        me.match_index = last_index
        me.become_replicate()
        me.recent_active = True

    def committed_index(self) -> int:
        """The highest index a majority of members' logs are known to hold."""
        return quorum_index((p.match_index for p in self.progress.values()), self.quorum)

    def quorum_active(self, leader: int) -> bool:
        """Whether a majority was heard from since the last call; starts the next period."""
        active = sum(1 for p in self.progress.values() if p.recent_active)
        for member, pr in self.progress.items():
            pr.recent_active = member == leader
        return active >= self.quorum
