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

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from sim.policies.alerts import Condition, parse_condition
from sim.policies.dag import Dag, DagCycleError, DagEdge, DagNode, validate_dag
from sim.scenario.base import Duration, Strict
from sim.scenario.coordination import Coordination
from sim.scenario.faults import ErrorBurst, Escalation, OneWayPartition, TaskErrors, WalStall
from sim.scenario.kubernetes import HpaBehavior
from sim.scenario.llm import Llm
from sim.scenario.tiers import Tiers

#: The spec's category table (section 3.2). It sums to 200 while the spec has 173
#: specialists, so the model reads it as shares and apportions by largest remainder.
SPEC_CATEGORY_SHARES: dict[str, float] = {
    "CodeGen": 40,
    "Review": 20,
    "Test": 25,
    "DevOps": 15,
    "Documentation": 15,
    "Security": 10,
    "Research": 20,
    "Design": 15,
    "Integration": 15,
    "Support": 25,
}

#: Measured inter-region round-trip times in ms between the spec's four regions:
#: average RTT from "Latency Between AWS Global Regions", as tabulated in "AWS
#: Regions", A Computer Scientist Learns AWS (blog, April 2017), each pair the
#: mean of its two directions (they differ by at most 1.7 ms). Averages, not
#: medians, and years old: replace them with your own measurements where the
#: answer depends on them.
DEFAULT_RTT_MS: dict[str, dict[str, float]] = {
    "us-east-1": {"us-west-2": 87.8, "eu-west-1": 80.5, "ap-northeast-1": 145.3},
    "us-west-2": {"eu-west-1": 137.0, "ap-northeast-1": 89.1},
    "eu-west-1": {"ap-northeast-1": 212.4},
}


# --------------------------------------------------------------------------- topology


class Resources(Strict):
    """Compute resources of one agent."""

    vcpu: PositiveFloat = Field(description="Virtual CPUs.")
    mem_gb: PositiveFloat = Field(description="Memory in GB.")


class RoleResources(Strict):
    """Base and maximum resources of a role (spec section 4.2)."""

    base: Resources
    max: Resources

    @model_validator(mode="after")
    def _max_at_least_base(self) -> RoleResources:
        if self.max.vcpu < self.base.vcpu or self.max.mem_gb < self.base.mem_gb:
            raise ValueError("expected max resources >= base resources")
        return self


class ResourceTable(Strict):
    """The spec's vertical-scaling table (section 4.2)."""

    coordinator: RoleResources = RoleResources(
        base=Resources(vcpu=4, mem_gb=8), max=Resources(vcpu=8, mem_gb=16)
    )
    team_lead: RoleResources = RoleResources(
        base=Resources(vcpu=2, mem_gb=4), max=Resources(vcpu=4, mem_gb=8)
    )
    specialist: RoleResources = RoleResources(
        base=Resources(vcpu=1, mem_gb=2), max=Resources(vcpu=2, mem_gb=4)
    )


class ControlPlane(Strict):
    """The chief coordinators: a Raft group; its leader is the primary.

    Raft runs in logical ticks of ``tick``; election timeouts are drawn
    uniformly from ``election_timeout`` (the Raft paper's 150-300 ms by
    default) and the leader heartbeats every ``heartbeat``. While the group is
    healthy its leader commits each task assignment to the log in one quorum
    round trip plus an fsync, with no event per message; when a chief crashes
    or the chiefs are partitioned, every Raft message is simulated until a
    leader is stable again.
    """

    chiefs: Literal[1, 3, 5, 7] = Field(3, description="Chief coordinator replicas (Raft group).")
    region: str = Field("us-east-1", description="Region hosting the chief coordinators.")
    tick: Duration = Field(0.005, description="Length of one Raft tick.")
    election_timeout: tuple[Duration, Duration] = Field(
        (0.150, 0.300), description="Range the randomised election timeout is drawn from."
    )
    heartbeat: Duration = Field(0.050, description="Leader heartbeat interval.")
    fsync: Duration = Field(0.001, description="Time to persist a log entry.")
    pre_vote: bool = Field(True, description="Pre-vote before an election (no disruption).")
    every_message: bool = Field(
        False,
        description=(
            "Fidelity mode: simulate every Raft message and append every task assignment to "
            "the leader's log, healthy or not (much slower; the default fast-forwards while "
            "the group is healthy, charging each commit its quorum round trip and fsync)."
        ),
    )

    @model_validator(mode="after")
    def _timing(self) -> ControlPlane:
        low, high = self.election_timeout
        if not 0 < self.tick <= self.heartbeat < low <= high:
            raise ValueError("expected 0 < tick <= heartbeat < election timeout low <= high")
        return self


