"""The scenario schema: every knob of a what-if, with the spec's numbers as defaults.

An empty document is the Phase 3 design as the spec writes it: 200 agents
(3 chief coordinators, 4 zone coordinators, 20 team leads, 173 specialists)
in four regions, the spec's category table, scaling block, metrics block and
alert rules. A scenario states only what differs. The spec's own YAML blocks
(``scaling``, ``metrics``, ``alerts``) load verbatim.

Units: durations are float seconds (written ``90``, ``'90s'``, ``'15m'``,
``'6h'``, ``'2d'``); rates are per minute, as the spec's dashboard shows them;
resources are vCPU and GB; prices are US dollars.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeInt, model_validator

from sim.scenario.base import Duration, Strict
from sim.scenario.chaos import (
    CHAOS_ACTIONS,
    AgentSelector,
    ChaosEvent,
    Loss,
    Partition,
    RandomChaos,
    Slow,
    Spike,
)
from sim.scenario.coordination import Coordination
from sim.scenario.cost import Cost, RegionPrice
from sim.scenario.faults import ErrorBurst, Escalation, OneWayPartition, TaskErrors, WalStall
from sim.scenario.health import Health, Retry
from sim.scenario.kubernetes import HpaBehavior
from sim.scenario.llm import Llm
from sim.scenario.network import DEFAULT_RTT_MS, CommPath, Network
from sim.scenario.observability import (
    AGENT_METRICS,
    GLOBAL_METRICS,
    ZONE_METRICS,
    AlertRule,
    Alerts,
    MetricItem,
    Metrics,
    Severity,
    Slo,
    spec_alerts,
)
from sim.scenario.policies_block import Breaker, DagPolicy, Policies
from sim.scenario.scaling import (
    AutoScale,
    HpaSettings,
    KedaSettings,
    MetricPipeline,
    ScaleDown,
    ScaleDownThreshold,
    ScaleMetric,
    ScaleUp,
    ScaleUpThreshold,
    Scaling,
)
from sim.scenario.spot import Purchase
from sim.scenario.tiers import Tiers
from sim.scenario.topology import (
    SPEC_CATEGORY_SHARES,
    ControlPlane,
    Resources,
    ResourceTable,
    RoleResources,
    Specialists,
    Topology,
    Zone,
)
from sim.scenario.workload import (
    DAG_SHAPES,
    Arrivals,
    Burst,
    DagJobs,
    DagRelease,
    Diurnal,
    InlineDag,
    InlineDagEdge,
    InlineDagNode,
    RatePoint,
    ServiceTime,
    Workload,
)

#: Every section and constant, re-exported so callers import from one place as before
#: the sections moved into modules of their own.
__all__ = [
    "AGENT_METRICS",
    "CHAOS_ACTIONS",
    "DAG_SHAPES",
    "DEFAULT_RTT_MS",
    "GLOBAL_METRICS",
    "SPEC_CATEGORY_SHARES",
    "ZONE_METRICS",
    "AgentSelector",
    "AlertRule",
    "Alerts",
    "Arrivals",
    "AutoScale",
    "Breaker",
    "Burst",
    "ChaosEvent",
    "CommPath",
    "ControlPlane",
    "Coordination",
    "Cost",
    "DagJobs",
    "DagPolicy",
    "DagRelease",
    "Diurnal",
    "Duration",
    "ErrorBurst",
    "Escalation",
    "Health",
    "HpaBehavior",
    "HpaSettings",
    "InlineDag",
    "InlineDagEdge",
    "InlineDagNode",
    "KedaSettings",
    "Llm",
    "Loss",
    "MetricItem",
    "MetricPipeline",
    "Metrics",
    "Network",
    "OneWayPartition",
    "Partition",
    "Policies",
    "RandomChaos",
    "RatePoint",
    "RegionPrice",
    "ResourceTable",
    "Resources",
    "Retry",
    "RoleResources",
    "ScaleDown",
    "ScaleDownThreshold",
    "ScaleMetric",
    "ScaleUp",
    "ScaleUpThreshold",
    "Scaling",
    "Scenario",
    "ServiceTime",
    "Severity",
    "Slo",
    "Slow",
    "Specialists",
    "Spike",
    "Strict",
    "TaskErrors",
    "Topology",
    "WalStall",
    "Workload",
    "Zone",
    "spec_alerts",
]


class Scenario(Strict):
    """A what-if: one orchestra, one workload, one set of policies, one timeline."""

    name: str = "phase_3"
    description: str = ""
    seed: NonNegativeInt = Field(0, description="Root of every random stream.")
    duration: Duration = Field(24 * 3600.0, description="Simulated time.")
    warmup: Duration = Field(3600.0, description="Cut from every statistic.")
    topology: Topology = Topology()
    workload: Workload = Workload()
    network: Network = Network()
    policies: Policies = Policies()
    scaling: Scaling = Scaling()
    metrics: Metrics = Metrics()
    alerts: Alerts = Field(default_factory=spec_alerts)
    chaos: list[ChaosEvent] = Field(
        default_factory=list, description="The failure timeline: see the chaos section."
    )
    chaos_random: RandomChaos = RandomChaos()
    health: Health = Health()
    retry: Retry = Retry()
    errors: TaskErrors = TaskErrors()
    escalation: Escalation = Escalation()
    coordination: Coordination = Coordination()
    slo: Slo = Slo()
    cost: Cost = Cost()
    llm: Llm | None = Field(
        None,
        description="Opt-in: model calls, provider rate limits and token cost (sim.scenario.llm).",
    )
    purchase: Purchase = Field(
        default_factory=Purchase,
        description="Billing granularity and opt-in spot capacity (sim.scenario.spot).",
    )
    tiers: Tiers | None = Field(
        None, description="Opt-in: priority tiers, tenants and shedding (sim.scenario.tiers)."
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Named what-ifs run side by side on the same arrivals: each maps dotted paths to "
            "values, like --set (e.g. {hpa: {scaling.policy: hpa}})."
        ),
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        """Names one section uses and another defines: categories, zones, chiefs, regions.

        Checked in the order a reader meets the sections, so the first error
        reported is the same whichever way the checks are grouped.
        """
        categories = self.topology.categories
        if self.duration <= 0:
            raise ValueError("duration: expected a positive duration")
        if self.warmup >= self.duration:
            raise ValueError("warmup: expected less than duration")
        zones = [zone.name for zone in self.topology.zones]
        _check_workload(self.workload, categories, zones, self.duration)
        _check_categories_named(self.errors, self.workload, categories)
        chiefs = [f"chief-{i + 1}" for i in range(self.topology.control_plane.chiefs)]
        for index, event in enumerate(self.chaos):
            where = f"chaos[{index}].{event.action}"
            _check_chaos_targets(where, event, categories, zones, chiefs)
            _check_chaos_scopes(where, event, self.topology, categories, zones, chiefs)
        if self.llm is not None:
            self.llm.check_categories(categories)
        if self.purchase.spot is not None:
            self.purchase.spot.check_names(zones, list(categories))
        if self.tiers is not None:
            self.tiers.check(categories, self.llm is not None)
        regions = {self.topology.control_plane.region} | {z.region for z in self.topology.zones}
        for a in sorted(regions):
            for b in sorted(regions):
                if self.network.rtt_between(a, b) is None:
                    raise ValueError(f"network.rtt_ms: expected an RTT between {a} and {b}")
        if self.specialist_count() < 0:
            raise ValueError(
                "topology.specialists: scaling.default_agents leaves no room for specialists "
                "after chiefs, zone coordinators and team leads"
            )
        return self

    def control_agents(self) -> int:
        """Chiefs, zone coordinators and team leads: the agents that coordinate."""
        topo = self.topology
        return topo.control_plane.chiefs + len(topo.zones) + sum(z.team_leads for z in topo.zones)

    def specialist_count(self) -> int:
        """Specialists in the fleet: given, or what default_agents leaves after coordination."""
        if self.topology.specialists is not None:
            return self.topology.specialists
        return self.scaling.default_agents - self.control_agents()


def _check_workload(
    workload: Workload, categories: dict[str, float], zones: list[str], duration: float
) -> None:
    """The task mix, zone mix, inline DAGs and fixed DAG releases name known things."""
    if workload.mix is not None:
        _require_same_keys("workload.mix", workload.mix, categories)
    if workload.zone_mix is not None:
        _require_same_keys("workload.zone_mix", workload.zone_mix, dict.fromkeys(zones))
    for index, dag in enumerate(workload.dags.inline):
        for node in dag.nodes:
            if node.category not in categories:
                raise ValueError(
                    f"workload.dags.inline[{index}]: node {node.id!r}: unknown category "
                    f"{node.category!r}; expected one of {', '.join(categories)}"
                )
    for index, release in enumerate(workload.dags.jobs):
        if release.at >= duration:
            raise ValueError(
                f"workload.dags.jobs[{index}].at: expected less than duration "
                f"({duration:g} s), got {release.at:g} s"
            )
        if release.zone is not None and release.zone not in zones:
            raise ValueError(
                f"workload.dags.jobs[{index}].zone: unknown zone {release.zone!r}; "
                f"expected one of {', '.join(zones)}"
            )


def _check_categories_named(
    errors: TaskErrors, workload: Workload, categories: dict[str, float]
) -> None:
    """Per-category error rates, timeouts and service times name topology categories."""
    for field_name in ("by_category", "timeout_by_category"):
        for category in getattr(errors, field_name):
            if category not in categories:
                raise ValueError(
                    f"errors.{field_name}.{category}: unknown category; expected one of "
                    f"{', '.join(categories)}"
                )
    for category in workload.service_by_category:
        if category not in categories:
            raise ValueError(
                f"workload.service_by_category.{category}: unknown category; expected one "
                f"of {', '.join(categories)}"
            )


def _check_chaos_targets(
    where: str,
    event: ChaosEvent,
    categories: dict[str, float],
    zones: list[str],
    chiefs: list[str],
) -> None:
    """What a kill, slow, coordinator crash, partition or zone outage hits exists."""
    selector = event.kill or event.slow or event.spot_reclaim
    if selector is not None:
        if selector.category is not None and selector.category not in categories:
            raise ValueError(f"{where}.category: unknown category {selector.category!r}")
        if selector.zone is not None and selector.zone not in zones:
            raise ValueError(f"{where}.zone: unknown zone {selector.zone!r}")
    crashed = event.coordinator_crash
    valid = ["leader", "follower", *chiefs, *(f"{z}-coord" for z in zones)]
    if crashed is not None and crashed not in valid:
        raise ValueError(f"{where}: expected one of {', '.join(valid)}, got {crashed!r}")
    if event.partition is not None:
        for group in event.partition.groups:
            for name in group:
                if name not in chiefs and name not in zones:
                    raise ValueError(
                        f"{where}.groups: unknown chief or zone {name!r}; expected "
                        f"one of {', '.join([*chiefs, *zones])}"
                    )
    if event.zone_outage is not None and event.zone_outage not in zones:
        raise ValueError(f"{where}: unknown zone {event.zone_outage!r}")
    if event.join is not None:
        if event.join.zone not in zones:
            raise ValueError(f"{where}.zone: unknown zone {event.join.zone!r}")
        if event.join.category not in categories:
            raise ValueError(f"{where}.category: unknown category {event.join.category!r}")


def _check_chaos_scopes(
    where: str,
    event: ChaosEvent,
    topology: Topology,
    categories: dict[str, float],
    zones: list[str],
    chiefs: list[str],
) -> None:
    """What an error burst, team-lead crash, one-way cut, WAL stall, loss or spike names exists."""
    if event.error_burst is not None:
        for category in event.error_burst.categories:
            if category not in categories:
                raise ValueError(f"{where}.categories: unknown category {category!r}")
        for zone in event.error_burst.zones:
            if zone not in zones:
                raise ValueError(f"{where}.zones: unknown zone {zone!r}")
    if event.team_lead_crash is not None:
        leads = [f"{z.name}-T{t + 1:02d}-lead" for z in topology.zones for t in range(z.team_leads)]
        if event.team_lead_crash not in leads:
            example = leads[0] if leads else "none: no zone has team leads"
            raise ValueError(
                f"{where}: unknown team lead {event.team_lead_crash!r} (e.g. {example})"
            )
    named = ["leader", "follower", *chiefs]
    for chief in _chiefs_named(event):
        if chief not in named:
            raise ValueError(f"{where}.chief: expected one of {', '.join(named)}, got {chief!r}")
    if event.message_loss is not None:
        for zone in event.message_loss.zones or ():
            if zone not in zones:
                raise ValueError(f"{where}.zones: unknown zone {zone!r}")
    if event.latency_spike is not None:
        for zone in event.latency_spike.zones:
            if zone not in zones:
                raise ValueError(f"{where}.zones: unknown zone {zone!r}")


def _chiefs_named(event: ChaosEvent) -> list[str]:
    """The chiefs a one-way partition or a WAL stall names (checked against the topology)."""
    actions = (event.one_way_partition, event.wal_stall)
    return [action.chief for action in actions if action is not None]


def _require_same_keys(path: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    missing = [key for key in expected if key not in given]
    unknown = [key for key in given if key not in expected]
    if unknown:
        raise ValueError(
            f"{path}.{unknown[0]}: unknown category or zone; expected one of {', '.join(expected)}"
        )
    if missing:
        raise ValueError(
            f"{path}: missing {', '.join(missing)}; list every one (weight 0 to exclude it)"
        )
