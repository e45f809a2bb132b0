"""The capacity planner: the smallest static fleet that meets the SLO with 95 % confidence.

Two steps. Queueing theory first (:mod:`sim.analysis.capacity`): the offered
load of every category (and zone, when work does not spill across zones)
gives, by Erlang C stretched with Allen-Cunneen, a nested sequence of fleets
— the fleet of N + 1 specialists is the fleet of N plus the one agent that
helps the fleet-wide p99 most — and the smallest of them that meets the p99
target on paper. Then the simulator decides: it bisects on N along that
sequence, starting at the analytic answer, and judges each candidate by
successive halving over replications — two replications first; a candidate
whose one-sided 95 % interval of the replicate p99 lies clearly on one side
of the target is decided at once, one straddling it gets twice as many
replications, up to a cap. A candidate *meets* the SLO when the upper
one-sided 95 % t-bound of its replicate p99 wait (and of its error rate,
and its p99 latency if that is a target) is at or below the target; at the
cap an undecided candidate does not meet it.

The fleet is static while planning: autoscaling is switched off (the
question is how many agents to run, not how an autoscaler would move them);
the scenario's chaos, if any, stays in, so a plan can be made under failures.
Every candidate is simulated with replications 0, 1, ... of the same scenario
seed, so all fleet sizes see the same arrivals and demands (common random
numbers), which keeps the bisection's comparisons sharp. The search assumes
that more agents never hurt the p99, which holds for a fleet grown along the
analytic sequence up to simulation noise.

The reserve pool is sized by a rule rather than simulated: enough agents to
replace every specialist down at once with probability 0.999 under the
scenario's random-failure rates (``chaos_random``: MTBF and MTTR per agent;
plus the largest zone when zones fail too), capped by the schema's 50 and by
the room left under ``scaling.max_agents``.

With ``tiers``, the p99 wait is judged on the top tier alone (the scenario's
``slo`` names no tier, and shedding exists to keep the top tier's promise:
the lower tiers are shed, by design, before the top one waits); the error
rate stays fleet-wide, and the plan says how many tasks were shed at the
planned size. Cost is the summary's, so it is billed as ``purchase`` says
(billing unit and minimum, spot share at its discount) by the same
:func:`sim.metrics.cost.cost_split` every run uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.analysis.capacity import Allocator, pool_loads
from sim.analysis.capacity import per_zone as split_zones
from sim.analysis.llm_capacity import binding_provider
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget
from sim.metrics.summary import combine_replications, t_quantile
from sim.scenario.load import load_scenario, scenario_from_dict, short_run_warmup
from sim.scenario.schema import Scenario

#: Roadmap phases, in the order the growth plan lists them.
PHASE_GLOB = "phase_3_*.yaml"

Verdict = Literal["meets", "misses", "unstable"]
Fleet = dict[str, dict[str, int]]  # zone -> category -> specialists


@dataclass(frozen=True)
class PlanOptions:
    """How hard the planner looks: simulated time, replications, and the agent ceiling."""

    duration_s: float = 3 * 3600.0
    warmup_s: float | None = None
    max_agents: int | None = None
    min_replications: int = 2
    max_replications: int = 8


@dataclass(frozen=True)
class Bound:
    """Mean of a per-replication figure and its one-sided 95 % t-bounds."""

    mean: float
    lower: float
    upper: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Bound:
        x = np.asarray(values, dtype=float)
        if len(x) == 0 or not np.all(np.isfinite(x)):
            return cls(math.inf, math.inf, math.inf)
        mean = float(x.mean())
        if len(x) < 2:
            return cls(mean, -math.inf, math.inf)
        half = t_quantile(len(x) - 1, 0.95) * float(x.std(ddof=1)) / math.sqrt(len(x))
        return cls(mean, mean - half, mean + half)


@dataclass(frozen=True)
class Trial:
    """One candidate fleet size and the simulator's verdict on it."""

    specialists: int
    verdict: Verdict
    replications: int
    p99_wait: Bound | None = None
    summary: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def meets(self) -> bool:
        return self.verdict == "meets"


