"""Raft under generated chaos: the paper's safety properties after every step, and liveness.

:class:`RaftCluster` is a Hypothesis state machine over a cluster of 3 or 5
nodes wired through the synchronous test network (``raft_network``). Its
rules are the things that happen to a real cluster: time passes on some or
all nodes; messages are delivered in any order, duplicated or lost; the
network splits and heals; nodes crash (losing whatever they had not yet
persisted) and restart from storage; clients propose commands to a leader.
After every step it checks the properties of Raft paper §5.2–§5.4 (Figure 3):

- election safety: at most one leader per term, over the whole history;
- log matching: two logs holding an entry with the same index and term are
  identical up to it (in memory and on disk);
- leader completeness: a committed entry is in the log of every leader of
  a later term;
- state machine safety: no two nodes apply different entries at an index,
  and each node applies a gapless prefix of one sequence;
- a live node's commit index never moves back.

The liveness test is a plain ``@given``: after arbitrary chaos, once the
network heals and every node runs, a leader that everyone follows must
appear within a bound derived below from the timeout distribution.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from raft_network import Network

from sim.policies.raft import Entry, RaftNode, Role

ELECTION_TICKS = 4  # short timeouts: elections happen within a few generated steps
PICK = st.integers(min_value=0, max_value=10**6)  # reduced modulo whatever it picks from


class RaftCluster(RuleBasedStateMachine):
    """A cluster of 3 or 5 Raft nodes under generated faults; safety checked after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.net: Network
        self.leader_of_term: dict[int, int] = {}
        self.committed: dict[int, tuple[Entry, int]] = {}  # index -> (entry, term it was seen in)
        self.applied_at: dict[int, Entry] = {}
        self.applied_seen: dict[int, int] = {}
        self.commit_seen: dict[int, int] = {}
        self.commands = 0

    @initialize(
        size=st.sampled_from([3, 5]),
        pre_vote=st.booleans(),
        check_quorum=st.booleans(),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        warm=st.booleans(),
        batch=st.sampled_from([1, 4]),
    )
    def start(
        self, size: int, pre_vote: bool, check_quorum: bool, seed: int, warm: bool, batch: int
    ) -> None:
        """Build the cluster; a warm start lets it elect a leader first, so that the
        generated steps spend their budget on replication as well as on elections."""
        self.net = Network(
            size,
            seed=seed,
            election_ticks=ELECTION_TICKS,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            max_entries_per_msg=batch,  # small: catch-ups take several, reorderable, messages
            keep_history=False,
        )
        self.applied_seen = dict.fromkeys(self.net.ids, 0)
        self.commit_seen = dict.fromkeys(self.net.ids, 0)
        for _ in range(50 * ELECTION_TICKS if warm else 0):  # the liveness test checks it ends
            if self.net.agreed_leader() is not None:
                break
            self.net.tick_all(1)

    def _id(self, pick: int) -> int:
        return self.net.ids[pick % len(self.net.ids)]

    # ------------------------------------------------------------------ rules

    @rule(pick=PICK, times=st.integers(min_value=1, max_value=2 * ELECTION_TICKS))
    def tick_one(self, pick: int, times: int) -> None:
        self.net.tick(self._id(pick), times)

    @rule(times=st.integers(min_value=1, max_value=ELECTION_TICKS))
    def tick_all(self, times: int) -> None:
        self.net.tick_all(times, deliver=False)

    @rule(times=st.integers(min_value=1, max_value=2 * ELECTION_TICKS))
    def run(self, times: int) -> None:
        """Time passes with the network delivering everything it can (under current faults)."""
        self.net.flush_all()
        self.net.tick_all(times)

    @precondition(lambda self: bool(self.net.queue))
    @rule(picks=st.lists(st.tuples(PICK, st.booleans()), min_size=1, max_size=12))
    def deliver_some(self, picks: list[tuple[int, bool]]) -> None:
        """Deliver messages in a generated order; a node stepped without a flush keeps
        its new state (and replies) unpersisted until something flushes it."""
        for pick, flush in picks:
            if not self.net.queue:
                return
            self.net.deliver_at(pick % len(self.net.queue), flush=flush)

    @precondition(lambda self: bool(self.net.queue))
    @rule(pick=PICK)
    def deliver_link(self, pick: int) -> None:
        """Deliver what is in flight on one link (that of a pending message), in order, while
        replies and the other links wait: one node hears a round its peers miss."""
        first = self.net.queue[pick % len(self.net.queue)]
        link = (first.src, first.dst)
        pending = [m for m in self.net.queue if (m.src, m.dst) == link]
        self.net.queue[:] = [m for m in self.net.queue if (m.src, m.dst) != link]
        for msg in pending:
            self.net.queue.insert(0, msg)
            self.net.deliver_at(0)

    @rule()
    def deliver_everything(self) -> None:
        self.net.flush_all()
        self.net.deliver_all()

    @precondition(lambda self: bool(self.net.queue))
    @rule(pick=PICK)
    def duplicate(self, pick: int) -> None:
        self.net.send([self.net.queue[pick % len(self.net.queue)]])

    @precondition(lambda self: bool(self.net.queue))
    @rule(pick=PICK)
    def drop(self, pick: int) -> None:
        self.net.queue.pop(pick % len(self.net.queue))

    @rule(pick=PICK)
    def flush(self, pick: int) -> None:
        self.net.flush(self._id(pick))

    @rule(sides=st.lists(st.booleans(), min_size=5, max_size=5))
    def partition(self, sides: list[bool]) -> None:
        left = [i for i, side in zip(self.net.ids, sides, strict=False) if side]
        right = [i for i in self.net.ids if i not in left]
        self.net.partition(left, right)

    @rule()
    def heal(self) -> None:
        self.net.heal()

    @precondition(lambda self: bool(self.net.up()))
    @rule(pick=PICK)
    def crash(self, pick: int) -> None:
        up = self.net.up()
        node_id = up[pick % len(up)]
        self._record_trace(self.net.node(node_id))  # what it did before dying still counts
        self.net.crash(node_id)

    @precondition(lambda self: len(self.net.up()) < len(self.net.ids))
    @rule(pick=PICK)
    def restart(self, pick: int) -> None:
        down = [i for i in self.net.ids if i not in self.net.up()]
        node = self.net.restart(down[pick % len(down)])
        self.applied_seen[node.id] = 0
        self.commit_seen[node.id] = node.commit_index

    @precondition(lambda self: bool(self.net.leaders()))
    @rule(pick=PICK, count=st.integers(min_value=1, max_value=4))
    def propose(self, pick: int, count: int) -> None:
        leaders = self.net.leaders()  # more than one if an old leader has not heard yet
        for _ in range(count):
            self.commands += 1
            leader = leaders[pick % len(leaders)]
            assert self.net.propose(leader, f"cmd{self.commands}", deliver=False)

    # -------------------------------------------------------------- invariants

    def _record_trace(self, node: RaftNode) -> None:
        self.net.trace.extend(node.drain_trace())

    @invariant()
    def election_safety(self) -> None:
        """Raft paper §5.2 / Figure 3: at most one leader can be elected in a given term."""
        for node in self.net.live():
            self._record_trace(node)
        for change in self.net.trace:
            if change.role is Role.LEADER:
                first = self.leader_of_term.setdefault(change.term, change.node)
                assert first == change.node, (
                    f"term {change.term}: leaders {first} and {change.node}"
                )
        self.net.trace.clear()

    @invariant()
    def log_matching(self) -> None:
        """§5.3: same index and term ⇒ same entries up to there; on disk and in memory."""
        logs = [list(n.log.entries()) for n in self.net.live()]
        logs += [s.entries(1, s.last_index() + 1) for s in self.net.storages.values()]
        for a_pos, a in enumerate(logs):
            for b in logs[a_pos + 1 :]:
                shared = min(len(a), len(b))
                agree = next((i for i in range(shared, 0, -1) if a[i - 1].term == b[i - 1].term), 0)
                assert a[:agree] == b[:agree], f"logs agree at {agree} but differ before"

    @invariant()
    def commit_never_moves_back_and_is_unique(self) -> None:
        """A live node's commit index only grows, and an index commits one entry only (§5.4)."""
        for node in self.net.live():
            seen = self.commit_seen[node.id]
            assert node.commit_index >= seen, f"node {node.id} commit {seen} → {node.commit_index}"
            for index in range(seen + 1, node.commit_index + 1):
                entry = node.log.entry(index)
                known = self.committed.setdefault(index, (entry, node.term))
                assert known[0] == entry, f"index {index} committed as {known[0]} and {entry}"
            self.commit_seen[node.id] = node.commit_index

    @invariant()
    def leader_completeness(self) -> None:
        """§5.4: an entry committed in a term is in the log of every leader of a later term.

        An entry first seen committed by a node in term t was committed by a
        leader of a term no later than t, so every leader of term ≥ t must hold it.
        """
        for node in self.net.live():
            if node.state is not Role.LEADER:
                continue
            for index, (entry, seen_in) in self.committed.items():
                if seen_in <= node.term:
                    assert node.log.term_at(index) == entry.term, (
                        f"leader {node.id} of term {node.term} lacks committed {entry}"
                    )

    @invariant()
    def state_machine_safety(self) -> None:
        """§5.4.3: no two servers apply different commands at one index; each applies in order."""
        for node_id, applied in self.net.applied.items():
            for pos in range(self.applied_seen[node_id], len(applied)):
                entry = applied[pos]
                assert entry.index == pos + 1, f"node {node_id} applied {entry} at position {pos}"
                first = self.applied_at.setdefault(entry.index, entry)
                assert first == entry, f"index {entry.index}: applied {first} and {entry}"
            self.applied_seen[node_id] = len(applied)


