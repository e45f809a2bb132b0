"""Tests for the circuit breaker and the bulkheads in ``sim.policies.resilience``.

The breaker is driven by a Hypothesis state machine — time steps, calls asked
for, results reported (late ones included) — against a naive model that keeps
every result in a list and rescans it; after every step the two must agree on
state and transitions, and the promises are checked directly: nothing gets
through an open breaker before ``open_s``, half-open never has more than
``half_open_max_calls`` probes out, and a rate-based trip always saw
``min_calls`` results. Bulkheads are checked against a dict of counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sim.policies.resilience import (
    BreakerBoard,
    BreakerConfig,
    BreakerState,
    BreakerTransition,
    Bulkhead,
    CircuitBreaker,
    TeamBulkhead,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
MACHINE = settings(max_examples=60, stateful_step_count=60, deadline=None)
PROPS = settings(max_examples=80, deadline=None)


# -- a naive breaker to compare with --------------------------------------------------------


@dataclass
class ModelBreaker:
    """The breaker's rules as plainly as they can be written: lists and rescans."""

    config: BreakerConfig
    state: BreakerState = CLOSED
    opened_at: float = float("-inf")
    results: list[tuple[float, bool]] = field(default_factory=list)  # since the last transition
    probes: int = 0
    probe_successes: int = 0
    transitions: list[tuple[float, BreakerState, BreakerState]] = field(default_factory=list)
    rate_trips: list[int] = field(default_factory=list)  # window sizes seen at rate trips

    def state_at(self, now: float) -> BreakerState:
        if self.state is OPEN and now >= self.opened_at + self.config.open_s:
            return HALF_OPEN
        return self.state

    def go(self, time: float, state: BreakerState) -> None:
        self.transitions.append((time, self.state, state))
        self.state, self.results, self.probes, self.probe_successes = state, [], 0, 0
        if state is OPEN:
            self.opened_at = time

    def tick(self, now: float) -> None:
        if self.state_at(now) is not self.state:
            self.go(self.opened_at + self.config.open_s, HALF_OPEN)

    def allow(self, now: float) -> bool:
        self.tick(now)
        if self.state is HALF_OPEN and self.probes < self.config.half_open_max_calls:
            self.probes += 1
            return True
        return self.state is CLOSED

    def record(self, now: float, failed: bool) -> None:
        self.tick(now)
        c = self.config
        if self.state is CLOSED:
            self.results.append((now, failed))
            run = 0
            for _, f in reversed(self.results):
                if not f:
                    break
                run += 1
            window = [f for t, f in self.results if t > now - c.window_s]
            if failed and run >= c.failure_threshold:
                self.go(now, OPEN)
            elif (
                failed
                and c.failure_rate is not None
                and len(window) >= c.min_calls
                and sum(window) / len(window) >= c.failure_rate
            ):
                self.rate_trips.append(len(window))
                self.go(now, OPEN)
        elif self.state is HALF_OPEN and self.probes > 0:
            if failed:
                self.go(now, OPEN)
            else:
                self.probes -= 1
                self.probe_successes += 1
                if self.probe_successes >= c.success_threshold:
                    self.go(now, CLOSED)


configs = st.builds(
    BreakerConfig,
    failure_threshold=st.integers(1, 5),
    failure_rate=st.one_of(st.none(), st.sampled_from([0.25, 0.5, 0.75, 1.0])),
    window_s=st.sampled_from([2.0, 5.0, 20.0]),
    min_calls=st.integers(1, 6),
    open_s=st.sampled_from([0.0, 1.0, 3.0, 10.0]),
    half_open_max_calls=st.integers(1, 3),
    success_threshold=st.integers(1, 3),
)


