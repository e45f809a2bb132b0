"""Task graphs: validation, ordering, critical paths and makespan bounds.

A job in the fleet is often not one task but a directed acyclic graph of them
(generate code, then review and test it in parallel, then merge). This module
holds the pure graph arithmetic the shells need for such jobs: the order in
which tasks may be released, which of them lie on the critical path (so the
dispatcher can send them to the fastest agent), how long the job must take at
best, and the lower bounds a schedule is measured against (the static schedules
themselves, HEFT and a greedy reference, are in :mod:`sim.policies.dag_schedule`).

Everything here works over plain tuples and dicts, without networkx or numpy:
the simulator plans every arriving job, so planning a 100-node graph has to
cost well under a millisecond, and a general-purpose graph library spends more
than that building its own structures. Nothing here knows about SimPy,
asyncio or NATS.

Conventions: node ids are ints; ties are always broken by ascending node id
(or by position in the topological order) so that every result is a pure
function of the graph; times are float seconds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Dag",
    "DagCycleError",
    "DagEdge",
    "DagNode",
    "DagPlan",
    "DagProgress",
    "critical_path",
    "makespan_lower_bound",
    "parallel_groups",
    "plan_dag",
    "topological_order",
    "upward_rank",
    "validate_dag",
    "work_bound_s",
]


@dataclass(frozen=True, slots=True)
class DagNode:
    """One task of a job.

    ``work_s`` is the expected service time on an agent of speed 1.0; an agent
    of speed ``s`` needs ``work_s / s`` seconds. ``category`` names the
    specialist kind that may run it.
    """

    node_id: int
    category: str
    work_s: float


@dataclass(frozen=True, slots=True)
class DagEdge:
    """A dependency: ``dst`` may start only once ``src`` is done.

    ``data_mb`` is the size of the output ``dst`` consumes from ``src``; moving
    it costs time only when the two run on different agents.
    """

    src: int
    dst: int
    data_mb: float = 0.0


@dataclass(frozen=True, slots=True)
class Dag:
    """A job's task graph. Edges must form no cycle; see :func:`validate_dag`."""

    name: str
    nodes: tuple[DagNode, ...]
    edges: tuple[DagEdge, ...]


class DagCycleError(ValueError):
    """The graph has a cycle.

    ``cycle`` lists the node ids around it in edge order, each joined to the
    next by an edge and the last joined back to the first; it starts at the
    cycle's smallest id, so the same graph always reports the same cycle.
    """

    def __init__(self, cycle: Sequence[int], dag_name: str = "") -> None:
        self.cycle: list[int] = list(cycle)
        shown = " → ".join(str(n) for n in [*self.cycle, self.cycle[0]]) if self.cycle else ""
        where = f"dag {dag_name!r}: " if dag_name else ""
        super().__init__(f"{where}cycle {shown}")


# --------------------------------------------------------------------------------------
# Internal index: adjacency built once per call, in node-id order.
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class DagIndex:
    """Adjacency lists of a graph whose ids, edges and weights have been checked.

    Successor and predecessor lists keep the order of ``dag.edges``; the order
    matters nowhere in the results, because every choice among them breaks ties
    by id.
    """

    ids: list[int]
    work: dict[int, float]
    succ: dict[int, list[tuple[int, float]]]
    pred: dict[int, list[tuple[int, float]]]


def _index(dag: Dag) -> DagIndex:
    """Check everything but acyclicity and build the adjacency lists."""
    work: dict[int, float] = {}
    for node in dag.nodes:
        nid = node.node_id
        if nid in work:
            raise ValueError(f"dag {dag.name!r}: duplicate node id {nid}")
        w = node.work_s
        if not (w >= 0.0 and math.isfinite(w)):
            raise ValueError(f"dag {dag.name!r}: node {nid} has invalid work_s {w!r}")
        work[nid] = w
    succ: dict[int, list[tuple[int, float]]] = {nid: [] for nid in work}
    pred: dict[int, list[tuple[int, float]]] = {nid: [] for nid in work}
    seen: set[tuple[int, int]] = set()
    for edge in dag.edges:
        src, dst, mb = edge.src, edge.dst, edge.data_mb
        if src not in work:
            raise ValueError(f"dag {dag.name!r}: edge {src}->{dst} names unknown node {src}")
        if dst not in work:
            raise ValueError(f"dag {dag.name!r}: edge {src}->{dst} names unknown node {dst}")
        if src == dst:
            raise ValueError(f"dag {dag.name!r}: self-loop on node {src}")
        if not (mb >= 0.0 and math.isfinite(mb)):
            raise ValueError(f"dag {dag.name!r}: edge {src}->{dst} has invalid data_mb {mb!r}")
        if (src, dst) in seen:
            raise ValueError(f"dag {dag.name!r}: edge {src}->{dst} listed twice")
        seen.add((src, dst))
        succ[src].append((dst, mb))
        pred[dst].append((src, mb))
    return DagIndex(ids=sorted(work), work=work, succ=succ, pred=pred)


