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

The reserve pool is sized by a rule rather than simulated
(:func:`sim.analysis.plan_inputs.reserve_for`).

**The binding constraint.** Agents help only while agents are what is
short. Before simulating, the planner asks whether a model provider's limit
binds at the peak (:mod:`sim.analysis.llm_capacity`); if one does, no number
of agents meets the SLO, so it adds none: the answer is the limit increase
to ask for, how many specialists of the capped categories the current limit
keeps busy, and the fleet planned with the limits raised (a plan of its own,
``raised``). While growing, a candidate that misses and shows a saturated
coordinator or a provider refusing calls (:mod:`sim.analysis.plan_binding`)
stops the growth the same way. ``binding`` says which: ``agents``,
``coordinator`` or ``provider``.

**Tiers.** With tiers whose admission can shed, the plan is judged on every
tier (sheds count as errors), and a second plan (``shed_plan``) finds the
smaller fleet that keeps the SLO for the tiers above the lowest while the
lowest is shed as admission decides; both say each tier's shed share
(:mod:`sim.analysis.plan_scope`). Cost is the summary's, so it is billed as
``purchase`` says (billing unit and minimum, spot share at its discount) by
the same :func:`sim.metrics.cost.cost_split` every run uses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sim.analysis.capacity import Allocator, PoolLoad, pool_loads
from sim.analysis.capacity import per_zone as split_zones
from sim.analysis.llm_capacity import AgentCap, agent_caps, binding_loads, raised_limits
from sim.analysis.plan_binding import Saturation, saturation
from sim.analysis.plan_inputs import Fleet, fleet_total, reserve_for
from sim.analysis.plan_scope import Scope, scopes, shed_shares
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget
from sim.metrics.replications import combine_replications, t_quantile
from sim.scenario.load import scenario_from_dict, short_run_warmup
from sim.scenario.schema import Scenario

Verdict = Literal["meets", "misses", "unstable"]
Binding = Literal["agents", "coordinator", "provider", "tenant_budget"]


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
    #: What bounds the fleet: "agents" (the search sized it), "provider" when a model
    #: provider's limit binds (at the peak, or in a candidate's runs), "coordinator" when a
    #: candidate saturated one, "tenant_budget" when tenants' token budgets shed more of the
    #: promised tiers than the error rate allows; then no number of agents helps, and
    #: ``binding_note`` says which limit to raise and by how much, or what saturated.
    binding: Binding = "agents"
    binding_note: str = ""
    #: What the SLO was judged on (all tasks, every tier, or the tiers above a shed one).
    scope: Scope = field(default_factory=Scope)
    #: With a provider binding: its categories' specialists the current limit keeps busy.
    agent_caps: tuple[AgentCap, ...] = ()
    #: With a provider binding: the plan with the binding limits raised to the ask.
    raised: PhasePlan | None = None
    #: With tiers that can shed: the smaller plan that sheds the lowest tier.
    shed_plan: PhasePlan | None = None

    @property
    def feasible(self) -> bool:
        return self.simulated is not None

    @property
    def analytic_total(self) -> int | None:
        return None if self.analytic is None else fleet_total(self.analytic)

    @property
    def simulated_total(self) -> int | None:
        return None if self.simulated is None else fleet_total(self.simulated)

    @property
    def shed_share(self) -> dict[str, float]:
        """Each tier's shed share at the planned size (mean over its replications)."""
        trial = self.planned
        if trial is None:
            return {}
        runs = [shed_shares(s) for s in trial.summary.get("per_replication", [trial.summary])]
        tiers = list(dict.fromkeys(t for run in runs for t in run))
        return {t: sum(run.get(t, 0.0) for run in runs) / len(runs) for t in tiers}

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


def by_category(fleet: Fleet) -> dict[str, int]:
    """Agents per category, summed over zones."""
    out: dict[str, int] = {}
    for cats in fleet.values():
        for category, count in cats.items():
            out[category] = out.get(category, 0) + count
    return out


# --------------------------------------------------------------------------- scenarios


def prepared(scenario: Scenario, target: SloTarget, options: PlanOptions) -> Scenario:
    """The scenario as planned: the SLO applied, autoscaling off, the planning duration.

    A diurnal day is shifted so its peak falls in the middle of the measured
    window (the fleet is static, so the peak hour is the one it must hold).
    """
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
    arrivals = document["workload"]["arrivals"]
    if arrivals["process"] == "diurnal":
        # The analytic guess sizes for the peak; the simulated window must hold it too,
        # not the small hours a run from midnight starts in: the peak mid-window.
        arrivals["diurnal"]["peak_at"] = warmup + (options.duration_s - warmup) / 2.0
    return scenario_from_dict(document, scenario.name)


def fleet_scenario(base: Scenario, fleet: Fleet) -> Scenario:
    """*base* with exactly *fleet* specialists per zone and category, and agent bounds to match."""
    document = base.model_dump(mode="json", by_alias=True)
    total = fleet_total(fleet)
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
        fleet.control_agents() + fleet_total(plan.simulated) + plan.reserve
    )
    return scenario_from_dict(document, scenario.name)


# --------------------------------------------------------------------------- the search


