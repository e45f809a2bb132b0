"""The planner's binding constraint: a provider's limit caps throughput, agents do not help."""

from __future__ import annotations

import pytest
from support import SCENARIOS

from sim.analysis.llm_capacity import BINDING_UTILISATION, binding_provider, provider_loads
from sim.analysis.planner import Planner, PlanOptions
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget
from sim.scenario.load import load_scenario

SCENARIO = SCENARIOS / "llm_rate_limits.yaml"


def test_the_frontier_input_limit_binds_at_the_daily_peak_and_the_answer_is_the_limit_needed() -> (
    None
):
    scenario = load_scenario(SCENARIO)
    load = binding_provider(scenario)
    assert load is not None
    assert (load.provider, load.dimension) == ("frontier", "input_tokens_per_min")
    # Offered at the peak: (1 + 0.7) x 140/min plus DAG nodes, 60 % of them frontier
    # categories, 4 calls of 12,000 input tokens: well above 5.5 M, below 8.5 M.
    assert 5_500_000 < load.offered_per_min < 8_500_000
    assert load.needed_per_min == pytest.approx(load.offered_per_min / BINDING_UTILISATION)
    raised = load_scenario(
        SCENARIO, [f"llm.providers.frontier.input_tokens_per_min={load.needed_per_min * 1.01:.0f}"]
    )
    assert binding_provider(raised) is None
    # Agents do not enter the provider's load at all.
    more_agents = load_scenario(SCENARIO, ["topology.specialists=260"])
    assert provider_loads(more_agents) == provider_loads(scenario)


def test_without_an_llm_section_no_provider_binds() -> None:
    assert provider_loads(load_scenario(SCENARIOS / "baseline_200.yaml")) == []


def test_the_planner_stops_at_a_binding_provider_limit_without_simulating_fleets() -> None:
    scenario = load_scenario(SCENARIO)
    target = SloTarget(p99_wait_s=60.0, p99_latency_s=None, error_rate=0.05)
    with Replicas(1) as replicas:
        plan = Planner(scenario, target, PlanOptions(duration_s=3600.0), replicas).plan("llm")
    assert plan.binding == "provider" and plan.simulated is None and plan.runs == 0
    assert "frontier input_tokens_per_min" in plan.binding_note and "raise it" in plan.binding_note
