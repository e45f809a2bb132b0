"""Load balancers: which specialist of a pool gets the next task.

A zone coordinator owns one balancer per fleet and asks it, for every task it
dispatches, which agent of the task's *pool* (the agents that joined with the
task's zone and category) should take it. Five strategies are offered because
the capacity-planning question is often "which one?": ``round_robin``,
``least_connections``, ``weighted``, ``affinity`` and ``power_of_two``.

The balancer never sees a clock, a queue or a network. A *shell* (the SimPy
model or the live adapter) feeds it observations and acts on its answers, and
the contract between the two is:

* ``agent_joined`` makes an agent eligible with nothing in flight;
  ``agent_left`` makes it ineligible until it joins again. Both are
  idempotent-friendly: joining an id that is already present is a leave
  followed by a join, leaving an unknown id does nothing.
* ``load_changed(agent_id, n)`` reports the number of tasks the agent now
  holds. Reports about agents that have left are ignored, because a draining
  agent keeps finishing the tasks it held.
* ``choose`` only *reads* loads. After a successful ``choose`` the shell must
  call ``load_changed(agent, in_flight + 1)`` before the next ``choose``, and
  ``load_changed`` again when the task ends. ``choose`` may advance the
  strategy's own bookkeeping (the round-robin cursor, the stride pass value,
  the random stream), so it must be called only for a task that will really be
  dispatched when an agent is returned.
* ``choose`` returns ``None`` exactly when no agent of the pool is below its
  capacity; the task then stays queued. It never returns an agent that left,
  belongs to another pool, or is at capacity.
* A task with ``critical=True`` (on a DAG's critical path) goes to the fastest
  agent with room, ties broken by join order, whatever the strategy; such a
  choice leaves the strategy's bookkeeping untouched.

Every choice is a deterministic function of the call sequence and, for
``power_of_two``, of the seed of the generator handed in. Nothing iterates a
set of strings and nothing uses the salted built-in ``hash`` of a string, so
two processes with different ``PYTHONHASHSEED`` make the same choices.

No strategy scans the pool in ``choose``: indexes are updated by
``agent_joined``, ``agent_left`` and ``load_changed`` instead, so a pool of
10,000 agents costs about what a pool of 200 does per choice.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
from array import array
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from sim.policies.types import AgentInfo, TaskInfo

__all__ = [
    "STRATEGIES",
    "AffinityBalancer",
    "LeastConnectionsBalancer",
    "LoadBalancer",
    "PowerOfTwoBalancer",
    "RoundRobinBalancer",
    "WeightedBalancer",
    "make_balancer",
]

#: Strategy names accepted by :func:`make_balancer`, in the order the spec lists them.
STRATEGIES: tuple[str, ...] = (
    "round_robin",
    "least_connections",
    "weighted",
    "affinity",
    "power_of_two",
)

_MASK64 = (1 << 64) - 1


class LoadBalancer(Protocol):
    """What a zone coordinator needs from a load-balancing policy.

    See the module docstring for the contract with the shell; in short,
    ``choose`` reads loads and the shell reports every change of an agent's
    in-flight count through ``load_changed``.
    """

    def agent_joined(self, agent: AgentInfo) -> None:
        """Make *agent* eligible for its (zone, category) pool with nothing in flight."""
        ...

    def agent_left(self, agent_id: str) -> None:
        """Make the agent ineligible (offline, failed or draining) until it joins again."""
        ...

    def load_changed(self, agent_id: str, in_flight: int) -> None:
        """Record that the agent now holds *in_flight* tasks."""
        ...

    def choose(self, task: TaskInfo, now: float) -> str | None:
        """Pick an agent with room for *task*, or ``None`` to keep the task queued."""
        ...

    def choose_excluding(self, task: TaskInfo, now: float, exclude: frozenset[str]) -> str | None:
        """Like ``choose``, never returning an agent in *exclude* (a retry avoids who failed it)."""
        ...

    def has_room(self, zone: str, category: str) -> bool:
        """Whether some agent of the pool is below its capacity, in O(1)."""
        ...

    def size(self, zone: str, category: str) -> int:
        """How many agents the pool holds (joined and not left)."""
        ...


# ---------------------------------------------------------------------------
# Shared bookkeeping
# ---------------------------------------------------------------------------


class _Member:
    """One agent's membership of one pool.

    A fresh record is made on every join, and ``seq`` (a balancer-wide join
    counter) tells a record apart from an earlier one for the same id. That is
    what lets the lazy heaps below recognise entries left behind by an agent
    that has since left and re-joined. The strategy-specific fields are all
    kept here, rather than in side dicts, because attribute access on a
    slotted object is the cheapest lookup Python has.
    """

    __slots__ = (
        "agent_id",
        "capacity",
        "in_heap",
        "in_speed_heap",
        "info",
        "load",
        "pass_value",
        "room_index",
        "seq",
        "slot",
        "stride",
    )

    def __init__(self, info: AgentInfo, seq: int) -> None:
        self.info = info
        self.agent_id = info.agent_id
        self.capacity = info.capacity
        self.seq = seq
        self.load = 0
        # Weighted (stride scheduling): pass value, stride, and whether the
        # heap holds an entry matching the current pass value.
        self.pass_value = 0.0
        weight = info.weight
        self.stride = 1.0 / weight if weight > 0 else math.inf
        self.in_heap = False
        # Critical-task speed index: whether the speed heap holds an entry.
        self.in_speed_heap = False
        # Power of two: position in the array of agents with room (-1: absent).
        self.room_index = -1
        # Affinity: this record's owner number on the hash ring.
        self.slot = -1

    @property
    def has_room(self) -> bool:
        """Whether the agent may take one more task."""
        return self.load < self.capacity


def _remove_sorted(values: list[int], value: int) -> None:
    """Delete *value* from the sorted list *values* (it must be there)."""
    index = bisect.bisect_left(values, value)
    if index == len(values) or values[index] != value:
        raise KeyError(value)
    del values[index]


class _SpeedIndex:
    """Finds the fastest agent with room, for critical tasks.

    Pools hold few distinct speeds (a handful of instance types), so the index
    keeps the distinct speeds sorted fastest first and, per speed, a min-heap
    of join numbers over the agents of that speed with room; the
    earliest-joined of the fastest wins, which makes the tie-break the same
    for every strategy. Entries are removed lazily: an agent that fills up or
    leaves is popped only when it reaches the top. A flag on the member stops
    an agent from being pushed twice, so a heap holds at most one entry per
    current member plus the leftovers of departed ones, and it is compacted
    when those leftovers outnumber the members. A lookup costs O(distinct
    speeds) plus amortised O(log n).
    """

    __slots__ = ("by_seq", "count", "heaps", "order")

    def __init__(self, by_seq: dict[int, _Member]) -> None:
        self.by_seq = by_seq
        self.order: list[float] = []
        self.count: dict[float, int] = {}
        self.heaps: dict[float, list[int]] = {}

    def joined(self, member: _Member) -> None:
        speed = member.info.speed
        if speed not in self.count:
            self.count[speed] = 0
            self.heaps[speed] = []
            self.order.append(speed)
            self.order.sort(reverse=True)
        self.count[speed] += 1
        if member.has_room:
            self.gained_room(member)

    def left(self, member: _Member) -> None:
        speed = member.info.speed
        self.count[speed] -= 1
        if self.count[speed] == 0:
            del self.count[speed]
            del self.heaps[speed]
            self.order.remove(speed)

    def gained_room(self, member: _Member) -> None:
        if member.in_speed_heap:
            return
        speed = member.info.speed
        heap = self.heaps[speed]
        heapq.heappush(heap, member.seq)
        member.in_speed_heap = True
        if len(heap) > 2 * self.count[speed] + 32:
            self.heaps[speed] = self._compacted(heap)

    def _compacted(self, heap: list[int]) -> list[int]:
        kept: list[int] = []
        for seq in heap:
            member = self.by_seq.get(seq)
            if member is None:
                continue
            if member.has_room:
                kept.append(seq)
            else:
                member.in_speed_heap = False
        heapq.heapify(kept)
        return kept

    def fastest(self) -> _Member:
        by_seq = self.by_seq
        for speed in self.order:
            heap = self.heaps[speed]
            while heap:
                member = by_seq.get(heap[0])
                if member is None:
                    heapq.heappop(heap)
                    continue
                if member.load >= member.capacity:
                    heapq.heappop(heap)
                    member.in_speed_heap = False
                    continue
                return member
        raise LookupError("no agent with room (the caller checks n_room first)")


class _LoadBuckets:
    """Agents with room grouped by in-flight count, for least-connections picks.

    ``levels`` lists the non-empty loads in increasing order; it is never
    longer than the largest capacity in the pool, so keeping it sorted is
    cheap. Within a level agents are kept in arrival order (the agent that
    reached that load first is picked first), which spreads equal-load picks
    round-robin fashion instead of hammering one agent. ``OrderedDict`` is used
    rather than ``dict`` because a dict that is repeatedly emptied from the
    front makes ``next(iter(d))`` walk its deleted slots.
    """

    __slots__ = ("buckets", "levels")

    def __init__(self) -> None:
        self.levels: list[int] = []
        self.buckets: dict[int, OrderedDict[str, _Member]] = {}

    def add(self, member: _Member) -> None:
        level = member.load
        bucket = self.buckets.get(level)
        if bucket is None:
            bucket = self.buckets[level] = OrderedDict()
            bisect.insort(self.levels, level)
        bucket[member.agent_id] = member

    def discard(self, member: _Member, level: int) -> None:
        bucket = self.buckets[level]
        del bucket[member.agent_id]
        if not bucket:
            del self.buckets[level]
            _remove_sorted(self.levels, level)

    def moved(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        if had_room:
            self.discard(member, old)
        if has_room:
            self.add(member)

    def least(self) -> _Member:
        return next(iter(self.buckets[self.levels[0]].values()))


class _Pool:
    """The agents of one (zone, category) pool and the indexes over them.

    The base class keeps what every strategy needs: the members (by id, and by
    join number, which is what the heaps store because an int is the cheapest
    heap key and names one membership, not a possibly re-joined id), how many
    of them have room (so ``has_room`` is O(1)), the pool's total load, and
    the speed index for critical tasks. Subclasses add their own index through the
    ``_joined`` / ``_left`` / ``_load_changed`` hooks and implement ``pick``,
    which is only called when some member has room.
    """

    __slots__ = ("by_seq", "members", "n_room", "speeds", "total_load")

    def __init__(self) -> None:
        self.members: dict[str, _Member] = {}
        self.by_seq: dict[int, _Member] = {}
        self.n_room = 0
        self.total_load = 0
        self.speeds = _SpeedIndex(self.by_seq)

    def join(self, member: _Member) -> None:
        self.members[member.agent_id] = member
        self.by_seq[member.seq] = member
        if member.has_room:
            self.n_room += 1
        self.speeds.joined(member)
        self._joined(member)

    def leave(self, agent_id: str) -> None:
        member = self.members.pop(agent_id)
        del self.by_seq[member.seq]
        if member.has_room:
            self.n_room -= 1
        self.total_load -= member.load
        self.speeds.left(member)
        self._left(member)

    def set_load(self, agent_id: str, load: int) -> None:
        member = self.members[agent_id]
        old = member.load
        if load == old:
            return
        member.load = load
        self.total_load += load - old
        had_room = old < member.capacity
        has_room = load < member.capacity
        if has_room and not had_room:
            self.n_room += 1
            self.speeds.gained_room(member)
        elif had_room and not has_room:
            self.n_room -= 1
        self._load_changed(member, old, had_room, has_room)

    def _joined(self, member: _Member) -> None:
        """Index a member that has just joined with load 0."""

    def _left(self, member: _Member) -> None:
        """Drop a member (already removed from ``members``) from the index."""

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        """Re-index a member whose load went from *old* to ``member.load``."""

    def pick(self, task: TaskInfo) -> _Member:
        """Choose a member with room for a non-critical task."""
        raise NotImplementedError


P = TypeVar("P", bound=_Pool)


class _Balancer(Generic[P]):
    """Routing of calls to pools; the strategy lives in the pool class.

    Keeping one index per pool (rather than one per balancer filtered by zone
    and category) is what keeps ``choose`` independent of the fleet size: the
    task's pool is found with one dict lookup and only that pool is touched.
    """

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str], P] = {}
        self._where: dict[str, P] = {}
        self._seq = 0

    def _new_pool(self) -> P:
        raise NotImplementedError

    def agent_joined(self, agent: AgentInfo) -> None:
        """Make *agent* eligible with nothing in flight.

        An id that is already present is treated as leaving first, so a
        re-announcement (possibly with a new zone, category or capacity) is
        safe and its in-flight count restarts at zero, as the contract says.
        """
        if agent.agent_id in self._where:
            self.agent_left(agent.agent_id)
        key = (agent.zone, agent.category)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._new_pool()
        self._seq += 1
        pool.join(_Member(agent, self._seq))
        self._where[agent.agent_id] = pool

    def agent_left(self, agent_id: str) -> None:
        """Make the agent ineligible until it joins again; unknown ids are ignored."""
        pool = self._where.pop(agent_id, None)
        if pool is not None:
            pool.leave(agent_id)

    def load_changed(self, agent_id: str, in_flight: int) -> None:
        """Record the agent's current number of tasks held.

        Reports about agents that are not (or no longer) members are ignored:
        a draining or failed agent's tasks still end after it has left.
        """
        if in_flight < 0:
            raise ValueError(f"in_flight must be >= 0, got {in_flight} for {agent_id!r}")
        pool = self._where.get(agent_id)
        if pool is not None:
            pool.set_load(agent_id, in_flight)

    def choose(self, task: TaskInfo, now: float) -> str | None:
        """Pick an agent with room for *task*, or ``None`` if the pool has none.

        Loads are not changed here: the shell reports the dispatch with
        ``load_changed(agent, in_flight + 1)`` before choosing again.
        """
        pool = self._pools.get((task.zone, task.category))
        if pool is None or pool.n_room == 0:
            return None
        if task.critical:
            return pool.speeds.fastest().agent_id
        return pool.pick(task).agent_id

    def choose_excluding(self, task: TaskInfo, now: float, exclude: frozenset[str]) -> str | None:
        """Pick as ``choose`` would among the agents not in *exclude*.

        Excluded picks are marked full for the moment and restored before
        returning, so the strategy's own order decides among the rest and the
        pool is left exactly as loaded as it was. Retries are rare next to
        first dispatches, so the loop's cost (one pass per excluded pick) does
        not touch the hot path.
        """
        if not exclude:
            return self.choose(task, now)
        pool = self._pools.get((task.zone, task.category))
        if pool is None:
            return None
        saved: list[tuple[str, int]] = []
        try:
            while True:
                choice = self.choose(task, now)
                if choice is None or choice not in exclude:
                    return choice
                member = pool.members[choice]
                saved.append((choice, member.load))
                pool.set_load(choice, member.capacity)
        finally:
            for agent_id, load in reversed(saved):
                pool.set_load(agent_id, load)

    def has_room(self, zone: str, category: str) -> bool:
        """Whether some agent of the pool is below its capacity (O(1))."""
        pool = self._pools.get((zone, category))
        return pool is not None and pool.n_room > 0

    def size(self, zone: str, category: str) -> int:
        """How many agents the pool holds."""
        pool = self._pools.get((zone, category))
        return 0 if pool is None else len(pool.members)


# ---------------------------------------------------------------------------
# Round robin
# ---------------------------------------------------------------------------


class _RoundRobinPool(_Pool):
    """Members with room as a sorted list of join numbers, plus a cursor.

    The next pick is the first member with room whose join number is after
    the cursor, wrapping around: a binary search, O(log n). Full agents are
    simply absent from the list, so they are skipped without being visited.
    Insertions and removals are a memmove of the list, which at 10,000
    agents is a few microseconds and happens in ``load_changed``, not in
    ``choose``.
    """

    __slots__ = ("cursor", "room_seqs")

    def __init__(self) -> None:
        super().__init__()
        self.room_seqs: list[int] = []
        self.cursor = -1

    def _joined(self, member: _Member) -> None:
        if member.has_room:
            bisect.insort(self.room_seqs, member.seq)

    def _left(self, member: _Member) -> None:
        if member.has_room:
            _remove_sorted(self.room_seqs, member.seq)

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        if has_room and not had_room:
            bisect.insort(self.room_seqs, member.seq)
        elif had_room and not has_room:
            _remove_sorted(self.room_seqs, member.seq)

    def pick(self, task: TaskInfo) -> _Member:
        room = self.room_seqs
        index = bisect.bisect_right(room, self.cursor)
        if index == len(room):
            index = 0
        self.cursor = room[index]
        return self.by_seq[self.cursor]


class RoundRobinBalancer(_Balancer[_RoundRobinPool]):
    """Each agent of the pool in turn, in join order, skipping agents at capacity.

    The simplest fair policy and the baseline the others are compared with.
    It ignores speed and load (beyond capacity), so a slow agent receives as
    many tasks as a fast one as long as it has a free slot. ``choose`` is
    O(log n).
    """

    def _new_pool(self) -> _RoundRobinPool:
        return _RoundRobinPool()


# ---------------------------------------------------------------------------
# Least connections
# ---------------------------------------------------------------------------


class _LeastConnectionsPool(_Pool):
    """Agents with room bucketed by load; the pick is the head of the lowest bucket."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        super().__init__()
        self.buckets = _LoadBuckets()

    def _joined(self, member: _Member) -> None:
        if member.has_room:
            self.buckets.add(member)

    def _left(self, member: _Member) -> None:
        if member.has_room:
            self.buckets.discard(member, member.load)

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        self.buckets.moved(member, old, had_room, has_room)

    def pick(self, task: TaskInfo) -> _Member:
        return self.buckets.least()


