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

    def set_load(self, agent_id: str, load: int) -> None:
        """``Pool.set_load`` with the bucket move written in.

        Every dispatch and every slot that finds no queued work changes one
        agent's load, so this is the balancer's hottest call; the base class's
        two hook calls per change were a tenth of its cost. Same books, same
        order: the room count and speed index first, then the buckets.
        """
        member = self.members[agent_id]
        old = member.load
        if load == old:
            return
        member.load = load
        self.total_load += load - old
        capacity = member.capacity
        buckets = self.buckets
        if old < capacity:
            if load >= capacity:
                self.n_room -= 1
            buckets.discard(member, old)
        elif load < capacity:
            self.n_room += 1
            self.speeds.gained_room(member)
        if load < capacity:
            buckets.add(member)

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
