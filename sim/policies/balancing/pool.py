"""The pool and balancer base classes every strategy extends.

A :class:`Pool` holds the agents of one (zone, category) and what every
strategy needs over them; a strategy subclasses it with its own index and
``pick``. A :class:`PoolBalancer` routes the contract's calls to the task's
pool, so that a strategy module is only its pool class and a thin balancer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from sim.policies.balancing.indexes import Member, SpeedIndex
from sim.policies.types import AgentInfo, TaskInfo

__all__ = ["Pool", "PoolBalancer"]


class Pool:
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
        self.members: dict[str, Member] = {}
        self.by_seq: dict[int, Member] = {}
        self.n_room = 0
        self.total_load = 0
        self.speeds = SpeedIndex(self.by_seq)

    def join(self, member: Member) -> None:
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

    def _joined(self, member: Member) -> None:
        """Index a member that has just joined with load 0."""

    def _left(self, member: Member) -> None:
        """Drop a member (already removed from ``members``) from the index."""

    def _load_changed(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        """Re-index a member whose load went from *old* to ``member.load``."""

    def pick(self, task: TaskInfo) -> Member:
        """Choose a member with room for a non-critical task."""
        raise NotImplementedError

    def restore_order(self, reached: Callable[[str], float]) -> None:
        """Put members of equal load back in the order they reached it (``PoolBalancer``);
        a strategy that keeps no such order has nothing to restore."""


P = TypeVar("P", bound=Pool)


class PoolBalancer(Generic[P]):
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
        pool.join(Member(agent, self._seq))
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

    def restore_order(self, reached: Callable[[str], float]) -> None:
        """A rebuilt balancer (a live takeover: agents joined by id, then what each holds
        adopted) puts agents of equal load back in the order they reached it, the order a
        balancer that never restarted keeps. *reached(agent)* says when (``-inf``: never
        changed since joining); ties keep the join order. The speed index, by join order
        among equal speeds, is not touched: joining by id rebuilt it."""
        for pool in self._pools.values():
            pool.restore_order(reached)

    def has_room(self, zone: str, category: str) -> bool:
        """Whether some agent of the pool is below its capacity (O(1))."""
        pool = self._pools.get((zone, category))
        return pool is not None and pool.n_room > 0

    def size(self, zone: str, category: str) -> int:
        """How many agents the pool holds."""
        pool = self._pools.get((zone, category))
        return 0 if pool is None else len(pool.members)
