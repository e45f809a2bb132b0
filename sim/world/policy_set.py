"""One policy factory for both shells: a scenario's settings made into policy objects.

The functional core (``sim.policies``) knows nothing of the YAML schema; this
module is the one place that reads the schema and builds the core's objects
from it. The SimPy shell and the live shell both call :func:`build_policies`,
so every setting — balancer, router, breaker, detector, retry budget,
autoscaler, alert rules — means the same thing in both, and a setting that
one shell ignored cannot happen again without a test noticing.

Random streams are taken by component name from the run's ``Streams``, so
the balancer of a live run draws what the simulator's balancer draws for the
same scenario and seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sim.policies.alerts import AlertEvaluator, AlertRuleSpec
from sim.policies.autoscale import (
    AUTOSCALERS,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Autoscaler,
    HpaConfig,
    HpaPolicy,
    KedaConfig,
    KedaQueuePolicy,
    ScalingPolicy,
    ScalingRules,
    StepConfig,
    StepPolicy,
    configure,
)
from sim.policies.balancing import LoadBalancer, make_balancer
from sim.policies.dispatch import DispatchCore
from sim.policies.dispatch.types import T
from sim.policies.escalation import EscalationConfig, ZoneMove
from sim.policies.health import ConsecutiveFailureDetector, FailureDetector, PhiAccrualDetector
from sim.policies.resilience import BreakerBoard, BreakerConfig
from sim.policies.routing import ZoneRouter
from sim.policies.scaling_loop import ScalingLoop
from sim.policies.task_faults import AttemptFaults, Burst
from sim.scenario.faults import ErrorBurst
from sim.scenario.kubernetes import HpaBehavior
from sim.scenario.schema import AlertRule, Health, Scaling, Scenario, Severity
from sim.world.streams import Streams

__all__ = [
    "PolicySet",
    "alert_evaluator",
    "build_policies",
    "coordinator_detector",
    "dispatch_core",
    "escalation_config",
    "failure_detector",
    "fleet_autoscaler",
    "make_autoscaler",
    "scaling_rules",
    "step_config",
    "zone_router",
]


# --------------------------------------------------------------------------- autoscalers


def step_config(scaling: Scaling, **overrides: Any) -> StepConfig:
    """The spec's step block (``scenario.scaling``) in canonical units, plus *overrides*."""
    auto = scaling.auto_scale
    config = StepConfig(
        min_agents=scaling.min_agents,
        max_agents=scaling.max_agents,
        metrics=tuple(auto.metrics),
        up_queue_depth=float(auto.scale_up.threshold.queue_depth),
        up_response_time_s=auto.scale_up.threshold.avg_response_time_ms / 1000.0,
        increment=auto.scale_up.increment,
        up_cooldown_s=float(auto.scale_up.cooldown_seconds),
        down_queue_depth=float(auto.scale_down.threshold.queue_depth),
        down_idle_fraction=auto.scale_down.threshold.idle_agents_percent / 100.0,
        decrement=auto.scale_down.decrement,
        down_cooldown_s=float(auto.scale_down.cooldown_seconds),
        enabled=auto.enabled,
    )
    return configure(config, overrides, "step")


def make_autoscaler(kind: str, scaling: Scaling, **config: Any) -> Autoscaler:
    """Build the autoscaler *kind* ("step", "hpa", "keda") for the spec's scaling block.

    *config* overrides fields of :class:`StepConfig`, :class:`HpaConfig` or
    :class:`KedaConfig`; an unknown field is a ValueError naming the valid ones.
    The proportional kinds take only their bounds and ``enabled`` from the
    spec's block (it describes the step policy); the rest comes from *config*.
    """
    if kind == "step":
        return StepPolicy(step_config(scaling, **config))
    bounds: dict[str, Any] = {
        "min_agents": scaling.min_agents,
        "max_agents": scaling.max_agents,
        "enabled": scaling.auto_scale.enabled,
    }
    if kind == "hpa":
        return HpaPolicy(configure(HpaConfig(**bounds), config, "hpa"))
    if kind == "keda":
        return KedaQueuePolicy(configure(KedaConfig(**bounds), config, "keda"))
    raise ValueError(f"unknown autoscaler {kind!r}; expected one of {', '.join(AUTOSCALERS)}")


