"""What every balancing strategy keeps per agent, and the indexes several share.

:class:`Member` is one agent's membership of one pool, with the fields of every
strategy on it; :class:`SpeedIndex` finds the fastest agent with room (critical
tasks, whatever the strategy); :class:`LoadBuckets` groups agents with room by
load (least connections, and affinity's keyless tasks). They live apart from
the strategies so that each strategy module holds only its own pick.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import OrderedDict
from collections.abc import Callable

from sim.policies.types import AgentInfo

__all__ = ["LoadBuckets", "Member", "SpeedIndex", "remove_sorted"]


class Member:
    """One agent's membership of one pool.

    A fresh record is made on every join, and ``seq`` (a balancer-wide join
    counter) tells a record apart from an earlier one for the same id. That is
    what lets the lazy heaps (the speed index, the weighted pool) recognise
    entries left behind by an agent that has since left and re-joined. The
    strategy-specific fields are all kept here, rather than in side dicts,
    because attribute access on a slotted object is the cheapest lookup
    Python has.
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


def remove_sorted(values: list[int], value: int) -> None:
    """Delete *value* from the sorted list *values* (it must be there)."""
    index = bisect.bisect_left(values, value)
    if index == len(values) or values[index] != value:
        raise KeyError(value)
    del values[index]


class SpeedIndex:
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

    def __init__(self, by_seq: dict[int, Member]) -> None:
        self.by_seq = by_seq
        self.order: list[float] = []
        self.count: dict[float, int] = {}
        self.heaps: dict[float, list[int]] = {}

    def joined(self, member: Member) -> None:
        speed = member.info.speed
        if speed not in self.count:
            self.count[speed] = 0
            self.heaps[speed] = []
            self.order.append(speed)
            self.order.sort(reverse=True)
        self.count[speed] += 1
        if member.has_room:
            self.gained_room(member)

    def left(self, member: Member) -> None:
        speed = member.info.speed
        self.count[speed] -= 1
        if self.count[speed] == 0:
            del self.count[speed]
            del self.heaps[speed]
            self.order.remove(speed)

    def gained_room(self, member: Member) -> None:
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

    def fastest(self) -> Member:
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


class LoadBuckets:
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
        self.buckets: dict[int, OrderedDict[str, Member]] = {}

    def add(self, member: Member) -> None:
        level = member.load
        bucket = self.buckets.get(level)
        if bucket is None:
            bucket = self.buckets[level] = OrderedDict()
            bisect.insort(self.levels, level)
        bucket[member.agent_id] = member

    def discard(self, member: Member, level: int) -> None:
        bucket = self.buckets[level]
        del bucket[member.agent_id]
        if not bucket:
            del self.buckets[level]
            remove_sorted(self.levels, level)

    def moved(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        if had_room:
            self.discard(member, old)
        if has_room:
            self.add(member)

    def least(self) -> Member:
        return next(iter(self.buckets[self.levels[0]].values()))

    def reorder(self, reached: Callable[[str], float]) -> None:
        """Put each level's agents in the order they reached it (*reached*: when; ties and
        unknowns keep their current order)."""
        for level, bucket in self.buckets.items():
            ordered = sorted(bucket.items(), key=lambda item: reached(item[0]))
            self.buckets[level] = OrderedDict(ordered)
