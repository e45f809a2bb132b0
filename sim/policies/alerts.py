"""Alert conditions as the spec writes them, parsed into a comparable form.

The spec's alert rules are plain strings (``offline_agents > 20``,
``error_rate > 5%``, ``p99_latency > 10s``, ``throughput < 50/min``,
``agent_count_changed``). They are parsed once, when the scenario is
validated, so a typo is a validation error with its field path instead of an
alert that silently never fires. Thresholds are normalised to the units the
metrics are kept in: fractions for percentages, seconds for times, tasks per
minute for rates.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

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