class Zone(Strict):
    """One agent cluster zone, living in one cloud region."""

    name: str = Field(description="Zone name, e.g. A.")
    region: str = Field(description="Cloud region of the zone, a key of network.rtt_ms.")
    team_leads: PositiveInt = Field(5, description="Team leads in the zone (one team each).")
    standby: bool = Field(True, description="Whether the zone coordinator has a hot standby.")
    weight: PositiveFloat = Field(
        1.0, description="Share of specialists (when not given exactly) and of arriving work."
    )
    specialists: NonNegativeInt | None = Field(
        None, description="Exact specialist count; default: apportioned by weight."
    )
    categories: dict[str, NonNegativeInt] | None = Field(
        None, description="Exact specialists per category; default: apportioned by shares."
    )


def _spec_zones() -> list[Zone]:
    regions = (("A", "us-east-1"), ("B", "us-west-2"), ("C", "eu-west-1"), ("D", "ap-northeast-1"))
    return [Zone(name=name, region=region) for name, region in regions]


class Specialists(Strict):
    """How each specialist agent runs its tasks."""

    slots: PositiveInt = Field(1, description="Tasks an agent serves at once (bulkhead).")
    queue_limit: NonNegativeInt = Field(
        0,
        description=(
            "Tasks an agent may hold queued beyond its slots. 0 means agents pull from their "
            "zone's queue when a slot frees (one pooled queue per zone and category); larger "
            "values push work onto agents, where the load-balancing strategy matters most."
        ),
    )
    vcpu: PositiveFloat | None = Field(
        None, description="vCPU per specialist; default: the role's base (1)."
    )
    parallel_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Amdahl parallel fraction p: speed(v) = 1 / ((1 - p) + p * base / v), so 1.0 at base."
        ),
    )
    speed_cv: NonNegativeFloat = Field(
        0.0, description="Coefficient of variation of agent speed (lognormal); 0 = identical."
    )


class Topology(Strict):
    """Who is in the orchestra, and where (spec sections 2, 3 and 4.3)."""

    control_plane: ControlPlane = ControlPlane()
    zones: list[Zone] = Field(default_factory=_spec_zones, min_length=1)
    specialists: NonNegativeInt | None = Field(
        None,
        description=(
            "Specialists in total; default: scaling.default_agents minus chiefs, zone "
            "coordinators and team leads (173 for the spec)."
        ),
    )
    categories: dict[str, PositiveFloat] = Field(
        default_factory=lambda: dict(SPEC_CATEGORY_SHARES),
        min_length=1,
        description=(
            "Specialist categories and their shares. The spec's table sums to 200 for 173 "
            "specialists, so counts are apportioned by largest remainder."
        ),
    )
    reserve_pool: int = Field(50, ge=0, le=50, description="Reserve agents for autoscaling (0-50).")
    specialist: Specialists = Specialists()
    resources: ResourceTable = ResourceTable()

    @model_validator(mode="after")
    def _zones_consistent(self) -> Topology:
        names = [zone.name for zone in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"expected unique zone names, got {names}")
        for zone in self.zones:
            for category in zone.categories or {}:
                if category not in self.categories:
                    raise ValueError(
                        f"zone {zone.name}: unknown category {category!r}; expected one of "
                        f"{', '.join(self.categories)}"
                    )
        return self


# --------------------------------------------------------------------------- workload


class RatePoint(Strict):
    """From ``at`` on, arrivals run at ``rate_per_min`` (a step function)."""

    at: Duration
    rate_per_min: NonNegativeFloat


class Burst(Strict):
    """A surge: the arrival rate is multiplied by ``factor`` for ``duration``."""

    at: Duration
    duration: Duration
    factor: PositiveFloat


class Diurnal(Strict):
    """A sinusoidal day: rate(t) = base * (1 + amplitude * cos(2 pi (t - peak_at) / period))."""

    peak_at: Duration = Field(14 * 3600.0, description="Time of the daily peak.")
    amplitude: float = Field(0.5, ge=0, le=1, description="Relative swing around the base rate.")
    period: Duration = Field(86400.0, description="Length of one cycle.")