#: 100 examples in CI (the "ci" profile asks for 60), more when a profile asks for more.
EXAMPLES = max(100, settings.default.max_examples)

RaftCluster.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRaftCluster = RaftCluster.TestCase


# ------------------------------------------------------------------------------ liveness

LIVENESS_ELECTION_TICKS = 5


def election_bound(size: int, election_ticks: int, failure: float = 1e-6) -> int:
    """Ticks within which a healed cluster elects a leader, except with probability *failure*.

    Model: once the network heals and delivers everything within the tick
    it was sent, the run falls into rounds. A round ends when someone
    campaigns; everyone that hears a RequestVote of a higher term resets its
    timer and draws a fresh timeout, so rounds start afresh. A round lasts at
    most 3T − 1 ticks: up to T while followers' leases on a vanished leader
    run out, then at most 2T − 1 until some timer fires.

    Some node holds a log at least as up-to-date as every other's (the order
    of §5.4.1 is total), so it can collect every vote. If its fresh timeout
    is strictly the smallest of *size* draws, uniform over T values, it
    campaigns alone and wins within the tick. That chance is

        p = Σ_{k=0}^{T−1} P(draw = T+k) · P(all others > T+k) = Σ_{k=0}^{T−1} (T−1−k)^{n−1} / T^n,

    (p = 0.113 for n = 5, T = 5; 0.24 for n = 3). Rounds are independent, so
    r = ⌈ln(failure) / ln(1 − p)⌉ rounds fail with probability ≤ *failure*.
    One extra round covers a first campaign lost only because the
    best-placed node's term lagged (the rejection hands it the higher term),
    and one tick lets the new leader's first heartbeat reach everyone.

    The bound is for the worst case of a single electable node and is far
    from typical: over 3,000 generated runs the slowest election took 25
    ticks (bounds: 729 ticks for n = 3, 1,625 for n = 5).
    """
    t, n = election_ticks, size
    p = sum((t - 1 - k) ** (n - 1) for k in range(t)) / t**n
    rounds = math.ceil(math.log(failure) / math.log(1.0 - p)) + 1
    return rounds * (3 * t - 1) + 1


