"""Priority tiers in the SimPy shell: shedding over a load ramp, conservation, the summary blocks.

The fleet is the textbook M/M/c of ``mmc_validation.yaml`` cut to 20 agents
(mean service 60 s: capacity 20 tasks/min), with the default tiers —
critical 10 %, standard 60 %, batch 30 % of arrivals, admitted below 100 %,
80 % and 50 % of a 40-task queue — and the top tier taken first from the
queue. The ramp offers 50 % to 200 % of capacity, one run per load, on one
seed.

Tolerances come from the sample: a shed share p measured on n tasks has a
standard error sqrt(p (1 - p) / n); two shares are "in order" when the
larger one is not below the other by more than three pooled standard
errors (a floor of 3/n, the rule of three, covers shares of zero).

The top tier's bound: an arriving critical task waits at most for the
first of 20 busy agents to free — exponential with mean 60 s / 20 = 3 s,
p99 = 3 ln 100 = 13.8 s — and for the rare critical task ahead of it. Its
p99 wait must stay within twice that, 30 s (half a mean service time), at
every load; without tiers the same fleet at 200 % waits for hours.
"""

from __future__ import annotations

import itertools
import math

import pytest
from support import SCENARIOS

from sim.metrics.result import RunResult
from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.load import load_scenario

AGENTS = 20
CAPACITY_PER_MIN = AGENTS * 60.0 / 60.0
LOADS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
TOP_P99_BOUND_S = 30.0
TIERS = ("critical", "standard", "batch")


def ramp_run(load: float, tiers: bool = True) -> RunResult:
    overrides = [
        f"topology.specialists={AGENTS}",
        f"workload.arrivals.rate_per_min={load * CAPACITY_PER_MIN}",
        "duration=2h",
        "warmup=30m",
    ]
    if tiers:
        overrides.append("tiers={queue_limit: 40}")
    return run_scenario(load_scenario(SCENARIOS / "mmc_validation.yaml", overrides))


@pytest.fixture(scope="module")
def ramp() -> dict[float, dict]:
    return {load: summary_of(ramp_run(load)) for load in LOADS}


def rows(summary: dict) -> dict[str, dict]:
    return {row["tier"]: row for row in summary["tiers"]["by_tier"]}


def in_order(low: dict, high: dict) -> bool:
    """high's shed share is not below low's by more than three pooled standard errors."""
    p1, n1 = low["shed_share"], low["submitted"]
    p2, n2 = high["shed_share"], high["submitted"]
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return bool(p2 >= p1 - max(3 * se, 3 / min(n1, n2)))


def test_below_capacity_nothing_is_shed(ramp: dict[float, dict]) -> None:
    for load in (0.5, 0.75):
        summary = ramp[load]
        assert summary["tasks"]["shed"] == 0, load
        assert all(row["shed"] == 0 for row in summary["tiers"]["by_tier"])
        assert sum(row["submitted"] for row in summary["tiers"]["by_tier"]) > 800


def test_shedding_is_monotone_in_load_and_lower_tiers_lose_their_share_first(
    ramp: dict[float, dict],
) -> None:
    for low, high in itertools.pairwise(LOADS):
        for tier in TIERS:
            assert in_order(rows(ramp[low])[tier], rows(ramp[high])[tier]), (tier, low, high)
    for load in LOADS:
        by = rows(ramp[load])
        assert by["critical"]["shed"] == 0, load
        assert in_order(by["standard"], by["batch"]), load
        assert in_order(by["critical"], by["standard"]), load
    # Overloaded, shedding is real and bottom-first: at 200 % batch is nearly all shed
    # while standard keeps most of its tasks.
    top = rows(ramp[2.0])
    assert top["batch"]["shed_share"] > 0.9
    assert 0.05 < top["standard"]["shed_share"] < 0.6
    assert rows(ramp[1.25])["batch"]["shed_share"] > rows(ramp[1.25])["standard"]["shed_share"]


def test_the_top_tier_wait_holds_over_the_ramp(ramp: dict[float, dict]) -> None:
    for load in LOADS:
        critical = rows(ramp[load])["critical"]
        assert critical["completed"] > 100
        assert critical["wait_s"]["p99"] <= TOP_P99_BOUND_S, load
    untiered = summary_of(ramp_run(2.0, tiers=False))
    assert untiered["wait_s"]["p99"] > 10 * TOP_P99_BOUND_S  # what the tiers protect against


def test_shed_tasks_join_the_conservation_rule(ramp: dict[float, dict]) -> None:
    for load in LOADS:
        tasks = ramp[load]["tasks"]
        assert tasks["lost"] == 0
        assert tasks["submitted"] == (
            tasks["completed"] + tasks["failed"] + tasks["shed"] + tasks["in_flight"]
        )
    assert ramp[2.0]["tasks"]["shed"] > 1000


def test_tenants_drawn_independently_of_tiers_are_served_fairly(ramp: dict[float, dict]) -> None:
    tenants = ramp[2.0]["tenants"]
    assert [row["tenant"] for row in tenants["by_tenant"]] == ["default"]
    assert tenants["jain"] == pytest.approx(1.0)


def test_tiers_that_never_shed_or_reorder_leave_the_run_untouched() -> None:
    """No limit, no priority: the same events and task records as without the section.

    The tier and tenant draws come from their own stream, so the arrivals,
    the work and every decision stay as they were (common random numbers).
    """
    overrides = [
        f"topology.specialists={AGENTS}",
        f"workload.arrivals.rate_per_min={1.5 * CAPACITY_PER_MIN}",
        "duration=1h",
        "warmup=30m",
    ]
    base = load_scenario(SCENARIOS / "mmc_validation.yaml", overrides)
    plain = run_scenario(base)
    tiered = run_scenario(
        load_scenario(
            SCENARIOS / "mmc_validation.yaml", [*overrides, "tiers={priority_queue: false}"]
        )
    )
    assert tiered.counts["shed"] == 0
    assert tiered.events_sha256 == plain.events_sha256
    assert tiered.tiers is not None and len(tiered.tiers) == tiered.counts["submitted"]
