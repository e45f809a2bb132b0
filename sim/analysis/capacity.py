"""The planner's analytic first guess: offered load per pool, and the fleet it calls for.

A *pool* is a set of interchangeable servers with one queue. With
``queue_limit = 0`` the model keeps one pooled queue per zone and category;
when ``policies.spill_across_zones`` is on, an idle agent also takes work
queued in other zones and a task spills to a free agent elsewhere, so the
zones of one category behave (to a first approximation) like one pool. The
guess therefore pools each category across zones when spilling is on, and
treats every (zone, category) as its own pool when it is off.

Each pool is read as a G/G/c queue: Poisson arrivals (``ca² = 1``) and the
category's service-time CV. Its wait tail is approximated by the M/M/c tail
stretched by the Allen-Cunneen factor ``k = (ca² + cs²)/2``:
``P(Wq > t) ≈ C(c, a)·exp(-(cμ - λ)·t / k)``, whose mean is exactly the
Allen-Cunneen mean wait. The SLO is a p99 over *all* tasks, i.e. a mixture
of the pools: the share of tasks waiting longer than the target is
``Σ_p (λ_p/Λ)·P_p(Wq > t)``. Agents are added one at a time to the pool
where one more agent removes the most of that share (marginal analysis; the
tail is convex in ``c``, so greedy is optimal for the separable sum), which
also gives a nested sequence of fleets: the fleet of N + 1 agents is the
fleet of N plus one agent, which is what the simulation search bisects over.

Arrivals are taken at their *peak* rate (piecewise, diurnal and bursts
included): a static fleet has to hold the worst hour, not the average one.
DAG jobs are read by sampling their generator (categories and work of a few
hundred jobs drawn from a fixed seed): their tasks add to each category's
arrival rate and shift its mean and second moment of work.

A category with an LLM task anatomy (``llm.anatomy``) does not draw the
single work time: its tasks, independent or DAG nodes, are chains of model
calls and tool steps. Its mean and second moment are those of the chain's
nominal time (no throttling) at the planned agent's speed, estimated from
plans drawn with a fixed seed; a provider's limits are not a queue the
Erlang model sees, and are checked apart (:mod:`sim.analysis.llm_capacity`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.analysis.queueing import erlang_b
from sim.policies.dag import Dag
from sim.scenario.schema import Scenario, ServiceTime
from sim.world.dag_shapes import generate_dag
from sim.world.llm_fleet import anatomy_sources, call_latency
from sim.world.streams import Streams
from sim.world.topology import largest_remainder, specialist_template
from sim.world.workload import ServiceDemand, rate_function

#: Jobs sampled from the DAG generator to estimate per-category load (fixed seed).
DAG_SAMPLE = 400

#: Attempt plans drawn per LLM category to estimate its service moments (fixed seed).
ANATOMY_SAMPLE = 4000


class CapacityError(ValueError):
    """The scenario's workload cannot be read as a rate (e.g. a trace without --growth)."""


@dataclass(frozen=True)
class PoolLoad:
    """What one pool is offered: tasks per second, and their service time on a planned agent.

    ``zone`` is None for a category pooled across zones. ``scv`` is the
    squared coefficient of variation of the service time; ``weight`` the
    pool's share of all tasks (its weight in the fleet-wide p99).
    """

    category: str
    zone: str | None
    arrival_rate: float
    mean_service_s: float
    scv: float
    slots: int
    weight: float

    @property
    def offered_agents(self) -> float:
        """Offered load in agents: Erlangs divided by slots per agent."""
        return self.arrival_rate * self.mean_service_s / self.slots

    def min_stable(self) -> int:
        """Fewest agents that keep the pool stable (utilisation below one); 0 without load."""
        if self.arrival_rate <= 0:
            return 0
        return math.floor(self.offered_agents) + 1

    def tail(self, agents: int, target_s: float) -> float:
        """Approximate P(wait > target_s) with *agents* agents (1.0 when unstable)."""
        if self.arrival_rate <= 0:
            return 0.0
        servers = agents * self.slots
        a = self.arrival_rate * self.mean_service_s
        if servers <= a:
            return 1.0
        rho = a / servers
        b = erlang_b(servers, a)
        p_wait = b / (1.0 - rho * (1.0 - b))
        decay = (servers / self.mean_service_s - self.arrival_rate) / _k(self.scv)
        return p_wait * math.exp(-decay * target_s)


def _k(scv: float) -> float:
    # Allen-Cunneen: (ca² + cs²) / 2 with Poisson arrivals (ca² = 1).
    return max((1.0 + scv) / 2.0, 1e-9)


@dataclass(frozen=True)
class Allocation:
    """Agents per pool for one fleet size; ``tail`` is the fleet-wide share waiting too long."""

    agents: dict[tuple[str, str | None], int]
    tail: float

    @property
    def total(self) -> int:
        return sum(self.agents.values())


