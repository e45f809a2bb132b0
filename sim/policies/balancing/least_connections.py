"""Least connections: the agent with room holding the fewest tasks."""

from __future__ import annotations

from bisect import insort
from collections import OrderedDict
from collections.abc import Callable

from sim.policies.balancing.indexes import LoadBuckets, Member, remove_sorted
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
        """``Pool.set_load`` with the bucket move written in (see :func:`_move`)."""
        _move(self, self.members[agent_id], load)

    def pick(self, task: TaskInfo) -> Member:
        return self.buckets.least()

    def restore_order(self, reached: Callable[[str], float]) -> None:
        self.buckets.reorder(reached)


def _move(pool: _LeastConnectionsPool, member: Member, load: int) -> None:
    """*member*'s load is now *load*: ``Pool.set_load`` and ``LoadBuckets.moved``, written in.

    Every dispatch and every slot that finds no queued work changes one
    agent's load, so this is the balancer's hottest path; the base class's
    hook calls and the buckets' add and discard were a fifth of its cost.
    Same books, same order: the room count and speed index first, then the
    buckets (a level emptied is dropped, a new one inserted in order; within
    a level, arrival order). The balancer's ``load_changed`` calls it directly
    (it is called per task); a test holds it equal to the base class's books.
    """
    old = member.load
    if load == old:
        return
    member.load = load
    pool.total_load += load - old
    capacity = member.capacity
    buckets = pool.buckets.buckets
    if old < capacity:
        if load >= capacity:
            pool.n_room -= 1
        bucket = buckets[old]
        del bucket[member.agent_id]
        if not bucket:
            del buckets[old]
            remove_sorted(pool.buckets.levels, old)
    elif load < capacity:
        pool.n_room += 1
        if not member.in_speed_heap:
            pool.speeds.gained_room(member)
    if load < capacity:
        target = buckets.get(load)
        if target is None:
            target = buckets[load] = OrderedDict()
            insort(pool.buckets.levels, load)
        target[member.agent_id] = member


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

    def load_changed(self, agent_id: str, in_flight: int) -> None:
        """``PoolBalancer.load_changed`` straight to the pool's move (:func:`_move`).

        The dispatch books call this once or twice per task; going through the
        pool's ``set_load`` as well cost one more call each time.
        """
        if in_flight < 0:
            raise ValueError(f"in_flight must be >= 0, got {in_flight} for {agent_id!r}")
        pool = self._where.get(agent_id)
        if pool is not None:
            _move(pool, pool.members[agent_id], in_flight)

    def choose(self, task: TaskInfo, now: float) -> str | None:
        """``PoolBalancer.choose`` with the pick (the head of the lowest level) written in."""
        pool = self._pools.get((task.zone, task.category))
        if pool is None or pool.n_room == 0:
            return None
        if task.critical:
            return pool.speeds.fastest().agent_id
        buckets = pool.buckets
        return next(iter(buckets.buckets[buckets.levels[0]]))
