"""Real agent runs as workload: an OpenTelemetry JSON export (OTLP/JSON) of GenAI spans.

Each trace is one task. Its root span (no parent) names the category — the
attribute ``orchestra.category``, else ``gen_ai.agent.name`` — and its
start is the task's arrival. Spans carrying ``gen_ai.usage.input_tokens``
are model calls (GenAI semantic conventions: ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``; cached input
from ``gen_ai.usage.cache_read_input_tokens`` when present); spans with
``gen_ai.operation.name`` ``execute_tool`` are tool steps, and their time
counts after the call that started last before them (a tool that starts
before the first call counts after it). A task replays as exactly these
calls and tool times, so a replay reproduces the trace's tokens; ``fit``
turns a category's tasks into an anatomy (means and cvs) instead.

Bad spans get one line naming the file, the span's place in the document,
the attribute, and what was expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario.llm import Anatomy, Draw
from sim.world.llm_plan import AttemptPlan, Call
from sim.world.workload import WorkloadError


@dataclass(frozen=True, slots=True)
class TraceTask:
    """One recorded task: arrival (seconds after the trace's first), category, calls and tools."""

    trace_id: str
    arrival_s: float
    category: str
    plan: AttemptPlan
    models: tuple[str, ...]


def _value(raw: dict[str, Any]) -> Any:
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in raw:
            return raw[key]
    return None


def _int_attr(attrs: dict[str, Any], key: str, where: str) -> int | None:
    if key not in attrs:
        return None
    value = attrs[key]
    try:
        number = int(value)  # OTLP/JSON writes int64 as a string
    except (TypeError, ValueError):
        raise WorkloadError(
            f"{where}.{key}: expected a non-negative integer, got {value!r}"
        ) from None
    if number < 0 or (isinstance(value, float) and not value.is_integer()):
        raise WorkloadError(f"{where}.{key}: expected a non-negative integer, got {value!r}")
    return number


def _nanos(span: dict[str, Any], key: str, where: str) -> int:
    try:
        return int(span[key])
    except (KeyError, TypeError, ValueError):
        raise WorkloadError(f"{where}.{key}: expected nanoseconds since the epoch") from None


def read_otlp(path: Path) -> list[TraceTask]:
    """Every task of an OTLP/JSON export, in arrival order."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WorkloadError(f"{path}: file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkloadError(f"{path}: expected OTLP/JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceSpans"), list):
        raise WorkloadError(f"{path}: resourceSpans: expected a list (an OTLP/JSON trace export)")
    traces: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = {}
    for r, resource in enumerate(document["resourceSpans"]):
        for s, scope in enumerate(resource.get("scopeSpans", [])):
            for i, span in enumerate(scope.get("spans", [])):
                where = f"{path}: resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                if not isinstance(span, dict) or not span.get("traceId"):
                    raise WorkloadError(f"{where}.traceId: expected a trace id")
                attrs = {
                    a.get("key"): _value(a.get("value", {})) for a in span.get("attributes", [])
                }
                traces.setdefault(str(span["traceId"]), []).append((where, span, attrs))
    if not traces:
        raise WorkloadError(f"{path}: resourceSpans: no spans")
    tasks = [_task(trace_id, spans) for trace_id, spans in traces.items()]
    origin = min(t.arrival_s for t in tasks)
    return sorted(
        (TraceTask(t.trace_id, t.arrival_s - origin, t.category, t.plan, t.models) for t in tasks),
        key=lambda t: (t.arrival_s, t.trace_id),
    )


def _task(trace_id: str, spans: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> TraceTask:
    roots = [(w, s, a) for w, s, a in spans if not s.get("parentSpanId")]
    if len(roots) != 1:
        raise WorkloadError(
            f"{spans[0][0]}.parentSpanId: trace {trace_id}: expected one root span, "
            f"found {len(roots)}"
        )
    where, root, attrs = roots[0]
    category = attrs.get("orchestra.category") or attrs.get("gen_ai.agent.name")
    if not isinstance(category, str) or not category:
        raise WorkloadError(f"{where}.attributes: expected orchestra.category or gen_ai.agent.name")
    calls: list[tuple[int, Call, str]] = []
    tools: list[tuple[int, float]] = []
    for w, span, a in spans:
        start, end = _nanos(span, "startTimeUnixNano", w), _nanos(span, "endTimeUnixNano", w)
        if end < start:
            raise WorkloadError(f"{w}.endTimeUnixNano: expected no earlier than startTimeUnixNano")
        inputs = _int_attr(a, "gen_ai.usage.input_tokens", f"{w}.attributes")
        if inputs is not None:
            outputs = _int_attr(a, "gen_ai.usage.output_tokens", f"{w}.attributes")
            if outputs is None:
                raise WorkloadError(f"{w}.attributes.gen_ai.usage.output_tokens: missing")
            model = a.get("gen_ai.request.model")
            if not isinstance(model, str) or not model:
                raise WorkloadError(f"{w}.attributes.gen_ai.request.model: missing")
            cached = _int_attr(a, "gen_ai.usage.cache_read_input_tokens", f"{w}.attributes") or 0
            if cached > inputs:
                raise WorkloadError(
                    f"{w}.attributes.gen_ai.usage.cache_read_input_tokens: expected at most "
                    f"the input tokens ({inputs}), got {cached}"
                )
            calls.append((start, Call(inputs, outputs, cached), model))
        elif a.get("gen_ai.operation.name") == "execute_tool":
            tools.append((start, (end - start) / 1e9))
    if not calls:
        raise WorkloadError(f"{where}: trace {trace_id}: expected at least one model call span")
    calls.sort(key=lambda c: c[0])
    tool_s = [0.0] * len(calls)
    starts = [c[0] for c in calls]
    for start, seconds in tools:
        after = max(0, int(np.searchsorted(starts, start, side="right")) - 1)
        tool_s[after] += seconds
    plan = AttemptPlan(tuple(c[1] for c in calls), tuple(tool_s))
    arrival = _nanos(root, "startTimeUnixNano", where) / 1e9
    return TraceTask(trace_id, arrival, category, plan, tuple(c[2] for c in calls))


def token_totals(tasks: list[TraceTask]) -> dict[str, tuple[int, int]]:
    """Input and output tokens per category."""
    totals: dict[str, tuple[int, int]] = {}
    for t in tasks:
        i, o = totals.get(t.category, (0, 0))
        totals[t.category] = (
            i + sum(c.input_tokens for c in t.plan.calls),
            o + sum(c.output_tokens for c in t.plan.calls),
        )
    return totals


def fit_anatomy(tasks: list[TraceTask]) -> dict[str, Anatomy]:
    """A category's tasks as an anatomy: mean calls, tokens and tool time with their cvs."""
    by_category: dict[str, list[TraceTask]] = {}
    for t in tasks:
        by_category.setdefault(t.category, []).append(t)
    fitted = {}
    for category, group in sorted(by_category.items()):
        calls = [c for t in group for c in t.plan.calls]
        tools = [s for t in group for s in t.plan.tools_s[:-1]]  # between calls
        inputs = sum(c.input_tokens for c in calls)
        fitted[category] = Anatomy(
            calls=len(calls) / len(group),
            input_tokens=_draw([c.input_tokens for c in calls]),
            output_tokens=_draw([c.output_tokens for c in calls]),
            tool_time=_draw(tools) if tools and sum(tools) > 0 else Draw(mean=1e-9, cv=0.0),
            cached_share=sum(c.cached_tokens for c in calls) / inputs if inputs else 0.0,
        )
    return fitted


def _draw(values: list[float]) -> Draw:
    mean = float(np.mean(values))
    cv = float(np.std(values) / mean) if mean > 0 and len(values) > 1 else 0.0
    return Draw(mean=max(mean, 1e-9), cv=cv if math.isfinite(cv) else 0.0)