def fleet_autoscaler(scaling: Scaling, control_agents: int) -> Autoscaler:
    """The scenario's autoscaler over specialists, as both shells run it.

    Only specialists are added or drained, so the spec's whole-fleet bounds
    (``min_agents``/``max_agents``) become specialist bounds once the
    *control_agents* (chiefs, zone coordinators, team leads) are taken out;
    HPA's scale-down keeps Kubernetes' default policies with the scenario's
    stabilisation window.
    """
    low = max(1, scaling.min_agents - control_agents)
    high = max(low, scaling.max_agents - control_agents)
    if scaling.policy in ("hpa", "keda"):
        # An HPA or a ScaledObject scales the specialists' Deployment: its replica bounds,
        # when written, are specialist bounds already.
        kube = scaling.hpa if scaling.policy == "hpa" else scaling.keda
        low = kube.min_replicas if kube.min_replicas is not None else low
        high = kube.max_replicas if kube.max_replicas is not None else max(low, high)
    settings: dict[str, Any] = {"min_agents": low, "max_agents": high}
    settings.update(scaling.policy_settings())
    if scaling.policy == "hpa":
        behavior = scaling.hpa.behavior
        down_window = scaling.hpa.scale_down_stabilization
        settings["scale_up"] = scaling_rules(behavior, "up")
        settings["scale_down"] = scaling_rules(behavior, "down", down_window)
    elif scaling.policy == "keda" and scaling.keda.behavior is not None:
        settings["scale_up"] = scaling_rules(scaling.keda.behavior, "up")
        settings["scale_down"] = scaling_rules(scaling.keda.behavior, "down")
        settings["stabilization_window_s"] = settings["scale_down"].stabilization_window_s
    return make_autoscaler(scaling.policy, scaling, **settings)


_SELECT: dict[str, Literal["max", "min", "disabled"]] = {
    "Max": "max",
    "Min": "min",
    "Disabled": "disabled",
}


def scaling_rules(
    behavior: HpaBehavior | None, direction: Literal["up", "down"], window_s: float | None = None
) -> ScalingRules:
    """One direction of a Kubernetes ``behavior`` block, defaulted as the API server does.

    A direction left out is Kubernetes' default for it; inside a direction,
    each field left out takes its default on its own (``selectPolicy`` Max,
    the direction's default policies and window). *window_s* replaces the
    default stabilisation window (``scaling.hpa.scale_down_stabilization``);
    a window written in the block wins over it.
    """
    default = DEFAULT_SCALE_UP if direction == "up" else DEFAULT_SCALE_DOWN
    window = default.stabilization_window_s if window_s is None else window_s
    rules = None
    if behavior is not None:
        rules = behavior.scale_up if direction == "up" else behavior.scale_down
    if rules is None:
        return ScalingRules(window, default.policies, default.select)
    if rules.stabilization_window_seconds is not None:
        window = float(rules.stabilization_window_seconds)
    policies = default.policies
    if rules.policies is not None:
        policies = tuple(
            ScalingPolicy(
                "pods" if p.type == "Pods" else "percent", p.value, float(p.period_seconds)
            )
            for p in rules.policies
        )
    select = _SELECT[rules.select_policy] if rules.select_policy is not None else "max"
    return ScalingRules(window, policies, select)


# --------------------------------------------------------------------------- alerts


def alert_evaluator(
    alerts: Mapping[str, Sequence[AlertRule]] | Mapping[Severity, Sequence[AlertRule]],
) -> AlertEvaluator:
    """The rules of a scenario's ``alerts`` block, severity by severity, in order."""
    return AlertEvaluator(
        [
            AlertRuleSpec(rule.name, severity, rule.parsed, rule.action, rule.for_)
            for severity, rules in alerts.items()
            for rule in rules
        ]
    )


# --------------------------------------------------------------------------- health


def failure_detector(
    health: Health, phase: Callable[[str], float] | None = None
) -> FailureDetector:
    """The detector that judges agents: the spec's three checks, or φ accrual on heartbeats.

    *phase* gives each agent's check-schedule offset (the simulator draws one
    per agent; live heartbeats carry their own times and pass None).
    """
    if health.detector == "phi_accrual":
        return PhiAccrualDetector(
            first_interval_s=health.interval,
            threshold=health.phi_threshold,
            min_std_s=health.phi_min_std,
            phase=phase,
        )
    return coordinator_detector(health, phase)


def fault_seed(streams: Streams) -> int:
    """The run's key for every attempt's fault draws (``keyed_draws.task_key``): one draw
    of the ``errors`` stream, so the simulator's agents and the live coordinator, given
    the same seed and replication, draw the same numbers for the same attempt."""
    return int(streams.get("errors").integers(0, 2**63))


def attempt_faults(scenario: Scenario) -> AttemptFaults:
    """The scenario's attempt errors and deadlines (``errors``), bursts not yet begun."""
    errors = scenario.errors
    return AttemptFaults(
        probability=errors.probability,
        by_category=errors.by_category,
        deadline_s=errors.timeout,
        deadline_by_category=errors.timeout_by_category,
    )


def burst_of(spec: ErrorBurst) -> Burst:
    """A chaos ``error_burst`` as the fault policy holds it."""
    return Burst(spec.probability, frozenset(spec.categories), frozenset(spec.zones))


def error_bursts(scenario: Scenario) -> list[tuple[float, float, Burst]]:
    """The chaos timeline's error bursts: (start, end, burst), in the timeline's order."""
    return [
        (event.at, event.at + (event.duration or 0.0), burst_of(event.error_burst))
        for event in scenario.chaos
        if event.error_burst is not None
    ]


