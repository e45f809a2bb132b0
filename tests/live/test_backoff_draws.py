"""A throttled model call backs off by the same draw in the simulator and live.

Covers: ``keyed_draws.backoff_draw`` (a uniform draw keyed by the task,
attempt, call and refusal); the simulator's agent (``sim.model.llm_work``)
and a live agent's caller (``sim.live.llm_calls``) each back off a refusal
by it, given the task's key (``task_key`` of the run's fault seed, which the
live coordinator sends with the assignment: ``FaultDraws``).

Scenario: under a binding provider limit the fleet's calls are refused by
the hundred. Live's agents had drawn their backoff jitter from a generator
seeded by the wall clock, the simulator from a stream in its own order, so
the same refusal waited differently in the two: at the spec's fleet with the
frontier account's limit binding, the calibrated replay's p99 wait moved
108-132 s with that stream's seed alone, around live's 126 s. Keyed, the
same refusal of the same call waits the same in both shells.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from support import SCENARIOS

from sim.live.broker import decode, encode
from sim.live.coordinator.attempt_faults import FaultDraws
from sim.live.llm_calls import CallBooks, LlmCaller
from sim.live.llm_protocol import BACKOFF_KEY_FIELD, rule_document
from sim.live.task import LiveTask
from sim.model.engine import run_scenario
from sim.policies.keyed_draws import attempt_draws, backoff_draw, task_key
from sim.policies.llm import RetryRule
from sim.scenario.load import load_scenario
from sim.world.policy_set import fault_seed
from sim.world.streams import Streams

#: Jitter-only backoff (no provider hint), a short cap, a budget no attempt spends.
RULE = RetryRule(
    base_s=1.0, factor=2.0, max_s=8.0, max_retries=1000, max_wait_s=7200.0, use_retry_after=False
)


def backoffs(rule: RetryRule, key: int, attempt: int, call: int, refusals: int) -> list[float]:
    """What both shells wait after each of *refusals* refusals of one call (all retried)."""
    return [
        backoff_draw(key, attempt, call, r) * rule.backoff_cap(r) for r in range(1, refusals + 1)
    ]


def expected_wait(rule: RetryRule, key: int, attempt: int, call: int, refusals: int) -> float:
    """The backoff both shells wait for *refusals* refusals of one call, in all."""
    return sum(backoffs(rule, key, attempt, call, refusals))


def test_the_draws_are_uniform_and_each_names_one_refusal() -> None:
    """Mean and Kolmogorov-Smirnov distance within their 99.9 % bands for n draws; no two
    refusals (task, attempt, call, retry) share a draw, nor a refusal and a fault draw."""
    keys = [task_key(7, 60.0 * k, -1, -1) for k in range(50)]
    draws = np.array(
        [
            backoff_draw(key, attempt, call, retry)
            for key in keys
            for attempt in (1, 2)
            for call in range(5)
            for retry in range(1, 21)
        ]
    )
    n = len(draws)
    assert ((draws >= 0.0) & (draws < 1.0)).all()
    # The mean of n uniforms: sd 1/sqrt(12 n); 3.3 sd is the two-sided 99.9 % band.
    assert abs(draws.mean() - 0.5) < 3.3 / np.sqrt(12 * n)
    ordered = np.sort(draws)
    steps = np.arange(1, n + 1) / n
    ks = max((steps - ordered).max(), (ordered - (steps - 1 / n)).max())
    assert ks < 1.95 / np.sqrt(n)  # the KS 99.9 % critical value
    assert len(set(draws.tolist())) == n
    faults = {u for key in keys for a in (1, 2) for u in attempt_draws(key, a)}
    assert not faults & set(draws.tolist())


def throttled_scenario() -> Any:
    """One model, 1 M input tokens a minute against 1.4 M offered: refusals by the hundred."""
    llm = (
        "{models: {m: {provider: p, ttft: 0.8, inter_token: 0.015}},"
        " providers: {p: {input_tokens_per_min: 1000000}},"
        " categories: {CodeGen: m},"
        " anatomy: {CodeGen: {calls: 1, input_tokens: {mean: 10000, cv: 0},"
        " output_tokens: {mean: 100, cv: 0}}},"
        " retry: {base: 1s, factor: 2, max: 8s, max_retries: 1000, max_wait: 2h,"
        " use_retry_after: false}}"
    )
    return load_scenario(
        SCENARIOS / "baseline_200.yaml",
        [
            "duration=20m",
            "warmup=0s",
            "scaling.auto_scale.enabled=false",
            "topology.categories={CodeGen: 1}",
            "workload.dags.rate_per_min=0",
            "workload.arrivals.rate_per_min=140",
            f"llm={llm}",
        ],
    )


def test_the_simulators_agents_back_off_by_the_keyed_draw() -> None:
    """Every throttled attempt's backoff is the sum of its refusals' keyed draws x caps."""
    scenario = throttled_scenario()
    result = run_scenario(scenario)
    assert result.llm is not None
    seed = fault_seed(Streams(scenario.seed, result.replication))  # as the coordinator's
    arrivals = result.tasks.drop_duplicates("task_id").set_index("task_id")["arrival_s"]
    throttled = result.llm[(result.llm["throttled"] > 0) & (result.llm["outcome"] == "completed")]
    assert len(throttled) > 200
    for row in throttled.itertuples():
        key = task_key(seed, float(arrivals[row.task_id]), -1, -1)
        wanted = expected_wait(RULE, key, int(row.attempt), 0, int(row.throttled))
        assert row.retry_wait_s == pytest.approx(wanted, rel=1e-9, abs=1e-12)


class RefusingGate:
    """A gate that refuses each call *refusals* times, then grants it."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.asked = refusals, 0

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        self.asked += 1
        granted = self.asked > self.refusals
        if granted:
            self.asked = 0
        return encode(
            {"granted": granted, "wait_s": 0.5, "latency_s": 1.0, "retry": rule_document(RULE)}
        )

    async def notify(self, subject: str, data: bytes) -> None:
        return None