class Arrivals(Strict):
    """When independent tasks arrive."""

    process: Literal["poisson", "piecewise", "diurnal", "trace"] = "poisson"
    rate_per_min: NonNegativeFloat = Field(
        140.0,
        description=(
            "Mean independent-task arrival rate. With the default DAG jobs the fleet sees about "
            "156 tasks/min, the spec dashboard's throughput."
        ),
    )
    piecewise: list[RatePoint] = Field(
        default_factory=list, description="Step rates for process=piecewise."
    )
    diurnal: Diurnal = Diurnal()
    trace: Path | None = Field(
        None,
        description=(
            "CSV or Parquet trace for process=trace: column arrival_s, optional category, "
            "zone, work_s, affinity_key, deadline_s (a per-task attempt deadline; empty: none)."
        ),
    )
    bursts: list[Burst] = Field(default_factory=list, description="Surges on top of any process.")

    @model_validator(mode="after")
    def _process_inputs(self) -> Arrivals:
        if self.process == "piecewise" and not self.piecewise:
            raise ValueError("expected at least one rate point in piecewise for process=piecewise")
        if self.process == "trace" and self.trace is None:
            raise ValueError("expected a trace file for process=trace")
        return self


class ServiceTime(Strict):
    """A service-time distribution on a speed-1.0 (base) agent."""

    dist: Literal["exponential", "lognormal", "gamma", "deterministic", "empirical"] = "lognormal"
    mean: Duration = Field(40.0, description="Mean service time on a base agent.")
    cv: NonNegativeFloat = Field(1.0, description="Coefficient of variation (lognormal and gamma).")
    file: Path | None = Field(
        None, description="CSV or Parquet of observed service times for dist=empirical."
    )
    column: str = Field("service_s", description="Column of the empirical file, in seconds.")

    @model_validator(mode="after")
    def _inputs(self) -> ServiceTime:
        if self.dist == "empirical" and self.file is None:
            raise ValueError("expected a file for dist=empirical")
        if self.dist != "deterministic" and self.dist != "empirical" and self.mean <= 0:
            raise ValueError("expected a positive mean")
        return self


class InlineDagNode(Strict):
    id: int | str
    category: str
    work_s: Duration


class InlineDagEdge(Strict):
    src: int | str
    dst: int | str
    data_mb: NonNegativeFloat = 0.0


class InlineDag(Strict):
    """A DAG written in the scenario itself."""

    name: str
    nodes: list[InlineDagNode] = Field(min_length=1)
    edges: list[InlineDagEdge] = Field(default_factory=list)

    def to_dag(self) -> Dag:
        """The policy-level DAG, node ids renumbered 0..n-1 in the order written."""
        ids = {node.id: index for index, node in enumerate(self.nodes)}
        if len(ids) != len(self.nodes):
            raise ValueError("expected unique node ids")
        for index, edge in enumerate(self.edges):
            for end in (edge.src, edge.dst):
                if end not in ids:
                    raise ValueError(f"edges[{index}]: unknown node {end!r}")
        return Dag(
            self.name,
            tuple(DagNode(ids[n.id], n.category, float(n.work_s)) for n in self.nodes),
            tuple(DagEdge(ids[e.src], ids[e.dst], float(e.data_mb)) for e in self.edges),
        )

    @model_validator(mode="after")
    def _acyclic(self) -> InlineDag:
        try:
            validate_dag(self.to_dag())
        except DagCycleError as exc:
            names = [str(self.nodes[i].id) for i in exc.cycle]
            raise ValueError(
                f"expected an acyclic graph, found cycle {' → '.join([*names, names[0]])}"
            ) from None
        return self


DAG_SHAPES = ("layered", "fork_join", "pipeline", "montage", "epigenomics", "cybershake", "ligo")


class DagRelease(Strict):
    """One DAG job released at a fixed time, besides any Poisson stream of jobs.

    The standard way to measure a scheduler's makespan is one job on an idle
    fleet: ``jobs: [{file: montage.json, at: 0}]`` with ``rate_per_min: 0``.
    """

    file: Path = Field(description="DAG file (YAML/JSON), relative to the scenario's folder.")
    at: Duration = Field(0.0, ge=0, description="When the job reaches the chief.")
    zone: str | None = Field(None, description="The job's home zone; default: the first zone.")