class BreakerMachine(RuleBasedStateMachine):
    """Random traffic through one breaker, checked step by step against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.outstanding = 0  # allowed calls whose result has not been reported
        self.breaker = CircuitBreaker()
        self.model = ModelBreaker(BreakerConfig())

    @initialize(config=configs)
    def configure(self, config: BreakerConfig) -> None:
        self.breaker = CircuitBreaker.from_config(config)
        self.model = ModelBreaker(config)

    @rule(dt=st.one_of(st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]), st.floats(0.0, 12.0)))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def call(self) -> None:
        was_open = self.model.state_at(self.now) is OPEN
        probes_before = self.breaker.probes_in_flight
        allowed = self.breaker.allow(self.now)
        assert allowed == self.model.allow(self.now)
        if was_open:
            assert not allowed, "an open breaker let a call through before open_s"
        if allowed and self.breaker.state_at(self.now) is HALF_OPEN:
            assert self.breaker.probes_in_flight == probes_before + 1
        self.outstanding += allowed

    @precondition(lambda self: self.outstanding > 0)
    @rule(failed=st.booleans())
    def result(self, failed: bool) -> None:
        self.outstanding -= 1
        if failed:
            self.breaker.record_failure(self.now)
        else:
            self.breaker.record_success(self.now)
        self.model.record(self.now, failed)

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert self.breaker.state_at(self.now) is self.model.state_at(self.now)
        drained = self.breaker.drain_transitions()
        self.model.transitions, expected = [], self.model.transitions
        assert [(t.time, t.from_state, t.to_state) for t in drained] == expected

    @invariant()
    def promises_hold(self) -> None:
        config = self.model.config
        assert 0 <= self.breaker.probes_in_flight <= config.half_open_max_calls
        assert all(n >= config.min_calls for n in self.model.rate_trips)


def test_breaker_against_the_model() -> None:
    run_state_machine_as_test(BreakerMachine, settings=MACHINE)


def test_opens_after_consecutive_failures_and_a_success_resets_the_run() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    for t in (1.0, 2.0):
        breaker.record_failure(t)
    breaker.record_success(3.0)
    for t in (4.0, 5.0):
        breaker.record_failure(t)
    assert breaker.state_at(5.0) is CLOSED
    breaker.record_failure(6.0)
    assert breaker.state_at(6.0) is OPEN
    assert breaker.drain_transitions() == (
        BreakerTransition(6.0, CLOSED, OPEN, "3 consecutive failures"),
    )
    assert breaker.drain_transitions() == ()


def test_open_half_open_closed_cycle() -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, open_s=30.0, half_open_max_calls=2, success_threshold=2
    )
    breaker.record_failure(10.0)
    assert not breaker.allow(39.999)
    assert breaker.state_at(40.0) is HALF_OPEN
    assert breaker.drain_transitions()[-1].to_state is OPEN  # state_at changed nothing
    assert breaker.allow(50.0) and breaker.allow(50.0)
    assert not breaker.allow(50.0)  # two probes out already
    breaker.record_success(51.0)
    assert breaker.allow(51.0)  # one probe slot freed
    breaker.record_success(52.0)
    assert breaker.state_at(52.0) is CLOSED
    assert [(t.time, t.to_state) for t in breaker.drain_transitions()] == [
        (40.0, HALF_OPEN),  # recorded when the timer ran out, not when noticed
        (52.0, CLOSED),
    ]


def test_a_failed_probe_reopens_and_restarts_the_timer() -> None:
    breaker = CircuitBreaker(failure_threshold=1, open_s=30.0)
    breaker.record_failure(0.0)
    assert breaker.allow(35.0)
    breaker.record_failure(36.0)
    assert breaker.state_at(65.9) is OPEN and not breaker.allow(65.9)
    assert breaker.allow(66.0)


def test_late_results_while_open_are_ignored() -> None:
    breaker = CircuitBreaker(failure_threshold=2, open_s=10.0)
    for _ in range(3):
        assert breaker.allow(0.0)
    breaker.record_failure(1.0)
    breaker.record_failure(1.0)
    breaker.record_success(2.0)  # the third call, let through before the trip
    assert breaker.state_at(2.0) is OPEN


def test_rate_based_opening_waits_for_min_calls() -> None:
    breaker = CircuitBreaker(failure_threshold=100, failure_rate=0.5, window_s=60.0, min_calls=10)
    for i in range(9):
        breaker.record_failure(float(i))
    assert breaker.state_at(9.0) is CLOSED  # 100 % failures, but only 9 calls
    breaker.record_success(9.0)
    breaker.record_failure(10.0)
    assert breaker.state_at(10.0) is OPEN
    (trip,) = breaker.drain_transitions()
    assert trip.reason.startswith("failure rate 0.909")


def test_rate_window_forgets_old_results() -> None:
    breaker = CircuitBreaker(failure_threshold=100, failure_rate=0.5, window_s=10.0, min_calls=4)
    for t in (0.0, 1.0, 2.0):
        breaker.record_failure(t)
    for t in (11.0, 11.5, 12.0):
        breaker.record_success(t)
    breaker.record_failure(12.5)
    assert breaker.state_at(12.5) is CLOSED  # 1 of 4 in (2.5, 12.5]; 4 of 7 had 0-2 stayed
    breaker.record_failure(12.5)
    assert breaker.state_at(12.5) is CLOSED  # 2 of 5
    breaker.record_failure(12.5)
    assert breaker.state_at(12.5) is OPEN  # 3 of 6


def test_bad_config_and_backwards_time_raise() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        CircuitBreaker(failure_rate=1.5)
    with pytest.raises(ValueError, match="half_open_max_calls"):
        CircuitBreaker(half_open_max_calls=0)
    breaker = CircuitBreaker()
    breaker.allow(5.0)
    with pytest.raises(ValueError, match="backwards"):
        breaker.record_success(4.0)


def test_board_makes_breakers_lazily_with_one_config() -> None:
    board = BreakerBoard(BreakerConfig(failure_threshold=1, open_s=5.0))
    assert board.state_at("zone-b", 0.0) is CLOSED and "zone-b" not in board
    board.record_failure("agent-7", 2.0)
    board.record_failure("zone-a", 1.0)
    assert board.allow("agent-1", 3.0) and not board.allow("zone-a", 3.0)
    assert board.open_targets(3.0) == ("agent-7", "zone-a")
    assert board.open_targets(6.5) == ("agent-7",)
    assert len(board) == 3 and list(board) == ["agent-7", "zone-a", "agent-1"]
    assert [(target, t.time) for target, t in board.drain_transitions()] == [
        ("zone-a", 1.0),
        ("agent-7", 2.0),
    ]
    assert board.breaker("agent-7").config == board.config


# -- bulkheads ------------------------------------------------------------------------------------

KEYS = ("a", "b", "c")


@PROPS
@given(
    limit=st.integers(0, 3),
    limits=st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3), max_size=2),
    data=st.data(),
)
def test_bulkhead_against_a_dict_of_counts(
    limit: int, limits: dict[str, int], data: st.DataObject
) -> None:
    bulkhead = Bulkhead(limit, limits)
    held = dict.fromkeys(KEYS, 0)
    for _ in range(data.draw(st.integers(0, 40))):
        key = data.draw(st.sampled_from(KEYS))
        cap = limits.get(key, limit)
        if data.draw(st.booleans()):
            assert bulkhead.try_acquire(key) == (held[key] < cap)
            held[key] = min(cap, held[key] + 1)
        elif held[key] == 0:
            with pytest.raises(ValueError, match="without a permit"):
                bulkhead.release(key)
        else:
            bulkhead.release(key)
            held[key] -= 1
        for k in KEYS:
            assert bulkhead.in_use(k) == held[k] <= bulkhead.limit_of(k)
            assert bulkhead.available(k) == bulkhead.limit_of(k) - held[k] >= 0
    for key in KEYS:
        for _ in range(held[key]):
            bulkhead.release(key)
    assert bulkhead.total_in_use == 0


TEAM_OF = {"a1": "t1", "a2": "t1", "a3": "t2"}


@PROPS
@given(agent_limit=st.integers(0, 3), team_limit=st.integers(0, 4), data=st.data())
def test_team_bulkhead_takes_both_permits_or_neither(
    agent_limit: int, team_limit: int, data: st.DataObject
) -> None:
    bulkhead = TeamBulkhead(agent_limit, team_limit, team_limits={"t2": 1})
    held = dict.fromkeys(TEAM_OF, 0)

    def team_load(team: str) -> int:
        return sum(n for agent, n in held.items() if TEAM_OF[agent] == team)

    for _ in range(data.draw(st.integers(0, 40))):
        agent = data.draw(st.sampled_from(sorted(TEAM_OF)))
        team = TEAM_OF[agent]
        if data.draw(st.booleans()):
            fits = held[agent] < agent_limit and team_load(team) < bulkhead.teams.limit_of(team)
            assert bulkhead.try_acquire(agent, team) == fits
            held[agent] += fits
        elif held[agent]:
            bulkhead.release(agent, team)
            held[agent] -= 1
        for a in TEAM_OF:
            assert bulkhead.in_use(a) == held[a] <= agent_limit
        for t in ("t1", "t2"):
            assert bulkhead.team_in_use(t) == team_load(t) <= bulkhead.teams.limit_of(t)
    for agent, n in held.items():
        for _ in range(n):
            bulkhead.release(agent, TEAM_OF[agent])
    assert bulkhead.agents.total_in_use == bulkhead.teams.total_in_use == 0


def test_a_full_team_leaves_the_agent_permit_alone() -> None:
    bulkhead = TeamBulkhead(agent_limit=2, team_limit=1)
    assert bulkhead.try_acquire("a1", "t1")
    assert not bulkhead.try_acquire("a2", "t1")
    assert bulkhead.in_use("a2") == 0
    with pytest.raises(ValueError, match="without a permit"):
        bulkhead.release("a1", "t2")  # not the pair that was acquired
    assert bulkhead.in_use("a1") == 1 and bulkhead.team_in_use("t1") == 1


def test_a_result_exactly_window_s_old_has_left_the_window() -> None:
    """The window is (now - window_s, now]."""
    breaker = CircuitBreaker(failure_threshold=100, failure_rate=0.5, window_s=10.0, min_calls=2)
    breaker.record_failure(0.0)
    breaker.record_success(10.0)
    breaker.record_success(10.0)
    breaker.record_failure(10.0)
    assert breaker.state_at(10.0) is CLOSED  # 1 of 3; 2 of 4 had the failure at 0 stayed
