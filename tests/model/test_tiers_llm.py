"""Tiers against the provider's budget and tenants' token budgets, in the SimPy shell.

Twenty agents of one category, each task one model call of 10,000 input and
100 output tokens (2.3 s), 100 tasks a minute: 1.01 M tokens a minute offered,
far below what the agents could serve, so only the token limits shed.
"""

from __future__ import annotations

import pytest
from support import SCENARIOS

from sim.metrics.result import RunResult
from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.load import ScenarioError, load_scenario
from sim.scenario.schema import Scenario


def fleet(limit_per_min: float, tiers: str | None, *more: str) -> Scenario:
    llm = (
        "{models: {m: {provider: p, ttft: 0.8, inter_token: 0.015}},"
        f" providers: {{p: {{input_tokens_per_min: {limit_per_min}}}}},"
        " categories: {Generic: m},"
        " anatomy: {Generic: {calls: 1, input_tokens: {mean: 10000, cv: 0},"
        " output_tokens: {mean: 100, cv: 0}}},"
        " retry: {max_retries: 1000, max_wait: 2h, max: 5s}}"
    )
    overrides = [
        "topology.specialists=20",
        "workload.arrivals.rate_per_min=100",
        "duration=30m",
        "warmup=10m",
        f"llm={llm}",
        *more,
    ]
    if tiers is not None:
        overrides.append(f"tiers={tiers}")
    return load_scenario(SCENARIOS / "mmc_validation.yaml", overrides)


def by_tier(summary: dict) -> dict[str, dict]:
    return {row["tier"]: row for row in summary["tiers"]["by_tier"]}


def test_an_exhausted_provider_budget_sheds_batch_then_standard_never_critical() -> None:
    """At 600 k tokens/min against 1 M offered the provider lane sheds from the bottom."""
    tiered: RunResult = run_scenario(fleet(600_000, "{}"))
    plain: RunResult = run_scenario(fleet(600_000, None))
    summary = summary_of(tiered)
    rows = by_tier(summary)
    assert rows["critical"]["shed"] == 0
    assert rows["batch"]["shed_share"] > rows["standard"]["shed_share"] > 0
    assert set(rows["batch"]["shed_by_reason"]) == {"provider"}
    # Shedding at the door keeps calls from piling up behind the provider.
    assert tiered.llm is not None and plain.llm is not None
    assert tiered.llm["throttled"].sum() < 0.5 * plain.llm["throttled"].sum()
    assert rows["critical"]["wait_s"]["p99"] < summary_of(plain)["wait_s"]["p99"]
    tasks = summary["tasks"]
    assert tasks["lost"] == 0 and tasks["shed"] > 0
    assert tasks["submitted"] == (
        tasks["completed"] + tasks["failed"] + tasks["shed"] + tasks["in_flight"]
    )
    frame = tiered.tiers
    assert frame is not None
    assert int((frame["admission"] == "shed").sum()) == tasks["shed"]


def test_a_tenant_over_its_token_budget_loses_its_lower_tiers_and_fairness_shows_it() -> None:
    """Tenant a offers ~500 k tokens/min against a 200 k budget; b has none; no provider limit."""
    tiers = "{tenants: {a: {share: 1, tokens_per_min: 200000}, b: {share: 1}}}"
    result = run_scenario(fleet(10_000_000, tiers))
    summary = summary_of(result)
    frame = result.tiers
    assert frame is not None
    shed = frame[frame["admission"] == "shed"]
    assert set(shed["reason"]) == {"tenant_budget"}
    assert set(shed["tenant"]) == {"a"}  # the tenant within its means loses nothing
    assert "critical" not in set(shed["tier"])  # never its top tier
    a = frame[frame["tenant"] == "a"]
    share = {t: (a[a["tier"] == t]["admission"] == "shed").mean() for t in ("standard", "batch")}
    assert share["batch"] > share["standard"] > 0
    tenants = {row["tenant"]: row for row in summary["tenants"]["by_tenant"]}
    assert tenants["a"]["served_over_demand"] < 1 < tenants["b"]["served_over_demand"]
    assert 0.5 < summary["tenants"]["jain"] < 0.99
    # Served tokens of a stay near its budget once the run has settled (within 30 %).
    assert result.llm is not None
    warm = result.llm[result.llm["end_s"] >= 600]
    ids = set(a["task_id"])
    a_tokens = warm[warm["task_id"].isin(ids)][["input_tokens", "output_tokens"]].sum().sum()
    assert a_tokens / 20.0 == pytest.approx(200_000, rel=0.3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tiers={by_category: {Generic: {urgent: 1}}}", "by_category.Generic.urgent: unknown tier"),
        ("tiers={by_category: {Cooking: {batch: 1}}}", "tiers.by_category.Cooking: unknown"),
        ("tiers={tenants: {a: {tokens_per_min: 1000}}}", "token budgets need an llm section"),
        (
            "tiers={levels: [{name: a, share: 1, admit_below: 0.5}]}",
            "levels[0].admit_below: expected 1.0",
        ),
    ],
)
def test_bad_tiers_sections_get_a_one_line_error(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(SCENARIOS / "mmc_validation.yaml", [override])
    text = str(error.value)
    assert "mmc_validation.yaml" in text and len(text.splitlines()) == 1, text
    assert message in text, text


def test_the_shipped_scenario_loads_with_its_tenants_and_tiers() -> None:
    scenario = load_scenario(SCENARIOS / "llm_tiers.yaml")
    assert scenario.tiers is not None and scenario.llm is not None
    assert [level.name for level in scenario.tiers.levels] == ["critical", "standard", "batch"]
    assert scenario.tiers.budgets