class DagJobs(Strict):
    """DAG jobs: workflows whose tasks depend on each other's output."""

    rate_per_min: NonNegativeFloat = Field(1.0, description="Job arrival rate (Poisson).")
    shapes: dict[str, NonNegativeFloat] = Field(
        default_factory=lambda: {"layered": 1.0},
        description=f"Mix of generated shapes, from {', '.join(DAG_SHAPES)}.",
    )
    size: PositiveInt = Field(16, description="Nodes per generated job (approximate).")
    data_mb_mean: NonNegativeFloat = Field(10.0, description="Mean data per edge, MB.")
    files: list[Path] = Field(
        default_factory=list, description="DAG files (YAML/JSON) to draw from."
    )
    inline: list[InlineDag] = Field(default_factory=list, description="DAGs written inline.")
    jobs: list[DagRelease] = Field(
        default_factory=list,
        description="DAG jobs released at fixed times (e.g. one job at time 0 for a makespan).",
    )
    file_share: float = Field(
        0.0, ge=0, le=1, description="Share of jobs drawn from files/inline DAGs."
    )

    @field_validator("shapes")
    @classmethod
    def _known_shapes(cls, shapes: dict[str, float]) -> dict[str, float]:
        for shape in shapes:
            if shape not in DAG_SHAPES:
                raise ValueError(
                    f"unknown shape {shape!r}; expected one of {', '.join(DAG_SHAPES)}"
                )
        if shapes and sum(shapes.values()) <= 0:
            raise ValueError("expected at least one shape with a positive weight")
        return shapes


class Workload(Strict):
    """What arrives: independent tasks and DAG jobs."""

    arrivals: Arrivals = Arrivals()
    mix: dict[str, NonNegativeFloat] | None = Field(
        None,
        description=(
            "Task mix by category (relative weights, every topology category listed); "
            "default: the topology's shares."
        ),
    )
    zone_mix: dict[str, NonNegativeFloat] | None = Field(
        None, description="Share of work arriving at each zone; default: zone weights."
    )
    service: ServiceTime = ServiceTime()
    service_by_category: dict[str, ServiceTime] = Field(
        default_factory=dict, description="Per-category service times overriding `service`."
    )
    affinity_keys: NonNegativeInt = Field(
        0, description="Distinct affinity keys (sessions); 0 = tasks carry none."
    )
    dags: DagJobs = DagJobs()


# --------------------------------------------------------------------------- network


class CommPath(Strict):
    """A communication path of the spec (section 8.2)."""

    overhead_ms: NonNegativeFloat = Field(description="Per-message processing and hop cost, ms.")
    bandwidth_mbps: PositiveFloat = Field(description="Throughput for payloads, megabits/s.")


class Network(Strict):
    """Latency of the spec's communication paths (section 8.2)."""

    enabled: bool = Field(True, description="Switch every latency off (textbook queueing form).")
    rtt_ms: dict[str, dict[str, NonNegativeFloat]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RTT_MS.items()},
        description=(
            "Inter-region round-trip times (symmetric; one triangle suffices). Defaults: "
            "measured averages published in 2017 (see DEFAULT_RTT_MS)."
        ),
    )
    intra_region_rtt_ms: NonNegativeFloat = Field(1.0, description="RTT inside one region.")
    grpc: CommPath = CommPath(overhead_ms=0.5, bandwidth_mbps=1000)
    direct_tcp: CommPath = CommPath(overhead_ms=0.2, bandwidth_mbps=5000)
    nats: CommPath = CommPath(overhead_ms=1.0, bandwidth_mbps=1000)
    redis_pubsub: CommPath = CommPath(overhead_ms=0.5, bandwidth_mbps=1000)
    jitter_cv: NonNegativeFloat = Field(0.1, description="Lognormal jitter on every hop.")
    message_ttl: Duration = Field(30.0, description="AgentMessage.ttl: older messages expire.")
    resend_limit: NonNegativeInt = Field(
        3,
        description=(
            "Times an expired TASK_ASSIGN is sent again before the task fails for good "
            "(reason ttl_expired)."
        ),
    )

    def rtt_between(self, a: str, b: str) -> float | None:
        """RTT in ms between two regions, reading the triangle either way."""
        if a == b:
            return self.intra_region_rtt_ms
        if b in self.rtt_ms.get(a, {}):
            return self.rtt_ms[a][b]
        if a in self.rtt_ms.get(b, {}):
            return self.rtt_ms[b][a]
        return None