class Planner:
    """Plans one workload in one scope: the analytic sequence, then the simulated bisection."""

    def __init__(
        self,
        scenario: Scenario,
        target: SloTarget,
        options: PlanOptions,
        replicas: Replicas,
        scope: Scope | None = None,
    ) -> None:
        self.scenario = scenario
        self.options = options
        self.target = target
        self.replicas = replicas
        self.base = prepared(scenario, target, options)
        self.scope = scope if scope is not None else scopes(self.base)[0]
        self.loads = _scoped(pool_loads(self.base), self._share)
        self.allocator = Allocator(self.loads, target.p99_wait_s)
        ceiling = options.max_agents or scenario.scaling.max_agents
        self.max_specialists = ceiling - self.base.control_agents()
        self._trials: dict[int, Trial] = {}
        self._saturated: Saturation | None = None

    def _share(self, category: str) -> float:
        return self.scope.load_share(self.base, category)

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
            Bound.of([self.scope.p99_wait(s) for s in summaries]),
            combine_replications(summaries),
        )
        if not trial.meets and self._saturated is None:
            judged = self.scope.tiers if self.scope.counts_sheds else None
            self._saturated = saturation(summaries, specialists, judged)
        self._trials[specialists] = trial
        return trial

    def _verdict(self, summaries: list[dict[str, Any]]) -> Verdict | None:
        """Meets / misses when decided at 95 % confidence, None while the interval straddles."""
        if any(s["tasks"]["lost"] for s in summaries):
            return "misses"
        scope, target = self.scope, self.target
        checks = [
            (Bound.of([scope.p99_wait(s) for s in summaries]), target.p99_wait_s),
            (Bound.of([s["error_rate"] for s in summaries]), target.error_rate),
        ]
        if scope.counts_sheds:  # a shed task of a tier the plan promises is one not served
            checks.append((Bound.of([scope.shed_share(s) for s in summaries]), target.error_rate))
        if target.p99_latency_s is not None:
            latency = Bound.of([s["latency_s"]["p99"] for s in summaries])
            checks.append((latency, target.p99_latency_s))
        if any(bound.lower > goal for bound, goal in checks):
            return "misses"
        if all(bound.upper <= goal for bound, goal in checks):
            return "meets"
        return None

    def plan(self, label: str) -> PhasePlan:
        """The plan in this scope, with the shed-the-lowest alternative when tiers can shed."""
        main = self._plan(label)
        _, shed_scope = scopes(self.base)
        if self.scope.shed_free is not None or shed_scope is None:
            return main
        # Shedding can only make the fleet smaller: search at or below the first plan's size.
        ceiling = main.simulated_total
        options = self.options
        if ceiling is not None:
            ceiling_agents = ceiling + self.base.control_agents()
            options = dataclasses.replace(options, max_agents=ceiling_agents)
        planner = Planner(self.scenario, self.target, options, self.replicas, shed_scope)
        return dataclasses.replace(main, shed_plan=planner.plan(label))

    def _plan(self, label: str) -> PhasePlan:
        limit = self.max_specialists
        smallest = self.allocator.smallest(0.99, limit) if limit > 0 else None
        analytic = split_zones(self.base, smallest) if smallest is not None else None
        runs_before = self.replicas.runs
        bound = binding_loads(self.base, self._share)
        binding: Binding = "agents"
        note, planned = "", None
        raised: PhasePlan | None = None
        caps: tuple[AgentCap, ...] = ()
        if bound:
            # More agents cannot raise throughput past a provider's limit: add none; answer
            # with the limits to ask for, and plan the fleet for when they are granted.
            binding, note = "provider", "; ".join(load.describe() for load in bound)
            caps = tuple(agent_caps(self.base, bound, self.loads, self._share))
            lifted = raised_limits(self.scenario, bound)
            planner = Planner(lifted, self.target, self.options, self.replicas, self.scope)
            raised = planner._plan(f"{label} @ raised limits")
        else:
            planned = self._search(limit, smallest.total if smallest is not None else limit)
            if planned is None and self._saturated is not None:
                binding, note = self._saturated.kind, self._saturated.note
        simulated = self.fleet(planned) if planned is not None else None
        room = limit - (planned or 0)
        reserve, reserve_note = reserve_for(self.base, simulated, room) if simulated else (0, "—")
        return PhasePlan(
            label=label,
            scenario=self.base.name,
            arrival_per_min=self.base.workload.arrivals.rate_per_min,
            tasks_per_min=60.0 * sum(p.arrival_rate for p in self.loads),
            control_agents=self.base.control_agents(),
            max_specialists=limit,
            target=self.target,
            analytic=analytic,
            simulated=simulated,
            reserve=reserve,
            reserve_note=reserve_note,
            trials=tuple(sorted(self._trials.values(), key=lambda t: t.specialists)),
            runs=self.replicas.runs - runs_before,
            binding=binding,
            binding_note=note,
            scope=self.scope,
            agent_caps=caps,
            raised=raised,
        )

    def _search(self, limit: int, guess: int) -> int | None:
        """Smallest meeting size along the sequence within *limit*, or None (bisection).

        Growing stops early, with None, when a missing candidate saturated a
        coordinator or a provider (``self._saturated``): more agents cannot help.
        """
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
                if candidate == low or self._saturated is not None:
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


def _scoped(loads: list[PoolLoad], share: Callable[[str], float]) -> list[PoolLoad]:
    """*loads* with each category's arrival rate cut to the scope's share (weights renewed)."""
    kept = [dataclasses.replace(p, arrival_rate=p.arrival_rate * share(p.category)) for p in loads]
    total = sum(p.arrival_rate for p in kept) or 1.0
    return [dataclasses.replace(p, weight=p.arrival_rate / total) for p in kept]


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
