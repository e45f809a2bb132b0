"""The Raft node: leader election and log replication with no clock, disk or network.

A :class:`RaftNode` is a deterministic state machine in etcd raft's shape. It
changes only when the shell calls one of three methods:

- :meth:`RaftNode.tick` advances logical time by one tick. Followers and
  candidates count towards a randomised election timeout, leaders towards
  the next heartbeat; when a timeout passes, the tick function steps a local
  message (Hup, Beat, CheckQuorum) into the node, so timers enter through the
  same door as peers.
- :meth:`RaftNode.step` takes one message from a peer (or a local signal).
- :meth:`RaftNode.propose` asks a leader to append a command.

None of them does I/O. Everything the node wants done, it accumulates, and
the shell collects it with :meth:`RaftNode.ready` and acknowledges it with
:meth:`RaftNode.advance`; :class:`Ready` states the order in which the shell
must do the work. A shell loop::

    node.tick()                          # every tick of the control-plane clock
    for msg in inbox: node.step(msg)
    rd = node.ready()
    storage.save(rd.hard_state, rd.entries)   # persist first ...
    transport.send(rd.messages)               # ... then speak
    state_machine.apply(rd.committed)
    node.advance(rd)

Randomness (the election timeout) comes from an injected numpy Generator, or
a callable that returns the next timeout in ticks, so runs are reproducible.

The comments cite the Raft paper (Ongaro and Ousterhout, "In Search of an
Understandable Consensus Algorithm", 2014) by section, and Ongaro's
dissertation ("Consensus: Bridging Theory and Practice", 2014) where the
paper is silent: pre-vote (§9.6) and check-quorum (§6.2).

The node is one class written in layers, each a module with one job:
:mod:`~sim.policies.raft.core` (the fields and the outbox),
:mod:`~sim.policies.raft.replication` (AppendEntries, commit, check-quorum),
:mod:`~sim.policies.raft.election` (campaigns and votes), and this module
(construction, what the shell reads and calls, timers, role changes and the
term checks every message passes first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sim.policies.raft.election import Election
from sim.policies.raft.log import RaftLog
from sim.policies.raft.messages import Entry, HardState, Message, MessageKind
from sim.policies.raft.progress import Progress, ProgressState, Tracker
from sim.policies.raft.records import InvalidTransition, Ready, Role, RoleChange
from sim.policies.raft.storage import Storage

__all__ = ["InvalidTransition", "RaftNode", "Ready", "Role", "RoleChange"]

K = MessageKind


class RaftNode(Election):
    """One member of a Raft cluster, as a pure state machine.

    *peers* lists the ids of the cluster's voting members (*node_id* is added
    if missing); the cluster is fixed for the node's life. *storage* is read
    once, here, to recover term, vote, commit index and log after a crash:
    building a new node from the storage of a crashed one *is* a restart.
    Volatile state (role, leader, timers, the leader's per-follower progress)
    starts afresh; the node starts as a follower. *applied* is the index up
    to which the shell's state machine already holds the log; by default it
    is 0 and the first Ready hands over every committed entry again.

    *rng* draws election timeouts uniformly from [election_ticks,
    2 * election_ticks - 1] (paper §5.2; etcd's range); a callable returning
    ticks may stand in for it. *heartbeat_ticks* must be smaller than
    *election_ticks*. With *pre_vote*, a node first asks whether it could win
    before it raises its term (dissertation §9.6). With *check_quorum*, a
    leader steps down when it has not heard from a majority for an election
    timeout, and a follower that heard from a leader within the last
    election timeout ignores RequestVote (dissertation §6.2, §4.2.3).
    *max_entries_per_msg* caps the entries in one AppendEntries.
    """

    def __init__(
        self,
        node_id: int,
        peers: Sequence[int],
        storage: Storage,
        rng: np.random.Generator | Callable[[], int],
        *,
        election_ticks: int = 10,
        heartbeat_ticks: int = 1,
        pre_vote: bool = False,
        check_quorum: bool = True,
        max_entries_per_msg: int = 64,
        applied: int = 0,
    ) -> None:
        if not 1 <= heartbeat_ticks < election_ticks:
            raise ValueError(
                f"need 1 <= heartbeat_ticks ({heartbeat_ticks}) < election_ticks ({election_ticks})"
            )
        if max_entries_per_msg < 1:
            raise ValueError(f"max_entries_per_msg must be >= 1, got {max_entries_per_msg}")
        self._id = node_id
        self._members: tuple[int, ...] = tuple(sorted({*peers, node_id}))
        self._peers: tuple[int, ...] = tuple(p for p in self._members if p != node_id)
        self._rng = rng
        self._election_ticks = election_ticks
        self._heartbeat_ticks = heartbeat_ticks
        self._pre_vote = pre_vote
        self._check_quorum = check_quorum
        self._max_entries = max_entries_per_msg

        hard = storage.initial_state()
        self._log = RaftLog(storage, committed=hard.commit, applied=applied)
        self._term = hard.term
        self._vote: int | None = hard.vote
        self._prev_hard_state = hard
        self._msgs: list[Message] = []
        self.trace: list[RoleChange] = []
        """Role changes not yet drained by the shell, oldest first."""

        self._role = Role.FOLLOWER
        self._leader_id: int | None = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = election_ticks
        self._tracker = Tracker(self._members)
        self._step_role: Callable[[Message], None] = self._step_follower
        self._tick_role: Callable[[], None] = self._tick_election
        self._become_follower(self._term, None)

    # ------------------------------------------------------------------ reading

    @property
    def id(self) -> int:
        """This node's id."""
        return self._id

    @property
    def members(self) -> tuple[int, ...]:
        """Ids of all voting members, this node included, ascending."""
        return self._members

    @property
    def quorum(self) -> int:
        """How many members make a majority."""
        return self._tracker.quorum

    @property
    def state(self) -> Role:
        """The role this node plays now."""
        return self._role

    @property
    def term(self) -> int:
        """The current term (paper §5.1)."""
        return self._term

    @property
    def vote(self) -> int | None:
        """Whom this node voted for in the current term, if anyone."""
        return self._vote

    @property
    def leader_id(self) -> int | None:
        """The leader of the current term as far as this node knows, or ``None``.

        A shell forwards proposals to it when :meth:`propose` refuses.
        """
        return self._leader_id

    @property
    def commit_index(self) -> int:
        """Highest log index known to be committed; never decreases while the node lives."""
        return self._log.committed

    @property
    def applied_index(self) -> int:
        """Highest index already handed to the shell as committed."""
        return self._log.applied

    @property
    def log(self) -> RaftLog:
        """The node's log. Shells read it (entries, last_index, term_at); only the node writes."""
        return self._log

    @property
    def election_elapsed(self) -> int:
        """Ticks since the election timer was last reset."""
        return self._election_elapsed

    @property
    def randomized_election_timeout(self) -> int:
        """The election timeout drawn at the last reset, in ticks."""
        return self._randomized_timeout

    @property
    def hard_state(self) -> HardState:
        """Term, vote and commit index as they stand in memory (not necessarily persisted)."""
        return HardState(self._term, self._vote, self._log.committed)

    def match_index(self, peer: int) -> int:
        """The leader's matchIndex for *peer* (paper Figure 2); leaders only."""
        return self._leader_progress(peer).match_index

    def next_index(self, peer: int) -> int:
        """The leader's nextIndex for *peer* (paper Figure 2); leaders only."""
        return self._leader_progress(peer).next_index

    def progress_state(self, peer: int) -> ProgressState:
        """Whether the leader probes *peer* or streams to it; leaders only."""
        return self._leader_progress(peer).state

    def _leader_progress(self, peer: int) -> Progress:
        if self._role is not Role.LEADER:
            raise RuntimeError(f"node {self._id} is {self._role.value}, not leader")
        return self._tracker.progress[peer]

    def __repr__(self) -> str:
        return (
            f"RaftNode(id={self._id}, {self._role.value}, term={self._term}, "
            f"vote={self._vote}, leader={self._leader_id}, last={self._log.last_index}, "
            f"commit={self._log.committed})"
        )

    # ------------------------------------------------------------ shell interface

    def tick(self, count: int = 1) -> None:
        """Advance logical time by *count* ticks, exactly as *count* calls of one tick would.

        A shell that keeps a fine tick need not wake for every one of them: it
        asks :meth:`ticks_to_timeout` when the next timer fires, sleeps until
        then, and before stepping a message in between brings the node up to
        date with one call. The quiet ticks only move counters.
        """
        while count > 0:
            quiet = min(count, self.ticks_to_timeout()) - 1
            if quiet > 0:
                self._election_elapsed += quiet
                if self._role is Role.LEADER:
                    self._heartbeat_elapsed += quiet
                count -= quiet
            self._tick_role()
            count -= 1

    def ticks_to_timeout(self) -> int:
        """How many ticks until one steps a timer signal (Hup, Beat, CheckQuorum) in; at least 1."""
        if self._role is Role.LEADER:
            due = min(
                self._heartbeat_ticks - self._heartbeat_elapsed,
                self._election_ticks - self._election_elapsed,
            )
        else:
            due = self._randomized_timeout - self._election_elapsed
        return max(1, due)

    def propose(self, data: object) -> bool:
        """Append a command to the log, if this node is the leader.

        Returns ``False`` on any other node: the shell must wait for an
        election or forward the command to :attr:`leader_id`. ``True`` means
        the entry was appended locally, not that it will commit: a leader
        that loses its term before replicating it loses the entry too.
        """
        if self._role is not Role.LEADER:
            return False
        self.step(Message(K.PROPOSE, self._id, self._id, entries=(Entry(0, 0, data),)))
        return True

    def has_ready(self) -> bool:
        """Whether :meth:`ready` would return anything to do."""
        return (
            bool(self._msgs)
            or self.hard_state != self._prev_hard_state
            or self._log.first_unstable <= self._log.last_index
            or self._log.applied < self._log.committed
        )

    def ready(self) -> Ready:
        """Everything accumulated since the last :meth:`advance`; see :class:`Ready`."""
        hard = self.hard_state
        prev = self._prev_hard_state
        entries = self._log.unstable()
        return Ready(
            hard_state=hard if hard != prev else None,
            entries=entries,
            committed=self._log.to_apply(),
            messages=tuple(self._msgs),
            must_sync=bool(entries) or hard.term != prev.term or hard.vote != prev.vote,
        )

    def advance(self, rd: Ready) -> None:
        """The shell has done everything *rd* asked (persist, send, apply)."""
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state
        if rd.entries:
            last = rd.entries[-1]
            self._log.stable_to(last.index, last.term)
        if rd.committed:
            self._log.applied_to(rd.committed[-1].index)
        sent = len(rd.messages)
        if any(a is not b for a, b in zip(self._msgs[:sent], rd.messages, strict=True)):
            raise ValueError("advance() got a Ready this node did not produce last")
        del self._msgs[:sent]

    def drain_trace(self) -> list[RoleChange]:
        """Return and forget the role changes recorded since the last drain."""
        out, self.trace = self.trace, []
        return out

    # ------------------------------------------------------------------- timers

    def _tick_election(self) -> None:
        """Followers and candidates: campaign once the randomised timeout passes (§5.2)."""
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            self._election_elapsed = 0
            self.step(Message(K.HUP, self._id, self._id))

    def _tick_heartbeat(self) -> None:
        """Leaders: heartbeat every heartbeat_ticks, check the quorum every election_ticks."""
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._election_ticks:
            self._election_elapsed = 0
            if self._check_quorum:
                self.step(Message(K.CHECK_QUORUM, self._id, self._id))
                if self._role is not Role.LEADER:
                    return
        if self._heartbeat_elapsed >= self._heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self.step(Message(K.BEAT, self._id, self._id))

    def _draw_timeout(self) -> int:
        rng = self._rng
        if isinstance(rng, np.random.Generator):
            return int(rng.integers(self._election_ticks, 2 * self._election_ticks))
        ticks = int(rng())
        if ticks < 1:
            raise ValueError(f"election timeout must be >= 1 tick, got {ticks}")
        return ticks

    # ------------------------------------------------------------- transitions

    def _reset(self, term: int) -> None:
        """Bookkeeping shared by every transition but the pre-candidate's."""
        if term < self._term:
            raise InvalidTransition(f"node {self._id}: term {term} below current {self._term}")
        if term != self._term:
            self._term = term
            self._vote = None
        self._leader_id = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._draw_timeout()
        self._tracker.reset_votes()
        self._tracker.progress = {}

    def _set_role(
        self, role: Role, step: Callable[[Message], None], tick: Callable[[], None]
    ) -> None:
        self._role = role
        self._step_role = step
        self._tick_role = tick
        self.trace.append(RoleChange(self._id, role, self._term))

    def _become_follower(self, term: int, leader: int | None) -> None:
        self._reset(term)
        self._leader_id = leader
        self._set_role(Role.FOLLOWER, self._step_follower, self._tick_election)

    def _become_pre_candidate(self) -> None:
        # Neither the term nor the vote changes: a pre-vote round must leave no
        # trace on anyone if it fails (dissertation §9.6).
        if self._role is Role.LEADER:
            raise InvalidTransition(f"node {self._id}: leader cannot become pre-candidate")
        self._leader_id = None
        self._tracker.reset_votes()
        self._election_elapsed = 0
        self._randomized_timeout = self._draw_timeout()
        self._set_role(Role.PRE_CANDIDATE, self._step_candidate, self._tick_election)

    def _become_candidate(self) -> None:
        if self._role is Role.LEADER:
            raise InvalidTransition(f"node {self._id}: leader cannot become candidate")
        self._reset(self._term + 1)
        self._vote = self._id
        self._set_role(Role.CANDIDATE, self._step_candidate, self._tick_election)

    def _become_leader(self) -> None:
        if self._role is not Role.CANDIDATE:
            raise InvalidTransition(
                f"node {self._id}: only a candidate becomes leader, not a {self._role.value}"
            )
        self._reset(self._term)
        self._leader_id = self._id
        self._tracker.reset_progress(self._id, self._log.last_index)
        self._set_role(Role.LEADER, self._step_leader, self._tick_heartbeat)
        # A leader may not count replicas of earlier terms' entries towards
        # commitment (§5.4.2); an entry of its own term, once committed,
        # commits everything before it. Appending one at once means the
        # leader learns its commit index without waiting for a client (§8).
        self._append_as_leader((None,))

    # ------------------------------------------------------------------ stepping

    def step(self, m: Message) -> None:
        """Take one message from a peer, or one local signal, and react to it.

        Term checks come first and are shared by all roles (§5.1); vote
        requests are answered here too, since the answer does not depend on
        the role. Everything else goes to the current role's step function.
        """
        if m.is_local:
            pass
        elif m.term > self._term:
            if m.kind in (K.REQUEST_VOTE, K.PRE_VOTE) and self._in_lease(m.kind):
                # Dissertation §4.2.3 and §9.6: a node that heard from a
                # current leader within the minimum election timeout neither
                # raises its term nor grants a vote, so a server that merely
                # lost touch (partitioned, or removed) cannot depose a leader
                # the rest of the cluster still follows.
                return
            if m.kind is K.PRE_VOTE or (m.kind is K.PRE_VOTE_RESPONSE and not m.reject):
                # A pre-vote carries the term its sender would campaign in and
                # a grant echoes it; neither is a real term yet, so neither
                # moves ours. A rejection carries the voter's real, higher
                # term and, like any other message, makes us follow it below.
                pass
            elif m.kind is K.APPEND_ENTRIES:
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, None)
        elif m.term < self._term:
            self._answer_stale(m)
            return

        if m.kind is K.HUP:
            self._hup()
        elif m.kind in (K.REQUEST_VOTE, K.PRE_VOTE):
            self._answer_vote(m)
        else:
            self._step_role(m)
