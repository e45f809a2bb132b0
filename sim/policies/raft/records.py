"""The records a node hands to its shell: its role, role changes, and Ready.

Kept apart from the node so a shell can type its event log and its loop
against these alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sim.policies.raft.messages import Entry, HardState, Message

__all__ = ["InvalidTransition", "Ready", "Role", "RoleChange"]


class Role(enum.Enum):
    """The role a node plays; the pre-candidate exists only with pre_vote."""

    FOLLOWER = "Follower"
    PRE_CANDIDATE = "PreCandidate"
    CANDIDATE = "Candidate"
    LEADER = "Leader"


class InvalidTransition(RuntimeError):
    """A role change the algorithm never makes (leader→candidate, follower→leader).

    Raised rather than tolerated: reaching one means the node's own logic is
    broken, and carrying on could elect two leaders.
    """


@dataclass(frozen=True, slots=True)
class RoleChange:
    """A trace record: *node* became *role* in *term*.

    The node appends one to :attr:`RaftNode.trace` on every role change
    (including the initial "follower" on construction); the shell drains them
    with :meth:`RaftNode.drain_trace` into its event log.
    """

    node: int
    role: Role
    term: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Work the node hands to the shell, in the order the shell must do it.

    1. Persist ``hard_state`` (when not ``None``: it changed since the last
       Ready) and ``entries`` (append, overwriting any stored suffix from the
       first entry's index) to stable storage.
    2. Only then send ``messages``. A vote or an acknowledgement promises that
       the state behind it survives a crash; sending it before the write
       could let a restarted node vote twice in a term or forget an entry a
       leader counted towards a majority. Requests promise nothing, so a
       shell with a slow disk may send them while the write is in flight and
       hold back only the responses (:attr:`Message.is_response`): a leader
       writes its entries in parallel with replicating them (Ongaro's
       dissertation §10.2.1), a candidate records its own vote while its
       RequestVotes travel (§9.3), as etcd raft does with asynchronous storage
       writes. That is safe as long as the node's own vote or entries count
       only once written; a response needs a peer's write as well, so with
       equal disks it never arrives sooner.
    3. Apply ``committed`` to the state machine, in order. These entries are
       committed, and persisted by step 1 if they were not already.
    4. Call :meth:`RaftNode.advance` with this Ready.

    The node may be stepped or ticked between :meth:`RaftNode.ready` and
    :meth:`RaftNode.advance`; what happens then waits for the next Ready.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    committed: tuple[Entry, ...]
    messages: tuple[Message, ...]
    must_sync: bool = False
    """Whether step 1 needs a synchronous disk write (an fsync): entries to
    append, or a new term or vote. A changed commit index alone does not, as
    in etcd's ``MustSync``: a lost commit index is learnt again from the leader."""

    @property
    def is_empty(self) -> bool:
        """Nothing to persist, send or apply."""
        return (
            self.hard_state is None
            and not self.entries
            and not self.committed
            and not self.messages
        )
