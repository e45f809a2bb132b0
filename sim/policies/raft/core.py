"""What every part of a Raft node shares: its state, its outbox, and the role changes.

:class:`RaftNode` is one state machine, written in three layers so that each
job reads on its own: this core (the fields and the outbox), the replication
steps (:mod:`sim.policies.raft.replication`), the election steps
(:mod:`sim.policies.raft.election`), and the node itself (construction, the
shell interface, timers, role changes and the shared term checks of
``step``). The fields are declared here and set by ``RaftNode.__init__``;
the role changes are abstract here because only the node makes them, while
the steps below it must be able to call them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from sim.policies.raft.log import RaftLog
from sim.policies.raft.messages import Entry, HardState, Message, MessageKind
from sim.policies.raft.progress import Tracker
from sim.policies.raft.records import Role, RoleChange

__all__ = ["NodeCore"]


class NodeCore(ABC):
    """The state of one Raft node, and the outbox its steps append to.

    Nothing here changes a role or reads a clock: :meth:`_send` only queues a
    message for the next Ready, as etcd's ``send`` does.
    """

    _id: int
    _members: tuple[int, ...]
    _peers: tuple[int, ...]
    _rng: np.random.Generator | Callable[[], int]
    _election_ticks: int
    _heartbeat_ticks: int
    _pre_vote: bool
    _check_quorum: bool
    _max_entries: int
    _log: RaftLog
    _term: int
    _vote: int | None
    _prev_hard_state: HardState
    _msgs: list[Message]
    trace: list[RoleChange]
    _role: Role
    _leader_id: int | None
    _election_elapsed: int
    _heartbeat_elapsed: int
    _randomized_timeout: int
    _tracker: Tracker
    _step_role: Callable[[Message], None]
    _tick_role: Callable[[], None]

    # ----------------------------------------------- role changes (RaftNode's alone)

    @abstractmethod
    def _become_follower(self, term: int, leader: int | None) -> None: ...

    @abstractmethod
    def _become_pre_candidate(self) -> None: ...

    @abstractmethod
    def _become_candidate(self) -> None: ...

    @abstractmethod
    def _become_leader(self) -> None: ...

    # ------------------------------------------------------------------ outbox

    def _send(
        self,
        kind: MessageKind,
        dst: int,
        *,
        term: int | None = None,
        index: int = 0,
        log_term: int = 0,
        entries: tuple[Entry, ...] = (),
        commit: int = 0,
        reject: bool = False,
        hint: int = 0,
    ) -> None:
        """Queue a message for the next Ready; nothing leaves the node here."""
        self._msgs.append(
            Message(
                kind,
                self._id,
                dst,
                self._term if term is None else term,
                index=index,
                log_term=log_term,
                entries=entries,
                commit=commit,
                reject=reject,
                hint=hint,
            )
        )
