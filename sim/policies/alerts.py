"""Alert conditions as the spec writes them, parsed into a comparable form.

The spec's alert rules are plain strings (``offline_agents > 20``,
``error_rate > 5%``, ``p99_latency > 10s``, ``throughput < 50/min``,
``agent_count_changed``). They are parsed once, when the scenario is
validated, so a typo is a validation error with its field path instead of an
alert that silently never fires. Thresholds are normalised to the units the
metrics are kept in: fractions for percentages, seconds for times, tasks per
minute for rates.

:class:`AlertEvaluator` then runs the rules over the shell's metric samples
with Prometheus' semantics: pending while a condition holds, firing once it
has held for the rule's ``for``, resolved when it stops holding. The shell
records the events on the timeline and acts on them (``scale_up_immediate``
becomes the autoscaler's ``force_scale_up``; ``page_oncall`` and
``notify_slack`` are webhooks in live mode).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: Metric name -> the kind of quantity it is; the unit written in a condition must fit the kind.
ALERT_METRICS: dict[str, str] = {
    "offline_agents": "count",
    "active_agents": "count",
    "total_agents": "count",
    "queue_depth": "count",
    "error_rate": "fraction",
    "cpu_utilization": "fraction",
    "utilization": "fraction",
    "p50_latency": "seconds",
    "p99_latency": "seconds",
    "avg_response_time": "seconds",
    "throughput": "rate",
}

#: Conditions that fire on a change rather than on a threshold.
CHANGE_CONDITIONS: dict[str, str] = {"agent_count_changed": "total_agents"}

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>%|ms|s|m|min|h|/min|/s|/h)?\s*$"
)
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE_UNITS = {"/min": 1.0, "/s": 60.0, "/h": 1.0 / 60.0}


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed alert condition.

    For a threshold condition ``op`` is one of ``> >= < <= == !=`` and
    ``threshold`` is in canonical units. For a change condition (``op`` is
    ``"changed"``) the rule fires whenever ``metric`` differs from its
    previous sample.
    """

    metric: str
    op: str
    threshold: float = 0.0

    def holds(self, value: float, previous: float | None = None) -> bool:
        """Whether the condition is true for *value* (and *previous*, for change rules)."""
        if self.op == "changed":
            return previous is not None and value != previous
        return _OPERATORS[self.op](value, self.threshold)


def parse_condition(text: str) -> Condition:
    """Parse one condition string; raise ValueError naming what was expected."""
    stripped = text.strip()
    if stripped in CHANGE_CONDITIONS:
        return Condition(metric=CHANGE_CONDITIONS[stripped], op="changed")
    match = _CONDITION.match(text)
    if match is None:
        raise ValueError(
            f"expected 'METRIC OP VALUE[unit]' (e.g. 'error_rate > 5%') or one of "
            f"{', '.join(CHANGE_CONDITIONS)}, got {text!r}"
        )
    metric, op, unit = match.group("metric"), match.group("op"), match.group("unit")
    if metric not in ALERT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(ALERT_METRICS)}")
    value = float(match.group("value"))
    kind = ALERT_METRICS[metric]
    if kind == "fraction":
        if unit not in ("%", None):
            raise ValueError(f"{metric} is a fraction; write it as a percentage like '5%'")
        threshold = value / 100.0 if unit == "%" else value
    elif kind == "seconds":
        if unit not in (*_TIME_UNITS, None):
            raise ValueError(f"{metric} is a time; write it like '10s' or '500ms'")
        threshold = value * _TIME_UNITS[unit] if unit else value
    elif kind == "rate":
        if unit not in (*_RATE_UNITS, None):
            raise ValueError(f"{metric} is a rate; write it like '50/min'")
        threshold = value * _RATE_UNITS[unit] if unit else value
    else:
        if unit is not None:
            raise ValueError(f"{metric} is a count; it takes no unit, got {unit!r}")
        threshold = value
    return Condition(metric=metric, op=op, threshold=threshold)


# --------------------------------------------------------------------------- the evaluator

#: Slack on ``for`` comparisons, so that a rule due after 0.3 s fires at 0.1 + 0.1 + 0.1.
_FOR_SLACK_S = 1e-9