# --------------------------------------------------------------------------- policies


class DagPolicy(Strict):
    critical_to_fastest: bool = Field(
        True, description="Send critical-path tasks to the fastest agent with room (HEFT style)."
    )
    order: Literal["upward_rank", "fifo"] = Field(
        "upward_rank", description="Order of ready DAG tasks in the queues."
    )
    data_locality: bool = Field(
        False,
        description=(
            "Run a ready task on the agent holding its largest input when that agent has a free "
            "slot, or frees one sooner than moving the input would take."
        ),
    )


class Breaker(Strict):
    """A circuit breaker per agent on the zone coordinator's calls (closed/open/half-open)."""

    enabled: bool = True
    failure_threshold: PositiveInt = Field(3, description="Consecutive failed calls to open.")
    open: Duration = Field(30.0, description="How long it stays open before a probe.")


class Policies(Strict):
    """Which decision policies the coordinators run."""

    load_balancing: Literal[
        "round_robin", "least_connections", "weighted", "affinity", "power_of_two"
    ] = "least_connections"
    affinity_epsilon: PositiveFloat = Field(
        0.25, description="Bounded-load slack c = 1 + epsilon for consistent hashing."
    )
    spill_across_zones: bool = Field(
        True,
        description=(
            "A task whose zone has no free agent goes to another zone's free agent (paying the "
            "cross-region path), and idle agents take work queued in other zones."
        ),
    )
    dag: DagPolicy = DagPolicy()
    circuit_breaker: Breaker = Breaker()
    team_limit: PositiveInt | None = Field(
        None,
        description=(
            "Bulkhead per team: most tasks one team's agents hold at once (None: no limit). "
            "Each agent's own bulkhead is its slots plus queue_limit."
        ),
    )


# --------------------------------------------------------------------------- the spec's blocks


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
    spawn_delay: Duration = Field(60.0, description="From request to a new agent serving.")
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


def _spec_alerts() -> dict[Severity, list[AlertRule]]:
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


class RegionPrice(Strict):
    vcpu_hour_usd: NonNegativeFloat
    gb_hour_usd: NonNegativeFloat


class Cost(Strict):
    """Prices of compute. Defaults: AWS Fargate on-demand, Linux/x86, us-east-1."""

    vcpu_hour_usd: NonNegativeFloat = Field(0.04048, description="Price of one vCPU for an hour.")
    gb_hour_usd: NonNegativeFloat = Field(0.004445, description="Price of one GB for an hour.")
    regions: dict[str, RegionPrice] = Field(
        default_factory=lambda: {
            "ap-northeast-1": RegionPrice(vcpu_hour_usd=0.05056, gb_hour_usd=0.00553)
        },
        description="Per-region prices overriding the defaults.",
    )
    include_standbys: bool = Field(True, description="Standby coordinators are paid for too.")


# --------------------------------------------------------------------------- failures


class Health(Strict):
    """How failures are noticed (spec section 7.1: 3 consecutive failed checks)."""

    detector: Literal["consecutive", "phi_accrual"] = Field(
        "consecutive",
        description="The spec's consecutive failed checks, or phi accrual on heartbeats.",
    )
    phi_threshold: PositiveFloat = Field(8.0, description="phi_accrual: suspicion level.")
    phi_min_std: Duration = Field(0.5, description="phi_accrual: floor on the interval's std.")
    interval: Duration = Field(10.0, description="Health-check (or heartbeat) interval per agent.")
    threshold: PositiveInt = Field(3, description="Consecutive failed checks to mark unhealthy.")
    timeout: Duration = Field(2.0, description="A check fails this long after it is sent.")
    per_message: bool = Field(
        False,
        description=(
            "Simulate every check as an event (fidelity mode); by default detection times "
            "are computed from the check schedule, with identical results."
        ),
    )
    replace_failed: bool = Field(
        True, description="Spawn a replacement from the reserve pool for each failed agent."
    )
    zone_promotion: Duration = Field(
        15.0, description="Time to promote a zone coordinator's standby."
    )

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Health:
        if self.interval <= 0 or self.timeout >= self.interval:
            raise ValueError("expected 0 <= timeout < interval")
        if self.per_message and self.detector == "phi_accrual":
            raise ValueError("per_message: expected the consecutive detector (phi is analytic)")
        return self


