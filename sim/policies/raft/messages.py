"""What Raft nodes say to each other and what they keep on disk.

Three kinds of record live here, all frozen so a message or an entry handed
to a shell can never change under it:

- :class:`Entry`, one slot of the replicated log: the term of the leader that
  created it, its index, and an opaque payload the shell's state machine
  interprets. The node never looks inside ``data``.
- :class:`HardState`, the three numbers a node must find again after a crash
  (Raft paper Figure 2's "persistent state on all servers", plus the commit
  index, which is safe to persist and spares a restarted node from waiting
  for the leader to tell it again what it already applied).
- :class:`Message`, one record shape for every RPC of the paper and its
  response, in etcd's style: a ``kind`` and a handful of fields whose meaning
  depends on the kind (the table on :class:`Message`). One shape keeps the
  shell's transport, the test network's filters and the event log simple.

Indices and terms are ints starting at 1; index 0 and term 0 stand for "before
the first entry".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["LOCAL_KINDS", "RESPONSE_KINDS", "Entry", "HardState", "Message", "MessageKind"]


class MessageKind(enum.Enum):
    """The paper's RPCs and their responses, plus the node's local signals.

    The first six travel between nodes. ``HUP``, ``BEAT``, ``CHECK_QUORUM``
    and ``PROPOSE`` never leave a node: the tick functions and
    :meth:`RaftNode.propose` step them into the node itself, so timers, the
    application and peers all enter through one door, ``step``.
    """

    REQUEST_VOTE = "RequestVote"
    REQUEST_VOTE_RESPONSE = "RequestVoteResponse"
    PRE_VOTE = "PreVote"
    PRE_VOTE_RESPONSE = "PreVoteResponse"
    APPEND_ENTRIES = "AppendEntries"
    APPEND_ENTRIES_RESPONSE = "AppendEntriesResponse"
    HUP = "Hup"
    BEAT = "Beat"
    CHECK_QUORUM = "CheckQuorum"
    PROPOSE = "Propose"


#: Kinds a node steps into itself; they carry term 0 and are never sent.
LOCAL_KINDS = frozenset(
    {MessageKind.HUP, MessageKind.BEAT, MessageKind.CHECK_QUORUM, MessageKind.PROPOSE}
)

#: Kinds that answer a request. A response may promise durable state (a vote,
#: an acknowledged entry), so it leaves only after the Ready's write; a request
#: promises nothing and may leave while the write is in flight (see Ready).
RESPONSE_KINDS = frozenset(
    {
        MessageKind.REQUEST_VOTE_RESPONSE,
        MessageKind.PRE_VOTE_RESPONSE,
        MessageKind.APPEND_ENTRIES_RESPONSE,
    }
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One slot of the replicated log.

    ``term`` is the term of the leader that appended it, ``index`` its
    position (the first real entry has index 1). ``data`` is the shell's
    command; ``None`` marks the empty entry a new leader appends to commit the
    entries of earlier terms (Raft paper §5.4.2 and §8).
    """

    term: int
    index: int
    data: object = None


@dataclass(frozen=True, slots=True)
class HardState:
    """What a node must persist before it speaks: current term, vote and commit index.

    ``vote`` is the candidate this node voted for in ``term`` (``None`` if it
    has not voted). Forgetting a vote after a crash would let a node vote twice
    in one term, and two leaders could be elected (Raft paper §5.2, Figure 2).
    """

    term: int = 0
    vote: int | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """A message between two nodes, or a local signal a node steps into itself.

    ``src`` and ``dst`` are node ids; ``term`` is the sender's term, except
    that a PreVote carries the term the sender *would* campaign in (its own
    plus one) and a granted PreVoteResponse echoes it. Local kinds carry
    term 0. The other fields depend on ``kind``:

    ======================  ==================  ==================  =====================
    kind                    ``index``           ``log_term``        other fields
    ======================  ==================  ==================  =====================
    RequestVote / PreVote   lastLogIndex        lastLogTerm
    …VoteResponse                                                   ``reject``: denied
    AppendEntries           prevLogIndex        prevLogTerm         ``entries``,
                                                                    ``commit`` (leaderCommit)
    AppendEntriesResponse   match index on      the follower's      ``reject``, ``hint``
                            success; the        term at ``hint``
                            rejected
                            prevLogIndex
    Propose                                                         ``entries`` (data only)
    ======================  ==================  ==================  =====================

    A heartbeat is an AppendEntries with no entries. ``hint`` on a rejection
    is the highest index at which the follower's log might still match the
    leader's (its last index, or lower when its terms there are newer than
    the leader's prevLogTerm), so the leader can skip back in one step
    instead of one index per round trip (paper §5.3, the "optimization" at
    the end of the section).
    """

    kind: MessageKind
    src: int
    dst: int
    term: int = 0
    index: int = 0
    log_term: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    hint: int = 0

    @property
    def is_local(self) -> bool:
        """True for the signals a node steps into itself (Hup, Beat, CheckQuorum, Propose)."""
        return self.kind in LOCAL_KINDS

    @property
    def is_response(self) -> bool:
        """True for the answers to requests (the three …Response kinds)."""
        return self.kind in RESPONSE_KINDS
