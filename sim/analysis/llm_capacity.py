"""Whether a model provider's limit, not the agents, bounds a workload at its peak.

Adding agents raises throughput only while every provider account has room:
at the peak arrival rate each category with an anatomy offers its calls'
requests and tokens per minute to its model's provider, and an account
whose offered load of some dimension reaches its limit caps the fleet's
throughput whatever the number of agents. The planner asks this first and,
when a provider binds, answers with the limit increase it would take
instead of a fleet size: the limit to ask for (rounded up to three
significant figures, a number one can put in a support ticket), the
scenario with every binding limit raised to it (which the planner then
sizes a fleet for), and how many specialists of the capped categories the
current limits can keep busy at the peak — past that, agents add no
throughput, only throttled calls.

``share`` (category -> fraction of its tasks) lets a plan that sheds the
lowest tier ask about the load it keeps (:mod:`sim.analysis.plan_scope`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.analysis.capacity import PoolLoad, pool_loads
from sim.scenario.load import scenario_from_dict
from sim.scenario.schema import Scenario

#: Category -> the share of its tasks a plan carries (1.0: all of them).
Share = Callable[[str], float]

#: Utilisation of a provider limit at which the planner calls it binding: a token
#: bucket, like a server, queues long before 100 % (bursts above the mean are refused).
BINDING_UTILISATION = 0.95

#: How rarely the bucket may run dry at the peak. A small flow is bursty (Poisson tasks,
#: a random number of calls each, tokens spread per call), and its bucket, which holds one
#: minute's limit, runs dry long before 95 %: the deficit of demand over refill is a random
#: walk with drift (limit - offered) and variance sd^2 a minute, reflected at zero, and
#: (as a Brownian motion) exceeds the bucket's L tokens a share exp(-2 (L - O) L / sd^2) of
#: the time. The limit needed keeps that at or below DRY_SHARE. Measured on a 24 calls/min
#: flow (120,000 tokens/min, sd 40,600): at limits of 127,000 and 150,000 the busier seed
#: had 1,382 and 161 refusals in 35 minutes, at 200,000 none; this rule asks 166,000. At
#: the spec's scale the utilisation rule is the larger.
DRY_SHARE = 1e-4

DIMENSIONS = ("requests_per_min", "input_tokens_per_min", "output_tokens_per_min")


@dataclass(frozen=True, slots=True)
class ProviderLoad:
    """One limit of one provider account against the workload's peak offered load."""

    provider: str
    dimension: str  # requests_per_min | input_tokens_per_min | output_tokens_per_min
    offered_per_min: float
    limit_per_min: float
    #: Standard deviation of one minute's offered load at the peak (compound Poisson).
    sd_per_min: float = 0.0

    @property
    def utilisation(self) -> float:
        return self.offered_per_min / self.limit_per_min

    @property
    def binds(self) -> bool:
        return self.needed_per_min > self.limit_per_min

    @property
    def needed_per_min(self) -> float:
        """The least limit that holds the peak: used at most at the binding utilisation, and
        dry at most :data:`DRY_SHARE` of the time (2 (L - O) L = k sd^2, k = ln(1/share))."""
        offered, k = self.offered_per_min, math.log(1.0 / DRY_SHARE)
        bursts = (offered + math.sqrt(offered * offered + 2.0 * k * self.sd_per_min**2)) / 2.0
        return max(offered / BINDING_UTILISATION, bursts)

    @property
    def ask_per_min(self) -> float:
        """The limit to ask for: the needed one rounded up to three significant figures."""
        needed = self.needed_per_min
        if needed <= 0:
            return 0.0
        unit = 10.0 ** (math.floor(math.log10(needed)) - 2)
        return math.ceil(needed / unit) * unit

    @property
    def served_share(self) -> float:
        """The share of the offered load the current limit can serve at the peak (<= 1)."""
        return min(1.0, self.limit_per_min / self.offered_per_min) if self.offered_per_min else 1.0

    def describe(self) -> str:
        return (
            f"provider {self.provider} {self.dimension}: peak offered "
            f"{self.offered_per_min:,.0f}/min (sd {self.sd_per_min:,.0f} a minute) against a "
            f"limit of {self.limit_per_min:,.0f} ({self.utilisation:.0%}); raise it to at least "
            f"{self.ask_per_min:,.0f}/min (x{self.ask_per_min / self.limit_per_min:.2f})"
        )