CHAOS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(min_value=1, max_value=3 * LIVENESS_ELECTION_TICKS)),
        st.tuples(st.just("partition"), st.lists(st.booleans(), min_size=5, max_size=5)),
        st.tuples(st.just("drop"), st.tuples(PICK, PICK, st.floats(0.0, 1.0))),
        st.tuples(st.just("crash"), PICK),
        st.tuples(st.just("restart"), PICK),
        st.tuples(st.just("propose"), PICK),
        st.tuples(st.just("heal"), st.none()),
    ),
    min_size=1,
    max_size=25,
)


def unleash(net: Network, action: str, arg: Any) -> None:
    """Apply one chaos action; time passes with the network delivering under the faults."""
    ids = net.ids
    if action == "tick":
        net.tick_all(arg)
    elif action == "partition":
        left = [i for i, s in zip(ids, arg, strict=False) if s]
        net.partition(left, [i for i in ids if i not in left])
    elif action == "drop":
        src, dst, fraction = arg
        net.drop(ids[src % len(ids)], ids[dst % len(ids)], fraction)
    elif action == "crash" and net.up():
        net.crash(net.up()[arg % len(net.up())])
    elif action == "restart":
        down = [i for i in ids if i not in net.up()]
        if down:
            net.restart(down[arg % len(down)])
    elif action == "propose":
        for leader in net.leaders():
            net.propose(leader, f"chaos{arg}")
    elif action == "heal":
        net.heal()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.sampled_from([3, 5]),
    pre_vote=st.booleans(),
    check_quorum=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    chaos=CHAOS,
)
def test_a_healed_cluster_elects_a_leader_everyone_follows_within_the_bound(
    size: int, pre_vote: bool, check_quorum: bool, seed: int, chaos: list[tuple[str, Any]]
) -> None:
    """After any chaos, once the network heals and all nodes run, a leader emerges that
    every node follows, within election_bound() ticks (Raft paper §5.2: randomised
    timeouts make repeated split votes unlikely)."""
    net = Network(
        size,
        seed=seed,
        election_ticks=LIVENESS_ELECTION_TICKS,
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        keep_history=False,
    )
    for action, arg in chaos:
        unleash(net, action, arg)
    net.heal()
    for node_id in net.ids:
        if node_id not in net.up():
            net.restart(node_id)
    net.flush_all()
    net.deliver_all()

    bound = election_bound(size, LIVENESS_ELECTION_TICKS)
    ticks = 0
    while net.agreed_leader() is None and ticks < bound:
        net.tick_all(1)
        ticks += 1

    assert net.agreed_leader() is not None, f"no agreed leader after {ticks} ticks"
