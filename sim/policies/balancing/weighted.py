"""Weighted: picks in proportion to speed times slots, by stride scheduling."""

from __future__ import annotations

import heapq
import math

from sim.policies.balancing.indexes import Member
from sim.policies.balancing.pool import Pool, PoolBalancer
from sim.policies.types import TaskInfo

__all__ = ["WeightedBalancer"]


class _WeightedPool(Pool):
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

    def _push(self, member: Member) -> None:
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

    def _joined(self, member: Member) -> None:
        member.pass_value = self.vtime
        if member.has_room:
            self._push(member)

    def _load_changed(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        if has_room and not had_room:
            if member.pass_value < self.vtime:
                member.pass_value = self.vtime
                member.in_heap = False  # the old entry is dead: its pass differs
            if not member.in_heap:
                self._push(member)

    def pick(self, task: TaskInfo) -> Member:
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


class WeightedBalancer(PoolBalancer[_WeightedPool]):
    """Picks in proportion to ``AgentInfo.weight`` (speed times slots).

    Deterministic weighted round robin by stride scheduling, so the shares
    are exact over short runs instead of only on average, as with random
    weighted choice. Agents at capacity are skipped without being charged.
    ``choose`` is amortised O(log n) (a heap replace, plus popping dead
    entries, each of which was pushed once).
    """

    def _new_pool(self) -> _WeightedPool:
        return _WeightedPool()