def provider_loads(
    scenario: Scenario, share: Share | None = None, pools: Sequence[PoolLoad] | None = None
) -> list[ProviderLoad]:
    """Every limited dimension of every provider, with the peak load the workload offers it."""
    llm = scenario.llm
    if llm is None:
        return []
    offered: dict[tuple[str, str], float] = {}
    variance: dict[tuple[str, str], float] = {}
    rate_per_s: dict[str, float] = {}
    for pool in pools if pools is not None else pool_loads(scenario):  # peak, DAG nodes too
        kept = pool.arrival_rate * (share(pool.category) if share is not None else 1.0)
        rate_per_s[pool.category] = rate_per_s.get(pool.category, 0.0) + kept
    for category, anatomy in llm.anatomy.items():
        model = llm.models[llm.categories[category]]
        tasks_per_min = 60.0 * rate_per_s.get(category, 0.0)
        calls = anatomy.calls  # per task: 1 + Poisson(calls - 1)
        calls_sq = (calls - 1.0) + calls * calls  # E[K^2]
        inputs = min(anatomy.input_tokens.mean, model.context_tokens)
        draws = (
            (1.0, 0.0),
            (inputs, anatomy.input_tokens.cv),
            (anatomy.output_tokens.mean, anatomy.output_tokens.cv),
        )
        for dimension, (mean, cv) in zip(DIMENSIONS, draws, strict=True):
            key = (model.provider, dimension)
            offered[key] = offered.get(key, 0.0) + tasks_per_min * calls * mean
            # A minute's demand is compound Poisson: Var = rate x E[(sum of K draws)^2].
            second = calls * (mean * cv) ** 2 + calls_sq * mean * mean
            variance[key] = variance.get(key, 0.0) + tasks_per_min * second
    loads = []
    for name, provider in llm.providers.items():
        for dimension in DIMENSIONS:
            limit = getattr(provider, dimension)
            if limit is not None:
                key = (name, dimension)
                sd = math.sqrt(variance.get(key, 0.0))
                loads.append(ProviderLoad(name, dimension, offered.get(key, 0.0), limit, sd))
    return loads


def binding_provider(scenario: Scenario, share: Share | None = None) -> ProviderLoad | None:
    """The most utilised provider limit if it binds at the peak, else None."""
    loads = binding_loads(scenario, share)
    return loads[0] if loads else None


def binding_loads(scenario: Scenario, share: Share | None = None) -> list[ProviderLoad]:
    """Every provider limit that binds at the peak, the most utilised first."""
    loads = [load for load in provider_loads(scenario, share) if load.binds]
    return sorted(loads, key=lambda load: -load.utilisation)


def raised_limits(scenario: Scenario, loads: Sequence[ProviderLoad]) -> Scenario:
    """*scenario* with each of *loads*' limits raised to what the plan asks for."""
    document = scenario.model_dump(mode="json", by_alias=True)
    for load in loads:
        document["llm"]["providers"][load.provider][load.dimension] = load.ask_per_min
    return scenario_from_dict(document, scenario.name)


@dataclass(frozen=True, slots=True)
class AgentCap:
    """How many specialists of a binding provider's categories its limit keeps busy at the peak."""

    provider: str
    categories: tuple[str, ...]
    busy_at_limit: float  # specialists busy when the provider serves what its limit allows
    busy_if_unlimited: float  # ... and when it serves the whole peak load

    def describe(self) -> str:
        return (
            f"at the current limit, {self.provider}'s categories ({', '.join(self.categories)}) "
            f"keep about {self.busy_at_limit:.0f} specialists busy at the peak (the peak load "
            f"would need {self.busy_if_unlimited:.0f}): past that, more of them add throttled "
            "calls, not throughput"
        )


def agent_caps(
    scenario: Scenario, loads: Sequence[ProviderLoad], pools: Sequence[PoolLoad], share: Share
) -> list[AgentCap]:
    """Per binding provider: the specialists its limit keeps busy (offered agents, capped)."""
    llm = scenario.llm
    if llm is None:
        return []
    caps = []
    for provider in dict.fromkeys(load.provider for load in loads):
        served = min(load.served_share for load in loads if load.provider == provider)
        categories = tuple(
            c for c in llm.anatomy if llm.models[llm.categories[c]].provider == provider
        )
        busy = sum(p.offered_agents * share(p.category) for p in pools if p.category in categories)
        caps.append(AgentCap(provider, categories, busy * served, busy))
    return caps
