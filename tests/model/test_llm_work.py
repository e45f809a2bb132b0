"""AI agents' tasks as model calls under a fleet-wide provider limit (sim.model.llm_work).

One category, one model, fixed-size calls, so the offered input tokens per
minute are known: 140 tasks/min x 1 call x 10,000 tokens = 1.4 M/min.
"""

from __future__ import annotations

import pandas as pd
import pytest
from support import SCENARIOS

from sim.model.engine import run_scenario
from sim.scenario.load import ScenarioError, load_scenario
from sim.scenario.schema import Scenario

OFFERED_PER_MIN = 140 * 10_000


def one_model(limit_per_min: float, *retry: str, minutes: int = 40) -> Scenario:
    llm = (
        "{models: {m: {provider: p, ttft: 0.8, inter_token: 0.015}},"
        f" providers: {{p: {{input_tokens_per_min: {limit_per_min}}}}},"
        " categories: {CodeGen: m},"
        " anatomy: {CodeGen: {calls: 1, input_tokens: {mean: 10000, cv: 0},"
        " output_tokens: {mean: 100, cv: 0}}}}"
    )
    return load_scenario(
        SCENARIOS / "baseline_200.yaml",
        [
            f"duration={minutes}m",
            "warmup=10m",
            "scaling.auto_scale.enabled=false",
            "topology.categories={CodeGen: 1}",
            "workload.dags.rate_per_min=0",
            "workload.arrivals.rate_per_min=140",
            f"llm={llm}",
            *retry,
        ],
    )


def provider_rows(metrics: pd.DataFrame, warmup: float) -> pd.DataFrame:
    rows = metrics[(metrics["level"] == "provider") & (metrics["time_s"] > warmup)]
    assert len(rows) > 0
    return rows


@pytest.mark.parametrize("use_retry_after", [True, False])
def test_offered_above_the_input_limit_the_fleet_is_served_at_the_limit(
    use_retry_after: bool,
) -> None:
    """Served input tokens per minute equal the limit within 1 % (agents are not the bottleneck).

    The limit is 1 M/min against 1.4 M offered; every agent with work keeps
    asking, by the provider's retry-after or by full-jitter backoff, and the
    budget is wide so no attempt gives up.
    """
    limit = 1_000_000
    scenario = one_model(
        limit,
        f"llm.retry.use_retry_after={str(use_retry_after).lower()}",
        "llm.retry.max_retries=1000",
        "llm.retry.max_wait=2h",
        "llm.retry.max=5s",
    )
    result = run_scenario(scenario)
    rows = provider_rows(result.metrics, scenario.warmup)
    served = rows["input_tokens_per_min"].mean()
    assert served == pytest.approx(limit, rel=0.01)
    assert rows["throttled_per_min"].min() > 0
    assert result.counts["lost"] == 0
    assert result.llm is not None
    assert (result.llm["outcome"] != "rate_limited").all()


def test_offered_below_the_limit_nothing_is_throttled_and_every_token_is_counted() -> None:
    scenario = one_model(2_000_000)
    result = run_scenario(scenario)
    assert result.llm is not None
    attempts = result.llm
    assert int(attempts["throttled"].sum()) == 0
    rows = provider_rows(result.metrics, scenario.warmup)
    assert rows["input_tokens_per_min"].mean() == pytest.approx(OFFERED_PER_MIN, rel=0.05)
    done = attempts[attempts["outcome"] == "completed"]
    assert (done["input_tokens"] == 10_000).all() and (done["calls"] == 1).all()
    # One completed attempt per completed task, and its cost is the model's prices.
    assert len(done) == result.counts["completed"]
    assert done["usd"].iloc[0] == pytest.approx((10_000 * 3.0 + 100 * 15.0) / 1e6)
    # A call lasts TTFT + output x inter-token: the task's service time.
    tasks = result.tasks[result.tasks["outcome"] == "completed"]
    assert (tasks["service_s"] - (0.8 + 100 * 0.015)).abs().max() < 1e-6


def test_an_exhausted_retry_budget_fails_the_attempt_as_rate_limited_and_escalates() -> None:
    scenario = one_model(1_000_000, "llm.retry.max_retries=0")
    result = run_scenario(scenario)
    tasks = result.tasks
    retried = tasks[tasks["outcome"] == "retried"]
    assert len(retried) > 0 and set(retried["reason"]) == {"rate_limited"}
    assert result.counts["retried"] > 0 and result.counts["lost"] == 0
    assert result.llm is not None
    assert (result.llm["outcome"] == "rate_limited").sum() == len(retried)
    # The books balance: every submitted task completed, failed or is still in the system.
    counts = result.counts
    assert (
        counts["submitted"]
        == counts["completed"] + counts["failed"] + counts["shed"] + counts["in_flight"]
    )


def test_same_seed_same_event_log_and_summary_tables() -> None:
    scenario = one_model(1_000_000, minutes=20)
    a, b = run_scenario(scenario), run_scenario(scenario)
    assert a.events_sha256 == b.events_sha256
    assert a.llm is not None and b.llm is not None
    pd.testing.assert_frame_equal(a.llm, b.llm)


def test_without_an_llm_section_there_is_no_llm_table_or_provider_rows() -> None:
    scenario = load_scenario(
        SCENARIOS / "baseline_200.yaml",
        ["duration=15m", "warmup=5m", "workload.dags.rate_per_min=0"],
    )
    result = run_scenario(scenario)
    assert result.llm is None
    assert "input_tokens_per_min" not in result.metrics.columns
    assert (result.metrics["level"] != "provider").all()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("llm.categories.CodeGen=nope", "llm.categories.CodeGen: unknown model 'nope'"),
        ("llm.models.frontier.provider=nowhere", "llm.models.frontier.provider: unknown provider"),
        ("llm.anatomy.CodeGen.calls=0", "llm.anatomy.CodeGen.calls"),
        ("llm.categories.Cooking=small", "llm.categories.Cooking: unknown category"),
    ],
)
def test_bad_llm_sections_get_a_one_line_error(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(SCENARIOS / "llm_rate_limits.yaml", [override])
    text = str(error.value)
    # "<file> (after --set): llm: categories.CodeGen: unknown model ..." or "... llm.categories..."
    assert "llm_rate_limits.yaml" in text and len(text.splitlines()) == 1, text
    assert message in text.replace("llm: ", "llm."), text