@dataclass(frozen=True)
class PhasePlan:
    """The plan for one phase (one workload): analytic guess, simulated answer, evidence."""

    label: str
    scenario: str
    arrival_per_min: float
    tasks_per_min: float
    control_agents: int
    max_specialists: int
    target: SloTarget
    analytic: Fleet | None
    simulated: Fleet | None
    reserve: int
    reserve_note: str
    trials: tuple[Trial, ...]
    runs: int
    #: What bounds the fleet: "agents" (the search sized it), or "provider" when a model
    #: provider's limit binds at the peak — then no number of agents helps, and
    #: ``binding_note`` says which limit to raise and by how much.
    binding: str = "agents"
    binding_note: str = ""
    #: The tier whose p99 wait the SLO was judged on (None: all tasks; see the module docstring).
    slo_tier: str | None = None

    @property
    def feasible(self) -> bool:
        return self.simulated is not None

    @property
    def analytic_total(self) -> int | None:
        return None if self.analytic is None else _total(self.analytic)

    @property
    def simulated_total(self) -> int | None:
        return None if self.simulated is None else _total(self.simulated)

    @property
    def planned(self) -> Trial | None:
        """The trial of the planned fleet (None when no fleet within max_agents meets the SLO)."""
        total = self.simulated_total
        return next((t for t in self.trials if t.specialists == total), None)

    @property
    def one_fewer(self) -> Trial | None:
        """The evidence that one agent fewer (along the sequence) does not meet the SLO."""
        total = self.simulated_total
        if total is None:
            return None
        return next((t for t in self.trials if t.specialists == total - 1), None)


def _total(fleet: Fleet) -> int:
    return sum(sum(cats.values()) for cats in fleet.values())


def by_category(fleet: Fleet) -> dict[str, int]:
    """Agents per category, summed over zones."""
    out: dict[str, int] = {}
    for cats in fleet.values():
        for category, count in cats.items():
            out[category] = out.get(category, 0) + count
    return out


# --------------------------------------------------------------------------- scenarios


def prepared(scenario: Scenario, target: SloTarget, options: PlanOptions) -> Scenario:
    """The scenario as planned: the SLO applied, autoscaling off, the planning duration."""
    if options.warmup_s is None:
        warmup = short_run_warmup(options.duration_s, scenario.warmup, scenario.name)
    else:
        warmup = options.warmup_s
    if warmup >= options.duration_s:
        raise ValueError(
            f"--warmup: expected shorter than the duration ({options.duration_s:g} s), "
            f"got {warmup:g} s"
        )
    document = target.apply(scenario).model_dump(mode="json", by_alias=True)
    document["duration"] = options.duration_s
    document["warmup"] = warmup
    document["variants"] = {}
    document["scaling"]["auto_scale"]["enabled"] = False
    return scenario_from_dict(document, scenario.name)


def fleet_scenario(base: Scenario, fleet: Fleet) -> Scenario:
    """*base* with exactly *fleet* specialists per zone and category, and agent bounds to match."""
    document = base.model_dump(mode="json", by_alias=True)
    total = _total(fleet)
    for zone in document["topology"]["zones"]:
        counts = fleet[zone["name"]]
        zone["categories"] = dict(counts)
        zone["specialists"] = sum(counts.values())
    document["topology"]["specialists"] = total
    scaling = document["scaling"]
    agents = base.control_agents() + total
    scaling["default_agents"] = agents
    scaling["min_agents"] = min(scaling["min_agents"], agents)
    scaling["max_agents"] = max(scaling["max_agents"], agents)
    return scenario_from_dict(document, base.name)


def autoscaled_scenario(
    scenario: Scenario, target: SloTarget, options: PlanOptions, plan: PhasePlan
) -> Scenario:
    """The planned fleet with the autoscaler on: the starting point for tuning thresholds.

    The fleet starts at the plan and may grow into the planned reserve (or
    shrink towards ``scaling.min_agents``) as the scenario's scaling policy
    decides; what the thresholds are worth is what that saves without losing
    the SLO.
    """
    if plan.simulated is None:
        raise ValueError(f"{plan.label}: no fleet was planned, so there is nothing to autoscale")
    fleet = fleet_scenario(prepared(scenario, target, options), plan.simulated)
    document = fleet.model_dump(mode="json", by_alias=True)
    document["scaling"]["auto_scale"]["enabled"] = True
    document["topology"]["reserve_pool"] = plan.reserve
    document["scaling"]["max_agents"] = (
        fleet.control_agents() + _total(plan.simulated) + plan.reserve
    )
    return scenario_from_dict(document, scenario.name)