def service_scv(spec: ServiceTime, demand: ServiceDemand, category: str) -> float:
    """Squared CV of a service distribution (empirical: estimated from a sample)."""
    if spec.dist == "exponential":
        return 1.0
    if spec.dist == "deterministic":
        return 0.0
    if spec.dist in ("lognormal", "gamma"):
        return float(spec.cv) ** 2
    sample = np.asarray([demand.draw(category) for _ in range(20_000)], dtype=float)
    mean = float(sample.mean())
    return float(sample.var() / (mean * mean)) if mean > 0 else 0.0


def _dag_moments(
    scenario: Scenario, demand: ServiceDemand
) -> dict[str, tuple[float, float, float]]:
    """Per category, per job: expected (tasks, work, work squared), from sampled jobs."""
    spec = scenario.workload.dags
    categories = list(scenario.topology.categories)
    out = dict.fromkeys(categories, (0.0, 0.0, 0.0))
    shapes = [s for s, w in spec.shapes.items() if w > 0]
    fixed: list[Dag] = [d.to_dag() for d in spec.inline]
    if spec.files:
        from sim.world.dag_shapes import load_dag_file

        fixed.extend(load_dag_file(path, categories) for path in spec.files)
    if spec.rate_per_min <= 0 or (not shapes and not fixed):
        return out
    mix = scenario.workload.mix or dict(scenario.topology.categories)
    weights = [float(mix[c]) for c in categories]
    total = sum(weights)
    work_mean = (
        sum(w * demand.means[c] for c, w in zip(categories, weights, strict=True)) / total
        if total > 0
        else 40.0
    )
    rng = np.random.default_rng(20240611)
    shape_w = np.asarray([spec.shapes[s] for s in shapes], dtype=float)
    sums = {c: [0.0, 0.0, 0.0] for c in categories}
    for _ in range(DAG_SAMPLE):
        use_file = fixed and (not shapes or rng.random() < spec.file_share)
        if use_file:
            dag = fixed[int(rng.integers(len(fixed)))]
        else:
            shape = shapes[int(rng.choice(len(shapes), p=shape_w / shape_w.sum()))]
            dag = generate_dag(
                shape, spec.size, rng, categories, weights, work_mean, spec.data_mb_mean
            )
        for node in dag.nodes:
            acc = sums[node.category]
            acc[0] += 1.0
            acc[1] += node.work_s
            acc[2] += node.work_s * node.work_s
    return {c: (v[0] / DAG_SAMPLE, v[1] / DAG_SAMPLE, v[2] / DAG_SAMPLE) for c, v in sums.items()}


def peak_rate_per_s(scenario: Scenario) -> float:
    """Peak arrival rate of independent tasks, per second (bursts included)."""
    arrivals = scenario.workload.arrivals
    if arrivals.process == "trace":
        raise CapacityError(
            "workload.arrivals.process: the planner needs a rate, not a trace "
            "(use --growth rate=... to plan for explicit arrival rates)"
        )
    return rate_function(arrivals)[1]


def pool_loads(scenario: Scenario) -> list[PoolLoad]:
    """The offered load of every pool the analytic model sees (see the module docstring)."""
    streams = Streams(scenario.seed)
    demand = ServiceDemand(scenario, streams)
    template = specialist_template(scenario)
    workload = scenario.workload
    categories = list(scenario.topology.categories)
    mix = workload.mix or dict(scenario.topology.categories)
    mix_total = sum(mix.values()) or 1.0
    independent = peak_rate_per_s(scenario)
    peak_factor = independent / max(workload.arrivals.rate_per_min / 60.0, 1e-12)
    dag_rate = workload.dags.rate_per_min / 60.0 * max(peak_factor, 1.0)
    dag = _dag_moments(scenario, demand)

    per_category: dict[str, tuple[float, float, float]] = {}
    for c in categories:
        spec = workload.service_by_category.get(c, workload.service)
        mean = demand.means[c]
        second = mean * mean * (1.0 + service_scv(spec, demand, c))
        lam_ind = independent * mix[c] / mix_total
        n_dag, work_dag, sq_dag = dag[c]
        lam = lam_ind + dag_rate * n_dag
        if lam <= 0:
            per_category[c] = (0.0, mean / template.speed, 1.0)
            continue
        m1 = (lam_ind * mean + dag_rate * work_dag) / lam
        m2 = (lam_ind * second + dag_rate * sq_dag) / lam
        scv = max(m2 / (m1 * m1) - 1.0, 0.0) if m1 > 0 else 0.0
        per_category[c] = (lam, m1 / template.speed, scv)
    for c, (mean_s, scv) in anatomy_moments(scenario, template.speed).items():
        if c in per_category:
            per_category[c] = (per_category[c][0], mean_s, scv)

    zones = [z.name for z in scenario.topology.zones]
    zone_mix = workload.zone_mix or {z.name: z.weight for z in scenario.topology.zones}
    zone_total = sum(zone_mix.values()) or 1.0
    grand = sum(lam for lam, _, _ in per_category.values()) or 1.0
    pooled = scenario.policies.spill_across_zones or len(zones) == 1
    loads: list[PoolLoad] = []
    for c, (lam, mean_s, scv) in per_category.items():
        parts: list[tuple[str | None, float]] = (
            [(None, lam)] if pooled else [(z, lam * zone_mix[z] / zone_total) for z in zones]
        )
        for zone, rate in parts:
            loads.append(PoolLoad(c, zone, rate, mean_s, scv, template.slots, rate / grand))
    return loads