class LeastConnectionsBalancer(_Balancer[_LeastConnectionsPool]):
    """The agent with room holding the fewest tasks.

    Among agents with the same load, the one that reached that load first is
    picked, so idle agents are used in rotation. Loads are absolute counts,
    not fractions of capacity, as in the classic policy. ``choose`` is O(1):
    the lowest non-empty load level is kept at the front of a short sorted
    list (at most one entry per possible load value).
    """

    def _new_pool(self) -> _LeastConnectionsPool:
        return _LeastConnectionsPool()


# ---------------------------------------------------------------------------
# Weighted (stride scheduling)
# ---------------------------------------------------------------------------


class _WeightedPool(_Pool):
    """Stride scheduling over the agents with room.

    Each member has a pass value; the pick is the member with room and the
    smallest pass (ties: earliest joined), whose pass then grows by its
    stride ``1 / weight``. Over any run of picks each agent's share is its
    weight's share to within ``weight / min_weight`` picks, because all pass
    values stay within one largest stride of each other.

    The min-heap is lazy: an entry ``(pass, seq)`` is dead if that membership
    ended (``seq`` unknown) or the member has another pass value now; an entry
    of a full member is popped when it surfaces and pushed back when the
    member regains room. ``vtime`` is the pass value of the latest pick;
    newcomers start there, and an agent that regains room after a long time
    full is raised to it, so neither gets a burst of catch-up picks.
    """

    __slots__ = ("heap", "vtime")

    def __init__(self) -> None:
        super().__init__()
        self.heap: list[tuple[float, int]] = []
        self.vtime = 0.0

    def _push(self, member: _Member) -> None:
        heapq.heappush(self.heap, (member.pass_value, member.seq))
        member.in_heap = True
        if len(self.heap) > 2 * len(self.members) + 32:
            self._compact()

    def _compact(self) -> None:
        kept: list[tuple[float, int]] = []
        for entry in self.heap:
            member = self.by_seq.get(entry[1])
            if member is None or member.pass_value != entry[0]:
                continue
            if member.has_room:
                kept.append(entry)
            else:
                member.in_heap = False
        heapq.heapify(kept)
        self.heap = kept

    def _joined(self, member: _Member) -> None:
        member.pass_value = self.vtime
        if member.has_room:
            self._push(member)

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        if has_room and not had_room:
            if member.pass_value < self.vtime:
                member.pass_value = self.vtime
                member.in_heap = False  # the old entry is dead: its pass differs
            if not member.in_heap:
                self._push(member)

    def pick(self, task: TaskInfo) -> _Member:
        heap = self.heap
        by_seq = self.by_seq
        while True:
            pass_value, seq = heap[0]
            member = by_seq.get(seq)
            if member is None or member.pass_value != pass_value:
                heapq.heappop(heap)
                continue
            if member.load >= member.capacity:
                heapq.heappop(heap)
                member.in_heap = False
                continue
            break
        if math.isfinite(pass_value) and pass_value > self.vtime:
            self.vtime = pass_value
        member.pass_value = pass_value + member.stride
        heapq.heapreplace(heap, (member.pass_value, seq))
        return member


