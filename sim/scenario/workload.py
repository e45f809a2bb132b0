"""Scenario sections for what arrives: independent tasks, service times and DAG jobs.

The ``workload:`` block: the arrival process (Poisson, piecewise, diurnal or a
trace, plus bursts), service-time distributions, and DAG jobs generated,
read from files, written inline or released at fixed times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from sim.policies.dag import Dag, DagCycleError, DagEdge, DagNode, validate_dag
from sim.scenario.base import Duration, Strict


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