def growth_scenarios(
    path: Path, overrides: Sequence[str], growth: str | None
) -> list[tuple[str, Scenario]]:
    """The workloads to plan for: the scenario itself, the roadmap phases, or explicit rates.

    ``phases`` reads the roadmap's ``phase_3_*.yaml`` files beside the
    scenario (50, 100, 150, 200 and 250 agents' worth of work), each with the
    same ``--set`` overrides. ``rate=a,b,c`` plans the scenario at each
    independent-task arrival rate (per minute), scaling DAG-job arrivals and
    any piecewise rates by the same factor so the mix stays as written.
    """
    base = load_scenario(path, overrides)
    if growth is None:
        return [(base.name, base)]
    if growth == "phases":
        files = sorted(path.parent.glob(PHASE_GLOB))
        if not files:
            raise ValueError(f"--growth phases: expected {PHASE_GLOB} files beside {path}")
        return [(load_scenario(f, overrides).name, load_scenario(f, overrides)) for f in files]
    key, sep, values = growth.partition("=")
    if key.strip() != "rate" or not sep:
        raise ValueError(f"--growth: expected 'phases' or 'rate=a,b,c', got {growth!r}")
    try:
        rates = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--growth: expected numbers per minute, got {values!r}") from None
    if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
        raise ValueError(f"--growth: expected positive arrival rates per minute, got {values!r}")
    return [(f"{base.name}@{r:g}/min", at_rate(base, r)) for r in rates]


def at_rate(scenario: Scenario, rate_per_min: float) -> Scenario:
    """*scenario* with independent tasks arriving at *rate_per_min* and everything else scaled."""
    arrivals = scenario.workload.arrivals
    if arrivals.process == "trace":
        raise ValueError("--growth rate: a trace has no rate to scale")
    factor = rate_per_min / arrivals.rate_per_min if arrivals.rate_per_min > 0 else 1.0
    document = scenario.model_dump(mode="json", by_alias=True)
    workload = document["workload"]
    workload["arrivals"]["rate_per_min"] = rate_per_min
    for point in workload["arrivals"]["piecewise"]:
        point["rate_per_min"] *= factor
    workload["dags"]["rate_per_min"] *= factor
    document["name"] = f"{scenario.name}@{rate_per_min:g}"
    return scenario_from_dict(document, scenario.name)


def slo_tier(scenario: Scenario) -> str | None:
    """The tier the SLO's p99 wait is judged on: the top tier with tiers on, else None (all)."""
    return scenario.tiers.levels[0].name if scenario.tiers is not None else None


def judged_p99_wait(summary: dict[str, Any], tier: str | None) -> float:
    """The p99 wait the SLO is judged on: *tier*'s (NaN if it served nothing), else all tasks'."""
    if tier is None:
        return float(summary["wait_s"]["p99"])
    rows = summary.get("tiers", {}).get("by_tier", [])
    row = next((r for r in rows if r["tier"] == tier), None)
    return math.nan if row is None else float(row["wait_s"]["p99"])


# --------------------------------------------------------------------------- reserve


def reserve_for(scenario: Scenario, fleet: Fleet, room: int) -> tuple[int, str]:
    """Reserve agents by the failure rule of the module docstring, and why that many."""
    chaos = scenario.chaos_random
    n = _total(fleet)
    down = n * chaos.agent_mttr / (chaos.agent_mtbf + chaos.agent_mttr)
    size = _poisson_quantile(down, 0.999)
    note = f"replaces agents down at once (p=0.999, MTBF {chaos.agent_mtbf / 86400:g} d)"
    if chaos.zone_mtbf is not None:
        size += max(sum(cats.values()) for cats in fleet.values())
        note += " + the largest zone"
    cap = min(50, max(room, 0))
    if size > cap:
        note += f"; capped at {cap} ({'the schema limit' if cap == 50 else 'max_agents'})"
        size = cap
    return size, note


def _poisson_quantile(mean: float, q: float) -> int:
    k, term = 0, math.exp(-mean)
    cumulative = term
    while cumulative < q:
        k += 1
        term *= mean / k
        cumulative += term
    return k


# --------------------------------------------------------------------------- the search