def coordinator_detector(
    health: Health, phase: Callable[[str], float] | None = None
) -> ConsecutiveFailureDetector:
    """The detector that judges zone coordinators and team leads: always the spec's rule.

    ``health.detector`` chooses how *agents* are judged; the control agents
    above them are checked by the spec's three consecutive failed checks
    whatever it says. The same object as an agent detector of the
    consecutive kind would be: the two keep separate books only.
    """
    return ConsecutiveFailureDetector(health.interval, health.threshold, health.timeout, phase)


def check_phases(
    rng: np.random.Generator, interval_s: float, pinned: Mapping[str, float] | None = None
) -> Callable[[str], float]:
    """Each agent's check-schedule phase: *pinned*'s (``health.phases``), else its own draw.

    A draw is keyed by the agent's id, so the same whichever order agents
    are first looked at (analytic or per-message): one seed is drawn from
    *rng*, and each agent's phase comes from a generator spawned from it
    with the agent id's CRC as spawn key. The seed is drawn whether or not
    phases are pinned, so pinning one agent moves no other draw.
    """
    phase_seed = int(rng.integers(2**63))
    fixed = dict(pinned or {})

    def phase(agent_id: str) -> float:
        if agent_id in fixed:
            return fixed[agent_id]
        key = (zlib.crc32(agent_id.encode("utf-8")),)
        seq = np.random.SeedSequence(phase_seed, spawn_key=key)
        return float(np.random.Generator(np.random.PCG64(seq)).uniform(0.0, interval_s))

    return phase


# --------------------------------------------------------------------------- routing


def zone_router(scenario: Scenario, regions: Mapping[str, str]) -> ZoneRouter:
    """Zone routing over the scenario's RTT matrix; *regions* maps each zone to its region."""
    zones = list(regions)
    rtt = {
        (a, b): scenario.network.rtt_between(regions[a], regions[b]) or 0.0
        for a in zones
        for b in zones
    }
    return ZoneRouter(zones, rtt)


# --------------------------------------------------------------------------- the set


@dataclass
class PolicySet:
    """Every decision-maker of one run, built from one scenario and seed.

    ``breakers`` is None when ``policies.circuit_breaker.enabled`` is false:
    a shell without a board never opens a breaker. ``retry_budget`` is how
    many times a task may be dispatched again after an attempt was lost.
    """

    balancer: LoadBalancer
    router: ZoneRouter
    autoscaler: Autoscaler
    scaling_loop: ScalingLoop
    alerts: AlertEvaluator
    breakers: BreakerBoard | None
    breaker_open_s: float
    spill: bool
    retry_budget: int
    team_limit: int | None
    queue_limit: int


def build_policies(scenario: Scenario, streams: Streams, regions: Mapping[str, str]) -> PolicySet:
    """The scenario's policies, as both shells run them (see the module docstring).

    *regions* maps each zone to its region (``World.regions``). Streams are
    taken by name: ``balancer`` here; the shells take ``health`` for the
    detector's phases themselves, since only the simulator draws them.
    """
    policies = scenario.policies
    breaker = policies.circuit_breaker
    autoscaler = fleet_autoscaler(scenario.scaling, scenario.control_agents())
    pipeline = scenario.scaling.pipeline
    board = (
        BreakerBoard(
            BreakerConfig(failure_threshold=breaker.failure_threshold, open_s=breaker.open)
        )
        if breaker.enabled
        else None
    )
    return PolicySet(
        balancer=make_balancer(
            policies.load_balancing, streams.get("balancer"), epsilon=policies.affinity_epsilon
        ),
        router=zone_router(scenario, regions),
        autoscaler=autoscaler,
        scaling_loop=ScalingLoop(
            autoscaler,
            scenario.scaling.metric_window,
            metric_resolution_s=pipeline.metric_resolution,
            metric_delay_s=pipeline.metric_delay,
        ),
        alerts=alert_evaluator(scenario.alerts),
        breakers=board,
        breaker_open_s=breaker.open,
        spill=policies.spill_across_zones,
        retry_budget=scenario.retry.budget,
        team_limit=policies.team_limit,
        queue_limit=scenario.topology.specialist.queue_limit,
    )


def dispatch_core(
    policies: PolicySet,
    frees_in: Callable[[str, float], float] | None = None,
) -> DispatchCore[T]:
    """The dispatch core over the set's balancer, router and breakers, with its settings.

    Both shells build it here: the same zone gate (declared dead, breaker
    open) decides in both whether a zone takes work.
    """
    return DispatchCore(
        policies.balancer,
        policies.router,
        spill=policies.spill,
        retry_budget=policies.retry_budget,
        breakers=policies.breakers,
        frees_in=frees_in,
        team_limit=policies.team_limit,
    )


def escalation_config(scenario: Scenario) -> EscalationConfig:
    spec = scenario.escalation
    return EscalationConfig(
        team_retries=spec.team_retries,
        backoff_s=spec.backoff,
        backoff_factor=spec.backoff_factor,
        backoff_max_s=spec.backoff_max,
        zone_moves=tuple(ZoneMove(move) for move in spec.zone_moves),
        chief_retries=spec.chief_retries,
    )
