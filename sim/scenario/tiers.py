"""Scenario section ``tiers``: priority tiers, tenants, and shedding at admission.

A fleet shared by many teams cannot serve everything when the queue or the
model provider's budget runs out; it should drop the work that matters
least, and drop it at the door (``shed``) rather than lose it later. With
this section each independent task carries a tier (drawn from the tier
shares, or its category's own) and a tenant (drawn from the tenant shares);
the admission policy (sim.policies.admission) sheds the lowest tiers first.

Opt-in: without it (``tiers: null``, the default) no task has a tier and
nothing is shed. DAG nodes are never shed — shedding one node would strand
its job — and keep their own priority.
"""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from sim.scenario.base import Strict


class TierLevel(Strict):
    """One tier: its share of the arrivals and how full things may be for it still to get in."""

    name: str = Field(description="The tier's name (e.g. critical, standard, batch).")
    share: NonNegativeFloat = Field(description="Weight of the tier among arriving tasks.")
    admit_below: float = Field(
        1.0,
        gt=0,
        le=1,
        description=(
            "Admitted while the queue (over queue_limit) and the provider budget are less full "
            "than this; the top tier's is 1.0 and the values never rise toward the lowest."
        ),
    )


def _spec_levels() -> list[TierLevel]:
    return [
        TierLevel(name="critical", share=0.1, admit_below=1.0),
        TierLevel(name="standard", share=0.6, admit_below=0.8),
        TierLevel(name="batch", share=0.3, admit_below=0.5),
    ]


class Tenant(Strict):
    """One tenant: its share of the arrivals and an optional token budget."""

    share: NonNegativeFloat = Field(1.0, description="Weight of the tenant among arriving tasks.")
    tokens_per_min: PositiveFloat | None = Field(
        None, description="Input plus output tokens a minute (None: no limit); needs llm."
    )
    tokens_per_day: PositiveFloat | None = Field(
        None, description="Input plus output tokens a day (None: no limit); needs llm."
    )


class Tiers(Strict):
    """Tiers (top first), tenants, and the admission's limits."""

    levels: list[TierLevel] = Field(
        default_factory=_spec_levels, min_length=1, description="Tiers, the top one first."
    )
    by_category: dict[str, dict[str, NonNegativeFloat]] = Field(
        default_factory=dict,
        description="Per category: tier -> weight, instead of the levels' shares.",
    )
    tenants: dict[str, Tenant] = Field(
        default_factory=lambda: {"default": Tenant()},
        min_length=1,
        description="Tenants by name.",
    )
    queue_limit: PositiveInt | None = Field(
        None,
        description="Tasks waiting for an agent at which even the top tier is shed (None: no cap).",
    )
    hysteresis: float = Field(
        0.1, ge=0, lt=1, description="A shed tier resumes when pressure < admit_below x (1 - h)."
    )
    tenant_step: PositiveFloat = Field(
        0.1,
        description=(
            "Overdraft (in budgets) between one tier of an over-budget tenant being shed and the "
            "next one up; the lowest goes first, the top never."
        ),
    )
    priority_queue: bool = Field(
        True, description="Waiting tasks are taken top tier first (else in arrival order)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Tiers:
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("levels: expected distinct tier names")
        if self.levels[0].admit_below != 1.0:
            raise ValueError(f"levels[0].admit_below: expected 1.0 for the top tier ({names[0]})")
        for index in range(1, len(self.levels)):
            if self.levels[index].admit_below > self.levels[index - 1].admit_below:
                raise ValueError(
                    f"levels[{index}].admit_below: expected at most the tier above's "
                    f"({self.levels[index - 1].admit_below:g})"
                )
        if sum(level.share for level in self.levels) <= 0:
            raise ValueError("levels: expected a positive share for at least one tier")
        for category, weights in self.by_category.items():
            for tier in weights:
                if tier not in names:
                    raise ValueError(
                        f"by_category.{category}.{tier}: unknown tier; expected one of "
                        f"{', '.join(names)}"
                    )
            if sum(weights.values()) <= 0:
                raise ValueError(f"by_category.{category}: expected a positive weight")
        if sum(tenant.share for tenant in self.tenants.values()) <= 0:
            raise ValueError("tenants: expected a positive share for at least one tenant")
        return self

    @property
    def budgets(self) -> bool:
        """Whether any tenant has a token budget."""
        return any(
            t.tokens_per_min is not None or t.tokens_per_day is not None
            for t in self.tenants.values()
        )

    def check(self, categories: dict[str, float], has_llm: bool) -> None:
        """Cross-checks against the rest of the scenario (called by the Scenario)."""
        for category in self.by_category:
            if category not in categories:
                raise ValueError(
                    f"tiers.by_category.{category}: unknown category; expected one of "
                    f"{', '.join(categories)}"
                )
        if self.budgets and not has_llm:
            raise ValueError(
                "tiers.tenants: token budgets need an llm section (tokens come from model calls)"
            )

    def weights(self, category: str) -> list[float]:
        """The tier weights for *category*'s tasks, top first."""
        given = self.by_category.get(category)
        if given is None:
            return [level.share for level in self.levels]
        return [given.get(level.name, 0.0) for level in self.levels]
