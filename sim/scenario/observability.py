"""Scenario sections for watching the fleet: the metrics block, alert rules and the SLO.

The spec's monitoring (section 6.1) and alerting (section 6.3) blocks load
verbatim; the SLO says what a run is judged against.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sim.policies.alerts import Condition, parse_condition
from sim.scenario.base import Duration, Strict

AGENT_METRICS = (
    "agent_id",
    "status",
    "current_task",
    "cpu_usage",
    "memory_usage",
    "tasks_completed",
    "error_count",
    "avg_task_duration",
)
ZONE_METRICS = ("zone_id", "active_agents", "queue_depth", "throughput_per_minute", "error_rate")
GLOBAL_METRICS = (
    "total_agents",
    "total_tasks_queued",
    "total_tasks_completed",
    "global_throughput",
    "p50_latency",
    "p99_latency",
)

MetricItem = str | dict[str, list[str]]


def _metric_list(names: tuple[str, ...]) -> list[MetricItem]:
    return list(names)


def _spec_agent_metrics() -> list[MetricItem]:
    status: MetricItem = {"status": ["idle", "busy", "error", "offline"]}
    return ["agent_id", status, *AGENT_METRICS[2:]]


def _check_metric_names(items: list[MetricItem], known: tuple[str, ...]) -> list[MetricItem]:
    for item in items:
        for name in [item] if isinstance(item, str) else list(item):
            if name not in known:
                raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(known)}")
    return items


class Metrics(Strict):
    """The spec's monitoring block (section 6.1) plus sampling intervals."""

    interval: Duration = Field(60.0, description="Sampling interval of zone and global metrics.")
    agent_interval: Duration = Field(300.0, description="Sampling interval of agent metrics.")
    agent_level: list[MetricItem] = Field(default_factory=lambda: _spec_agent_metrics())
    zone_level: list[MetricItem] = Field(default_factory=lambda: _metric_list(ZONE_METRICS))
    global_level: list[MetricItem] = Field(default_factory=lambda: _metric_list(GLOBAL_METRICS))

    @field_validator("agent_level")
    @classmethod
    def _agent(cls, items: list[MetricItem]) -> list[MetricItem]:
        return _check_metric_names(items, AGENT_METRICS)

    @field_validator("zone_level")
    @classmethod
    def _zone(cls, items: list[MetricItem]) -> list[MetricItem]:
        return _check_metric_names(items, ZONE_METRICS)

    @field_validator("global_level")
    @classmethod
    def _global(cls, items: list[MetricItem]) -> list[MetricItem]:
        return _check_metric_names(items, GLOBAL_METRICS)

    @model_validator(mode="after")
    def _positive(self) -> Metrics:
        if self.interval <= 0 or self.agent_interval <= 0:
            raise ValueError("expected positive sampling intervals")
        return self


class AlertRule(Strict):
    """One alert rule as the spec writes it (section 6.3)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    name: str
    condition: str = Field(description="e.g. 'error_rate > 5%', 'p99_latency > 10s'.")
    action: Literal["page_oncall", "notify_slack", "scale_up_immediate", "log_event"]
    for_: Duration = Field(0.0, alias="for", description="How long the condition must hold.")

    @field_validator("condition")
    @classmethod
    def _parses(cls, condition: str) -> str:
        parse_condition(condition)
        return condition

    @property
    def parsed(self) -> Condition:
        return parse_condition(self.condition)


Severity = Literal["critical", "warning", "info"]


def spec_alerts() -> dict[Severity, list[AlertRule]]:
    def rule(name: str, condition: str, action: str) -> AlertRule:
        return AlertRule.model_validate({"name": name, "condition": condition, "action": action})

    return {
        "critical": [
            rule("agent_offline_threshold", "offline_agents > 20", "page_oncall"),
            rule("error_rate_spike", "error_rate > 5%", "page_oncall"),
            rule("queue_overflow", "queue_depth > 500", "scale_up_immediate"),
        ],
        "warning": [
            rule("high_latency", "p99_latency > 10s", "notify_slack"),
            rule("low_throughput", "throughput < 50/min", "notify_slack"),
        ],
        "info": [rule("scale_event", "agent_count_changed", "log_event")],
    }


Alerts = dict[Severity, list[AlertRule]]


class Slo(Strict):
    """The service-level objective a run is judged against.

    The spec's latency thresholds (p99 10 s, average response 5 s) are read as
    response time — arrival until an agent starts the task — because a task's
    service time is its own work, which no orchestration can shorten; what
    the fleet's size and policies control is how long work waits. An
    end-to-end target can be set as well.
    """

    p99_wait: Duration = Field(
        10.0, description="p99 response-time target: arrival until service starts."
    )
    p99_latency: Duration | None = Field(
        None, description="Optional p99 end-to-end target: arrival until completion."
    )
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Largest share of failed tasks.")
    window: Duration = Field(
        300.0, description="Windows in which p99 is checked; a window over target is a breach."
    )