@dataclass(frozen=True, slots=True)
class AlertRuleSpec:
    """One rule ready to evaluate: the parsed condition, its severity, action and ``for`` (s)."""

    name: str
    severity: str
    condition: Condition
    action: str
    for_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule's transition at *time*: ``firing`` or ``resolved``, with the metric's value then."""

    time: float
    name: str
    severity: str
    action: str
    state: Literal["firing", "resolved"]
    value: float
    metric: str


@dataclass(slots=True)
class _RuleState:
    pending_since: float | None = None  # first evaluation of the current run of true ones
    firing: bool = False
    previous: float | None = None  # last valid sample, for change rules


class AlertEvaluator:
    """The spec's alert rules (section 6.3) evaluated the way Prometheus evaluates rules.

    The shell calls :meth:`evaluate` with each metric sample, in time order,
    and gets the transitions back. A threshold rule whose condition holds is
    *pending* from that evaluation on; it *fires* at the first evaluation at
    which it has held for ``for_s`` (0: at once), emitting one ``firing``
    event, then nothing while it keeps holding, and one ``resolved`` event at
    the first evaluation where it does not hold. How long "held" lasted is
    measured between evaluations, so the sampling interval is the resolution.

    A change rule (``agent_count_changed``) holds at an evaluation whose value
    differs from the previous valid sample. It fires on a change and *fires
    again on every further change* (each is an event worth logging), and
    resolves at the first sample without change. Its ``for_s`` counts, as for
    a threshold rule, from the first of a run of consecutive changes.

    A metric missing from the sample, or NaN, leaves the rule exactly as it
    was: a pending rule stays pending (its clock keeps running), a firing rule
    neither resolves nor re-fires, and a change rule compares its next valid
    sample with the last valid one. No data is not evidence either way.

    Sample keys are :data:`ALERT_METRICS` names in canonical units: counts,
    fractions (``error_rate`` 0.05, not 5), seconds (``p99_latency``) and
    tasks per minute (``throughput``).
    """

    def __init__(self, rules: Sequence[AlertRuleSpec]) -> None:
        self.rules: tuple[AlertRuleSpec, ...] = tuple(rules)
        self._states = [_RuleState() for _ in self.rules]

    def evaluate(self, now: float, sample: Mapping[str, float]) -> list[AlertEvent]:
        """Advance every rule to time *now* (seconds) with *sample*; return the transitions."""
        events: list[AlertEvent] = []
        for rule, state in zip(self.rules, self._states, strict=True):
            condition = rule.condition
            raw = sample.get(condition.metric)
            if raw is None or math.isnan(raw):
                continue
            value = float(raw)
            if condition.op == "changed":
                holds = condition.holds(value, state.previous)
                state.previous = value
            else:
                holds = condition.holds(value)
            if not holds:
                state.pending_since = None
                if state.firing:
                    state.firing = False
                    events.append(_event(now, rule, "resolved", value))
                continue
            if state.pending_since is None:
                state.pending_since = now
            if now - state.pending_since < rule.for_s - _FOR_SLACK_S:
                continue
            if not state.firing or condition.op == "changed":
                state.firing = True
                events.append(_event(now, rule, "firing", value))
        return events

    def firing(self) -> list[str]:
        """Names of the rules firing now, in rule order."""
        return [
            rule.name for rule, state in zip(self.rules, self._states, strict=True) if state.firing
        ]

    def pending(self) -> list[str]:
        """Names of the rules whose condition holds but whose ``for`` has not passed yet."""
        return [
            rule.name
            for rule, state in zip(self.rules, self._states, strict=True)
            if state.pending_since is not None and not state.firing
        ]


def _event(
    now: float, rule: AlertRuleSpec, state: Literal["firing", "resolved"], value: float
) -> AlertEvent:
    return AlertEvent(
        now, rule.name, rule.severity, rule.action, state, value, rule.condition.metric
    )


def alert_sample(row: Mapping[str, Any], control_agents: int) -> dict[str, float]:
    """The alert rules' metric names, read from a global metrics row (both shells).

    The row counts specialists; the rules speak of the whole fleet, so the
    coordinating agents are added. The spec's latency thresholds are read as
    response time (wait), as the SLO reads them. NaN (no tasks in the
    interval) is left out: a rule on a metric without data does not fire.
    """
    sample = {
        "offline_agents": row["offline_agents"],
        "active_agents": row["active_agents"] + control_agents,
        "total_agents": row["total_agents"] + control_agents,
        "queue_depth": row["queue_depth"],
        "error_rate": row["error_rate"],
        "cpu_utilization": row["utilization"],
        "utilization": row["utilization"],
        "p50_latency": row["p50_wait_s"],
        "p99_latency": row["p99_wait_s"],
        "avg_response_time": row["avg_wait_s"],
        "throughput": row["throughput_per_min"],
    }
    return {
        k: float(v)
        for k, v in sample.items()
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    }
