"""The load balancers' shared contract, in ``sim.policies.balancing``.

The backbone is a Hypothesis state machine per strategy that drives random
joins, leaves, load reports and choices over 2 zones x 2 categories and checks
every answer against a naive model that scans plain lists. Beside it: the
contract's details, critical tasks, determinism and choosing around excluded
agents, for every strategy. Each strategy's own promise is tested in
``test_balancing_strategies.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from balancing_support import EPSILON, FAST, fill, make_task
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from sim.policies.balancing import STRATEGIES, make_balancer
from sim.policies.types import AgentInfo, TaskInfo

ZONES = ("z1", "z2")
CATEGORIES = ("code", "review")
AGENT_IDS = tuple(f"a{i}" for i in range(10))


# ---------------------------------------------------------------------------
# The naive model and the state machine
# ---------------------------------------------------------------------------


@dataclass
class _ModelAgent:
    info: AgentInfo
    seq: int
    load: int = 0

    @property
    def has_room(self) -> bool:
        return self.load < self.info.capacity


class _Model:
    """What the balancer should know, kept in the most obvious way."""

    def __init__(self) -> None:
        self.agents: dict[str, _ModelAgent] = {}
        self.seq = 0

    def join(self, info: AgentInfo) -> None:
        self.agents.pop(info.agent_id, None)
        self.seq += 1
        self.agents[info.agent_id] = _ModelAgent(info, self.seq)

    def pool(self, zone: str, category: str) -> list[_ModelAgent]:
        members = [
            a for a in self.agents.values() if a.info.zone == zone and a.info.category == category
        ]
        return sorted(members, key=lambda a: a.seq)

    def with_room(self, zone: str, category: str) -> list[_ModelAgent]:
        return [a for a in self.pool(zone, category) if a.has_room]


_agent_infos = st.builds(
    AgentInfo,
    agent_id=st.sampled_from(AGENT_IDS),
    category=st.sampled_from(CATEGORIES),
    zone=st.sampled_from(ZONES),
    speed=st.sampled_from([0.5, 1.0, 2.0]),
    slots=st.integers(1, 2),
    capacity=st.integers(0, 3),
)


class _BalancerMachine(RuleBasedStateMachine):
    strategy = ""

    def __init__(self) -> None:
        super().__init__()
        self.balancer = make_balancer(
            self.strategy, np.random.default_rng(7), epsilon=EPSILON, vnodes=16
        )
        self.model = _Model()
        self.cursor: dict[tuple[str, str], int] = {}
        self.task_id = 0

    @rule(info=_agent_infos)
    def join(self, info: AgentInfo) -> None:
        self.balancer.agent_joined(info)
        self.model.join(info)

    @rule(agent_id=st.sampled_from(AGENT_IDS))
    def leave(self, agent_id: str) -> None:
        self.balancer.agent_left(agent_id)
        self.model.agents.pop(agent_id, None)

    @rule(agent_id=st.sampled_from(AGENT_IDS), in_flight=st.integers(0, 4))
    def report_load(self, agent_id: str, in_flight: int) -> None:
        # Reports about agents that left must be ignored, not resurrect them.
        self.balancer.load_changed(agent_id, in_flight)
        if agent_id in self.model.agents:
            self.model.agents[agent_id].load = in_flight

    @rule(
        zone=st.sampled_from(ZONES),
        category=st.sampled_from(CATEGORIES),
        critical=st.booleans(),
        key=st.none() | st.integers(0, 30),
        dispatch=st.booleans(),
    )
    def choose(
        self, zone: str, category: str, critical: bool, key: int | None, dispatch: bool
    ) -> None:
        self.task_id += 1
        task = TaskInfo(self.task_id, category, zone, affinity_key=key, critical=critical)
        chosen = self.balancer.choose(task, 0.0)
        room = self.model.with_room(zone, category)
        if not room:
            assert chosen is None
            return
        assert chosen is not None
        agent = self.model.agents.get(chosen)
        assert agent is not None, "chose an agent that left"
        assert (agent.info.zone, agent.info.category) == (zone, category)
        assert agent.has_room
        if critical:
            fastest = max(a.info.speed for a in room)
            expected = next(a for a in room if a.info.speed == fastest)  # earliest joined
            assert chosen == expected.info.agent_id
        else:
            self._check_strategy(zone, category, key, agent, room)
        if dispatch:
            agent.load += 1
            self.balancer.load_changed(chosen, agent.load)

    def _check_strategy(
        self,
        zone: str,
        category: str,
        key: int | None,
        agent: _ModelAgent,
        room: list[_ModelAgent],
    ) -> None:
        least = min(a.load for a in room)
        if self.strategy == "least_connections" or (self.strategy == "affinity" and key is None):
            assert agent.load == least
        elif self.strategy == "affinity":
            pool = self.model.pool(zone, category)
            total = sum(a.load for a in pool)
            bound = math.ceil((1 + EPSILON) * (total + 1) / len(pool))
            if least < bound:
                assert agent.load < bound
            else:
                assert agent.load == least
        elif self.strategy == "round_robin":
            cursor = self.cursor.get((zone, category), -1)
            expected = next((a for a in room if a.seq > cursor), room[0])
            assert agent is expected
            self.cursor[(zone, category)] = agent.seq

    @invariant()
    def pools_agree(self) -> None:
        for zone in ZONES:
            for category in CATEGORIES:
                assert self.balancer.size(zone, category) == len(self.model.pool(zone, category))
                assert self.balancer.has_room(zone, category) == bool(
                    self.model.with_room(zone, category)
                )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_agrees_with_naive_model(strategy: str) -> None:
    machine = type(f"Machine_{strategy}", (_BalancerMachine,), {"strategy": strategy})
    run_state_machine_as_test(machine, settings=FAST)


# ---------------------------------------------------------------------------
# Contract details
# ---------------------------------------------------------------------------


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="power_of_two"):
        make_balancer("random", np.random.default_rng(0))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_empty_or_unknown_pool_keeps_tasks_queued(strategy: str) -> None:
    balancer = make_balancer(strategy, np.random.default_rng(0))
    assert balancer.choose(make_task(), 0.0) is None
    assert not balancer.has_room("z1", "code")
    assert balancer.size("z1", "code") == 0
    fill(balancer, 2, capacity=1)
    assert balancer.choose(make_task(zone="z2"), 0.0) is None
    assert balancer.choose(make_task(category="review"), 0.0) is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_reports_and_leaves_for_unknown_agents_are_ignored(strategy: str) -> None:
    balancer = make_balancer(strategy, np.random.default_rng(0))
    (only,) = fill(balancer, 1, capacity=1)
    balancer.agent_left("ghost")
    balancer.load_changed("ghost", 3)
    balancer.agent_left(only)
    balancer.load_changed(only, 0)  # a task of the departed agent ends
    assert balancer.size("z1", "code") == 0
    assert balancer.choose(make_task(), 0.0) is None
    with pytest.raises(ValueError, match="in_flight"):
        balancer.load_changed(only, -1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rejoin_restarts_at_zero_in_flight(strategy: str) -> None:
    balancer = make_balancer(strategy, np.random.default_rng(0))
    (only,) = fill(balancer, 1, capacity=1)
    balancer.load_changed(only, 1)
    assert balancer.choose(make_task(), 0.0) is None
    balancer.agent_joined(AgentInfo(only, "code", "z1", capacity=1))
    assert balancer.size("z1", "code") == 1
    assert balancer.choose(make_task(), 0.0) == only


# ---------------------------------------------------------------------------
# Critical tasks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_critical_tasks_go_to_fastest_agent_with_room(strategy: str) -> None:
    balancer = make_balancer(strategy, np.random.default_rng(0))
    speeds = {"slow": 0.5, "fast-1": 4.0, "mid": 1.0, "fast-2": 4.0, "mid-2": 1.0}
    for agent_id, speed in speeds.items():
        balancer.agent_joined(AgentInfo(agent_id, "code", "z1", speed=speed, capacity=2))
    critical = make_task(critical=True)
    assert balancer.choose(critical, 0.0) == "fast-1"  # tie: earliest joined
    balancer.load_changed("fast-1", 2)
    assert balancer.choose(critical, 0.0) == "fast-2"
    balancer.load_changed("fast-2", 2)
    assert balancer.choose(critical, 0.0) == "mid"
    balancer.agent_left("mid")
    assert balancer.choose(critical, 0.0) == "mid-2"
    balancer.load_changed("fast-1", 1)
    assert balancer.choose(critical, 0.0) == "fast-1"


def test_critical_choices_leave_the_rotation_alone() -> None:
    balancer = make_balancer("round_robin", np.random.default_rng(0))
    ids = fill(balancer, 4, capacity=5)
    picks = []
    for n in range(8):
        picks.append(balancer.choose(make_task(), 0.0))
        balancer.choose(make_task(critical=True, task_id=n), 0.0)
    assert picks == ids * 2


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------


def _scripted_choices(strategy: str, seed: int) -> list[str | None]:
    """A fixed random workload with churn; the list of choices it produces."""
    script = np.random.default_rng(1234)
    balancer = make_balancer(strategy, np.random.default_rng(seed), vnodes=16)
    loads: dict[str, int] = {}
    choices: list[str | None] = []
    for step in range(1_500):
        action = script.random()
        agent_id = f"agent-{int(script.integers(0, 40))}"
        if action < 0.05:
            balancer.agent_joined(
                AgentInfo(
                    agent_id,
                    category=CATEGORIES[int(script.integers(0, 2))],
                    zone=ZONES[int(script.integers(0, 2))],
                    speed=float(script.choice([0.5, 1.0, 2.0])),
                    slots=int(script.integers(1, 3)),
                    capacity=int(script.integers(1, 5)),
                )
            )
            loads[agent_id] = 0
        elif action < 0.08:
            balancer.agent_left(agent_id)
            loads.pop(agent_id, None)
        elif action < 0.4 and loads.get(agent_id, 0) > 0:
            loads[agent_id] -= 1
            balancer.load_changed(agent_id, loads[agent_id])
        else:
            task = TaskInfo(
                step,
                category=CATEGORIES[int(script.integers(0, 2))],
                zone=ZONES[int(script.integers(0, 2))],
                affinity_key=int(script.integers(0, 50)),
                critical=bool(script.random() < 0.1),
            )
            chosen = balancer.choose(task, float(step))
            choices.append(chosen)
            if chosen is not None:
                loads[chosen] += 1
                balancer.load_changed(chosen, loads[chosen])
    return choices


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_choices(strategy: str) -> None:
    first = _scripted_choices(strategy, seed=9)
    assert first == _scripted_choices(strategy, seed=9)
    assert sum(choice is not None for choice in first) > 300
    assert None in first


def test_power_of_two_depends_on_the_seed() -> None:
    assert _scripted_choices("power_of_two", 9) != _scripted_choices("power_of_two", 10)


def test_choices_do_not_depend_on_string_hash_randomisation() -> None:
    here = Path(__file__).resolve().parent
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(here)!r})\n"
        "from test_balancing import _scripted_choices, STRATEGIES\n"
        "print(json.dumps({s: _scripted_choices(s, 9) for s in STRATEGIES}))\n"
    )
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0]["affinity"] == _scripted_choices("affinity", 9)


# ---------------------------------------------------------------------------
# Choosing around agents a retry must avoid
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
@FAST
@given(
    count=st.integers(1, 8),
    loads=st.lists(st.integers(0, 2), min_size=8, max_size=8),
    excluded=st.sets(st.integers(0, 7)),
    critical=st.booleans(),
)
def test_choose_excluding_never_picks_the_excluded_and_leaves_loads_alone(
    strategy: str, count: int, loads: list[int], excluded: set[int], critical: bool
) -> None:
    balancer = make_balancer(strategy, np.random.default_rng(1))
    ids = fill(balancer, count, capacity=2)
    for agent_id, load in zip(ids, loads, strict=False):
        balancer.load_changed(agent_id, load)
    exclude = frozenset(ids[i] for i in excluded if i < count)
    room_before = balancer.has_room("z1", "code")
    choice = balancer.choose_excluding(make_task(critical=critical), 0.0, exclude)
    eligible = [a for a, load in zip(ids, loads, strict=False) if load < 2 and a not in exclude]
    if eligible:
        assert choice in eligible
    else:
        assert choice is None
    # The temporary marks are undone: the pool is as loaded as before.
    assert balancer.has_room("z1", "code") == room_before
    if not exclude:
        return
    for agent_id in exclude:
        balancer.agent_left(agent_id)
    free = [a for a, load in zip(ids, loads, strict=False) if load < 2 and a not in exclude]
    assert (balancer.choose(make_task(critical=critical), 0.0) is not None) == bool(free)


# ---------------------------------------------------------------------------
# A rebuilt balancer restores the order of equal loads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["least_connections", "affinity"])
@given(changes=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=0, max_size=40))
def test_a_rebuilt_balancer_picks_as_the_one_that_never_restarted(
    strategy: str, changes: list[tuple[int, int]]
) -> None:
    """Balancer *a* lives through the load changes (agent, new load) at times 1, 2, ...;
    *b* is rebuilt as a live takeover rebuilds it — the same agents joined by id, each set
    straight to its final load, in another order — then told when each reached it. From
    then on both pick the same agents, one after the other, until no agent has room."""
    rng = np.random.default_rng(len(changes))
    ids = [f"agent-{i}" for i in range(6)]
    a, b = make_balancer(strategy, rng), make_balancer(strategy, rng)
    for balancer in (a, b):
        for agent_id in ids:
            balancer.agent_joined(AgentInfo(agent_id, "code", "z1", capacity=3))
    reached: dict[str, float] = {}
    final = dict.fromkeys(ids, 0)
    for time, (index, load) in enumerate(changes, start=1):
        a.load_changed(ids[index], load)
        if load != final[ids[index]]:  # (the same load again is no change)
            reached[ids[index]] = float(time)
        final[ids[index]] = load
    for agent_id in reversed(ids):
        b.load_changed(agent_id, final[agent_id])
    b.restore_order(lambda agent_id: reached.get(agent_id, -math.inf))
    task = make_task()
    for _ in range(3 * len(ids)):
        pick = a.choose(task, 0.0)
        assert b.choose(task, 0.0) == pick
        if pick is None:
            break
        final[pick] += 1
        a.load_changed(pick, final[pick])
        b.load_changed(pick, final[pick])
