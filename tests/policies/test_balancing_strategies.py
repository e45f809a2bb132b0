"""Each load-balancing strategy's own promise, with a bound derived from the theory.

Least loaded, rotation, proportional shares, sticky keys with bounded loads
and the two-choices maximum load; the bounds are not tuned to pass. The
contract every strategy shares is tested in ``test_balancing.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from balancing_support import EPSILON, FAST, fill, make_task
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.balancing import AffinityBalancer, LoadBalancer, PowerOfTwoBalancer, make_balancer
from sim.policies.balancing.affinity import key_position, vnode_positions
from sim.policies.types import AgentInfo

# ---------------------------------------------------------------------------
# Round robin and least connections
# ---------------------------------------------------------------------------


@given(count=st.integers(1, 30), capacity=st.integers(1, 3), cycles=st.integers(1, 4))
@FAST
def test_round_robin_cycles_in_join_order(count: int, capacity: int, cycles: int) -> None:
    balancer = make_balancer("round_robin", np.random.default_rng(0))
    ids = fill(balancer, count, capacity=capacity)
    picks = []
    for _ in range(count * cycles):
        chosen = balancer.choose(make_task(), 0.0)
        assert chosen is not None
        picks.append(chosen)
        balancer.load_changed(chosen, 1)  # the shell's dispatch...
        balancer.load_changed(chosen, 0)  # ...and the task's end
    assert picks == ids * cycles


def test_round_robin_skips_full_agents_and_resumes_after_them() -> None:
    balancer = make_balancer("round_robin", np.random.default_rng(0))
    a, b, c, d = fill(balancer, 4, capacity=1)
    assert balancer.choose(make_task(), 0.0) == a
    balancer.load_changed(b, 1)
    assert balancer.choose(make_task(), 0.0) == c
    balancer.load_changed(b, 0)
    assert [balancer.choose(make_task(), 0.0) for _ in range(4)] == [d, a, b, c]


@given(data=st.data())
@FAST
def test_least_connections_picks_a_least_loaded_agent(data: st.DataObject) -> None:
    balancer = make_balancer("least_connections", np.random.default_rng(0))
    capacities = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=25))
    loads: dict[str, int] = {}
    capacity: dict[str, int] = {}
    for i, cap in enumerate(capacities):
        agent_id = f"agent-{i}"
        balancer.agent_joined(AgentInfo(agent_id, "code", "z1", capacity=cap))
        loads[agent_id], capacity[agent_id] = 0, cap
    for _ in range(data.draw(st.integers(1, 60))):
        if data.draw(st.booleans()):
            agent_id = data.draw(st.sampled_from(sorted(loads)))
            loads[agent_id] = data.draw(st.integers(0, capacity[agent_id]))
            balancer.load_changed(agent_id, loads[agent_id])
        chosen = balancer.choose(make_task(), 0.0)
        room = [load for agent_id, load in loads.items() if load < capacity[agent_id]]
        if not room:
            assert chosen is None
            continue
        assert chosen is not None
        assert loads[chosen] == min(room)
        loads[chosen] += 1
        balancer.load_changed(chosen, loads[chosen])


# ---------------------------------------------------------------------------
# Weighted
# ---------------------------------------------------------------------------


@given(
    shapes=st.lists(
        st.tuples(st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 4.0]), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    ),
    picks=st.integers(1, 600),
)
@FAST
def test_weighted_shares_are_proportional_to_weight(
    shapes: list[tuple[float, int]], picks: int
) -> None:
    """Stride scheduling keeps every pass value within one largest stride of the
    smallest, m <= p_i <= m + 1/w_min. Agent i's pick count is p_i * w_i and the
    total is N = sum p_j w_j, so |count_i - N w_i / W| <= w_i / w_min for every
    prefix of the run: that is the tolerance, not a statistical one."""
    balancer = make_balancer("weighted", np.random.default_rng(0))
    weights: dict[str, float] = {}
    for i, (speed, slots) in enumerate(shapes):
        info = AgentInfo(f"agent-{i}", "code", "z1", speed=speed, slots=slots, capacity=1)
        balancer.agent_joined(info)
        weights[info.agent_id] = info.weight
    counts = dict.fromkeys(weights, 0)
    for _ in range(picks):
        chosen = balancer.choose(make_task(), 0.0)
        assert chosen is not None
        counts[chosen] += 1
        balancer.load_changed(chosen, 1)
        balancer.load_changed(chosen, 0)
    total_weight = sum(weights.values())
    smallest = min(weights.values())
    for agent_id, weight in weights.items():
        expected = picks * weight / total_weight
        assert abs(counts[agent_id] - expected) <= weight / smallest + 1e-6


def test_weighted_large_run_shares() -> None:
    balancer = make_balancer("weighted", np.random.default_rng(0))
    shapes = [(0.5, 1), (1.0, 1), (1.0, 2), (2.0, 2), (4.0, 1), (1.5, 3)]
    weights = {}
    for i, (speed, slots) in enumerate(shapes):
        info = AgentInfo(f"agent-{i}", "code", "z1", speed=speed, slots=slots, capacity=2)
        balancer.agent_joined(info)
        weights[info.agent_id] = info.weight
    counts = dict.fromkeys(weights, 0)
    picks = 20_000
    for _ in range(picks):
        chosen = balancer.choose(make_task(), 0.0)
        assert chosen is not None
        counts[chosen] += 1
        balancer.load_changed(chosen, 1)
        balancer.load_changed(chosen, 0)
    total = sum(weights.values())
    for agent_id, weight in weights.items():
        assert abs(counts[agent_id] - picks * weight / total) <= weight / 0.5 + 1e-6


def test_weighted_agent_back_from_full_gets_no_catch_up_burst() -> None:
    """Agent a is full while b and c take 300 picks. Were its pass value left at 0
    it would then take the next ~150 picks in a row. Raised to the current virtual
    time it starts within one stride of the others, so over any run of N picks its
    count stays within N / 3 +- 2 (the usual 1, plus 1 for the uneven start)."""
    balancer = make_balancer("weighted", np.random.default_rng(0))
    a, b, c = fill(balancer, 3, capacity=1)
    balancer.load_changed(a, 1)
    for _ in range(300):
        chosen = balancer.choose(make_task(), 0.0)
        assert chosen in (b, c)
        balancer.load_changed(chosen, 1)
        balancer.load_changed(chosen, 0)
    balancer.load_changed(a, 0)
    picked_a = 0
    for n in range(1, 301):
        chosen = balancer.choose(make_task(), 0.0)
        assert chosen is not None
        picked_a += chosen == a
        balancer.load_changed(chosen, 1)
        balancer.load_changed(chosen, 0)
        assert abs(picked_a - n / 3) <= 2


# ---------------------------------------------------------------------------
# Affinity
# ---------------------------------------------------------------------------


def _bound(loads: dict[str, int]) -> int:
    return math.ceil((1 + EPSILON) * (sum(loads.values()) + 1) / len(loads))


@given(key=st.integers(0, 10**9), data=st.data())
@FAST
def test_affinity_key_sticks_while_its_agent_is_under_the_bound(
    key: int, data: st.DataObject
) -> None:
    balancer = AffinityBalancer(epsilon=EPSILON, vnodes=32)
    ids = fill(balancer, 8, capacity=6)
    loads = dict.fromkeys(ids, 0)
    task = make_task(affinity_key=key)
    home = balancer.choose(task, 0.0)
    assert home is not None
    for _ in range(data.draw(st.integers(1, 40))):
        agent_id = data.draw(st.sampled_from(ids))
        loads[agent_id] = data.draw(st.integers(0, 6))
        balancer.load_changed(agent_id, loads[agent_id])
        chosen = balancer.choose(task, 0.0)
        has_room = [a for a in ids if loads[a] < 6]
        if not has_room:
            assert chosen is None
            continue
        bound = _bound(loads)
        if loads[home] < bound and loads[home] < 6:
            assert chosen == home
        else:
            assert chosen != home
        assert chosen is not None
        under = [a for a in has_room if loads[a] < bound]
        if under:
            assert loads[chosen] < bound


@given(
    agents=st.integers(1, 60), vnodes=st.integers(1, 8), keys=st.lists(st.integers(), max_size=40)
)
@FAST
def test_affinity_home_is_the_first_virtual_node_clockwise(
    agents: int, vnodes: int, keys: list[int]
) -> None:
    """With every load at 0 a key goes to its home: the owner of the first virtual
    node at or after the key's hash, wrapping past the top. The reference walks a
    naively sorted list of all virtual nodes."""
    balancer = AffinityBalancer(epsilon=EPSILON, vnodes=vnodes)
    ids = fill(balancer, agents, capacity=1)
    ring = sorted(
        (position, agent_id)
        for agent_id, row in zip(ids, vnode_positions(ids, vnodes).tolist(), strict=True)
        for position in row
    )
    # Keys hashed past the last virtual node must wrap to the first one.
    wrapping = [key for key in range(20_000) if key_position(key) > ring[-1][0]][:3]
    assert wrapping  # about 20,000 / (agents * vnodes + 1) >= 41 expected
    for key in [*keys, *wrapping, -1, 0, 2**62]:
        position = key_position(key)
        home = next((agent for point, agent in ring if point >= position), ring[0][1])
        assert balancer.choose(make_task(affinity_key=key), 0.0) == home


def _mapping(balancer: LoadBalancer, keys: range) -> dict[int, str | None]:
    return {key: balancer.choose(make_task(affinity_key=key), 0.0) for key in keys}


def test_affinity_moves_only_the_keys_of_an_agent_that_leaves_or_joins() -> None:
    balancer = AffinityBalancer(epsilon=EPSILON)
    ids = fill(balancer, 30, capacity=4)
    keys = range(3_000)
    before = _mapping(balancer, keys)
    assert len(set(before.values())) == len(ids)  # with 64 vnodes every agent owns keys
    gone = ids[11]
    balancer.agent_left(gone)
    after = _mapping(balancer, keys)
    for key in keys:
        if before[key] == gone:
            assert after[key] not in (gone, None)
        else:
            assert after[key] == before[key]
    # Re-joining gives the agent exactly its keys back: positions depend on the id alone.
    balancer.agent_joined(AgentInfo(gone, "code", "z1", capacity=4))
    assert _mapping(balancer, keys) == before
    # A newcomer only takes keys; nobody else's keys move.
    balancer.agent_joined(AgentInfo("newcomer", "code", "z1", capacity=4))
    with_newcomer = _mapping(balancer, keys)
    moved = [key for key in keys if with_newcomer[key] != before[key]]
    assert moved
    assert all(with_newcomer[key] == "newcomer" for key in moved)


@pytest.mark.parametrize("distinct_keys", [1, 7, 5_000])
def test_affinity_loads_stay_bounded(distinct_keys: int) -> None:
    """Each placement goes to an agent under ceil(c (m + 1) / n) with m tasks placed so
    far, so after M placements no agent exceeds ceil(c M / n), even when every task
    carries the same key (plain consistent hashing would put all of them on one agent)."""
    balancer = AffinityBalancer(epsilon=EPSILON)
    agents = 50
    ids = fill(balancer, agents, capacity=10**6)
    loads = dict.fromkeys(ids, 0)
    rng = np.random.default_rng(3)
    keys = rng.integers(0, distinct_keys, size=5_000).tolist()
    for placed, key in enumerate(keys, start=1):
        chosen = balancer.choose(make_task(affinity_key=key), 0.0)
        assert chosen is not None
        loads[chosen] += 1
        balancer.load_changed(chosen, loads[chosen])
        assert max(loads.values()) <= math.ceil((1 + EPSILON) * placed / agents)
    # Hot keys spill clockwise over as many agents as the bound forces (about n / c).
    used = sum(1 for load in loads.values() if load)
    assert used >= len(keys) / math.ceil((1 + EPSILON) * len(keys) / agents)


def test_affinity_falls_back_when_every_agent_under_the_bound_is_full() -> None:
    balancer = AffinityBalancer(epsilon=EPSILON)
    balancer.agent_joined(AgentInfo("small", "code", "z1", capacity=1))
    balancer.agent_joined(AgentInfo("large", "code", "z1", capacity=10))
    balancer.load_changed("small", 1)
    balancer.load_changed("large", 5)  # bound = ceil(1.25 * 7 / 2) = 5: "large" is at it
    assert balancer.choose(make_task(affinity_key=42), 0.0) == "large"


# ---------------------------------------------------------------------------
# Power of two choices
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_of_two_max_load(seed: int) -> None:
    """n = m = 1000 placements without completions. Two choices give a maximum
    load of ln ln n / ln 2 + O(1) (Azar et al. 1999); Mitzenmacher's fluid limit
    puts the expected number of agents with 4 or more tasks at 1000 * 6.0e-6,
    so the maximum is at most floor(ln ln n / ln 2) + 1 = 3 with probability
    above 99 %. One random choice gives about ln n / ln ln n, typically 5-7."""
    n = 1_000
    balancer = PowerOfTwoBalancer(np.random.default_rng(seed))
    ids = fill(balancer, n, capacity=10**6)
    loads = dict.fromkeys(ids, 0)
    for task_id in range(n):
        chosen = balancer.choose(make_task(task_id=task_id), 0.0)
        assert chosen is not None
        loads[chosen] += 1
        balancer.load_changed(chosen, loads[chosen])
    bound = math.floor(math.log(math.log(n)) / math.log(2)) + 1
    assert max(loads.values()) <= bound == 3
    one_choice = np.bincount(np.random.default_rng(seed).integers(0, n, size=n), minlength=n)
    assert max(loads.values()) < one_choice.max()


def test_power_of_two_prefers_the_less_loaded_of_two() -> None:
    balancer = PowerOfTwoBalancer(np.random.default_rng(5))
    busy, idle = fill(balancer, 2, capacity=3)
    balancer.load_changed(busy, 2)
    assert all(balancer.choose(make_task(), 0.0) == idle for _ in range(20))
