"""Ticking a Raft node many ticks at once, and the Ready's fsync flag.

A shell with a fine tick wakes only when a timer is due (``ticks_to_timeout``)
and catches a node up with ``tick(count)``; that is only sound if one call of
``tick(count)`` leaves the node exactly where ``count`` single ticks would.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from raft_network import fixed_timeout, flush_messages

from sim.policies.raft import MemoryStorage, Message, MessageKind, RaftNode, Role


def _node(timeout: int) -> RaftNode:
    return RaftNode(
        1, [1, 2, 3], MemoryStorage(), fixed_timeout(timeout), election_ticks=5, heartbeat_ticks=2
    )


def _observe(node: RaftNode) -> tuple[object, ...]:
    return (node.state, node.term, node.election_elapsed, node.ticks_to_timeout(), node.has_ready())


@given(
    timeout=st.integers(5, 12),
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    lead=st.booleans(),
)
@settings(max_examples=60)
def test_tick_count_is_count_single_ticks(timeout: int, counts: list[int], lead: bool) -> None:
    """tick(n) == n x tick(), for followers, candidates and leaders (timers firing inside)."""
    bulk, single = _node(timeout), _node(timeout)
    for node in (bulk, single):
        if lead:  # win an election: campaign, then the two votes
            node.step(Message(MessageKind.HUP, 1, 1))
            for peer in (2, 3):
                node.step(Message(MessageKind.REQUEST_VOTE_RESPONSE, peer, 1, node.term))
            assert node.state is Role.LEADER
    for count in counts:
        bulk.tick(count)
        for _ in range(count):
            single.tick()
        assert _observe(bulk) == _observe(single)
        assert flush_messages(bulk) == flush_messages(single)


def test_ticks_to_timeout_names_the_tick_that_fires() -> None:
    node = _node(7)
    due = node.ticks_to_timeout()
    node.tick(due - 1)
    assert node.state is Role.FOLLOWER
    node.tick()
    assert node.state is Role.CANDIDATE


def test_ready_must_sync_only_for_entries_or_a_new_term_or_vote() -> None:
    """A vote or entries need an fsync before the answer; a commit index alone does not (etcd)."""
    node = _node(5)
    node.step(Message(MessageKind.HUP, 1, 1))  # a new term and a vote for itself
    rd = node.ready()
    assert rd.must_sync and rd.hard_state is not None
    node.advance(rd)
    node.step(Message(MessageKind.APPEND_ENTRIES, 2, 1, node.term, commit=0))  # a heartbeat
    rd = node.ready()
    assert not rd.must_sync
    assert all(m.is_response for m in rd.messages) and rd.messages
