"""Scenario sections for who is in the orchestra and where: roles, zones, resources.

The spec's sections 2, 3 and 4 as a YAML block: the Raft control plane, the
zones and their regions, specialist categories and the vertical-scaling
table. Kept apart so a reader of ``topology:`` reads one module.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import Duration, Strict

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
