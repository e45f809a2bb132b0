"""Tests for the alert evaluator in ``sim.policies.alerts``.

Every rule of the spec (section 6.3), parsed from the schema's defaults, fires
on a sample that crosses it and resolves on the next one that does not. Then
Prometheus' ``for`` semantics (never before ``for``, exactly at it), the
change rule, missing metrics, and a property over random sample streams: a
threshold rule's events alternate firing/resolved and agree with its condition.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.policies.alerts import (
    AlertEvaluator,
    AlertEvent,
    AlertRuleSpec,
    Condition,
    parse_condition,
)
from sim.scenario.schema import AlertRule, Scenario
from sim.world.policy_set import alert_evaluator

PROPS = settings(max_examples=50, deadline=None)

#: A healthy fleet: no spec rule holds.
QUIET: dict[str, float] = {
    "offline_agents": 0.0,
    "error_rate": 0.0,
    "queue_depth": 10.0,
    "p99_latency": 2.0,
    "throughput": 156.0,
    "total_agents": 200.0,
}


def spec_evaluator() -> AlertEvaluator:
    return alert_evaluator(Scenario().alerts)


def crossing(condition: Condition) -> float:
    """A value on the alerting side of a threshold condition."""
    if condition.op in (">", ">="):
        return condition.threshold * 2 + 1
    if condition.op in ("<", "<="):
        return condition.threshold / 2
    raise AssertionError(condition)


def rule(condition: str, for_s: float = 0.0, name: str = "r") -> AlertRuleSpec:
    return AlertRuleSpec(name, "warning", parse_condition(condition), "notify_slack", for_s)


def states(events: list[AlertEvent]) -> list[tuple[float, str]]:
    return [(e.time, e.state) for e in events]


def test_from_scenario_reads_the_spec_rules_in_order() -> None:
    evaluator = spec_evaluator()
    assert [(r.name, r.severity, r.action) for r in evaluator.rules] == [
        ("agent_offline_threshold", "critical", "page_oncall"),
        ("error_rate_spike", "critical", "page_oncall"),
        ("queue_overflow", "critical", "scale_up_immediate"),
        ("high_latency", "warning", "notify_slack"),
        ("low_throughput", "warning", "notify_slack"),
        ("scale_event", "info", "log_event"),
    ]
    assert evaluator.rules[1].condition == Condition("error_rate", ">", 0.05)
    assert evaluator.rules[3].condition == Condition("p99_latency", ">", 10.0)


def test_the_for_field_of_a_rule_becomes_for_s() -> None:
    parsed = AlertRule.model_validate(
        {"name": "slow", "condition": "p99_latency > 10s", "action": "notify_slack", "for": "5m"}
    )
    evaluator = alert_evaluator({"warning": [parsed]})
    assert evaluator.rules[0].for_s == 300.0


@pytest.mark.parametrize("index", range(5))
def test_each_spec_threshold_rule_fires_on_crossing_and_resolves_after(index: int) -> None:
    evaluator = spec_evaluator()
    target = evaluator.rules[index]
    metric = target.condition.metric
    assert evaluator.evaluate(0.0, QUIET) == []
    value = crossing(target.condition)
    fired = evaluator.evaluate(60.0, {**QUIET, metric: value})
    assert fired == [
        AlertEvent(60.0, target.name, target.severity, target.action, "firing", value, metric)
    ]
    assert evaluator.firing() == [target.name]
    assert evaluator.evaluate(120.0, {**QUIET, metric: value}) == []  # still firing: silent
    resolved = evaluator.evaluate(180.0, QUIET)
    assert [(e.name, e.state, e.value) for e in resolved] == [
        (target.name, "resolved", QUIET[metric])
    ]
    assert evaluator.firing() == []


def test_the_spec_thresholds_are_exclusive_and_in_canonical_units() -> None:
    evaluator = spec_evaluator()
    at = {
        "offline_agents": 20.0,
        "error_rate": 0.05,
        "queue_depth": 500.0,
        "p99_latency": 10.0,
        "throughput": 50.0,
        "total_agents": 200.0,
    }
    assert evaluator.evaluate(0.0, at) == []
    over = {**at, "error_rate": 0.051, "p99_latency": 10.5, "throughput": 49.0}
    assert {e.name for e in evaluator.evaluate(60.0, over)} == {
        "error_rate_spike",
        "high_latency",
        "low_throughput",
    }


def test_queue_overflow_carries_the_scale_up_action() -> None:
    events = spec_evaluator().evaluate(0.0, {**QUIET, "queue_depth": 501.0})
    assert [(e.name, e.action, e.severity) for e in events] == [
        ("queue_overflow", "scale_up_immediate", "critical")
    ]


def test_the_agent_count_rule_fires_on_each_change_and_resolves_without_one() -> None:
    evaluator = spec_evaluator()
    assert evaluator.evaluate(0.0, QUIET) == []  # nothing to compare with yet
    events = evaluator.evaluate(60.0, {**QUIET, "total_agents": 210.0})
    assert [(e.name, e.state, e.value, e.metric) for e in events] == [
        ("scale_event", "firing", 210.0, "total_agents")
    ]
    again = evaluator.evaluate(120.0, {**QUIET, "total_agents": 220.0})
    assert states(again) == [(120.0, "firing")]  # a further change is logged too
    assert states(evaluator.evaluate(180.0, {**QUIET, "total_agents": 220.0})) == [
        (180.0, "resolved")
    ]
    assert evaluator.evaluate(240.0, {**QUIET, "total_agents": 220.0}) == []


def test_a_change_rule_compares_with_the_last_valid_sample() -> None:
    evaluator = AlertEvaluator([rule("agent_count_changed")])
    evaluator.evaluate(0.0, {"total_agents": 200.0})
    assert evaluator.evaluate(60.0, {}) == []
    assert evaluator.evaluate(120.0, {"total_agents": math.nan}) == []
    assert evaluator.evaluate(180.0, {"total_agents": 200.0}) == []  # same as at t = 0
    assert states(evaluator.evaluate(240.0, {"total_agents": 195.0})) == [(240.0, "firing")]


def test_a_change_rule_with_for_needs_changes_on_consecutive_samples() -> None:
    evaluator = AlertEvaluator([rule("agent_count_changed", for_s=60.0)])
    evaluator.evaluate(0.0, {"total_agents": 200.0})
    assert evaluator.evaluate(60.0, {"total_agents": 210.0}) == []  # pending since 60
    assert states(evaluator.evaluate(120.0, {"total_agents": 220.0})) == [(120.0, "firing")]


@PROPS
@given(
    for_s=st.integers(1, 900),
    step=st.integers(1, 120),
    value=st.floats(21.0, 1000.0),
)
def test_for_fires_exactly_at_the_first_evaluation_past_for(
    for_s: int, step: int, value: float
) -> None:
    evaluator = AlertEvaluator([rule("offline_agents > 20", for_s=float(for_s))])
    start = 1000.0
    evaluator.evaluate(start - step, {"offline_agents": 0.0})
    fired_at = None
    t = start
    while fired_at is None:
        events = evaluator.evaluate(t, {"offline_agents": value})
        if events:
            assert states(events) == [(t, "firing")]
            fired_at = t
        else:
            assert evaluator.pending() == ["r"]
        t += step
    assert fired_at - start >= for_s
    assert fired_at - start < for_s + step


@PROPS
@given(for_s=st.integers(2, 900), step=st.integers(1, 120), data=st.data())
def test_a_condition_true_for_less_than_for_never_fires(
    for_s: int, step: int, data: st.DataObject
) -> None:
    held = data.draw(st.integers(0, max(0, (for_s - 1) // step)), label="true evaluations - 1")
    evaluator = AlertEvaluator([rule("queue_depth > 500", for_s=float(for_s))])
    events: list[AlertEvent] = []
    t = 0.0
    for _ in range(held + 1):  # true from 0 to held * step < for_s
        events += evaluator.evaluate(t, {"queue_depth": 600.0})
        t += step
    events += evaluator.evaluate(t, {"queue_depth": 100.0})
    for _ in range(held + 1):  # and again: the clock restarted
        t += step
        events += evaluator.evaluate(t, {"queue_depth": 600.0})
    assert events == []


def test_for_counts_float_sample_times_exactly() -> None:
    evaluator = AlertEvaluator([rule("p99_latency > 10s", for_s=0.3)])
    t, fired = 0.0, []
    for _ in range(5):
        fired += evaluator.evaluate(t, {"p99_latency": 11.0})
        t += 0.1
    assert len(fired) == 1 and fired[0].time == pytest.approx(0.3)


def test_a_missing_metric_leaves_the_rule_as_it_was() -> None:
    evaluator = AlertEvaluator([rule("error_rate > 5%", for_s=120.0)])
    assert evaluator.evaluate(0.0, {"error_rate": 0.2}) == []
    assert evaluator.evaluate(60.0, {}) == []  # no data: still pending, clock running
    assert evaluator.evaluate(90.0, {"error_rate": math.nan}) == []
    assert evaluator.pending() == ["r"]
    assert states(evaluator.evaluate(120.0, {"error_rate": 0.2})) == [(120.0, "firing")]
    assert evaluator.evaluate(180.0, {"queue_depth": 0.0}) == []  # firing stays firing
    assert evaluator.firing() == ["r"]
    assert states(evaluator.evaluate(240.0, {"error_rate": 0.01})) == [(240.0, "resolved")]


def test_rules_with_the_same_metric_are_independent() -> None:
    evaluator = AlertEvaluator(
        [rule("queue_depth > 100", name="warm"), rule("queue_depth > 500", name="hot")]
    )
    assert [e.name for e in evaluator.evaluate(0.0, {"queue_depth": 300.0})] == ["warm"]
    assert [e.name for e in evaluator.evaluate(1.0, {"queue_depth": 600.0})] == ["hot"]
    assert [(e.name, e.state) for e in evaluator.evaluate(2.0, {"queue_depth": 0.0})] == [
        ("warm", "resolved"),
        ("hot", "resolved"),
    ]


@PROPS
@given(
    condition=st.sampled_from(["queue_depth > 500", "throughput < 50/min", "error_rate >= 5%"]),
    for_s=st.sampled_from([0.0, 30.0, 120.0]),
    samples=st.lists(
        st.tuples(
            st.floats(0.0, 90.0),
            st.one_of(st.sampled_from([0.0, 0.05, 50.0, 500.0, math.nan]), st.floats(0.0, 1000.0)),
        ),
        max_size=80,
    ),
)
def test_threshold_events_alternate_and_agree_with_the_condition(
    condition: str, for_s: float, samples: list[tuple[float, float]]
) -> None:
    spec = rule(condition, for_s=for_s)
    evaluator = AlertEvaluator([spec])
    t, events = 0.0, []
    true_since: float | None = None
    for dt, value in samples:
        t += dt
        got = evaluator.evaluate(t, {spec.condition.metric: value})
        events += got
        if math.isnan(value):
            assert got == []
            continue
        holds = spec.condition.holds(value)
        true_since = (true_since if true_since is not None else t) if holds else None
        for event in got:
            assert event.state == ("firing" if holds else "resolved")
            assert event.value == value and event.time == t
            if holds:
                assert true_since is not None and t - true_since >= for_s - 1e-9
    assert [e.state for e in events] == ["firing", "resolved"] * (len(events) // 2) + (
        ["firing"] if len(events) % 2 else []
    )