class Retry(Strict):
    """What happens to a task whose agent failed under it."""

    budget: NonNegativeInt = Field(
        3, description="Re-dispatches after failures before a task fails for good."
    )


class AgentSelector(Strict):
    """Which specialists an event hits: ids, or a fraction (or count) of a category/zone."""

    agents: list[str] | None = Field(
        None, description="Agent ids (an empty list hits nobody, as a replayed no-op does)."
    )
    category: str | None = None
    zone: str | None = None
    fraction: float | None = Field(None, gt=0, le=1, description="Share of the matching agents.")
    count: PositiveInt | None = Field(None, description="Number of the matching agents.")


class Spike(Strict):
    factor: PositiveFloat = Field(description="Latency multiplier on the affected paths.")
    zones: list[str] = Field(default_factory=list, description="Zones affected (all if empty).")


class Loss(Strict):
    rate: float = Field(gt=0, lt=1, description="Share of TASK_ASSIGN messages lost.")
    zones: list[str] | None = Field(
        None, description="Only the chief -> zone paths to these zones lose messages (all if None)."
    )


class Slow(AgentSelector):
    factor: PositiveFloat = Field(description="Service time multiplier for 'gray' agents.")


class RandomChaos(Strict):
    """Failures drawn at random for soak runs: exponential times between failures per component."""

    enabled: bool = False
    agent_mtbf: Duration = Field(7 * 86400.0, description="Mean time between failures per agent.")
    agent_mttr: Duration = Field(600.0, description="Mean time to repair (restart) an agent.")
    zone_mtbf: Duration | None = Field(None, description="Per zone; None: zones never fail.")
    zone_mttr: Duration = Field(1800.0, description="Mean length of a zone outage.")
    chief_mtbf: Duration | None = Field(
        None, description="Per chief coordinator; None: chiefs never fail."
    )
    chief_mttr: Duration = Field(60.0, description="Mean time to restart a chief.")
    start: Duration | None = Field(None, description="First failure no earlier; default warm-up.")


class Partition(Strict):
    """Groups that can only reach their own members: chiefs (chief-1 ...) and zones (A ...).

    Chiefs split as the groups say (Raft decides who leads). A zone in a group
    without a majority of the chiefs is cut off from the control plane: its
    agents keep serving what they hold, but the chief can no longer reach its
    coordinator, so its work is routed to the zones on the majority's side.
    """

    groups: list[list[str]] = Field(
        min_length=1,
        description="Names that can only reach their own group; the unnamed form one more.",
    )


CHAOS_ACTIONS = (
    "kill",
    "zone_outage",
    "coordinator_crash",
    "partition",
    "latency_spike",
    "message_loss",
    "slow",
    "error_burst",
    "one_way_partition",
    "wal_stall",
    "team_lead_crash",
)


class ChaosEvent(Strict):
    """One entry of the failure timeline: when, what, and for how long.

    Exactly one action: ``kill`` (agents crash; ``restart_after`` brings them
    back), ``coordinator_crash`` (a chief — ``leader``, ``follower`` or by
    name — or a zone coordinator, whose standby is then promoted;
    ``restart_after`` restarts a chief), ``zone_outage`` (a whole zone and its
    coordinators go dark for ``duration``), ``partition`` (chiefs split into
    groups for ``duration``), ``latency_spike``, ``message_loss`` or ``slow``
    (gray agents) for ``duration``; ``one_way_partition`` (a chief's links
    work one way only) or ``wal_stall`` (a chief's fsyncs take seconds) for
    ``duration``; ``team_lead_crash`` (a team lead dies; its team takes no new
    work until the zone coordinator's checks notice and a member takes over).
    """

    at: Duration
    duration: Duration | None = None
    restart_after: Duration | None = None
    kill: AgentSelector | None = None
    zone_outage: str | None = None
    coordinator_crash: str | None = Field(
        None, description="'leader', 'follower', a chief (chief-2) or a zone coordinator (A-coord)."
    )
    partition: Partition | None = None
    latency_spike: Spike | None = None
    message_loss: Loss | None = None
    slow: Slow | None = None
    error_burst: ErrorBurst | None = None
    one_way_partition: OneWayPartition | None = None
    wal_stall: WalStall | None = None
    team_lead_crash: str | None = Field(
        None, description="A team lead (A-T01-lead): its team gets no new work until replaced."
    )

    @model_validator(mode="after")
    def _one_action(self) -> ChaosEvent:
        given = [name for name in CHAOS_ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of {', '.join(CHAOS_ACTIONS)}, got {given or 'none'}"
            )
        if given[0] not in ("kill", "coordinator_crash", "team_lead_crash") and (
            self.duration is None
        ):
            raise ValueError(f"{given[0]}: expected a duration")
        return self

    @property
    def action(self) -> str:
        return next(name for name in CHAOS_ACTIONS if getattr(self, name) is not None)


