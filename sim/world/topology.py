"""The orchestra's topology, built from a scenario: who exists, where, and how fast.

Scenario: the spec's Phase 3 fleet. Three chief coordinators share a Raft
group in the primary region; four zones, one per region, each with a zone
coordinator, its standby, and team leads over teams of specialists. The
category table is read as shares and the specialists apportioned by largest
remainder, first to zones (by weight) and then to categories within each
zone, so every zone holds its fair slice of every category.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.policies.placement import team_for
from sim.scenario.schema import Scenario


def largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Apportion *total* seats to *weights* by Hamilton's largest-remainder method.

    Ties in the remainder go to the earlier key, so the result is deterministic.
    """
    names = list(weights)
    weight_sum = sum(weights.values())
    if total < 0:
        raise ValueError("cannot apportion a negative total")
    if weight_sum <= 0:
        if total:
            raise ValueError("cannot apportion seats over zero weights")
        return dict.fromkeys(names, 0)
    quotas = {name: total * weights[name] / weight_sum for name in names}
    seats = {name: int(quotas[name]) for name in names}
    left = total - sum(seats.values())
    order = sorted(names, key=lambda n: (-(quotas[n] - seats[n]), names.index(n)))
    for name in order[:left]:
        seats[name] += 1
    return seats


def amdahl_speed(vcpu: float, base_vcpu: float, parallel_fraction: float) -> float:
    """Speed relative to the base size under Amdahl's law (1.0 at base resources)."""
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction * base_vcpu / vcpu)


@dataclass(frozen=True, slots=True)
class SpecialistSpec:
    """One specialist as built: identity, placement and capability."""

    agent_id: str
    category: str
    zone: str
    team: str
    speed: float
    slots: int
    capacity: int
    vcpu: float
    mem_gb: float


@dataclass(frozen=True, slots=True)
class SpecialistTemplate:
    """What every specialist of a scenario shares; speed jitter is drawn per agent."""

    vcpu: float
    mem_gb: float
    speed: float
    slots: int
    capacity: int
    speed_sigma: float

    def build(
        self, agent_id: str, category: str, zone: str, team: str, rng: np.random.Generator
    ) -> SpecialistSpec:
        """One specialist; its speed is the template's times a lognormal factor of mean 1."""
        sigma = self.speed_sigma
        factor = float(rng.lognormal(-sigma * sigma / 2, sigma)) if sigma > 0 else 1.0
        return SpecialistSpec(
            agent_id=agent_id,
            category=category,
            zone=zone,
            team=team,
            speed=self.speed * factor,
            slots=self.slots,
            capacity=self.capacity,
            vcpu=self.vcpu,
            mem_gb=self.mem_gb,
        )


def specialist_template(scenario: Scenario) -> SpecialistTemplate:
    """Resources, speed (Amdahl) and slots of the scenario's specialists."""
    topo = scenario.topology
    res = topo.resources.specialist
    base_vcpu = res.base.vcpu
    vcpu = min(topo.specialist.vcpu or base_vcpu, res.max.vcpu)
    return SpecialistTemplate(
        vcpu=vcpu,
        mem_gb=res.base.mem_gb * vcpu / base_vcpu,
        speed=amdahl_speed(vcpu, base_vcpu, topo.specialist.parallel_fraction),
        slots=topo.specialist.slots,
        capacity=topo.specialist.slots + topo.specialist.queue_limit,
        speed_sigma=float(np.sqrt(np.log1p(topo.specialist.speed_cv**2))),
    )


@dataclass(frozen=True, slots=True)
class CoordinatorSpec:
    """A chief, zone coordinator (or standby) or team lead: coordinates, never serves tasks."""

    agent_id: str
    role: str  # "chief" | "zone_coordinator" | "zone_standby" | "team_lead"
    zone: str | None
    region: str
    vcpu: float
    mem_gb: float


@dataclass(frozen=True)
class World:
    """Everything the topology says, resolved to concrete agents."""

    zones: tuple[str, ...]
    regions: dict[str, str]  # zone -> region
    chief_region: str
    categories: tuple[str, ...]
    specialists: tuple[SpecialistSpec, ...]
    coordinators: tuple[CoordinatorSpec, ...]
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)  # zone -> team ids

    def count(self, zone: str, category: str) -> int:
        return sum(1 for s in self.specialists if s.zone == zone and s.category == category)

    @property
    def total_agents(self) -> int:
        """Agents in the spec's sense: chiefs, zone coordinators, team leads, specialists."""
        counted = [c for c in self.coordinators if c.role != "zone_standby"]
        return len(counted) + len(self.specialists)


