"""A synchronous, in-memory network of Raft nodes for tests (importable as ``raft_network``).

Modelled on the ``network`` of etcd raft's raft_test.go: it holds nodes by id
and a FIFO queue of messages in flight, and has no clock. Delivering a
message steps it into its destination and then plays the shell's part at
once: take the node's Ready, persist it to the node's MemoryStorage, record
the committed entries as applied, queue the outgoing messages, advance.
Faults are verbs: :meth:`Network.drop`, :meth:`Network.cut`,
:meth:`Network.isolate`, :meth:`Network.ignore`, :meth:`Network.heal`,
:meth:`Network.crash`, :meth:`Network.restart`. Faults apply when a message
is *delivered*, so cutting a link also loses what is in flight on it.

Latency and loss models belong to the SimPy shell; here the only randomness
is the seeded fraction of :meth:`Network.drop` and the nodes' own timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from sim.policies.raft import (
    Entry,
    MemoryStorage,
    Message,
    MessageKind,
    RaftNode,
    Role,
    RoleChange,
)

__all__ = ["Network", "fixed_timeout", "flush_messages", "new_node"]


def fixed_timeout(ticks: int) -> Callable[[], int]:
    """An election-timeout source that always answers *ticks* (tests that need no chance)."""
    return lambda: ticks


def new_node(
    node_id: int,
    members: Iterable[int] = (1, 2, 3),
    *,
    storage: MemoryStorage | None = None,
    timeout: int | None = None,
    seed: int = 0,
    **options: Any,
) -> RaftNode:
    """A lone node for tests that step messages by hand; fixed *timeout* if given."""
    rng: np.random.Generator | Callable[[], int] = (
        fixed_timeout(timeout) if timeout is not None else np.random.default_rng([seed, node_id])
    )
    return RaftNode(
        node_id, tuple(members), storage if storage is not None else MemoryStorage(), rng, **options
    )


def flush_messages(node: RaftNode, storage: MemoryStorage | None = None) -> list[Message]:
    """Play the shell once for a lone node: persist (if *storage*), advance, return the messages."""
    rd = node.ready()
    if storage is not None:
        storage.save(rd.hard_state, rd.entries)
    node.advance(rd)
    return list(rd.messages)


class Network:
    """Nodes 1..size (or *ids*) wired together through one FIFO queue.

    *storages* lets a test prepare a node's durable state (a log, a term)
    before it starts, like etcd's prepared peers. *keep_history* records every
    delivered message in :attr:`history`. *timeouts* fixes a node's
    election timeout; other nodes draw theirs from a generator seeded with
    (seed, node id, incarnation), so a restart does not replay old draws.
    Remaining keyword arguments go to every :class:`RaftNode`.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        ids: Iterable[int] | None = None,
        seed: int = 0,
        storages: Mapping[int, MemoryStorage] | None = None,
        timeouts: Mapping[int, int] | None = None,
        keep_history: bool = True,
        **options: Any,
    ) -> None:
        self.ids: tuple[int, ...] = tuple(ids) if ids is not None else tuple(range(1, size + 1))
        self.seed = seed
        self.options = options
        self.timeouts = dict(timeouts or {})
        self.storages: dict[int, MemoryStorage] = {i: MemoryStorage() for i in self.ids}
        self.storages.update(storages or {})
        self.nodes: dict[int, RaftNode | None] = {}
        self.incarnation: dict[int, int] = dict.fromkeys(self.ids, 0)
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.ids}
        self.trace: list[RoleChange] = []
        self.queue: list[Message] = []
        self.keep_history = keep_history
        self.history: list[Message] = []
        """Every message delivered so far, in order, if *keep_history* (long runs turn it off)."""
        self._rng = np.random.default_rng([seed, 0xD509])
        self._drop: dict[tuple[int, int], float] = {}
        self._ignored: set[MessageKind] = set()
        for i in self.ids:
            self.nodes[i] = self._build(i)

    # ------------------------------------------------------------------ nodes

    def _build(self, node_id: int) -> RaftNode:
        rng: np.random.Generator | Callable[[], int]
        if node_id in self.timeouts:
            rng = fixed_timeout(self.timeouts[node_id])
        else:
            rng = np.random.default_rng([self.seed, node_id, self.incarnation[node_id]])
        node = RaftNode(node_id, self.ids, self.storages[node_id], rng, **self.options)
        self.trace.extend(node.drain_trace())
        return node

    def node(self, node_id: int) -> RaftNode:
        """The running node *node_id*; fails if it is crashed."""
        node = self.nodes[node_id]
        assert node is not None, f"node {node_id} is down"
        return node

    def up(self) -> list[int]:
        """Ids of the nodes that are running."""
        return [i for i in self.ids if self.nodes[i] is not None]

    def live(self) -> list[RaftNode]:
        """The running nodes, in id order."""
        return [n for n in self.nodes.values() if n is not None]

    def leaders(self) -> list[int]:
        """Ids of running nodes that believe they lead."""
        return [n.id for n in self.live() if n.state is Role.LEADER]

    def leader(self) -> int | None:
        """The leader of the highest term among running leaders, if any."""
        leaders = [n for n in self.live() if n.state is Role.LEADER]
        return max(leaders, key=lambda n: n.term).id if leaders else None

    def agreed_leader(self) -> int | None:
        """A leader every running node follows in its term, or ``None``."""
        lead = self.leader()
        if lead is None:
            return None
        term = self.node(lead).term
        ok = all(n.term == term and n.leader_id == lead for n in self.live())
        return lead if ok else None

    # --------------------------------------------------------------- the shell

    def flush(self, node_id: int) -> list[Message]:
        """Do what the shell does with *node_id*'s Ready; queue and return its messages."""
        node = self.nodes[node_id]
        if node is None:
            return []
        rd = node.ready()
        self.storages[node_id].save(rd.hard_state, rd.entries)  # persist before sending
        self.applied[node_id].extend(rd.committed)
        node.advance(rd)
        self.trace.extend(node.drain_trace())
        self.send(rd.messages)
        return list(rd.messages)

    def flush_all(self) -> None:
        for i in self.ids:
            self.flush(i)

    def send(self, msgs: Iterable[Message]) -> None:
        """Put messages in flight (at the back of the queue)."""
        self.queue.extend(msgs)

    def step(self, msg: Message, *, flush: bool = True) -> None:
        """Step *msg* into its destination now, bypassing queue and faults."""
        node = self.nodes[msg.dst]
        if node is None:
            return
        node.step(msg)
        if flush:
            self.flush(msg.dst)

    def campaign(self, node_id: int) -> None:
        """Make *node_id* start an election now (a local Hup), then deliver everything."""
        self.step(Message(MessageKind.HUP, node_id, node_id))
        self.deliver_all()

    def propose(self, node_id: int, data: object, *, deliver: bool = True) -> bool:
        """Propose *data* at *node_id*; deliver everything afterwards unless told not to."""
        ok = self.node(node_id).propose(data)
        self.flush(node_id)
        if deliver:
            self.deliver_all()
        return ok

    def tick(self, node_id: int, n: int = 1, *, flush: bool = True) -> None:
        for _ in range(n):
            node = self.nodes[node_id]
            if node is None:
                return
            node.tick()
            if flush:
                self.flush(node_id)

    def tick_all(self, n: int = 1, *, deliver: bool = True) -> None:
        """*n* rounds of: tick every running node once, then (by default) deliver everything."""
        for _ in range(n):
            for i in self.ids:
                self.tick(i)
            if deliver:
                self.deliver_all()

    # ---------------------------------------------------------------- delivery

    def passes(self, msg: Message) -> bool:
        """Whether *msg* survives the current faults (drawing the drop chance once)."""
        if self.nodes.get(msg.dst) is None or msg.kind in self._ignored:
            return False
        fraction = self._drop.get((msg.src, msg.dst), 0.0)
        return not (fraction > 0.0 and (fraction >= 1.0 or self._rng.random() < fraction))

    def deliver_at(self, pos: int, *, flush: bool = True) -> Message:
        """Take the message at *pos* off the queue and deliver it (unless a fault eats it)."""
        msg = self.queue.pop(pos)
        if self.passes(msg):
            if self.keep_history:
                self.history.append(msg)
            self.step(msg, flush=flush)
        return msg

    def deliver_all(self, limit: int = 10_000) -> int:
        """Deliver in FIFO order, including replies, until the queue is empty.

        *limit* guards against a livelock in the algorithm: a healthy cluster
        goes quiet after a handful of round trips.
        """
        count = 0
        while self.queue:
            self.deliver_at(0)
            count += 1
            if count > limit:
                raise AssertionError(f"network did not go quiet after {limit} messages")
        return count

    # ------------------------------------------------------------------ faults

    def drop(self, src: int, dst: int, fraction: float) -> None:
        """Lose *fraction* of the messages from *src* to *dst* (1.0: all of them)."""
        self._drop[(src, dst)] = fraction

    def cut(self, a: int, b: int) -> None:
        """Lose every message between *a* and *b*, both ways."""
        self.drop(a, b, 1.0)
        self.drop(b, a, 1.0)

    def isolate(self, node_id: int) -> None:
        """Cut *node_id* from every other node."""
        for other in self.ids:
            if other != node_id:
                self.cut(node_id, other)

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups."""
        sets = [set(g) for g in groups]
        for i, a_group in enumerate(sets):
            for b_group in sets[i + 1 :]:
                for a in a_group:
                    for b in b_group:
                        self.cut(a, b)

    def ignore(self, kind: MessageKind) -> None:
        """Lose every message of *kind*."""
        self._ignored.add(kind)

    def heal(self) -> None:
        """Undo drop, cut, isolate, partition and ignore (etcd's ``recover``)."""
        self._drop.clear()
        self._ignored.clear()

    def crash(self, node_id: int) -> None:
        """Stop *node_id*: its memory and anything it had not flushed are lost."""
        self.nodes[node_id] = None

    def restart(self, node_id: int) -> RaftNode:
        """Build a fresh node from the crashed node's storage (a new incarnation)."""
        assert self.nodes[node_id] is None, f"node {node_id} is running"
        self.incarnation[node_id] += 1
        self.applied[node_id] = []
        node = self._build(node_id)
        self.nodes[node_id] = node
        return node
