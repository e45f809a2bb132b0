"""Attempt faults: errors with a per-category probability, deadlines, bursts."""

from __future__ import annotations

import numpy as np
import pytest

from sim.policies.keyed_draws import attempt_draws, task_key
from sim.policies.task_faults import AttemptFaults, Burst, Fault


def test_no_faults_configured_is_inactive() -> None:
    faults = AttemptFaults()
    assert not faults.active
    assert faults.fault("CodeGen", "A", 40.0, (0.0, 0.5)) is None


def test_an_error_comes_part_way_through_the_work() -> None:
    faults = AttemptFaults(probability=0.1)
    assert faults.fault("CodeGen", "A", 40.0, (0.05, 0.25)) == Fault("error", 10.0)
    assert faults.fault("CodeGen", "A", 40.0, (0.15, 0.25)) is None


def test_category_probability_and_deadline_override_the_default() -> None:
    faults = AttemptFaults(
        probability=0.1,
        by_category={"Review": 0.5},
        deadline_s=100.0,
        deadline_by_category={"Review": 20.0},
    )
    assert faults.probability("Review", "A") == 0.5
    assert faults.deadline("Review") == 20.0
    assert faults.deadline("CodeGen") == 100.0
    assert faults.deadline("CodeGen", task_deadline_s=5.0) == 5.0
    assert faults.fault("Review", "A", 30.0, (0.9, 0.0)) == Fault("timeout", 20.0)
    # An error due after the deadline loses to the timeout.
    assert faults.fault("Review", "A", 30.0, (0.1, 0.9)) == Fault("timeout", 20.0)


def test_a_burst_raises_the_probability_only_where_it_applies() -> None:
    faults = AttemptFaults(probability=0.01)
    faults.start_burst("b", Burst(0.4, frozenset({"Test"}), frozenset({"B"})))
    assert faults.probability("Test", "B") == 0.4
    assert faults.probability("Test", "A") == 0.01
    assert faults.probability("CodeGen", "B") == 0.01
    faults.end_burst("b")
    assert faults.probability("Test", "B") == 0.01


def test_a_burst_alone_makes_faults_active() -> None:
    faults = AttemptFaults()
    faults.start_burst("b", Burst(0.3))
    assert faults.active
    faults.end_burst("b")
    assert not faults.active


def test_error_share_matches_the_probability() -> None:
    """10,000 attempts at p = 0.05: the share of errors is within 4 standard errors."""
    faults = AttemptFaults(probability=0.05)
    rng = np.random.default_rng(7)
    n = 10_000
    errors = sum(
        faults.fault("CodeGen", "A", 10.0, rng.random(2).tolist()) is not None for _ in range(n)
    )
    se = (0.05 * 0.95 / n) ** 0.5
    assert abs(errors / n - 0.05) < 4 * se


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="probability"):
        AttemptFaults(probability=1.0)
    with pytest.raises(ValueError, match="deadline"):
        AttemptFaults(deadline_s=0.0)


def test_a_dag_nodes_key_is_its_job_and_node_an_independent_tasks_its_arrival() -> None:
    """A DAG node's arrival is its release, a different float in live and in its replay:
    its key must not depend on it. An independent task's arrival is drawn alike in both."""
    node = task_key(42, 100.25, 7, 3)
    assert task_key(42, 100.2500001, 7, 3) == node  # released a moment later: the same draws
    assert task_key(42, 100.25, 7, 4) != node and task_key(42, 100.25, 8, 3) != node
    alone = task_key(42, 100.25, -1, -1)
    assert task_key(42, 100.2500001, -1, -1) != alone  # another arrival: another task
    assert attempt_draws(node, 1) != attempt_draws(node, 2)