def zone_teams(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """Each zone's team ids, one per team lead (``A-T01``, ``A-T02``, ...).

    Both shells read them: the simulator's world, and the live coordinator
    that places the agents its autoscaler starts (``sim.policies.placement.team_for``).
    """
    return {
        z.name: tuple(f"{z.name}-T{t + 1:02d}" for t in range(z.team_leads))
        for z in scenario.topology.zones
    }


def build_world(scenario: Scenario, rng: np.random.Generator) -> World:
    """Resolve the scenario's topology into concrete agents (speed jitter from *rng*)."""
    topo = scenario.topology
    per_zone = _specialists_per_zone(scenario)
    template = specialist_template(scenario)
    zone_categories = _zone_category_counts(scenario, per_zone)
    teams = zone_teams(scenario)
    specialists = _build_specialists(scenario, template, zone_categories, teams, rng)
    return World(
        zones=tuple(zone.name for zone in topo.zones),
        regions={z.name: z.region for z in topo.zones},
        chief_region=topo.control_plane.region,
        categories=tuple(topo.categories),
        specialists=tuple(specialists),
        coordinators=tuple(_build_coordinators(scenario, teams)),
        teams=teams,
    )


def _specialists_per_zone(scenario: Scenario) -> dict[str, int]:
    """Specialists per zone: exact where given (a count or a category table), the rest by weight.

    The weighted zones come first in the result, then the exact ones: the
    order the category apportioning downstream has always seen.
    """
    zones = scenario.topology.zones
    exact = {z.name: z.specialists for z in zones if z.specialists is not None}
    for z in zones:
        if z.categories is not None and z.name not in exact:
            exact[z.name] = sum(z.categories.values())
    free_total = max(0, scenario.specialist_count() - sum(exact.values()))
    free_weights = {z.name: z.weight for z in zones if z.name not in exact}
    per_zone = dict(largest_remainder(free_total, free_weights)) if free_weights else {}
    per_zone.update(exact)
    return per_zone


def _build_specialists(
    scenario: Scenario,
    template: SpecialistTemplate,
    zone_categories: dict[str, dict[str, int]],
    teams: dict[str, tuple[str, ...]],
    rng: np.random.Generator,
) -> list[SpecialistSpec]:
    """Every specialist, zone by zone and category by category, dealt round the zone's teams.

    The order is the order *rng* is drawn in, so it fixes each agent's speed jitter.
    """
    specialists: list[SpecialistSpec] = []
    for z in scenario.topology.zones:
        team_ids = teams[z.name]
        index = 0
        for category in scenario.topology.categories:
            for number in range(1, zone_categories[z.name][category] + 1):
                agent_id = f"{z.name}-{category}-{number:03d}"
                team = team_for(index, team_ids)
                specialists.append(template.build(agent_id, category, z.name, team, rng))
                index += 1
    return specialists


def _build_coordinators(
    scenario: Scenario, teams: dict[str, tuple[str, ...]]
) -> list[CoordinatorSpec]:
    """The chiefs, then per zone its coordinator, its standby (if any) and its team leads."""
    res = scenario.topology.resources
    chief_res = res.coordinator.base
    lead_res = res.team_lead.base
    cp = scenario.topology.control_plane
    coordinators = [
        CoordinatorSpec(
            f"chief-{i + 1}", "chief", None, cp.region, chief_res.vcpu, chief_res.mem_gb
        )
        for i in range(cp.chiefs)
    ]
    for z in scenario.topology.zones:
        roles = [("coord", "zone_coordinator")]
        if z.standby:
            roles.append(("standby", "zone_standby"))
        for suffix, role in roles:
            coordinators.append(
                CoordinatorSpec(
                    f"{z.name}-{suffix}", role, z.name, z.region, chief_res.vcpu, chief_res.mem_gb
                )
            )
        for team in teams[z.name]:
            coordinators.append(
                CoordinatorSpec(
                    f"{team}-lead", "team_lead", z.name, z.region, lead_res.vcpu, lead_res.mem_gb
                )
            )
    return coordinators


def _zone_category_counts(
    scenario: Scenario, per_zone: dict[str, int]
) -> dict[str, dict[str, int]]:
    topo = scenario.topology
    result: dict[str, dict[str, int]] = {}
    automatic = [z for z in topo.zones if z.categories is None]
    for z in topo.zones:
        if z.categories is not None:
            result[z.name] = {c: z.categories.get(c, 0) for c in topo.categories}
    auto_total = sum(per_zone[z.name] for z in automatic)
    fleet = largest_remainder(auto_total, dict(topo.categories))
    remaining = {z.name: per_zone[z.name] for z in automatic}
    counts: dict[str, dict[str, int]] = {
        z.name: dict.fromkeys(topo.categories, 0) for z in automatic
    }
    # Deal each category's agents over the zones, largest category first, always to the zone
    # with the most room left relative to its size: every zone ends with its exact total.
    for category in sorted(
        topo.categories, key=lambda c: (-fleet[c], list(topo.categories).index(c))
    ):
        for _ in range(fleet[category]):
            candidates = [name for name in remaining if remaining[name] > 0]
            if not candidates:
                break
            best = max(
                candidates,
                key=lambda n: (
                    remaining[n] / max(per_zone[n], 1),
                    -counts[n][category],
                    -list(remaining).index(n),
                ),
            )
            counts[best][category] += 1
            remaining[best] -= 1
    result.update(counts)
    return result


def check_staffed(scenario: Scenario, world: World) -> None:
    """Fail in one line when the fleet has no specialists, or work has no agent to go to.

    A category that the task mix sends work to but that has no specialist in
    any zone would only queue: the run would go on for its whole duration and
    report an ever-growing queue, when the scenario is what is wrong. The
    message names the setting to change.
    """
    joining = {e.join.category for e in scenario.chaos if e.join is not None}
    if not world.specialists and not joining:
        raise ValueError(
            "topology.specialists: expected at least one specialist, got 0 (scaling."
            "default_agents leaves none after the coordinators, or topology.specialists is 0)"
        )
    mix = scenario.workload.mix or dict(scenario.topology.categories)
    staffed = {s.category for s in world.specialists} | joining  # (a join staffs it later)
    for category, weight in mix.items():
        if weight > 0 and category not in staffed:
            raise ValueError(
                f"workload.mix.{category}: the mix sends work to {category} but no zone has a"
                f" {category} specialist; give the category agents (topology.categories or a"
                " zone's categories) or weight 0"
            )
