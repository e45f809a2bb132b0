"""Kubernetes autoscaling objects as their users write them: HPA behaviour, HPA and KEDA manifests.

A platform team that already runs an HPA should be able to paste its
``behavior:`` block — or point at the whole ``autoscaling/v2`` manifest, or
at KEDA's ``ScaledObject`` — and simulate exactly that, not an approximation
with the defaults. So these models keep Kubernetes' own camelCase keys,
enumerations (``Pods``/``Percent``, ``Max``/``Min``/``Disabled``) and limits
(a policy period of at most 1,800 s, a stabilisation window of at most one
hour), and reject what the API server would reject.

What a manifest means for the orchestra: the HPA scales the specialists'
Deployment, so ``minReplicas``/``maxReplicas`` are specialist bounds (the
scenario's ``min_agents``/``max_agents`` count the coordinating agents too).
Metrics map onto the fleet's own: a ``Resource`` metric on ``cpu`` with a
``Utilization`` target is the share of slots busy; a ``Pods`` or
``External`` metric named ``queue_depth`` with an ``AverageValue`` target is
tasks waiting per agent; an ``Object`` metric named ``avg_response_time``
with a ``Value`` target is the mean response time in seconds.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, field_validator

from sim.scenario.base import Strict

__all__ = [
    "HpaBehavior",
    "HpaManifest",
    "HpaScalingPolicySpec",
    "HpaScalingRulesSpec",
    "ScaledObjectManifest",
    "parse_quantity",
]

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(m|k|M|G|Ki|Mi|Gi)?\s*$")
_SUFFIX = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
}


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity (``5``, ``"500m"``, ``"2k"``) as a float."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity such as 5, '500m' or '2k'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is not None:
            return float(match.group(1)) * _SUFFIX[match.group(2)]
    raise ValueError(f"expected a quantity such as 5, '500m' or '2k', got {value!r}")


class _K8s(Strict):
    """Kubernetes' field names (camelCase aliases); Python names work too."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )


# --------------------------------------------------------------------------- behaviour


class HpaScalingPolicySpec(_K8s):
    """``HPAScalingPolicy``: at most *value* pods, or percent of the start, per period."""

    type: Literal["Pods", "Percent"] = Field(description="Pods: a count; Percent: of the start.")
    value: PositiveInt = Field(description="Most pods (or percent) changed per period.")
    period_seconds: int = Field(
        alias="periodSeconds", gt=0, le=1800, description="The period the limit holds over (s)."
    )


class HpaScalingRulesSpec(_K8s):
    """``HPAScalingRules`` for one direction; a field left out takes Kubernetes' default.

    As the API server defaults them: ``selectPolicy`` Max; ``policies`` and
    ``stabilizationWindowSeconds`` the direction's defaults (up: 0 s, +100 %
    or +4 pods per 15 s; down: 300 s, -100 % per 15 s).
    """

    stabilization_window_seconds: int | None = Field(
        None,
        alias="stabilizationWindowSeconds",
        ge=0,
        le=3600,
        description="Past recommendations considered (up: their min; down: their max).",
    )
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        None,
        alias="selectPolicy",
        description="Max: the policy allowing the most change; Min: the least; Disabled: none.",
    )
    policies: list[HpaScalingPolicySpec] | None = Field(
        None, description="Rate limits; left out: the direction's default policies."
    )

    @field_validator("policies")
    @classmethod
    def _some(cls, value: list[HpaScalingPolicySpec] | None) -> list[HpaScalingPolicySpec] | None:
        if value is not None and not value:
            raise ValueError("expected at least one policy (or leave policies out)")
        return value


class HpaBehavior(_K8s):
    """``HorizontalPodAutoscalerBehavior``: ``scaleUp`` and ``scaleDown``, verbatim."""

    scale_up: HpaScalingRulesSpec | None = Field(
        None, alias="scaleUp", description="Left out: +100 % or +4 pods per 15 s, no window."
    )
    scale_down: HpaScalingRulesSpec | None = Field(
        None, alias="scaleDown", description="Left out: -100 % per 15 s after a 300 s window."
    )


# --------------------------------------------------------------------------- HPA manifest


class _Lenient(BaseModel):
    """Parts of a manifest the simulator does not read (metadata, scaleTargetRef): any keys."""

    model_config = ConfigDict(extra="allow", frozen=True)