def _kahn(ix: DagIndex) -> list[int]:
    """Kahn's algorithm with a min-heap, so ready nodes leave in id order.

    Returns as many nodes as could be ordered; fewer than all means a cycle.
    """
    indeg = {nid: len(ps) for nid, ps in ix.pred.items()}
    heap = [nid for nid in ix.ids if indeg[nid] == 0]  # ids are sorted: already a heap
    order: list[int] = []
    succ = ix.succ
    while heap:
        nid = heapq.heappop(heap)
        order.append(nid)
        for dst, _mb in succ[nid]:
            left = indeg[dst] - 1
            indeg[dst] = left
            if left == 0:
                heapq.heappush(heap, dst)
    return order


def _find_cycle(ix: DagIndex, ordered: list[int]) -> list[int]:
    """A cycle among the nodes Kahn's algorithm could not order.

    Every such node keeps a predecessor that is also unordered, so walking
    backwards from one of them must revisit a node; the revisited stretch,
    read forwards, is a cycle.
    """
    done = set(ordered)
    start = min(nid for nid in ix.ids if nid not in done)
    walk: list[int] = [start]
    pos: dict[int, int] = {start: 0}
    cur = start
    while True:
        cur = min(src for src, _mb in ix.pred[cur] if src not in done)
        if cur in pos:
            back = walk[pos[cur] :]
            cycle = back[::-1]  # walked against the edges; turn it round
            lo = cycle.index(min(cycle))
            return cycle[lo:] + cycle[:lo]
        pos[cur] = len(walk)
        walk.append(cur)


def checked_index(dag: Dag) -> tuple[DagIndex, list[int]]:
    """Index and topological order of a valid graph, or the reason it is not."""
    ix = _index(dag)
    order = _kahn(ix)
    if len(order) != len(ix.ids):
        raise DagCycleError(_find_cycle(ix, order), dag.name)
    return ix, order


def zero_transfer(mb: float) -> float:
    """No data moves: the default transfer time, recognised by identity so loops skip the call."""
    return 0.0


def rank_nodes(
    ix: DagIndex, order: list[int], transfer_s: Callable[[float], float], speed: float
) -> dict[int, float]:
    """HEFT's upward rank, filled in reverse topological order."""
    if not speed > 0.0:
        raise ValueError(f"speed must be positive, got {speed!r}")
    rank: dict[int, float] = {}
    work, succ = ix.work, ix.succ
    no_transfer = transfer_s is zero_transfer
    for nid in reversed(order):
        best = 0.0
        for dst, mb in succ[nid]:
            r = rank[dst] if no_transfer else transfer_s(mb) + rank[dst]
            if r > best:
                best = r
        rank[nid] = work[nid] / speed + best
    return rank


def _follow_critical(
    ix: DagIndex, rank: Mapping[int, float], transfer_s: Callable[[float], float]
) -> tuple[tuple[int, ...], float]:
    """Walk from the highest-ranked entry node along the successor that sets its rank."""
    entries = [nid for nid in ix.ids if not ix.pred[nid]]
    if not entries:
        return (), 0.0
    cur = max(entries, key=lambda n: (rank[n], -n))
    length = rank[cur]
    path = [cur]
    no_transfer = transfer_s is zero_transfer
    while ix.succ[cur]:
        best_key: tuple[float, int] | None = None
        for dst, mb in ix.succ[cur]:
            r = rank[dst] if no_transfer else transfer_s(mb) + rank[dst]
            key = (r, -dst)
            if best_key is None or key > best_key:
                best_key = key
        assert best_key is not None
        cur = -best_key[1]
        path.append(cur)
    return tuple(path), length


# --------------------------------------------------------------------------------------
# Public graph functions
# --------------------------------------------------------------------------------------


def validate_dag(dag: Dag) -> None:
    """Raise if *dag* is not a well-formed acyclic task graph.

    ValueError for a duplicate node id, an edge naming an unknown node, a
    self-loop, an edge listed twice, or negative (or non-finite) work or data;
    :class:`DagCycleError` (also a ValueError) for a cycle, carrying it.
    """
    checked_index(dag)


def topological_order(dag: Dag) -> tuple[int, ...]:
    """Node ids so that every edge points forwards; among ready nodes the smallest id goes first.

    Breaking ties by id makes the order a function of the graph alone, so two
    runs of the same scenario release tasks identically.
    """
    _ix, order = checked_index(dag)
    return tuple(order)


def _levels(ix: DagIndex, order: list[int]) -> tuple[tuple[int, ...], ...]:
    level: dict[int, int] = {}
    groups: list[list[int]] = []
    for nid in order:
        lv = 0
        for src, _mb in ix.pred[nid]:
            if level[src] + 1 > lv:
                lv = level[src] + 1
        level[nid] = lv
        if lv == len(groups):
            groups.append([])
        groups[lv].append(nid)
    return tuple(tuple(sorted(g)) for g in groups)


def parallel_groups(dag: Dag) -> tuple[tuple[int, ...], ...]:
    """Nodes grouped by depth: entry nodes first, then each node one level past its deepest parent.

    No edge joins two nodes of one group, so a group may run all at once; the
    number of groups is the graph's depth and the widest group bounds the
    parallelism worth provisioning. Ids within a group are ascending.
    """
    ix, order = checked_index(dag)
    return _levels(ix, order)


def upward_rank(
    dag: Dag,
    transfer_s: Callable[[float], float] = zero_transfer,
    speed: float = 1.0,
) -> dict[int, float]:
    """HEFT's upward rank: the longest time from a node's start to the job's end.

    rank_u(n) = work(n)/speed + max over successors s of
    (transfer_s(data_mb of n→s) + rank_u(s)), and just work/speed at an exit
    node. Dispatching in descending rank keeps the critical path moving first.
    """
    ix, order = checked_index(dag)
    return rank_nodes(ix, order, transfer_s, speed)


def critical_path(
    dag: Dag,
    transfer_s: Callable[[float], float] = zero_transfer,
    speed: float = 1.0,
) -> tuple[tuple[int, ...], float]:
    """The longest entry-to-exit path (work plus transfers) and its length in seconds.

    It starts at the entry node of greatest upward rank and at each step takes
    the successor that set the current node's rank, so its length is exactly
    that entry's rank. Ties go to the smaller id. An empty graph has the empty
    path of length 0.
    """
    ix, order = checked_index(dag)
    rank = rank_nodes(ix, order, transfer_s, speed)
    return _follow_critical(ix, rank, transfer_s)


@dataclass(frozen=True)
class DagPlan:
    """Everything the shell precomputes for a job when it arrives.

    ``rank`` orders ready tasks (highest first); ``critical`` marks the tasks a
    dispatcher should send to its fastest agent; ``cp_length_s`` is the
    job's makespan with unlimited agents of the planning speed, the yardstick
    for its slowdown; ``total_work_s`` is its demand on the fleet at speed 1.
    """

    order: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]
    rank: Mapping[int, float]
    critical_path: tuple[int, ...]
    critical: frozenset[int]
    cp_length_s: float
    total_work_s: float
    # Adjacency built while planning, reused by DagProgress; None for a plan
    # constructed by hand, in which case DagProgress rebuilds it from the Dag.
    _index: DagIndex | None = field(default=None, repr=False, compare=False)


def plan_dag(
    dag: Dag,
    transfer_s: Callable[[float], float] = zero_transfer,
    speed: float = 1.0,
) -> DagPlan:
    """Validate *dag* and compute its order, levels, ranks and critical path in one pass.

    The simulator calls this once per arriving job, so the adjacency lists are
    built once and shared by every step (and kept for :class:`DagProgress`).
    """
    ix, order = checked_index(dag)
    rank = rank_nodes(ix, order, transfer_s, speed)
    path, length = _follow_critical(ix, rank, transfer_s)
    return DagPlan(
        order=tuple(order),
        groups=_levels(ix, order),
        rank=rank,
        critical_path=path,
        critical=frozenset(path),
        cp_length_s=length,
        total_work_s=math.fsum(ix.work.values()),
        _index=ix,
    )


def work_bound_s(dag: Dag, plan: DagPlan, speed: float = 1.0) -> float:
    """``plan_dag(dag, speed=speed).cp_length_s`` from *plan*, made with transfers: its index
    and order, the ranks again without them (a second ``plan_dag`` re-validated the graph)."""
    known = plan._index
    ix, order = checked_index(dag) if known is None else (known, list(plan.order))
    if not ix.ids:
        return 0.0
    rank = rank_nodes(ix, order, zero_transfer, speed)
    return max(rank[nid] for nid in ix.ids if not ix.pred[nid])  # the walk starts at the top