class Planner:
    """Plans one workload: analytic sequence of fleets, then the simulated bisection."""

    def __init__(
        self, scenario: Scenario, target: SloTarget, options: PlanOptions, replicas: Replicas
    ) -> None:
        self.options = options
        self.target = target
        self.replicas = replicas
        self.base = prepared(scenario, target, options)
        self.loads = pool_loads(self.base)
        self.allocator = Allocator(self.loads, target.p99_wait_s)
        ceiling = options.max_agents or scenario.scaling.max_agents
        self.max_specialists = ceiling - self.base.control_agents()
        self.slo_tier = slo_tier(self.base)
        self._trials: dict[int, Trial] = {}

    def fleet(self, specialists: int) -> Fleet:
        """The analytic sequence's fleet of *specialists* agents, per zone and category."""
        return split_zones(self.base, self.allocator.at(specialists))

    def judge(self, specialists: int) -> Trial:
        """Simulate the fleet of *specialists* agents by successive halving over replications."""
        if specialists in self._trials:
            return self._trials[specialists]
        if specialists < self.allocator.stable_minimum:
            trial = Trial(specialists, "unstable", 0)
            self._trials[specialists] = trial
            return trial
        scenario = fleet_scenario(self.base, self.fleet(specialists))
        opts = self.options
        reps = max(2, opts.min_replications)
        summaries = self.replicas.summaries(scenario, range(reps))
        while True:
            verdict = self._verdict(summaries)
            if verdict is not None or len(summaries) >= opts.max_replications:
                break
            more = min(2 * len(summaries), opts.max_replications)
            summaries += self.replicas.summaries(scenario, range(len(summaries), more))
        trial = Trial(
            specialists,
            verdict or "misses",
            len(summaries),
            Bound.of([judged_p99_wait(s, self.slo_tier) for s in summaries]),
            combine_replications(summaries),
        )
        self._trials[specialists] = trial
        return trial

    def _verdict(self, summaries: list[dict[str, Any]]) -> Verdict | None:
        """Meets / misses when decided at 95 % confidence, None while the interval straddles."""
        if any(s["tasks"]["lost"] for s in summaries):
            return "misses"
        checks = [
            (
                Bound.of([judged_p99_wait(s, self.slo_tier) for s in summaries]),
                self.target.p99_wait_s,
            ),
            (Bound.of([s["error_rate"] for s in summaries]), self.target.error_rate),
        ]
        if self.target.p99_latency_s is not None:
            latency = Bound.of([s["latency_s"]["p99"] for s in summaries])
            checks.append((latency, self.target.p99_latency_s))
        if any(bound.lower > goal for bound, goal in checks):
            return "misses"
        if all(bound.upper <= goal for bound, goal in checks):
            return "meets"
        return None

    def plan(self, label: str) -> PhasePlan:
        limit = self.max_specialists
        smallest = self.allocator.smallest(0.99, limit) if limit > 0 else None
        analytic = split_zones(self.base, smallest) if smallest is not None else None
        runs_before = self.replicas.runs
        provider = binding_provider(self.base)
        if provider is not None:
            # More agents cannot raise throughput past a provider's limit: stop, and say
            # which limit to raise instead of simulating fleets that cannot meet the SLO.
            planned = None
        else:
            planned = self._search(limit, smallest.total if smallest is not None else limit)
        simulated = self.fleet(planned) if planned is not None else None
        room = limit - (planned or 0)
        reserve, note = reserve_for(self.base, simulated, room) if simulated else (0, "—")
        arrivals = self.base.workload.arrivals
        return PhasePlan(
            label=label,
            scenario=self.base.name,
            arrival_per_min=arrivals.rate_per_min,
            tasks_per_min=60.0 * sum(p.arrival_rate for p in self.loads),
            control_agents=self.base.control_agents(),
            max_specialists=limit,
            target=self.target,
            analytic=analytic,
            simulated=simulated,
            reserve=reserve,
            reserve_note=note,
            trials=tuple(sorted(self._trials.values(), key=lambda t: t.specialists)),
            runs=self.replicas.runs - runs_before,
            binding="provider" if provider is not None else "agents",
            binding_note=provider.describe() if provider is not None else "",
            slo_tier=self.slo_tier,
        )

    def _search(self, limit: int, guess: int) -> int | None:
        """Smallest meeting size along the sequence within *limit*, or None (bisection)."""
        floor = self.allocator.stable_minimum
        if limit < max(floor, 1):
            return None
        start = min(max(guess, floor, 1), limit)
        if self.judge(start).meets:
            low, high = max(floor, 1) - 1, start
        else:
            low, step = start, max(1, math.ceil(0.05 * start))
            while True:
                candidate = min(limit, low + step)
                if candidate == low:
                    return None
                if self.judge(candidate).meets:
                    high = candidate
                    break
                low, step = candidate, 2 * step
        while high - low > 1:
            middle = (low + high) // 2
            if self.judge(middle).meets:
                high = middle
            else:
                low = middle
        if low >= 1:
            self.judge(low)  # the evidence for "one fewer does not"
        return high


def plan_growth(
    phases: Sequence[tuple[str, Scenario]],
    target: SloTarget | None,
    options: PlanOptions,
    replicas: Replicas,
) -> list[PhasePlan]:
    """Plan every phase in turn (each with its own SLO unless *target* overrides them)."""
    return [
        Planner(scenario, target or SloTarget.of(scenario), options, replicas).plan(label)
        for label, scenario in phases
    ]