def anatomy_moments(scenario: Scenario, speed: float) -> dict[str, tuple[float, float]]:
    """Mean (s) and SCV of the nominal time of each LLM category's task at *speed*.

    A task's nominal time is its calls' latencies (which no agent speeds up)
    plus its tool steps divided by the agent's speed, as the SimPy shell
    serves it when no call is throttled.
    """
    llm = scenario.llm
    if llm is None:
        return {}
    out = {}
    for category, source in anatomy_sources(llm, Streams(scenario.seed)).items():
        times = np.empty(ANATOMY_SAMPLE)
        for i in range(ANATOMY_SAMPLE):
            plan = source.draw()
            calls = sum(call_latency(source.model, call) for call in plan.calls)
            times[i] = calls + sum(plan.tools_s) / speed
        mean = float(times.mean())
        scv = float(times.var() / (mean * mean)) if mean > 0 else 0.0
        out[category] = (mean, scv)
    return out


def mixture_tail(
    loads: list[PoolLoad], agents: Mapping[tuple[str, str | None], int], t: float
) -> float:
    """Share of all tasks waiting longer than *t* with *agents* per pool."""
    return sum(p.weight * p.tail(agents[(p.category, p.zone)], t) for p in loads)


class Allocator:
    """The nested sequence of analytic fleets: agents are added where they help most.

    ``at(n)`` is the fleet of *n* agents; ``smallest(q, t)`` the first fleet
    whose share of tasks waiting longer than *t* is at most ``1 - q``.
    """

    def __init__(self, loads: list[PoolLoad], target_s: float) -> None:
        self.loads = loads
        self.target_s = target_s
        self._base = {(p.category, p.zone): p.min_stable() for p in loads}
        self._steps: list[tuple[str, str | None]] = []
        self._current = dict(self._base)
        self._tails = {
            (p.category, p.zone): p.tail(self._base[(p.category, p.zone)], target_s) for p in loads
        }

    @property
    def stable_minimum(self) -> int:
        """Fewest agents with every pool stable; fleets below it queue without bound."""
        return sum(self._base.values())

    def _grow(self) -> None:
        best: tuple[str, str | None] | None = None
        best_gain = -1.0
        for p in self.loads:
            key = (p.category, p.zone)
            gain = p.weight * (self._tails[key] - p.tail(self._current[key] + 1, self.target_s))
            if gain > best_gain:
                best, best_gain = key, gain
        assert best is not None
        self._current[best] += 1
        pool = next(p for p in self.loads if (p.category, p.zone) == best)
        self._tails[best] = pool.tail(self._current[best], self.target_s)
        self._steps.append(best)

    def at(self, agents: int) -> Allocation:
        """The fleet of *agents* agents; below the stable minimum, agents follow offered load."""
        if agents < self.stable_minimum:
            keys = [(p.category, p.zone) for p in self.loads]
            seats = largest_remainder(
                agents, {str(i): p.offered_agents for i, p in enumerate(self.loads)}
            )
            counts = {keys[int(i)]: n for i, n in seats.items()}
            return Allocation(counts, mixture_tail(self.loads, counts, self.target_s))
        while len(self._steps) < agents - self.stable_minimum:
            self._grow()
        counts = dict(self._base)
        for key in self._steps[: agents - self.stable_minimum]:
            counts[key] += 1
        return Allocation(counts, mixture_tail(self.loads, counts, self.target_s))

    def smallest(self, quantile: float, limit: int) -> Allocation | None:
        """The smallest fleet meeting the quantile target, or None if none up to *limit*."""
        n = self.stable_minimum
        while n <= limit:
            allocation = self.at(n)
            if allocation.tail <= 1.0 - quantile:
                return allocation
            n += 1
        return None


def per_zone(scenario: Scenario, allocation: Allocation) -> dict[str, dict[str, int]]:
    """Agents per zone and category: pooled categories split over zones by their share of work.

    Each category starts its tie-breaking at a different zone, so the odd
    agents of small categories do not all land in the first zone.
    """
    zones = [z.name for z in scenario.topology.zones]
    zone_mix = scenario.workload.zone_mix or {z.name: z.weight for z in scenario.topology.zones}
    categories = list(scenario.topology.categories)
    out = {z: dict.fromkeys(categories, 0) for z in zones}
    for (category, zone), count in allocation.agents.items():
        if zone is not None:
            out[zone][category] += count
            continue
        shift = categories.index(category) % len(zones)
        order = zones[shift:] + zones[:shift]
        for z, seats in largest_remainder(count, {z: zone_mix[z] for z in order}).items():
            out[z][category] += seats
    return out