class _MetricTarget(_K8s):
    type: Literal["Utilization", "AverageValue", "Value"]
    average_utilization: PositiveInt | None = Field(None, alias="averageUtilization")
    average_value: float | None = Field(None, alias="averageValue")
    value: float | None = None

    @field_validator("average_value", "value", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> float | None:
        return None if value is None else parse_quantity(value)


class _MetricIdentifier(_K8s):
    name: str
    selector: dict[str, Any] | None = None


class _ResourceSource(_K8s):
    name: str
    target: _MetricTarget


class _NamedSource(_K8s):
    metric: _MetricIdentifier
    target: _MetricTarget
    described_object: dict[str, Any] | None = Field(None, alias="describedObject")


class HpaMetricSpec(_K8s):
    """``MetricSpec``: one of ``resource``, ``pods``, ``object``, ``external`` by ``type``."""

    type: Literal["Resource", "Pods", "Object", "External", "ContainerResource"]
    resource: _ResourceSource | None = None
    pods: _NamedSource | None = None
    object: _NamedSource | None = None
    external: _NamedSource | None = None
    container_resource: dict[str, Any] | None = Field(None, alias="containerResource")

    def setting(self) -> tuple[str, float]:
        """The ``scaling.hpa`` setting this metric is: ``(field name, canonical value)``."""
        if self.type == "Resource":
            source = self.resource
            if source is None or source.name != "cpu":
                raise ValueError("expected a Resource metric on cpu (the share of slots busy)")
            target = source.target
            if target.type != "Utilization" or target.average_utilization is None:
                raise ValueError("expected target type Utilization with averageUtilization")
            return "target_cpu_utilization", target.average_utilization / 100.0
        if self.type in ("Pods", "External"):
            named = self.pods if self.type == "Pods" else self.external
            if named is None or named.metric.name != "queue_depth":
                raise ValueError(f"expected a {self.type} metric named queue_depth")
            if named.target.type != "AverageValue" or named.target.average_value is None:
                raise ValueError("expected target type AverageValue with averageValue")
            if named.target.average_value <= 0:
                raise ValueError("expected a positive averageValue")
            return "target_queue_per_agent", named.target.average_value
        if self.type == "Object":
            named = self.object
            if named is None or named.metric.name != "avg_response_time":
                raise ValueError("expected an Object metric named avg_response_time")
            if named.target.type != "Value" or named.target.value is None:
                raise ValueError("expected target type Value with value (seconds)")
            if named.target.value <= 0:
                raise ValueError("expected a positive value")
            return "target_response_time", named.target.value
        raise ValueError(
            "expected a Resource (cpu), Pods/External (queue_depth) or Object "
            "(avg_response_time) metric"
        )


class _HpaSpec(_K8s):
    scale_target_ref: _Lenient | None = Field(None, alias="scaleTargetRef")
    min_replicas: PositiveInt = Field(1, alias="minReplicas")
    max_replicas: PositiveInt = Field(alias="maxReplicas")
    metrics: list[HpaMetricSpec] = Field(default_factory=list)
    behavior: HpaBehavior | None = None


class HpaManifest(_K8s):
    """An ``autoscaling/v2`` ``HorizontalPodAutoscaler`` as ``kubectl apply`` reads it."""

    api_version: Literal["autoscaling/v2"] = Field(alias="apiVersion")
    kind: Literal["HorizontalPodAutoscaler"]
    metadata: _Lenient | None = None
    spec: _HpaSpec
    status: _Lenient | None = None

    def settings(self) -> dict[str, Any]:
        """The ``scaling.hpa`` settings the manifest states (metric targets, bounds, behaviour).

        A manifest without metrics is Kubernetes' default: 80 % CPU.
        """
        spec = self.spec
        if spec.max_replicas < spec.min_replicas:
            raise ValueError("spec.maxReplicas: expected at least minReplicas")
        out: dict[str, Any] = {
            "target_cpu_utilization": None,
            "min_replicas": spec.min_replicas,
            "max_replicas": spec.max_replicas,
        }
        for metric in spec.metrics:
            name, value = metric.setting()
            out[name] = value
        if not spec.metrics:
            out["target_cpu_utilization"] = 0.8
        if spec.behavior is not None:
            out["behavior"] = spec.behavior
        return out


# --------------------------------------------------------------------------- KEDA


class _KedaTrigger(_K8s):
    type: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None


class _KedaHpaConfig(_K8s):
    name: str | None = None
    behavior: HpaBehavior | None = None


class _KedaAdvanced(_K8s):
    horizontal_pod_autoscaler_config: _KedaHpaConfig | None = Field(
        None, alias="horizontalPodAutoscalerConfig"
    )
    restore_to_original_replica_count: bool | None = Field(
        None, alias="restoreToOriginalReplicaCount"
    )


class _ScaledObjectSpec(_K8s):
    scale_target_ref: _Lenient | None = Field(None, alias="scaleTargetRef")
    polling_interval: NonNegativeInt = Field(30, alias="pollingInterval")
    cooldown_period: NonNegativeInt = Field(300, alias="cooldownPeriod")
    min_replica_count: NonNegativeInt = Field(0, alias="minReplicaCount")
    max_replica_count: PositiveInt = Field(100, alias="maxReplicaCount")
    advanced: _KedaAdvanced | None = None
    triggers: list[_KedaTrigger] = Field(min_length=1)


class ScaledObjectManifest(_K8s):
    """A ``keda.sh/v1alpha1`` ``ScaledObject`` with one queue-length trigger.

    The trigger's ``metadata.value`` (or ``queueLength``, as the RabbitMQ and
    Azure queue scalers call it) is the target per agent, and
    ``activationValue`` the activation threshold.
    """

    api_version: Literal["keda.sh/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ScaledObject"]
    metadata: _Lenient | None = None
    spec: _ScaledObjectSpec

    def settings(self) -> dict[str, Any]:
        """The ``scaling.keda`` settings the manifest states."""
        spec = self.spec
        if len(spec.triggers) != 1:
            raise ValueError("spec.triggers: expected exactly one queue-length trigger")
        meta = spec.triggers[0].metadata
        raw = meta.get("value", meta.get("queueLength"))
        if raw is None:
            raise ValueError("spec.triggers.0.metadata: expected value (or queueLength)")
        out: dict[str, Any] = {
            "target_per_agent": parse_quantity(raw),
            "activation_threshold": parse_quantity(meta.get("activationValue", 0)),
            "polling_interval": float(spec.polling_interval),
            "cooldown": float(spec.cooldown_period),
            "min_replicas": max(1, spec.min_replica_count),
            "max_replicas": spec.max_replica_count,
        }
        if out["target_per_agent"] <= 0:
            raise ValueError("spec.triggers.0.metadata.value: expected a positive target")
        hpa = spec.advanced.horizontal_pod_autoscaler_config if spec.advanced else None
        if hpa is not None and hpa.behavior is not None:
            out["behavior"] = hpa.behavior
        return out
