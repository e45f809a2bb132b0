"""Least connections writes its bucket move into ``set_load``; the books must stay the base's.

The override exists only for speed (it is the balancer's hottest call), so
it is checked against the base class's ``set_load`` and hooks: the same
random joins, leaves and load changes drive both pools, and after every
step the room count, total load, load levels, the order within each level
(which decides ties), the pick and the fastest agent must be the same.
"""

from __future__ import annotations

import random

from sim.policies.balancing.indexes import Member
from sim.policies.balancing.least_connections import LeastConnectionsBalancer, _LeastConnectionsPool
from sim.policies.balancing.pool import Pool
from sim.policies.types import AgentInfo, TaskInfo


class _Reference(_LeastConnectionsPool):
    """The same pool through the base class's set_load and its hooks."""

    __slots__ = ()
    set_load = Pool.set_load


def _state(pool: _LeastConnectionsPool) -> tuple[object, ...]:
    levels = list(pool.buckets.levels)
    order = [list(pool.buckets.buckets[level]) for level in levels]
    task = TaskInfo(0, "C", "z")
    pick = pool.pick(task).agent_id if pool.n_room else None
    fastest = pool.speeds.fastest().agent_id if pool.n_room else None
    return pool.n_room, pool.total_load, levels, order, pick, fastest


def test_fast_set_load_keeps_the_base_books() -> None:
    rng = random.Random(12)
    fast, reference = _LeastConnectionsPool(), _Reference()
    ids = [f"a{i}" for i in range(12)]
    seq = 0
    steps = 0
    for _ in range(3000):
        agent_id = rng.choice(ids)
        if agent_id not in fast.members:
            seq += 1
            capacity = rng.randint(1, 4)
            info = AgentInfo(agent_id, "C", "z", speed=rng.choice((1.0, 2.0)), capacity=capacity)
            fast.join(Member(info, seq))
            reference.join(Member(info, seq))
        elif rng.random() < 0.05:
            fast.leave(agent_id)
            reference.leave(agent_id)
        else:
            load = rng.randint(0, fast.members[agent_id].capacity + 1)
            fast.set_load(agent_id, load)
            reference.set_load(agent_id, load)
            steps += 1
        assert _state(fast) == _state(reference)
    assert steps > 2000  # the load changes, not the joins, are what is compared


def test_balancer_load_changed_keeps_the_base_books() -> None:
    """The balancer's load_changed writes the move in once more: same books as the base's."""
    rng = random.Random(21)
    balancer, reference = LeastConnectionsBalancer(), _Reference()
    ids = [f"a{i}" for i in range(10)]
    seq = 0
    steps = 0
    for _ in range(3000):
        agent_id = rng.choice(ids)
        if agent_id not in reference.members:
            seq += 1
            capacity = rng.randint(1, 4)
            info = AgentInfo(agent_id, "C", "z", speed=rng.choice((1.0, 2.0)), capacity=capacity)
            balancer.agent_joined(info)
            reference.join(Member(info, seq))
        elif rng.random() < 0.05:
            balancer.agent_left(agent_id)
            reference.leave(agent_id)
        else:
            load = rng.randint(0, reference.members[agent_id].capacity + 1)
            balancer.load_changed(agent_id, load)
            reference.set_load(agent_id, load)
            steps += 1
        pool = balancer._pools[("z", "C")]
        assert _state(pool) == _state(reference)
        task = TaskInfo(0, "C", "z")
        pick = reference.pick(task).agent_id if reference.n_room else None
        assert balancer.choose(task, 0.0) == pick
    assert steps > 2000
