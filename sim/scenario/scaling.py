"""Scenario section for autoscaling: the spec's step block, Kubernetes HPA and KEDA.

The ``scaling:`` block (spec section 4.1) loads verbatim, with the short form
``scaling.scale_up`` accepted for ``scaling.auto_scale.scale_up``; the HPA
and KEDA settings and the metric pipeline's delays sit beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import Duration, Strict
from sim.scenario.kubernetes import HpaBehavior


class ScaleUpThreshold(Strict):
    queue_depth: NonNegativeInt = 100
    avg_response_time_ms: NonNegativeFloat = 5000


class ScaleUp(Strict):
    threshold: ScaleUpThreshold = ScaleUpThreshold()
    increment: PositiveInt = 10
    cooldown_seconds: Duration = 300


class ScaleDownThreshold(Strict):
    queue_depth: NonNegativeInt = 10
    idle_agents_percent: float = Field(30, ge=0, le=100)


class ScaleDown(Strict):
    threshold: ScaleDownThreshold = ScaleDownThreshold()
    decrement: PositiveInt = 5
    cooldown_seconds: Duration = 600


ScaleMetric = Literal["queue_depth", "avg_response_time", "cpu_utilization"]


def _spec_scale_metrics() -> list[ScaleMetric]:
    return ["queue_depth", "avg_response_time", "cpu_utilization"]


class AutoScale(Strict):
    enabled: bool = True
    metrics: list[ScaleMetric] = Field(default_factory=_spec_scale_metrics)
    scale_up: ScaleUp = ScaleUp()
    scale_down: ScaleDown = ScaleDown()


class HpaSettings(Strict):
    """Kubernetes HPA over the specialists (scaling.policy: hpa)."""

    target_cpu_utilization: float | None = Field(
        0.7, gt=0, le=1, description="Resource metric target: share of slots busy."
    )
    target_queue_per_agent: PositiveFloat | None = Field(
        None, description="External metric AverageValue target: tasks waiting per agent."
    )
    target_response_time: Duration | None = Field(
        None, description="Object metric Value target: mean response time."
    )
    tolerance: NonNegativeFloat = Field(0.1, description="No change within this ratio of 1.")
    scale_down_stabilization: Duration = Field(
        300.0,
        description=(
            "Scale down to the highest recommendation of this window "
            "(behavior.scaleDown.stabilizationWindowSeconds wins when given)."
        ),
    )
    behavior: HpaBehavior | None = Field(
        None,
        description=(
            "The HPA's behavior block exactly as Kubernetes writes it (scaleUp/scaleDown: "
            "stabilizationWindowSeconds, policies [{type: Pods|Percent, value, periodSeconds}], "
            "selectPolicy Max|Min|Disabled); fields left out take Kubernetes' defaults."
        ),
    )
    manifest: Path | None = Field(
        None,
        description=(
            "An autoscaling/v2 HorizontalPodAutoscaler manifest (relative to the scenario): its "
            "metric targets, minReplicas/maxReplicas and behavior replace the settings here."
        ),
    )
    min_replicas: PositiveInt | None = Field(
        None, description="Specialist bounds of the HPA (minReplicas); default from min_agents."
    )
    max_replicas: PositiveInt | None = Field(
        None, description="Specialist bounds of the HPA (maxReplicas); default from max_agents."
    )
    sync_period: Duration | None = Field(
        None,
        gt=0,
        description=(
            "The controller's sync period (Kubernetes: 15 s): how often the HPA decides; "
            "default: scaling.evaluation_interval."
        ),
    )


class KedaSettings(Strict):
    """KEDA queue-length scaler (scaling.policy: keda)."""

    target_per_agent: PositiveFloat = Field(1.0, description="Tasks per agent the trigger aims at.")
    include_in_flight: bool = Field(True, description="Count tasks agents hold, not only waiting.")
    activation_threshold: NonNegativeFloat = 0.0
    polling_interval: Duration = Field(30.0, description="KEDA's pollingInterval.")
    cooldown: Duration = Field(300.0, description="KEDA's cooldownPeriod before scaling in.")
    behavior: HpaBehavior | None = Field(
        None,
        description=(
            "advanced.horizontalPodAutoscalerConfig.behavior of the ScaledObject: the HPA KEDA "
            "creates then applies its stabilisation windows and rate limits."
        ),
    )
    manifest: Path | None = Field(
        None,
        description=(
            "A keda.sh/v1alpha1 ScaledObject manifest (relative to the scenario) with one "
            "queue-length trigger: its settings replace the ones here."
        ),
    )
    min_replicas: PositiveInt | None = Field(
        None, description="Specialist bounds (minReplicaCount, at least 1); default: min_agents."
    )
    max_replicas: PositiveInt | None = Field(
        None, description="Specialist bounds (maxReplicaCount); default from max_agents."
    )


class MetricPipeline(Strict):
    """How stale the autoscaler's metrics are and how slowly its decisions take effect.

    A real cluster's controller sees metrics a scrape old and late: Kubernetes'
    metrics-server scrapes every 15 s (``--metric-resolution``), an adapter
    adds its own delay, and a decision reaches the ReplicaSet before a pod is
    even scheduled. Zeros (the default) mean the simulator's ideal pipeline.
    """

    metric_resolution: Duration = Field(
        0.0, description="Metrics are scraped on this grid (metrics-server: 15 s); 0: continuous."
    )
    metric_delay: Duration = Field(
        0.0, description="A scrape reaches the autoscaler this much later (adapter, aggregation)."
    )
    actuation_delay: Duration = Field(
        0.0,
        description=(
            "From a scale-up decision to the new agents being requested (API write, controller "
            "reconcile); spawn_delay follows it. Drains start at once."
        ),
    )


class SpawnDelaySpread(Strict):
    """How one agent's start-up varies around ``scaling.spawn_delay``, which stays its mean.

    Real start-ups are not all alike (image pulls, a busy host, starts queued
    behind each other): a burst of replacements joins spread over a minute,
    not all at one instant, and an autoscaler watching the pool sees the
    difference. ``empirical`` takes the shape of observed start-ups rescaled
    to the mean, so a sweep of ``spawn_delay`` keeps the shape; ``sequence``
    takes them in the order observed (what ``orchestra calibrate`` fits from a
    live run, whose replay requests its agents in live's order): live's first
    start-ups of a burst are not a random few of them.
    """

    dist: Literal["deterministic", "exponential", "lognormal", "gamma", "empirical", "sequence"] = (
        Field(
            "deterministic",
            description=(
                "Every agent starts in exactly spawn_delay, or a draw; sequence: the k-th start-up "
                "of the run takes the k-th sample, then draws from them once all are used."
            ),
        )
    )
    cv: NonNegativeFloat = Field(0.5, description="Coefficient of variation (lognormal, gamma).")
    samples: list[Duration] = Field(
        default_factory=list,
        description=(
            "dist=empirical or sequence: observed start-ups, rescaled so their mean is spawn_delay."
        ),
    )

    @model_validator(mode="after")
    def _inputs(self) -> SpawnDelaySpread:
        if self.dist in ("empirical", "sequence"):
            if not self.samples:
                raise ValueError(f"samples: expected observed start-ups (seconds) for {self.dist}")
            if min(self.samples) < 0 or sum(self.samples) <= 0:
                raise ValueError("samples: expected non-negative seconds with a positive mean")
        return self


class Scaling(Strict):
    """The spec's horizontal scaling block (section 4.1), verbatim, plus how it is run.

    ``min_agents``/``max_agents``/``default_agents`` count every agent, as the
    spec does (200 = 3 chiefs + 4 zone coordinators + 20 team leads + 173
    specialists); only specialists are added or drained, so the policies see
    the specialist bounds these imply.
    """

    min_agents: PositiveInt = 50
    max_agents: PositiveInt = 250
    default_agents: PositiveInt = 200
    auto_scale: AutoScale = AutoScale()
    policy: Literal["step", "hpa", "keda"] = Field(
        "step", description="The spec's step policy, or Kubernetes HPA, or KEDA, to compare."
    )
    evaluation_interval: Duration = Field(60.0, description="How often the autoscaler decides.")
    metric_window: Duration = Field(
        60.0, description="Span the autoscaler's metrics are averaged over (response, CPU)."
    )
    spawn_delay: Duration = Field(
        60.0, ge=0, description="From request to a new agent serving (the mean, if it varies)."
    )
    spawn_delay_dist: SpawnDelaySpread = SpawnDelaySpread()
    spawn_gap: Duration = Field(
        0.0,
        ge=0,
        description=(
            "The provisioner starts agents at least this far apart, first come first served "
            "(a cloud API's launch rate, one host starting processes in turn); each start-up "
            "runs from its turn. 0: every start at once."
        ),
    )
    up_cpu_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Step policy: CPU threshold for scale-up (the spec names the metric only).",
    )
    hpa: HpaSettings = HpaSettings()
    keda: KedaSettings = KedaSettings()
    pipeline: MetricPipeline = MetricPipeline()

    def decision_interval(self) -> float:
        """How often the autoscaler decides: the HPA's sync period, else the evaluation interval."""
        if self.policy == "hpa" and self.hpa.sync_period is not None:
            return self.hpa.sync_period
        return self.evaluation_interval

    def policy_settings(self) -> dict[str, Any]:
        """Keyword settings for the chosen policy beyond the spec's block."""
        if self.policy == "hpa":
            h = self.hpa
            return {
                "target_cpu_utilization": h.target_cpu_utilization,
                "target_queue_per_agent": h.target_queue_per_agent,
                "target_response_time_s": h.target_response_time,
                "tolerance": h.tolerance,
            }
        if self.policy == "keda":
            k = self.keda
            return {
                "target_per_agent": k.target_per_agent,
                "include_in_flight": k.include_in_flight,
                "activation_threshold": k.activation_threshold,
                "polling_interval_s": k.polling_interval,
                "cooldown_s": k.cooldown,
            }
        return {"up_cpu_utilization": self.up_cpu_utilization}

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """Accept ``scaling.scale_up`` as shorthand for ``scaling.auto_scale.scale_up``.

        The design's examples and most users write the short form; the spec's
        block nests under ``auto_scale``. Both load; the short form wins.
        """
        if not isinstance(data, dict):
            return data
        short = {key: data[key] for key in _AUTO_SCALE_KEYS if key in data}
        if not short:
            return data
        rest = {key: value for key, value in data.items() if key not in short}
        nested = rest.get("auto_scale")
        rest["auto_scale"] = _merge_dicts(nested if isinstance(nested, dict) else {}, short)
        return rest

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if not self.min_agents <= self.default_agents <= self.max_agents:
            raise ValueError("expected min_agents <= default_agents <= max_agents")
        return self


_AUTO_SCALE_KEYS = ("enabled", "metrics", "scale_up", "scale_down")


def _merge_dicts(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged
