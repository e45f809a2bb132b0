"""Whether a model provider's limit, not the agents, bounds a workload at its peak.

Adding agents raises throughput only while every provider account has room:
at the peak arrival rate each category with an anatomy offers its calls'
requests and tokens per minute to its model's provider, and an account
whose offered load of some dimension reaches its limit caps the fleet's
throughput whatever the number of agents. The planner asks this first and,
when a provider binds, answers with the limit increase it would take
instead of a fleet size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.analysis.capacity import pool_loads
from sim.scenario.schema import Scenario

#: Utilisation of a provider limit at which the planner calls it binding: a token
#: bucket, like a server, queues long before 100 % (bursts above the mean are refused).
BINDING_UTILISATION = 0.95

DIMENSIONS = ("requests_per_min", "input_tokens_per_min", "output_tokens_per_min")


@dataclass(frozen=True, slots=True)
class ProviderLoad:
    """One limit of one provider account against the workload's peak offered load."""

    provider: str
    dimension: str  # requests_per_min | input_tokens_per_min | output_tokens_per_min
    offered_per_min: float
    limit_per_min: float

    @property
    def utilisation(self) -> float:
        return self.offered_per_min / self.limit_per_min

    @property
    def binds(self) -> bool:
        return self.utilisation >= BINDING_UTILISATION

    @property
    def needed_per_min(self) -> float:
        """The limit at which this load would sit at the binding utilisation."""
        return self.offered_per_min / BINDING_UTILISATION

    def describe(self) -> str:
        return (
            f"provider {self.provider} {self.dimension}: peak offered "
            f"{self.offered_per_min:,.0f}/min against a limit of {self.limit_per_min:,.0f} "
            f"({self.utilisation:.0%}); raise it to at least {self.needed_per_min:,.0f}/min "
            f"(x{self.needed_per_min / self.limit_per_min:.2f})"
        )


def provider_loads(scenario: Scenario) -> list[ProviderLoad]:
    """Every limited dimension of every provider, with the peak load the workload offers it."""
    llm = scenario.llm
    if llm is None:
        return []
    offered: dict[tuple[str, str], float] = {}
    rate_per_s: dict[str, float] = {}
    for pool in pool_loads(scenario):  # peak arrival rates, DAG nodes included
        rate_per_s[pool.category] = rate_per_s.get(pool.category, 0.0) + pool.arrival_rate
    for category, anatomy in llm.anatomy.items():
        model = llm.models[llm.categories[category]]
        calls_per_min = 60.0 * rate_per_s.get(category, 0.0) * anatomy.calls
        inputs = min(anatomy.input_tokens.mean, model.context_tokens)
        for dimension, per_call in zip(
            DIMENSIONS, (1.0, inputs, anatomy.output_tokens.mean), strict=True
        ):
            key = (model.provider, dimension)
            offered[key] = offered.get(key, 0.0) + calls_per_min * per_call
    loads = []
    for name, provider in llm.providers.items():
        for dimension in DIMENSIONS:
            limit = getattr(provider, dimension)
            if limit is not None:
                loads.append(
                    ProviderLoad(name, dimension, offered.get((name, dimension), 0.0), limit)
                )
    return loads


def binding_provider(scenario: Scenario) -> ProviderLoad | None:
    """The most utilised provider limit if it binds at the peak, else None."""
    loads = provider_loads(scenario)
    worst = max(loads, key=lambda load: load.utilisation, default=None)
    return worst if worst is not None and worst.binds else None
