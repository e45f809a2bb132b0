"""The SLO a plan or a tuning run is held to, as written on the command line.

``--slo p99=10s,error_rate=5%`` reads like the spec's alert rules. ``p99``
is the p99 *response time* — arrival until an agent starts the task — the
same reading as the scenario's ``slo.p99_wait`` (a task's own work is not
something the fleet's size can shorten); ``p99_latency`` adds an
end-to-end target. Keys not given keep the scenario's own ``slo`` values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario.load import scenario_from_dict
from sim.scenario.schema import Scenario
from sim.scenario.units import parse_duration

_KEYS = ("p99", "p99_wait", "p99_latency", "error_rate")


@dataclass(frozen=True)
class SloTarget:
    """Targets in seconds and as a fraction; ``p99_latency_s`` None means no end-to-end target."""

    p99_wait_s: float
    p99_latency_s: float | None
    error_rate: float

    @classmethod
    def of(cls, scenario: Scenario) -> SloTarget:
        slo = scenario.slo
        return cls(slo.p99_wait, slo.p99_latency, slo.max_error_rate)

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with its ``slo`` section set to these targets (summaries judge by it)."""
        document = scenario.model_dump(mode="json", by_alias=True)
        document["slo"].update(
            p99_wait=self.p99_wait_s,
            p99_latency=self.p99_latency_s,
            max_error_rate=self.error_rate,
        )
        return scenario_from_dict(document, scenario.name)

    def describe(self) -> str:
        parts = [f"p99 wait <= {self.p99_wait_s:g} s"]
        if self.p99_latency_s is not None:
            parts.append(f"p99 latency <= {self.p99_latency_s:g} s")
        parts.append(f"error rate <= {self.error_rate:.2%}")
        return ", ".join(parts)


def parse_fraction(text: str) -> float:
    """``5%`` or ``0.05`` as a fraction in [0, 1]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"expected a fraction such as 5% or 0.05, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def parse_slo(text: str, base: SloTarget) -> SloTarget:
    """Targets from ``p99=10s,error_rate=5%``; raises ValueError naming the bad item."""
    p99, latency, error = base.p99_wait_s, base.p99_latency_s, base.error_rate
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise ValueError(f"expected KEY=VALUE with KEY one of {', '.join(_KEYS)}, got {item!r}")
        if key == "error_rate":
            error = parse_fraction(value)
            continue
        seconds = parse_duration(value.strip())
        if seconds <= 0:
            raise ValueError(f"{key}: expected a positive duration, got {value!r}")
        if key == "p99_latency":
            latency = seconds
        else:
            p99 = seconds
    return SloTarget(p99, latency, error)
