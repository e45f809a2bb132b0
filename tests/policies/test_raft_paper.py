"""The Raft paper as a test plan, in the style of etcd raft's raft_paper_test.go.

Each test checks one claim of "In Search of an Understandable Consensus
Algorithm" (Ongaro and Ousterhout, 2014), or of Ongaro's dissertation for
pre-vote and check-quorum. Its docstring paraphrases the sentence and cites
the section; its body has three parts: set up, step, check. Where a claim
holds for several roles, one body runs per role through parametrize.

Nodes here have a fixed election timeout of ``T`` ticks unless the claim is
about the randomised timeout itself. Node 1 is the node under test; its
peers are 2, 3 (and 4, 5 in larger clusters).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from raft_network import Network, flush_messages, new_node

from sim.policies.raft import (
    Entry,
    HardState,
    InvalidTransition,
    MemoryStorage,
    Message,
    MessageKind,
    RaftNode,
    Role,
    RoleChange,
)

K = MessageKind
T = 10  # election timeout in ticks for every fixed-timeout node here


def log_of(*terms: int) -> list[Entry]:
    """Entries 1..n with the given terms and data naming them ("t<term>@<index>")."""
    return [Entry(t, i, f"t{t}@{i}") for i, t in enumerate(terms, start=1)]


def node_as(
    role: Role,
    *,
    term: int = 5,
    members: tuple[int, ...] = (1, 2, 3),
    entries: tuple[Entry, ...] = (),
    **options: Any,
) -> RaftNode:
    """Node 1 in *role*, its durable term *term* before any election, outbox emptied.

    A candidate or pre-candidate has just started its election; a leader has
    just won one with the fewest votes it needs.
    """
    storage = MemoryStorage(entries, HardState(term=term))
    if role is Role.PRE_CANDIDATE:
        options["pre_vote"] = True
    node = new_node(1, members, storage=storage, timeout=T, **options)
    if role is not Role.FOLLOWER:
        node.step(Message(K.HUP, 1, 1))
    if role is Role.LEADER:
        for voter in members[1 : node.quorum]:
            node.step(Message(K.REQUEST_VOTE_RESPONSE, voter, 1, node.term))
    flush_messages(node, storage)
    node.drain_trace()
    assert node.state is role
    return node


def heartbeat(src: int, term: int, *, commit: int = 0) -> Message:
    """An AppendEntries with no entries, checked against the empty prefix."""
    return Message(K.APPEND_ENTRIES, src, 1, term, commit=commit)


# ----------------------------------------------------------------------------------- §5.1


@pytest.mark.parametrize("role", list(Role))
def test_stale_requests_are_rejected_with_the_current_term(role: Role) -> None:
    """A request with a stale term is rejected, and the answer carries the current term.

    Raft paper §5.1: "If a server receives a request with a stale term number,
    it rejects the request"; the reply's term lets the sender update itself.
    """
    node = node_as(role)
    term, state, last = node.term, node.state, node.log.last_index
    stale = [
        Message(K.APPEND_ENTRIES, 2, 1, term - 1, entries=(Entry(term - 1, 1),)),
        Message(K.REQUEST_VOTE, 3, 1, term - 1, index=9, log_term=term - 1),
    ]

    for msg in stale:
        node.step(msg)
    replies = flush_messages(node)

    assert [(m.kind, m.dst, m.term, m.reject) for m in replies] == [
        (K.APPEND_ENTRIES_RESPONSE, 2, term, True),
        (K.REQUEST_VOTE_RESPONSE, 3, term, True),
    ]
    assert (node.term, node.state, node.log.last_index) == (term, state, last)


@pytest.mark.parametrize("role", list(Role))
def test_stale_responses_are_ignored(role: Role) -> None:
    """A response from an older term changes nothing and is not answered.

    Raft paper §5.1: terms act as a logical clock; a reply to an RPC of an
    earlier term is obsolete information.
    """
    node = node_as(role)
    before = (node.term, node.state, node.vote, node.leader_id, node.commit_index)

    node.step(Message(K.REQUEST_VOTE_RESPONSE, 2, 1, node.term - 1))
    node.step(Message(K.PRE_VOTE_RESPONSE, 3, 1, node.term - 1))
    node.step(Message(K.APPEND_ENTRIES_RESPONSE, 2, 1, node.term - 1, index=1))

    assert (node.term, node.state, node.vote, node.leader_id, node.commit_index) == before
    assert node.ready().messages == ()


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    "kind", [K.APPEND_ENTRIES, K.APPEND_ENTRIES_RESPONSE, K.REQUEST_VOTE, K.REQUEST_VOTE_RESPONSE]
)
def test_a_higher_term_makes_any_node_a_follower(role: Role, kind: MessageKind) -> None:
    """A node that sees a higher term adopts it and becomes (or stays) a follower.

    Raft paper §5.1: "If one server's current term is smaller than the
    other's, then it updates its current term to the larger value. If a
    candidate or leader discovers that its term is out of date, it
    immediately reverts to follower state."
    """
    node = node_as(role, check_quorum=False)
    higher = node.term + 3

    node.step(Message(kind, 2, 1, higher))

    assert (node.state, node.term) == (Role.FOLLOWER, higher)
    assert node.leader_id == (2 if kind is K.APPEND_ENTRIES else None)
    assert node.drain_trace() == [RoleChange(1, Role.FOLLOWER, higher)]


# ------------------------------------------------------------------------- §5.2 elections


def test_nodes_start_as_followers() -> None:
    """When servers start up, they begin as followers, with term 0 and no vote.

    Raft paper §5.2: "When servers start up, they begin as followers."
    """
    storage = MemoryStorage()

    node = RaftNode(1, (1, 2, 3), storage, np.random.default_rng(1))

    assert (node.state, node.term, node.vote, node.leader_id) == (Role.FOLLOWER, 0, None, None)
    assert node.drain_trace() == [RoleChange(1, Role.FOLLOWER, 0)]


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE])
def test_an_election_timeout_starts_an_election_in_a_new_term(role: Role) -> None:
    """A follower that hears nothing for an election timeout starts an election; so does
    a candidate whose election ends in a split vote, in a new term.

    Raft paper §5.2: "If a follower receives no communication over a period of
    time called the election timeout, then it assumes there is no viable
    leader and begins an election"; a candidate that neither wins nor loses
    "will time out and start a new election by incrementing its term".
    """
    node = node_as(role)
    term = node.term

    for _ in range(T - 1):
        node.tick()
    before_timeout = node.term
    node.tick()

    assert before_timeout == term
    assert (node.state, node.term) == (Role.CANDIDATE, term + 1)
    assert node.drain_trace() == [RoleChange(1, Role.CANDIDATE, term + 1)]


@pytest.mark.parametrize("size", [3, 5, 7])
def test_a_candidate_votes_for_itself_and_asks_every_peer(size: int) -> None:
    """A candidate increments its term, votes for itself and sends RequestVote to all others,
    naming its last log index and term.

    Raft paper §5.2: "To begin an election, a follower increments its current
    term and transitions to candidate state. It then votes for itself and
    issues RequestVote RPCs in parallel to each of the other servers."
    """
    members = tuple(range(1, size + 1))
    node = node_as(Role.FOLLOWER, members=members, entries=tuple(log_of(1, 2, 2)), term=2)

    node.step(Message(K.HUP, 1, 1))
    rd = node.ready()

    assert rd.hard_state == HardState(term=3, vote=1, commit=0)
    assert sorted((m.kind, m.dst, m.term, m.index, m.log_term) for m in rd.messages) == [
        (K.REQUEST_VOTE, peer, 3, 3, 2) for peer in members[1:]
    ]


@pytest.mark.parametrize(
    ("size", "answers", "expected"),
    [
        (1, {}, Role.LEADER),
        (3, {2: True, 3: True}, Role.LEADER),
        (3, {2: True}, Role.LEADER),
        (3, {}, Role.CANDIDATE),
        (3, {2: False}, Role.CANDIDATE),
        (3, {2: False, 3: False}, Role.FOLLOWER),
        (5, {2: True, 3: True, 4: True, 5: True}, Role.LEADER),
        (5, {2: True, 3: True}, Role.LEADER),
        (5, {2: True}, Role.CANDIDATE),
        (5, {2: True, 3: False, 4: False}, Role.CANDIDATE),
        (5, {2: False, 3: False, 4: False}, Role.FOLLOWER),
    ],
)
def test_a_candidate_wins_with_votes_from_a_majority(
    size: int, answers: dict[int, bool], expected: Role
) -> None:
    """A candidate becomes leader once a majority (itself included) granted its vote;
    a majority of refusals sends it back to follower.

    Raft paper §5.2: "A candidate wins an election if it receives votes from a
    majority of the servers in the full cluster for the same term."
    """
    members = tuple(range(1, size + 1))
    node = node_as(Role.FOLLOWER, members=members)
    node.step(Message(K.HUP, 1, 1))

    for voter, granted in answers.items():
        node.step(Message(K.REQUEST_VOTE_RESPONSE, voter, 1, node.term, reject=not granted))

    assert node.state is expected
    assert node.term == 6


@pytest.mark.parametrize(
    ("voted_for", "candidate", "granted"),
    [(None, 2, True), (None, 3, True), (2, 2, True), (3, 3, True), (2, 3, False), (3, 2, False)],
)
def test_a_node_votes_at_most_once_per_term(
    voted_for: int | None, candidate: int, granted: bool
) -> None:
    """Each server votes for at most one candidate in a term, first come first served;
    a retransmitted request from the candidate it chose is granted again.

    Raft paper §5.2: "Each server will vote for at most one candidate in a
    given term, on a first-come-first-served basis."
    """
    storage = MemoryStorage(hard_state=HardState(term=4, vote=voted_for))
    node = new_node(1, storage=storage, timeout=T)

    node.step(Message(K.REQUEST_VOTE, candidate, 1, 4, index=0, log_term=0))
    (reply,) = flush_messages(node, storage)

    assert (reply.kind, reply.dst, reply.term, reply.reject) == (
        K.REQUEST_VOTE_RESPONSE,
        candidate,
        4,
        not granted,
    )
    assert node.vote == (candidate if granted else voted_for)
    assert storage.initial_state().vote == node.vote


@pytest.mark.parametrize(
    ("role", "term_ahead"),
    [
        (Role.FOLLOWER, 0),
        (Role.FOLLOWER, 1),
        (Role.PRE_CANDIDATE, 0),
        (Role.PRE_CANDIDATE, 1),
        (Role.CANDIDATE, 0),
        (Role.CANDIDATE, 1),
        (Role.LEADER, 1),
    ],
)
def test_append_entries_from_a_leader_of_at_least_our_term_makes_a_follower(
    role: Role, term_ahead: int
) -> None:
    """A node that hears AppendEntries from a leader whose term is at least its own
    recognises that leader and is (or returns to being) a follower.

    Raft paper §5.2: "If the leader's term (included in its RPC) is at least
    as large as the candidate's current term, then the candidate recognizes
    the leader as legitimate and returns to follower state."
    """
    node = node_as(role)
    term = node.term + term_ahead

    node.step(heartbeat(2, term))

    assert (node.state, node.term, node.leader_id) == (Role.FOLLOWER, term, 2)
    (reply,) = node.ready().messages
    assert (reply.kind, reply.dst, reply.term, reply.reject) == (
        K.APPEND_ENTRIES_RESPONSE,
        2,
        term,
        False,
    )


def ticks_to_campaign(node: RaftNode) -> int:
    """How many ticks until *node* starts an election (its term moves)."""
    term = node.term
    for ticks in range(1, 10 * T):
        node.tick()
        if node.term != term or node.state is Role.PRE_CANDIDATE:
            return ticks
    raise AssertionError("never campaigned")


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.CANDIDATE])
def test_election_timeouts_are_drawn_at_random_from_a_fixed_interval(role: Role) -> None:
    """The election timeout is redrawn at random on each reset, from [T, 2T - 1] ticks,
    and every value of that interval occurs.

    Raft paper §5.2: "Raft uses randomized election timeouts ... election
    timeouts are chosen randomly from a fixed interval". Each new election
    (and each step down) draws a fresh one.
    """
    rng = np.random.default_rng(2024)
    node = RaftNode(1, (1, 2, 3), MemoryStorage(), rng, election_ticks=T)
    if role is Role.CANDIDATE:
        node.step(Message(K.HUP, 1, 1))

    waits = []
    for _ in range(400):
        waits.append(ticks_to_campaign(node))  # each campaign redraws for the next

    # 400 draws of 10 values: a value is missing with probability 10 * 0.9**400 ≈ 5e-18.
    assert set(waits) == set(range(T, 2 * T))


def test_nodes_with_different_generators_rarely_time_out_together() -> None:
    """Nodes drawing from different generators rarely time out in the same tick, so split
    votes are rare; the same generator seed gives the same timeouts again.

    Raft paper §5.2: randomized election timeouts "ensure that split votes are
    rare": "in most cases only a single server will time out".
    """
    trials, size = 1000, 5
    nodes = [
        RaftNode(i, range(1, size + 1), MemoryStorage(), np.random.default_rng([7, i]))
        for i in range(1, size + 1)
    ]

    ties = 0
    firsts: list[list[int]] = []
    for trial in range(trials):
        draws = [n.randomized_election_timeout for n in nodes]
        firsts.append(draws)
        ties += Counter(draws)[min(draws)] > 1
        for n in nodes:  # a leader of a new term resets everyone's timer
            n.step(Message(K.APPEND_ENTRIES, 9, n.id, trial + 1))

    # Five independent uniform draws on 10 values have a unique minimum with
    # probability 5 * sum_{k=0}^{9} k^4 / 10^5 = 0.767, so a tie has p = 0.233;
    # over 1000 trials the count's standard deviation is 13, and 300 lies five
    # of them above the mean.
    assert ties < 300
    again = RaftNode(1, range(1, size + 1), MemoryStorage(), np.random.default_rng([7, 1]))
    assert again.randomized_election_timeout == firsts[0][0]
    assert len({tuple(d) for d in zip(*firsts, strict=True)}) == size  # all sequences differ


# ---------------------------------------------------------------------- §5.3 replication


def leader_in_sync(size: int = 3) -> RaftNode:
    """A fresh leader whose followers have all acknowledged its first (empty) entry."""
    members = tuple(range(1, size + 1))
    node = node_as(Role.LEADER, members=members)
    for peer in members[1:]:
        node.step(Message(K.APPEND_ENTRIES_RESPONSE, peer, 1, node.term, index=1))
    flush_messages(node)
    return node


def test_a_new_leader_appends_an_empty_entry_of_its_term() -> None:
    """A leader commits a blank no-op entry at the start of its term, so it learns what is
    committed and can commit entries of earlier terms.

    Raft paper §8 (and §5.4.2): "Raft handles this by having each leader
    commit a blank no-op entry into the log at the start of its term."
    """
    node = node_as(Role.CANDIDATE, entries=tuple(log_of(1, 1)), term=3)

    node.step(Message(K.REQUEST_VOTE_RESPONSE, 2, 1, node.term))
    rd = node.ready()

    assert node.state is Role.LEADER
    assert node.log.entries() == (*log_of(1, 1), Entry(4, 3, None))
    assert rd.entries == (Entry(4, 3, None),)
    assert {(m.dst, m.index, m.log_term, m.entries) for m in rd.messages} == {
        (p, 2, 1, (Entry(4, 3, None),)) for p in (2, 3)
    }


def test_the_leader_appends_a_proposal_and_sends_it_to_every_follower() -> None:
    """The leader appends a command to its log as a new entry of its term and issues
    AppendEntries to each other server, naming the entry before it.

    Raft paper §5.3: "The leader appends the command to its log as a new
    entry, then issues AppendEntries RPCs in parallel to each of the other
    servers to replicate the entry."
    """
    node = leader_in_sync()

    accepted = node.propose("x")
    rd = node.ready()

    assert accepted
    assert node.log.entry(2) == Entry(6, 2, "x")
    assert rd.entries == (Entry(6, 2, "x"),)
    assert sorted((m.kind, m.dst, m.index, m.log_term, m.entries) for m in rd.messages) == [
        (K.APPEND_ENTRIES, peer, 1, 6, (Entry(6, 2, "x"),)) for peer in (2, 3)
    ]
    assert node.commit_index == 1  # not before a majority holds it


@pytest.mark.parametrize("role", [Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE])
def test_only_a_leader_accepts_proposals(role: Role) -> None:
    """Only the leader takes client commands; other servers refuse so the shell can
    redirect to the leader.

    Raft paper §8: "If the client contacts a follower, the follower will
    reject its request and supply information about the most recent leader
    it has heard from."
    """
    node = node_as(role)

    accepted = node.propose("x")

    assert not accepted
    assert node.log.last_index == 0
    assert node.ready().messages == ()


@pytest.mark.parametrize(
    ("size", "acks", "committed"),
    [
        (3, (), False),
        (3, (2,), True),
        (3, (2, 3), True),
        (5, (2,), False),
        (5, (2, 3), True),
        (5, (2, 3, 4, 5), True),
        (7, (2, 3), False),
        (7, (2, 3, 4), True),
    ],
)
def test_an_entry_commits_once_a_majority_stores_it(
    size: int, acks: tuple[int, ...], committed: bool
) -> None:
    """An entry of the leader's term is committed once the leader has replicated it on a
    majority; the committed entry is handed to the shell to apply.

    Raft paper §5.3: "A log entry is committed once the leader that created
    the entry has replicated it on a majority of the servers."
    """
    members = tuple(range(1, size + 1))
    node = node_as(Role.LEADER, members=members)  # entry 1 is its empty entry

    for peer in acks:
        node.step(Message(K.APPEND_ENTRIES_RESPONSE, peer, 1, node.term, index=1))
    rd = node.ready()

    assert node.commit_index == (1 if committed else 0)
    assert rd.committed == ((Entry(node.term, 1, None),) if committed else ())


def test_followers_apply_what_the_leader_says_is_committed() -> None:
    """A follower learns the commit index from AppendEntries (leaderCommit) and applies the
    entries up to it, in order.

    Raft paper §5.3: "The leader keeps track of the highest index it knows to
    be committed, and it includes that index in future AppendEntries RPCs
    ... Once a follower learns that a log entry is committed, it applies the
    entry to its local state machine (in log order)."
    """
    node = node_as(Role.FOLLOWER)
    entries = tuple(log_of(5, 5, 5))

    node.step(Message(K.APPEND_ENTRIES, 2, 1, 5, entries=entries, commit=1))
    first = node.ready()
    node.advance(first)
    node.step(Message(K.APPEND_ENTRIES, 2, 1, 5, index=3, log_term=5, commit=3))
    second = node.ready()

    assert first.committed == entries[:1]
    assert second.committed == entries[1:]
    assert node.commit_index == 3


def test_a_follower_commits_no_further_than_the_entries_the_message_vouched_for() -> None:
    """A follower's commit index follows leaderCommit only up to the last entry the
    AppendEntries checked or carried: entries beyond it may be a deposed leader's and
    need not be the leader's entries at those indices.

    Raft paper Figure 2, AppendEntries receiver step 5: "If leaderCommit >
    commitIndex, set commitIndex = min(leaderCommit, index of last new entry)".
    """
    stale_suffix = (Entry(5, 1, "a"), Entry(4, 2, "from a deposed leader"))
    node = node_as(Role.FOLLOWER, entries=stale_suffix)

    # The leader of term 5 holds a different index 2; it has only checked index 1 so far.
    node.step(Message(K.APPEND_ENTRIES, 2, 1, 5, index=1, log_term=5, commit=2))
    rd = node.ready()

    assert node.commit_index == 1
    assert rd.committed == stale_suffix[:1]


@pytest.mark.parametrize(
    ("prev_index", "prev_term", "rejected", "hint"),
    [
        (0, 0, False, 0),  # the empty prefix always matches
        (1, 1, False, 0),
        (2, 2, False, 0),
        (1, 2, True, 1),  # our term 1 <= 2: only the leader can tell whether index 1 matches
        (2, 3, True, 2),  # our term 2 <= 3: the leader must check index 2 itself
        (3, 3, True, 2),  # index 3 is missing: our last index is the place to probe
        (3, 1, True, 1),  # our term-2 entry at 2 exceeds the leader's term 1: skip it
    ],
)
def test_a_follower_rejects_append_entries_whose_previous_entry_it_lacks(
    prev_index: int, prev_term: int, rejected: bool, hint: int
) -> None:
    """A follower refuses AppendEntries unless its log holds an entry with prevLogIndex and
    prevLogTerm; a refusal hints where the leader should look next.

    Raft paper §5.3: "If the follower does not find an entry in its log with
    the same index and term, then it refuses the new entries"; the closing
    optimisation lets the follower say where the conflict lies.
    """
    node = node_as(Role.FOLLOWER, entries=tuple(log_of(1, 2)))

    node.step(Message(K.APPEND_ENTRIES, 2, 1, 5, index=prev_index, log_term=prev_term))
    (reply,) = node.ready().messages

    assert (reply.kind, reply.term, reply.reject) == (K.APPEND_ENTRIES_RESPONSE, 5, rejected)
    if rejected:
        assert (reply.index, reply.hint) == (prev_index, hint)
    else:
        assert reply.index == prev_index
    assert node.log.entries() == tuple(log_of(1, 2))


@pytest.mark.parametrize(
    ("prev_index", "prev_term", "new_terms", "want_terms", "rewritten_from"),
    [
        (2, 2, (3,), (1, 2, 3), 3),  # appended after the match
        (1, 1, (3,), (1, 3), 2),  # index 2 conflicts: it and all after go
        (0, 0, (1, 2), (1, 2), None),  # already there: nothing changes
        (0, 0, (1,), (1, 2), None),  # a shorter (stale) message truncates nothing
        (0, 0, (3,), (3,), 1),
    ],
)
def test_conflicting_entries_are_overwritten_and_matching_ones_kept(
    prev_index: int,
    prev_term: int,
    new_terms: tuple[int, ...],
    want_terms: tuple[int, ...],
    rewritten_from: int | None,
) -> None:
    """If an existing entry conflicts with a new one (same index, different term), the
    follower deletes it and all that follow and appends the new entries; entries that
    already match are kept, including any after the message's last entry.

    Raft paper §5.3 and Figure 2, AppendEntries receiver steps 3–4.
    """
    node = node_as(Role.FOLLOWER, entries=tuple(log_of(1, 2)))
    new = tuple(Entry(t, prev_index + i, f"new{i}") for i, t in enumerate(new_terms, start=1))

    node.step(Message(K.APPEND_ENTRIES, 2, 1, 5, index=prev_index, log_term=prev_term, entries=new))
    rd = node.ready()

    assert tuple(e.term for e in node.log.entries()) == want_terms
    assert rd.entries == (() if rewritten_from is None else node.log.entries(rewritten_from))
    (reply,) = rd.messages
    assert (reply.reject, reply.index) == (False, prev_index + len(new))


#: Raft paper Figure 7: the leader's log (term 8 starts) and six followers (a)–(f).
FIGURE7_LEADER = (1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
FIGURE7_FOLLOWERS = {
    "a": (1, 1, 1, 4, 4, 5, 5, 6, 6),
    "b": (1, 1, 1, 4),
    "c": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),
    "d": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7),
    "e": (1, 1, 1, 4, 4, 4, 4),
    "f": (1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),
}


@pytest.mark.parametrize("case", sorted(FIGURE7_FOLLOWERS))
def test_the_leader_backs_off_until_the_logs_match_then_repairs_the_follower(case: str) -> None:
    """When a follower refuses AppendEntries the leader retries from an earlier index;
    once they match, the follower's conflicting suffix is replaced by the leader's.

    Raft paper §5.3 and Figure 7: "After a rejection, the leader decrements
    nextIndex and retries the AppendEntries RPC. Eventually nextIndex will
    reach a point where the leader and follower logs match", after which the
    leader's log is copied over whatever the follower had.
    """
    leader_log = log_of(*FIGURE7_LEADER)
    storages = {
        1: MemoryStorage(leader_log, HardState(term=7)),
        2: MemoryStorage(log_of(*FIGURE7_FOLLOWERS[case]), HardState(term=7)),
        3: MemoryStorage(leader_log, HardState(term=7)),  # votes for 1 whatever 2 thinks
    }
    net = Network(3, storages=storages, timeouts=dict.fromkeys((1, 2, 3), 10 * T))

    net.campaign(1)
    net.propose(1, "next")

    leader, follower = net.node(1), net.node(2)
    assert (leader.state, leader.term) == (Role.LEADER, 8)
    assert follower.log.entries() == leader.log.entries()
    assert net.storages[2].entries(1, 13) == list(leader.log.entries())
    rejections = [
        m for m in net.history if m.src == 2 and m.kind is K.APPEND_ENTRIES_RESPONSE and m.reject
    ]
    assert bool(rejections) == (case not in "cd")  # (c), (d) hold the leader's log whole
    assert len(rejections) <= 3  # the hints skip whole terms, not one index per round trip


# ----------------------------------------------------------------------------- §5.4 safety


@pytest.mark.parametrize(
    ("own", "candidate_last", "granted"),
    [
        ((1, 2), (2, 2), True),  # same last term, same length
        ((1, 2), (3, 2), True),  # same last term, longer
        ((1, 2), (1, 2), False),  # same last term, shorter
        ((1, 2), (1, 3), True),  # later last term wins even when shorter
        ((1, 2), (5, 1), False),  # earlier last term loses even when longer
        ((), (0, 0), True),
    ],
)
def test_a_vote_is_denied_to_a_candidate_with_a_less_up_to_date_log(
    own: tuple[int, ...], candidate_last: tuple[int, int], granted: bool
) -> None:
    """A voter denies its vote if its own log is more up-to-date than the candidate's:
    a later last term wins; with equal last terms the longer log wins.

    Raft paper §5.4.1: "the voter denies its vote if its own log is more
    up-to-date than that of the candidate."
    """
    node = node_as(Role.FOLLOWER, entries=tuple(log_of(*own)))
    last_index, last_term = candidate_last

    node.step(Message(K.REQUEST_VOTE, 2, 1, 6, index=last_index, log_term=last_term))
    (reply,) = node.ready().messages

    assert reply.reject is not granted
    assert node.vote == (2 if granted else None)


def figure8(*, s1_term4_entry_on: tuple[int, ...]) -> Network:
    """Raft paper Figure 8 (c): S1 leads term 4 and has replicated term 2's entry to S2, S3.

    All logs start with a committed term-1 entry; S5 holds a term-3 entry at
    index 2 from its brief leadership in (b). S1's term-4 entry has reached
    the servers named. Links are cut so nothing else moves.
    """
    common = log_of(1)
    with_t2 = [*common, Entry(2, 2, "t2")]
    with_t4 = [*with_t2, Entry(4, 3, "t4")]
    logs = {1: with_t4, 2: with_t2, 3: with_t2, 4: common, 5: [*common, Entry(3, 2, "t3")]}
    for s in s1_term4_entry_on:
        logs[s] = with_t4
    storages = {
        s: MemoryStorage(log, HardState(term=4, vote=1 if s < 5 else 5, commit=1))
        for s, log in logs.items()
    }
    return Network(5, storages=storages, timeouts=dict.fromkeys(range(1, 6), 10 * T))


def test_a_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    """A leader never commits an entry from an earlier term by counting replicas, even
    once a majority stores it; only an entry of its own term commits that way, and it
    commits everything before it.

    Raft paper §5.4.2 and Figure 8: "Raft never commits log entries from
    previous terms by counting replicas. Only log entries from the leader's
    current term are committed by counting replicas".
    """
    storage = MemoryStorage([*log_of(1, 2)], HardState(term=3, commit=1))
    leader = new_node(1, range(1, 6), storage=storage, timeout=T)
    leader.step(Message(K.HUP, 1, 1))
    for voter in (2, 3):
        leader.step(Message(K.REQUEST_VOTE_RESPONSE, voter, 1, 4))
    assert (leader.state, leader.log.last_index) == (Role.LEADER, 3)  # its own entry is 3

    for peer in (2, 3):  # the term-2 entry reaches a majority: S1, S2, S3
        leader.step(Message(K.APPEND_ENTRIES_RESPONSE, peer, 1, 4, index=2))
    old_only = leader.commit_index
    for peer in (2, 3):  # now the term-4 entry does too
        leader.step(Message(K.APPEND_ENTRIES_RESPONSE, peer, 1, 4, index=3))

    assert old_only == 1
    assert leader.commit_index == 3


def test_figure8_an_old_term_entry_on_a_majority_can_still_be_overwritten() -> None:
    """Why the rule above: an entry of term 2 stored on a majority can be replaced by a
    later leader that never had it, so counting its replicas must not commit it.

    Raft paper §5.4.2, Figure 8 (d): S1 crashes, S5 is elected with votes
    from S2, S3 and S4 and overwrites index 2 everywhere with its term-3 entry.
    """
    net = figure8(s1_term4_entry_on=())
    net.crash(1)

    net.campaign(5)

    assert net.node(5).state is Role.LEADER
    assert all(net.node(s).log.term_at(2) == 3 for s in (2, 3, 4, 5))


def test_figure8_once_a_current_term_entry_is_on_a_majority_no_other_leader_can_win() -> None:
    """Once the leader's own-term entry is on a majority (it is committed), a server
    lacking it can no longer be elected, so the entries before it are safe.

    Raft paper §5.4.2, Figure 8 (e) and the leader completeness argument of
    §5.4.3.
    """
    net = figure8(s1_term4_entry_on=(2, 3))
    net.crash(1)

    net.campaign(5)

    assert net.node(5).state is not Role.LEADER
    assert all(net.node(s).log.term_at(2) == 2 for s in (2, 3))


# --------------------------------------------------------------- Figure 2: persistent state


def test_a_restarted_node_recovers_term_vote_log_and_commit_from_storage() -> None:
    """Current term, vote and log survive a crash (they are persisted before any reply);
    role, leader and timers start afresh.

    Raft paper Figure 2, "Persistent state on all servers (Updated on stable
    storage before responding to RPCs)"; §5.2: a server that crashes and
    restarts must not vote twice in one term.
    """
    storage = MemoryStorage(hard_state=HardState(term=2))
    node = new_node(1, storage=storage, timeout=T, check_quorum=False)
    node.step(Message(K.APPEND_ENTRIES, 2, 1, 3, entries=tuple(log_of(3, 3)), commit=1))
    flush_messages(node, storage)
    node.step(Message(K.REQUEST_VOTE, 3, 1, 4, index=2, log_term=3))
    flush_messages(node, storage)
    before = (node.term, node.vote, node.log.entries(), node.commit_index)

    restarted = new_node(1, storage=storage, timeout=T)

    assert (restarted.term, restarted.vote, restarted.log.entries(), restarted.commit_index) == (
        before
    )
    assert (restarted.state, restarted.leader_id) == (Role.FOLLOWER, None)
    assert restarted.ready().committed == restarted.log.entries(1, 2)  # re-applied after restart
    restarted.step(Message(K.REQUEST_VOTE, 2, 1, 4, index=9, log_term=9))
    assert restarted.ready().messages[-1].reject  # it voted for 3 in term 4 already


def test_state_the_shell_never_persisted_is_lost_in_a_crash_and_was_never_promised() -> None:
    """What the node has not handed over in a Ready is not durable, and it has sent
    nothing that relies on it: a vote granted in memory but never persisted is
    forgotten together with the reply that would have announced it.

    Raft paper Figure 2 (persist "before responding to RPCs"); the Ready contract.
    """
    storage = MemoryStorage(hard_state=HardState(term=1))
    node = new_node(1, storage=storage, timeout=T)

    node.step(Message(K.REQUEST_VOTE, 2, 1, 2))  # granted in memory; no Ready taken
    granted_in_memory = node.vote
    restarted = new_node(1, storage=storage, timeout=T)

    assert granted_in_memory == 2
    assert (restarted.term, restarted.vote) == (1, None)


# ---------------------------------------------------- dissertation: pre-vote, check-quorum


def elect(net: Network, node_id: int) -> None:
    net.campaign(node_id)
    net.tick_all(1)
    assert net.agreed_leader() == node_id


@pytest.mark.parametrize("pre_vote", [True, False])
@pytest.mark.parametrize("fault", ["isolated, then healed", "cut from the leader only"])
def test_a_node_that_lost_the_leader_disrupts_the_cluster_only_without_pre_vote(
    pre_vote: bool, fault: str
) -> None:
    """With pre-vote, a node that cannot hear the leader asks first whether it could win,
    and nobody who still hears the leader says yes: its term stays, and the leader stays
    in office whether the node rejoins or keeps reaching only the other follower. Without
    pre-vote it raises its term, and the leader is deposed.

    Raft dissertation §9.6: "a candidate would first ask other servers
    whether its log was up-to-date enough to get their vote"; a server
    grants a pre-vote only if it "has not received heartbeats from a valid
    leader for at least a baseline election timeout."
    """
    net = Network(3, seed=3, pre_vote=pre_vote, check_quorum=False)
    elect(net, 1)
    term = net.node(1).term

    if fault == "isolated, then healed":
        net.isolate(3)
        net.tick_all(5 * T)
        net.heal()
    else:
        net.cut(1, 3)
    net.tick_all(5 * T)

    if pre_vote:
        assert (net.node(1).state, net.node(1).term) == (Role.LEADER, term)
        assert (net.node(2).leader_id, net.node(3).term) == (1, term)
    else:
        assert net.node(1).term > term  # the leader saw a higher term: it was deposed


def test_a_pre_vote_round_changes_no_one_s_term_or_vote() -> None:
    """A pre-candidate does not increment its term or vote, and granting a pre-vote binds
    the voter to nothing.

    Raft dissertation §9.6: pre-vote asks whether an election could succeed
    before disrupting anyone; only a real election changes terms.
    """
    net = Network(3, pre_vote=True, timeouts=dict.fromkeys((1, 2, 3), 10 * T))
    net.ignore(K.PRE_VOTE_RESPONSE)  # the round never completes

    net.campaign(1)

    assert net.node(1).state is Role.PRE_CANDIDATE
    assert [(n.term, n.vote) for n in net.live()] == [(0, None)] * 3
    assert [m.kind for m in net.history] == [K.PRE_VOTE, K.PRE_VOTE]


@pytest.mark.parametrize("check_quorum", [True, False])
def test_an_isolated_leader_steps_down_with_check_quorum(check_quorum: bool) -> None:
    """With check-quorum a leader that has not heard from a majority for an election
    timeout steps down; without it, it stays leader however long it is cut off.

    Raft dissertation §6.2: "a leader steps down if an election timeout
    elapses without a successful round of heartbeats to a majority of its
    cluster."
    """
    net = Network(3, seed=5, check_quorum=check_quorum)
    elect(net, 1)

    net.isolate(1)
    net.tick(1, 2 * T)

    expected = Role.FOLLOWER if check_quorum else Role.LEADER
    assert net.node(1).state is expected


# ----------------------------------------------------------------- shape of the node itself


def test_a_single_node_cluster_elects_itself_and_commits_alone() -> None:
    """A cluster of one is its own majority: it elects itself at its first timeout and
    commits every proposal at once.

    Raft paper §5.2 and §5.3 with a cluster of one server.
    """
    net = Network(1, seed=1)

    net.tick_all(2 * T)
    net.propose(1, "solo")

    assert net.node(1).state is Role.LEADER
    assert [e.data for e in net.applied[1]] == [None, "solo"]


def test_forbidden_role_changes_raise() -> None:
    """A leader never becomes a candidate, and a follower never becomes leader without
    an election; the node raises rather than take either step.

    Raft paper Figure 4: the only arrows are follower→candidate,
    candidate→candidate/leader/follower and leader→follower.
    """
    leader, follower = node_as(Role.LEADER), node_as(Role.FOLLOWER)

    with pytest.raises(InvalidTransition):
        leader._become_candidate()
    with pytest.raises(InvalidTransition):
        leader._become_pre_candidate()
    with pytest.raises(InvalidTransition):
        follower._become_leader()

    assert (leader.state, follower.state) == (Role.LEADER, Role.FOLLOWER)
