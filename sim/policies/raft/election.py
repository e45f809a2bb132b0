"""Leader election: votes asked, granted and counted (Raft paper §5.2, dissertation §9.6).

A campaign (with or without a pre-vote round), the answer to a RequestVote or
PreVote, the refusal of a stale term, and the candidate's role handler.
Part of :class:`~sim.policies.raft.node.RaftNode`; see
:mod:`sim.policies.raft.core` for how the node is layered.
"""

from __future__ import annotations

from sim.policies.raft.messages import Message, MessageKind
from sim.policies.raft.progress import VoteResult
from sim.policies.raft.records import Role
from sim.policies.raft.replication import Replication

__all__ = ["Election"]

K = MessageKind


class Election(Replication):
    """The vote-related steps a node takes in any role, and the candidate's role handler."""

    def _in_lease(self, kind: MessageKind) -> bool:
        """Whether a leader was heard from within the minimum election timeout.

        Applies to RequestVote only with check_quorum (as in etcd: without it
        a leader cut off from the majority never steps down, and followers
        that kept ignoring votes for its sake could never elect another), and
        always to PreVote (the dissertation's pre-vote rule, §9.6).
        """
        if kind is K.REQUEST_VOTE and not self._check_quorum:
            return False
        return self._leader_id is not None and self._election_elapsed < self._election_ticks

    def _answer_stale(self, m: Message) -> None:
        """A message from an older term: refuse it, telling the sender our term.

        §5.1: "If a server receives a request with a stale term number, it
        rejects the request", and the reply carries the current term so the
        sender steps down. Only requests are answered: a stale response has
        nobody left waiting for it. A PreVote's term is the sender's term plus
        one, so this also tells a pre-candidate that is two or more terms
        behind to catch up (it follows our term from the rejection).
        """
        if m.kind is K.APPEND_ENTRIES:
            self._send(K.APPEND_ENTRIES_RESPONSE, m.src, index=m.index, reject=True)
        elif m.kind is K.REQUEST_VOTE:
            self._send(K.REQUEST_VOTE_RESPONSE, m.src, reject=True)
        elif m.kind is K.PRE_VOTE:
            self._send(K.PRE_VOTE_RESPONSE, m.src, reject=True)

    def _answer_vote(self, m: Message) -> None:
        """Grant or deny a RequestVote or PreVote (§5.2, §5.4.1; dissertation §9.6).

        A vote is granted at most once per term, first come first served: to
        the candidate already voted for (a retransmission), or to anyone
        while this node has neither voted nor heard of a leader in the term.
        A pre-vote for a later term binds nothing, so it needs only the log
        condition. Either way the candidate's log must be at least as
        up-to-date as ours, so no one lacking a committed entry is elected.
        """
        pre = m.kind is K.PRE_VOTE
        resp = K.PRE_VOTE_RESPONSE if pre else K.REQUEST_VOTE_RESPONSE
        can_vote = (
            self._vote == m.src
            or (self._vote is None and self._leader_id is None)
            or (pre and m.term > self._term)
        )
        if can_vote and self._log.is_up_to_date(m.index, m.log_term):
            # The grant carries the message's term: for a real vote it is ours
            # by now; for a pre-vote it tells the pre-candidate which round
            # the grant belongs to.
            self._send(resp, m.src, term=m.term)
            if not pre:
                self._election_elapsed = 0
                self._vote = m.src
        else:
            self._send(resp, m.src, reject=True)

    def _hup(self) -> None:
        if self._role is Role.LEADER:
            return
        self._campaign(pre=self._pre_vote)

    def _campaign(self, *, pre: bool) -> None:
        """Start a (pre-)election: vote for ourselves and ask every peer (§5.2)."""
        if pre:
            self._become_pre_candidate()
            kind, term = K.PRE_VOTE, self._term + 1
        else:
            self._become_candidate()
            kind, term = K.REQUEST_VOTE, self._term
        if self._tracker.record_vote(self._id, granted=True) is VoteResult.WON:
            self._won(pre=pre)  # a cluster of one
            return
        for peer in self._peers:
            self._send(
                kind, peer, term=term, index=self._log.last_index, log_term=self._log.last_term
            )

    def _won(self, *, pre: bool) -> None:
        if pre:
            self._campaign(pre=False)
        else:
            self._become_leader()
            self._bcast_append(send_if_empty=True)

    def _step_candidate(self, m: Message) -> None:
        """Candidates and pre-candidates: count votes, yield to a leader of our term."""
        pre = self._role is Role.PRE_CANDIDATE
        if m.kind is K.APPEND_ENTRIES:
            # §5.2: a leader of our term exists (a higher term would have made
            # us a follower already in step): recognise it.
            self._become_follower(m.term, m.src)
            self._handle_append(m)
        elif m.kind is (K.PRE_VOTE_RESPONSE if pre else K.REQUEST_VOTE_RESPONSE):
            if pre and not m.reject and m.term != self._term + 1:
                return  # a grant from an earlier round, for a term we no longer seek
            outcome = self._tracker.record_vote(m.src, granted=not m.reject)
            if outcome is VoteResult.WON:
                self._won(pre=pre)
            elif outcome is VoteResult.LOST:
                self._become_follower(self._term, None)