class DagProgress:
    """Which tasks of a running job may start, as tasks finish.

    The shell asks :meth:`ready` once when the job starts and dispatches what
    it gets; each time a task finishes it calls :meth:`complete` and
    dispatches the tasks that returns. Both lists come highest upward rank
    first (ties by id), so a shell that dispatches in list order serves the
    critical path first. A task is released exactly once, and only after all
    of its predecessors have completed.
    """

    __slots__ = ("_completed", "_dag", "_ix", "_missing", "_plan", "_ready")

    def __init__(self, plan: DagPlan, dag: Dag) -> None:
        ix = plan._index if plan._index is not None else _index(dag)
        if len(ix.ids) != len(dag.nodes) or len(plan.rank) != len(dag.nodes):
            raise ValueError(f"plan does not belong to dag {dag.name!r}")
        self._plan = plan
        self._dag = dag
        self._ix = ix
        self._missing: dict[int, int] = {nid: len(ps) for nid, ps in ix.pred.items()}
        self._ready: set[int] = {nid for nid, k in self._missing.items() if k == 0}
        self._completed: set[int] = set()

    def _by_rank(self, nodes: list[int] | set[int]) -> list[int]:
        rank = self._plan.rank
        return sorted(nodes, key=lambda n: (-rank[n], n))

    def ready(self) -> list[int]:
        """Released tasks not yet completed, highest rank first.

        At the start these are the entry nodes.
        """
        return self._by_rank(self._ready)

    def complete(self, node_id: int) -> list[int]:
        """Mark *node_id* done and return the successors it released, highest rank first.

        Raises ValueError for an unknown node, one already completed, or one
        not yet released — each is a bookkeeping bug in the caller.
        """
        if node_id not in self._missing:
            raise ValueError(f"dag {self._dag.name!r}: unknown node {node_id}")
        if node_id in self._completed:
            raise ValueError(f"dag {self._dag.name!r}: node {node_id} completed twice")
        if node_id not in self._ready:
            raise ValueError(
                f"dag {self._dag.name!r}: node {node_id} completed before it was ready"
            )
        self._ready.discard(node_id)
        self._completed.add(node_id)
        released: list[int] = []
        missing = self._missing
        for dst, _mb in self._ix.succ[node_id]:
            left = missing[dst] - 1
            missing[dst] = left
            if left == 0:
                released.append(dst)
        self._ready.update(released)
        return self._by_rank(released)

    @property
    def done(self) -> bool:
        """True once every task has completed."""
        return len(self._completed) == len(self._ix.ids)

    @property
    def n_completed(self) -> int:
        """How many tasks have completed so far."""
        return len(self._completed)

    def released(self, node_id: int) -> bool:
        """Whether every predecessor of *node_id* has completed (it may run, or has run)."""
        return self._missing[node_id] == 0

    def is_critical(self, node_id: int) -> bool:
        """Whether *node_id* lies on the plan's critical path."""
        return node_id in self._plan.critical

    def predecessors(self, node_id: int) -> tuple[tuple[int, float], ...]:
        """(predecessor id, data_mb) pairs whose outputs *node_id* reads, in edge order."""
        return tuple(self._ix.pred[node_id])

    def successors(self, node_id: int) -> tuple[tuple[int, float], ...]:
        """(successor id, data_mb) pairs that read *node_id*'s output, in edge order."""
        return tuple(self._ix.succ[node_id])


# --------------------------------------------------------------------------------------
# Bounds (the schedules themselves live in sim.policies.dag_schedule)
# --------------------------------------------------------------------------------------


def makespan_lower_bound(dag: Dag, n_agents: int, speed: float = 1.0) -> float:
    """No schedule on *n_agents* agents of at most *speed* can finish sooner than this.

    Two bounds, whichever binds: the critical path without any transfer
    (dependencies force it even with unlimited agents), and the total work
    spread perfectly over all agents.
    """
    if n_agents < 1:
        raise ValueError(f"n_agents must be at least 1, got {n_agents}")
    ix, order = checked_index(dag)
    rank = rank_nodes(ix, order, zero_transfer, speed)
    cp = max(rank.values(), default=0.0)
    return max(cp, math.fsum(ix.work.values()) / (n_agents * speed))