def test_a_live_agent_backs_off_by_the_key_its_coordinator_sent() -> None:
    """The assignment carries the task's key; the agent's caller waits, for each refusal of
    each call, the simulator's keyed draw x cap; without the key it draws its own."""
    scenario = throttled_scenario()
    draws = FaultDraws(scenario, seed=12345)
    task = LiveTask(3, "CodeGen", "A", 812.25, 40.0)
    fields = draws.fields(task, 2, "A", 0.0)
    key = fields[BACKOFF_KEY_FIELD]
    assert key == task_key(12345, 812.25, -1, -1)
    assert decode(encode(fields))[BACKOFF_KEY_FIELD] == key  # an integer over the wire

    def run(books: CallBooks, calls: int, refusals: int) -> None:
        gate = RefusingGate(refusals)
        caller = LlmCaller(gate.request, gate.notify, "A-CodeGen-1", 1e6, seed=1)

        async def body() -> None:
            for _ in range(calls):
                await caller.acquire("m", 10_000, 100, books)
                books.calls += 1

        asyncio.run(body())

    keyed = CallBooks(task_id=3, backoff_key=key, attempt=2)
    run(keyed, calls=3, refusals=4)
    assert keyed.throttled == 12
    wanted = sum(expected_wait(RULE, key, 2, call, 4) for call in range(3))
    assert keyed.retry_wait_s == pytest.approx(wanted, rel=1e-12)
    own = CallBooks(task_id=3)
    run(own, calls=3, refusals=4)
    assert own.throttled == 12 and own.retry_wait_s != pytest.approx(wanted, rel=1e-6)


def test_assignments_carry_no_key_without_model_calls() -> None:
    scenario = load_scenario(SCENARIOS / "baseline_200.yaml", [])
    task = LiveTask(3, "CodeGen", "A", 812.25, 40.0)
    assert FaultDraws(scenario, seed=1).fields(task, 1, "A", 0.0) == {}
