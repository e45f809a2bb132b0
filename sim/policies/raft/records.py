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
       leader counted towards a majority.
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

    @property
    def is_empty(self) -> bool:
        """Nothing to persist, send or apply."""
        return (
            self.hard_state is None
            and not self.entries
            and not self.committed
            and not self.messages
        )