# --------------------------------------------------------------------------- the scenario


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
    alerts: Alerts = Field(default_factory=_spec_alerts)
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
        categories = self.topology.categories
        if self.duration <= 0:
            raise ValueError("duration: expected a positive duration")
        if self.warmup >= self.duration:
            raise ValueError("warmup: expected less than duration")
        if self.workload.mix is not None:
            _require_same_keys("workload.mix", self.workload.mix, categories)
        zones = [zone.name for zone in self.topology.zones]
        if self.workload.zone_mix is not None:
            _require_same_keys("workload.zone_mix", self.workload.zone_mix, dict.fromkeys(zones))
        for index, dag in enumerate(self.workload.dags.inline):
            for node in dag.nodes:
                if node.category not in categories:
                    raise ValueError(
                        f"workload.dags.inline[{index}]: node {node.id!r}: unknown category "
                        f"{node.category!r}; expected one of {', '.join(categories)}"
                    )
        for index, release in enumerate(self.workload.dags.jobs):
            if release.at >= self.duration:
                raise ValueError(
                    f"workload.dags.jobs[{index}].at: expected less than duration "
                    f"({self.duration:g} s), got {release.at:g} s"
                )
            if release.zone is not None and release.zone not in zones:
                raise ValueError(
                    f"workload.dags.jobs[{index}].zone: unknown zone {release.zone!r}; "
                    f"expected one of {', '.join(zones)}"
                )
        for field_name in ("by_category", "timeout_by_category"):
            for category in getattr(self.errors, field_name):
                if category not in categories:
                    raise ValueError(
                        f"errors.{field_name}.{category}: unknown category; expected one of "
                        f"{', '.join(categories)}"
                    )
        for category in self.workload.service_by_category:
            if category not in categories:
                raise ValueError(
                    f"workload.service_by_category.{category}: unknown category; expected one "
                    f"of {', '.join(categories)}"
                )
        for index, event in enumerate(self.chaos):
            selector = event.kill or event.slow
            where = f"chaos[{index}].{event.action}"
            if selector is not None:
                if selector.category is not None and selector.category not in categories:
                    raise ValueError(f"{where}.category: unknown category {selector.category!r}")
                if selector.zone is not None and selector.zone not in zones:
                    raise ValueError(f"{where}.zone: unknown zone {selector.zone!r}")
            crashed = event.coordinator_crash
            chiefs = [f"chief-{i + 1}" for i in range(self.topology.control_plane.chiefs)]
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
            if event.error_burst is not None:
                for category in event.error_burst.categories:
                    if category not in categories:
                        raise ValueError(f"{where}.categories: unknown category {category!r}")
                for zone in event.error_burst.zones:
                    if zone not in zones:
                        raise ValueError(f"{where}.zones: unknown zone {zone!r}")
            if event.team_lead_crash is not None:
                leads = [
                    f"{z.name}-T{t + 1:02d}-lead"
                    for z in self.topology.zones
                    for t in range(z.team_leads)
                ]
                if event.team_lead_crash not in leads:
                    example = leads[0] if leads else "none: no zone has team leads"
                    raise ValueError(
                        f"{where}: unknown team lead {event.team_lead_crash!r} (e.g. {example})"
                    )
            named = ["leader", "follower", *chiefs]
            for chief in _chiefs_named(event):
                if chief not in named:
                    raise ValueError(
                        f"{where}.chief: expected one of {', '.join(named)}, got {chief!r}"
                    )
            if event.message_loss is not None:
                for zone in event.message_loss.zones or ():
                    if zone not in zones:
                        raise ValueError(f"{where}.zones: unknown zone {zone!r}")
            if event.latency_spike is not None:
                for zone in event.latency_spike.zones:
                    if zone not in zones:
                        raise ValueError(f"{where}.zones: unknown zone {zone!r}")
        if self.llm is not None:
            self.llm.check_categories(categories)
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
