"""Log replication: a leader's AppendEntries and a follower's answers (Raft paper §5.3).

The steps a leader and a follower take once an election is over: append and
broadcast entries, back off nextIndex after a rejection, advance the commit
index from a majority's matchIndex, and step down when the quorum goes quiet.
Part of :class:`~sim.policies.raft.node.RaftNode`; see
:mod:`sim.policies.raft.core` for how the node is layered.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.policies.raft.core import NodeCore
from sim.policies.raft.messages import Entry, Message, MessageKind
from sim.policies.raft.progress import Progress, ProgressState

__all__ = ["Replication"]

K = MessageKind


class Replication(NodeCore):
    """The follower's and the leader's role handlers, and everything replication needs."""

    # ------------------------------------------------------------ role handlers

    def _step_follower(self, m: Message) -> None:
        if m.kind is K.APPEND_ENTRIES:
            self._election_elapsed = 0
            self._leader_id = m.src
            self._handle_append(m)
        # Proposals are dropped: propose() already refused them, and a shell
        # that steps one in directly must forward it to leader_id itself.

    def _step_leader(self, m: Message) -> None:
        if m.kind is K.BEAT:
            self._bcast_append(send_if_empty=True, heartbeat=True)
            return
        if m.kind is K.CHECK_QUORUM:
            self._check_quorum_active()
            return
        if m.kind is K.PROPOSE:
            self._append_as_leader(tuple(e.data for e in m.entries))
            self._bcast_append(send_if_empty=False)
            return
        pr = self._tracker.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if m.kind is K.APPEND_ENTRIES_RESPONSE:
            if m.reject:
                self._handle_reject(m.src, pr, m)
            else:
                self._handle_success(m.src, pr, m.index)

    def _append_as_leader(self, data: Sequence[object]) -> None:
        first = self._log.last_index + 1
        entries = [Entry(self._term, first + i, d) for i, d in enumerate(data)]
        last = self._log.append(entries)
        me = self._tracker.progress[self._id]
        me.match_index = last
        me.next_index = last + 1
        self._maybe_commit()  # only a cluster of one commits here

    def _maybe_commit(self) -> bool:
        """Advance the commit index to the highest index a majority holds (§5.3, §5.4.2).

        Only an entry of the current term may be committed by counting
        replicas: an older entry stored on a majority can still be overwritten
        by a future leader (Figure 8). Committing a current-term entry commits
        all before it by the log matching property.
        """
        index = self._tracker.committed_index()
        if index > self._log.committed and self._log.term_at(index) == self._term:
            return self._log.commit_to(index)
        return False

    def _bcast_append(self, *, send_if_empty: bool, heartbeat: bool = False) -> None:
        for peer in self._peers:
            self._send_append(peer, send_if_empty=send_if_empty, heartbeat=heartbeat)

    def _send_append(self, peer: int, *, send_if_empty: bool, heartbeat: bool = False) -> None:
        """Send *peer* the entries from its nextIndex, with the consistency check (§5.3).

        A heartbeat is an AppendEntries like any other, so it also repairs a
        follower: it carries prevLogIndex/prevLogTerm and whatever entries
        the follower lacks. It also releases a paused probe, whose answer
        may have been lost.
        """
        pr = self._tracker.progress[peer]
        if heartbeat:
            pr.probe_sent = False
        elif pr.paused:
            return
        entries = self._log.entries(pr.next_index, pr.next_index + self._max_entries)
        if not entries and not send_if_empty:
            return
        prev = pr.next_index - 1
        prev_term = self._log.term_at(prev)
        assert prev_term is not None, f"nextIndex {pr.next_index} past the log's end"
        self._send(
            K.APPEND_ENTRIES,
            peer,
            index=prev,
            log_term=prev_term,
            entries=entries,
            commit=self._log.committed,
        )
        if pr.state is ProgressState.REPLICATE:
            if entries:
                pr.next_index = entries[-1].index + 1
        else:
            pr.probe_sent = True

    def _handle_success(self, peer: int, pr: Progress, index: int) -> None:
        # Any success is a lasting fact within the term (see Progress), so a
        # late or duplicated one can only repeat what we know.
        if index > pr.match_index:
            pr.match_index = index
        pr.next_index = max(pr.next_index, index + 1)
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        if self._maybe_commit():
            # Tell everyone at once, so followers apply without waiting a beat.
            self._bcast_append(send_if_empty=True)
        else:
            self._send_append(peer, send_if_empty=False)

    def _handle_reject(self, peer: int, pr: Progress, m: Message) -> None:
        """Back nextIndex off after a failed consistency check (§5.3).

        A rejection of a probe we no longer wait for, or at or below a known
        match, is stale and ignored. Otherwise the follower's hint says where
        its log might still match (``m.hint``, whose term there is
        ``m.log_term``); we skip further back past our own entries whose term
        exceeds that term, since none of them can match either. nextIndex
        never drops to or below matchIndex.
        """
        if pr.state is ProgressState.REPLICATE:
            if m.index <= pr.match_index:
                return
            pr.become_probe()
        elif m.index != pr.next_index - 1:
            return
        probe, _term = self._log.conflict_hint(m.hint, m.log_term)
        pr.next_index = max(min(m.index, probe + 1), pr.match_index + 1)
        pr.probe_sent = False
        self._send_append(peer, send_if_empty=True)

    def _handle_append(self, m: Message) -> None:
        """A follower's side of AppendEntries (§5.3, Figure 2 receiver steps 2–5)."""
        last_new = self._log.try_append(m.index, m.log_term, m.entries)
        if last_new is None:
            hint, hint_term = self._log.conflict_hint(m.index, m.log_term)
            self._send(
                K.APPEND_ENTRIES_RESPONSE,
                m.src,
                index=m.index,
                reject=True,
                hint=hint,
                log_term=hint_term,
            )
            return
        # Step 5: commit up to leaderCommit, but not past what this message
        # vouched for: entries beyond it may still be a stale leader's.
        self._log.commit_to(min(m.commit, last_new))
        self._send(K.APPEND_ENTRIES_RESPONSE, m.src, index=last_new)

    def _check_quorum_active(self) -> None:
        """Step down if fewer than a majority answered in the last election timeout.

        Dissertation §6.2: a leader cut off from the majority cannot commit
        anything, and stepping down lets clients (our shell) look elsewhere.
        """
        if not self._tracker.quorum_active(self._id):
            self._become_follower(self._term, None)