class WeightedBalancer(_Balancer[_WeightedPool]):
    """Picks in proportion to ``AgentInfo.weight`` (speed times slots).

    Deterministic weighted round robin by stride scheduling, so the shares
    are exact over short runs instead of only on average, as with random
    weighted choice. Agents at capacity are skipped without being charged.
    ``choose`` is amortised O(log n) (a heap replace, plus popping dead
    entries, each of which was pushed once).
    """

    def _new_pool(self) -> _WeightedPool:
        return _WeightedPool()


# ---------------------------------------------------------------------------
# Affinity (consistent hashing with bounded loads)
# ---------------------------------------------------------------------------

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: a stable 64-bit integer hash (no per-process salt)."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * _MIX1) & _MASK64
    value = ((value ^ (value >> 27)) * _MIX2) & _MASK64
    return value ^ (value >> 31)


def _mix64_array(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """:func:`_mix64` over an array; uint64 arithmetic wraps modulo 2**64 as needed."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(_MIX1)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(_MIX2)
    return values ^ (values >> np.uint64(31))


def _key_position(key: int) -> int:
    """Where an affinity key sits on the ring, in [0, 2**63)."""
    return _mix64(key + _GOLDEN) >> 1


def _vnode_positions(agent_ids: list[str], vnodes: int) -> npt.NDArray[np.int64]:
    """The ring positions of the agents' virtual nodes, in [0, 2**63), one row per agent.

    An agent's positions are the first *vnodes* outputs of a SplitMix64 stream
    seeded with a BLAKE2b digest of its id, so they depend on the id alone: an
    agent that leaves and re-joins gets its keys back, and every process
    agrees.
    """
    seeds = np.array(
        [
            int.from_bytes(hashlib.blake2b(a.encode("utf-8"), digest_size=8).digest(), "little")
            for a in agent_ids
        ],
        dtype=np.uint64,
    )
    steps = np.arange(1, vnodes + 1, dtype=np.uint64) * np.uint64(_GOLDEN)
    return (_mix64_array(seeds[:, None] + steps[None, :]) >> np.uint64(1)).astype(np.int64)


class _AffinityPool(_Pool):
    """A hash ring with bounded loads, plus load buckets for keyless tasks.

    The ring is kept as two numpy arrays (positions, owner slot) that are
    merged incrementally when agents join or leave, and mirrored for lookups
    as two ``array('q')``, because ``bisect`` and indexing on those are
    several times cheaper than numpy scalar calls, copying them from numpy is
    a memcpy, and flat 64-bit arrays (rather than lists of int objects) keep
    a large ring's lookups to one cache miss each. An owner slot indexes
    ``slots``, which holds every membership this pool has had; departed ones
    stay there but are no longer on the ring. A table of bucket starts narrows the
    binary search to the few points of one bucket, so finding a key's place
    is O(1) expected rather than O(log(n * vnodes)) cache misses. Membership
    changes are applied lazily, on the next keyed ``pick``, so a burst of
    joins costs one merge.
    """

    __slots__ = (
        "buckets",
        "c",
        "owners",
        "pending_add",
        "pending_remove",
        "positions",
        "ring_owners",
        "ring_positions",
        "ring_shift",
        "ring_table",
        "slots",
        "vnodes",
    )

    def __init__(self, c: float, vnodes: int) -> None:
        super().__init__()
        self.c = c
        self.vnodes = vnodes
        self.buckets = _LoadBuckets()
        self.slots: list[_Member] = []
        self.positions: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.owners: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.ring_positions: array[int] = array("q")
        self.ring_owners: array[int] = array("q")
        self.ring_table: array[int] = array("q", [0, 0])
        self.ring_shift = 63
        self.pending_add: list[int] = []
        self.pending_remove: list[int] = []

    def _joined(self, member: _Member) -> None:
        member.slot = len(self.slots)
        self.slots.append(member)
        self.pending_add.append(member.slot)
        if member.has_room:
            self.buckets.add(member)

    def _left(self, member: _Member) -> None:
        self.pending_remove.append(member.slot)
        if member.has_room:
            self.buckets.discard(member, member.load)

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        self.buckets.moved(member, old, had_room, has_room)

    def _sync(self) -> None:
        positions, owners = self.positions, self.owners
        if self.pending_remove:
            gone = np.isin(owners, np.array(self.pending_remove, dtype=np.int64))
            positions, owners = positions[~gone], owners[~gone]
            self.pending_remove.clear()
        # Members that joined and left again since the last sync are skipped.
        joined = [
            member
            for member in (self.slots[slot] for slot in self.pending_add)
            if self.by_seq.get(member.seq) is member
        ]
        self.pending_add.clear()
        if joined:
            new_positions = _vnode_positions(
                [member.agent_id for member in joined], self.vnodes
            ).ravel()
            new_owners = np.repeat(
                np.array([member.slot for member in joined], dtype=np.int64), self.vnodes
            )
            order = np.argsort(new_positions, kind="stable")
            new_positions, new_owners = new_positions[order], new_owners[order]
            at = np.searchsorted(positions, new_positions, side="right")
            positions = np.insert(positions, at, new_positions)
            owners = np.insert(owners, at, new_owners)
        self.positions, self.owners = positions, owners
        self.ring_positions = array("q", positions.tobytes())
        # Positions are uniform hashes, so cutting the ring into about one
        # bucket per point and recording where each bucket starts turns the
        # binary search over the whole ring into one over a bucket of ~1 point.
        bits = max(len(positions).bit_length() - 1, 0)
        self.ring_shift = 63 - bits
        per_bucket = np.bincount(positions >> np.int64(self.ring_shift), minlength=1 << bits)
        table = np.zeros(len(per_bucket) + 1, dtype=np.int64)
        np.cumsum(per_bucket, out=table[1:])
        self.ring_table = array("q", table.tobytes())
        self.ring_owners = array("q", owners.tobytes())

    def pick(self, task: TaskInfo) -> _Member:
        least = self.buckets.least()
        key = task.affinity_key
        if key is None:
            return least
        bound = math.ceil(self.c * (self.total_load + 1) / len(self.members))
        if least.load >= bound:
            # Mixed capacities can leave every agent under the bound full;
            # the least loaded agent with room is the least bad choice.
            return least
        if self.pending_add or self.pending_remove:
            self._sync()
        owners = self.ring_owners
        slots = self.slots
        position = _key_position(key)
        bucket = position >> self.ring_shift
        table = self.ring_table
        index = bisect.bisect_left(self.ring_positions, position, table[bucket], table[bucket + 1])
        end = len(owners)
        # Terminates: ``least`` is on the ring, has room and is under the bound.
        while True:
            if index == end:
                index = 0
            member = slots[owners[index]]
            if member.load < bound and member.load < member.capacity:
                return member
            index += 1


class AffinityBalancer(_Balancer[_AffinityPool]):
    """Keeps tasks with the same ``affinity_key`` on one agent, within a load bound.

    Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
    2018): each agent owns ``vnodes`` points of a 63-bit ring, a key goes to
    the owner of the first point clockwise from the key's hash whose agent
    holds fewer than ``ceil((1 + epsilon) * (total_in_flight + 1) / n)`` tasks
    and is below capacity. A key therefore sticks to its agent until that
    agent is overloaded relative to the pool or leaves, and a join or leave
    moves only the keys of the agents concerned. No agent can exceed the
    bound, which is what plain consistent hashing cannot promise under skewed
    keys. Tasks without a key are placed as by least connections.

    ``choose`` costs a binary search plus a walk whose expected length is
    bounded by a function of ``epsilon`` alone (O(1/epsilon**2) bins), not of
    the pool size. The first keyed choice after membership changes pays for
    merging the ring: O(n * vnodes) array work, in numpy.
    """

    def __init__(self, *, epsilon: float = 0.25, vnodes: int = 64) -> None:
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, got {vnodes}")
        super().__init__()
        self._c = 1.0 + epsilon
        self._vnodes = vnodes

    def _new_pool(self) -> _AffinityPool:
        return _AffinityPool(self._c, self._vnodes)


# ---------------------------------------------------------------------------
# Power of two choices
# ---------------------------------------------------------------------------


class _Uniforms:
    """Uniform floats in [0, 1) from a numpy generator, drawn in batches.

    One ``Generator.random`` call per choice would cost more than the rest of
    ``choose``; batching keeps the draw O(1) and cheap while the sequence
    stays a pure function of the seed and the number of draws.
    """

    __slots__ = ("batch", "buffer", "position", "rng")

    def __init__(self, rng: np.random.Generator, batch: int = 1024) -> None:
        self.rng = rng
        self.batch = batch
        self.buffer: list[float] = []
        self.position = 0

    def draw(self) -> float:
        if self.position == len(self.buffer):
            self.buffer = self.rng.random(self.batch).tolist()
            self.position = 0
        value = self.buffer[self.position]
        self.position += 1
        return value


class _PowerOfTwoPool(_Pool):
    """Agents with room in an array, so two of them can be sampled in O(1).

    An agent's index in the array is stored on its member record, so removal
    is a swap with the last element.
    """

    __slots__ = ("room", "uniforms")

    def __init__(self, uniforms: _Uniforms) -> None:
        super().__init__()
        self.uniforms = uniforms
        self.room: list[_Member] = []

    def _add(self, member: _Member) -> None:
        member.room_index = len(self.room)
        self.room.append(member)

    def _remove(self, member: _Member) -> None:
        index = member.room_index
        last = self.room.pop()
        if last is not member:
            self.room[index] = last
            last.room_index = index
        member.room_index = -1

    def _joined(self, member: _Member) -> None:
        if member.has_room:
            self._add(member)

    def _left(self, member: _Member) -> None:
        if member.room_index >= 0:
            self._remove(member)

    def _load_changed(self, member: _Member, old: int, had_room: bool, has_room: bool) -> None:
        if has_room and not had_room:
            self._add(member)
        elif had_room and not has_room:
            self._remove(member)

    def pick(self, task: TaskInfo) -> _Member:
        room = self.room
        count = len(room)
        if count == 1:
            return room[0]
        # Two distinct indices: the second is drawn from the count - 1 others.
        first = min(int(self.uniforms.draw() * count), count - 1)
        second = min(int(self.uniforms.draw() * (count - 1)), count - 2)
        if second >= first:
            second += 1
        a, b = room[first], room[second]
        return b if b.load < a.load else a


class PowerOfTwoBalancer(_Balancer[_PowerOfTwoPool]):
    """The less loaded of two agents sampled at random among those with room.

    The "power of two choices" (Azar, Broder, Karlin and Upfal, 1999; Mitzenmacher,
    2001): with n tasks placed on n agents this way the maximum load is
    ln ln n / ln 2 + O(1), against about ln n / ln ln n for one random choice,
    while needing load information about only two agents, which is why it
    suits coordinators whose load view is stale or partial. Ties go to the
    first agent sampled. ``choose`` is O(1).

    Random numbers are drawn from *rng* in batches of 1024, so the generator
    should belong to the balancer alone (for example one spawned from the run's
    seed sequence) for runs to be reproducible.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self._uniforms = _Uniforms(rng)

    def _new_pool(self) -> _PowerOfTwoPool:
        return _PowerOfTwoPool(self._uniforms)


# ---------------------------------------------------------------------------
# Factory
# ---------------------------------------------------------------------------


def make_balancer(
    strategy: str, rng: np.random.Generator, *, epsilon: float = 0.25, vnodes: int = 64
) -> LoadBalancer:
    """Build the balancer named by the scenario's ``strategy`` string.

    *rng* is used only by ``power_of_two``; *epsilon* and *vnodes* only by
    ``affinity``. They are accepted for every strategy so a shell can build
    any balancer with one call.
    """
    if strategy == "round_robin":
        return RoundRobinBalancer()
    if strategy == "least_connections":
        return LeastConnectionsBalancer()
    if strategy == "weighted":
        return WeightedBalancer()
    if strategy == "affinity":
        return AffinityBalancer(epsilon=epsilon, vnodes=vnodes)
    if strategy == "power_of_two":
        return PowerOfTwoBalancer(rng)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
