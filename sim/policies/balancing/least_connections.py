"""Least connections: the agent with room holding the fewest tasks."""

from __future__ import annotations

from sim.policies.balancing.indexes import LoadBuckets, Member
from sim.policies.balancing.pool import Pool, PoolBalancer
from sim.policies.types import TaskInfo

__all__ = ["LeastConnectionsBalancer"]


class _LeastConnectionsPool(Pool):
    """Agents with room bucketed by load; the pick is the head of the lowest bucket."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        super().__init__()
        self.buckets = LoadBuckets()

    def _joined(self, member: Member) -> None:
        if member.has_room:
            self.buckets.add(member)

    def _left(self, member: Member) -> None:
        if member.has_room:
            self.buckets.discard(member, member.load)

    def _load_changed(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        self.buckets.moved(member, old, had_room, has_room)

    def pick(self, task: TaskInfo) -> Member:
        return self.buckets.least()


class LeastConnectionsBalancer(PoolBalancer[_LeastConnectionsPool]):
    """The agent with room holding the fewest tasks.

    Among agents with the same load, the one that reached that load first is
    picked, so idle agents are used in rotation. Loads are absolute counts,
    not fractions of capacity, as in the classic policy. ``choose`` is O(1):
    the lowest non-empty load level is kept at the front of a short sorted
    list (at most one entry per possible load value).
    """

    def _new_pool(self) -> _LeastConnectionsPool:
        return _LeastConnectionsPool()
