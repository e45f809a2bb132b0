"""Real agent runs as workload: an OTLP/JSON export of GenAI spans, replayed or fitted.

The fixture (``data/agent_runs.otlp.json``) is written for these tests the
way an OpenTelemetry GenAI instrumentation exports a run: per task an
``invoke_agent`` root span, ``chat`` spans with ``gen_ai.request.model`` and
``gen_ai.usage.*`` tokens (int64 as strings, as OTLP/JSON writes them), and
``execute_tool`` spans between them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SCENARIOS

from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario
from sim.world.otlp import fit_anatomy, read_otlp, token_totals
from sim.world.workload import WorkloadError

FIXTURE = Path(__file__).parent / "data" / "agent_runs.otlp.json"


def totals_by_walking_the_document() -> dict[str, tuple[int, int]]:
    """The fixture's per-category token totals, read independently of sim.world.otlp."""
    spans = (
        FIXTURE and json.loads(FIXTURE.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    )
    attrs = [{a["key"]: a["value"] for a in s["attributes"]} for s in spans]
    category_of = {
        s["traceId"]: a["orchestra.category"]["stringValue"]
        for s, a in zip(spans, attrs, strict=True)
        if "parentSpanId" not in s
    }
    totals: dict[str, tuple[int, int]] = {}
    for s, a in zip(spans, attrs, strict=True):
        if "gen_ai.usage.input_tokens" in a:
            c = category_of[s["traceId"]]
            i, o = totals.get(c, (0, 0))
            totals[c] = (
                i + int(a["gen_ai.usage.input_tokens"]["intValue"]),
                o + int(a["gen_ai.usage.output_tokens"]["intValue"]),
            )
    return totals


def test_the_fixture_reads_as_tasks_with_its_exact_token_totals() -> None:
    tasks = read_otlp(FIXTURE)
    assert len(tasks) == 30 and tasks[0].arrival_s == 0.0
    assert [t.arrival_s for t in tasks] == sorted(t.arrival_s for t in tasks)
    assert token_totals(tasks) == totals_by_walking_the_document()
    # Every call is followed by its tool step (the fixture alternates chat and execute_tool).
    assert all(len(t.plan.tools_s) == len(t.plan.calls) for t in tasks)
    assert all(0.5 <= s <= 12.0 for t in tasks for s in t.plan.tools_s)


def replay_scenario(mode: str = "replay", minutes: int = 15) -> Scenario:
    llm = (
        "{models: {big: {provider: p}, small: {provider: p}}, providers: {p: {}},"
        " categories: {CodeGen: big, Review: big, Test: small},"
        f" trace: {FIXTURE}, trace_mode: {mode}}}"
    )
    return load_scenario(
        SCENARIOS / "baseline_200.yaml",
        [
            f"duration={minutes}m",
            "warmup=0s",
            "scaling.auto_scale.enabled=false",
            "workload.dags.rate_per_min=0",
            "workload.arrivals.rate_per_min=30",
            f"llm={llm}",
        ],
    )


def test_a_replay_serves_each_category_its_recorded_tasks_in_order_with_their_tokens() -> None:
    """The first n attempts of a category (n = its recorded tasks) carry its exact totals."""
    result = run_scenario(replay_scenario())
    assert result.llm is not None
    attempts = result.llm.sort_values(["start_s", "task_id"])
    expected = totals_by_walking_the_document()
    recorded = {c: sum(1 for t in read_otlp(FIXTURE) if t.category == c) for c in expected}
    for category, (inputs, outputs) in expected.items():
        first = attempts[attempts["category"] == category].head(recorded[category])
        assert len(first) == recorded[category]
        assert (int(first["input_tokens"].sum()), int(first["output_tokens"].sum())) == (
            inputs,
            outputs,
        )


def test_fitting_turns_a_category_into_its_mean_calls_and_tokens() -> None:
    tasks = read_otlp(FIXTURE)
    fitted = fit_anatomy(tasks)
    codegen = [t for t in tasks if t.category == "CodeGen"]
    calls = [c for t in codegen for c in t.plan.calls]
    assert fitted["CodeGen"].calls == pytest.approx(len(calls) / len(codegen))
    assert fitted["CodeGen"].input_tokens.mean == pytest.approx(
        sum(c.input_tokens for c in calls) / len(calls)
    )
    assert 0 < fitted["CodeGen"].cached_share < 0.5
    result = run_scenario(replay_scenario("fit", minutes=10))
    assert result.llm is not None and len(result.llm) > 0


def _write(tmp_path: Path, mutate: str) -> Path:
    document = json.loads(FIXTURE.read_text())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    call = next(s for s in spans if s["name"].startswith("chat"))
    if mutate == "tokens":
        for a in call["attributes"]:
            if a["key"] == "gen_ai.usage.input_tokens":
                a["value"] = {"stringValue": "lots"}
    elif mutate == "model":
        call["attributes"] = [a for a in call["attributes"] if a["key"] != "gen_ai.request.model"]
    elif mutate == "time":
        call["endTimeUnixNano"] = "0"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        ("tokens", "attributes.gen_ai.usage.input_tokens: expected a non-negative integer"),
        ("model", "attributes.gen_ai.request.model: missing"),
        ("time", "endTimeUnixNano: expected no earlier than startTimeUnixNano"),
    ],
)
def test_bad_spans_get_one_line_naming_the_span_and_attribute(
    tmp_path: Path, mutate: str, expected: str
) -> None:
    with pytest.raises(WorkloadError) as error:
        read_otlp(_write(tmp_path, mutate))
    text = str(error.value)
    assert "bad.json: resourceSpans[0].scopeSpans[0].spans[" in text and expected in text
    assert len(text.splitlines()) == 1
