"""Admission at the chief: each arriving task is admitted or shed, lowest tier first.

Scenario: an independent task reaches the chief. It carries a tier and a
tenant (drawn from the ``tiers`` section's shares). The chief looks at how
many tasks wait for an agent, how much of the provider's budget its calls
would spend is gone, and whether its tenant is over its token budget, and
asks the admission policy. Admitted, the task goes on as before (its tier
sets its place in the queues when ``priority_queue``); shed, it is counted
and goes no further — it is never dispatched, so it can never be lost.

The decision is sim.policies.admission's; this module draws, observes and
keeps one row per arriving task (``tiers.parquet``): its tier, tenant and
whether it was admitted or shed, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sim.metrics.level_rows import tier_rows
from sim.metrics.tier_summary import tier_frame
from sim.policies.admission import AdmissionObservation, TenantBudgets, budget_used
from sim.policies.llm import ProviderBucket
from sim.scenario.schema import Scenario
from sim.scenario.tiers import Tiers
from sim.world.streams import Streams
from sim.world.tier_mix import TierMix, admission_policy, tenant_limits

if TYPE_CHECKING:
    from sim.model.llm_work import LlmWork
    from sim.model.task import Task


class Admission:
    """Tiers, tenants and shedding for one run (None in the engine when the section is off)."""

    def __init__(
        self,
        tiers: Tiers,
        categories: list[str],
        rng: np.random.Generator,
        waiting: Callable[[], int],
        providers: dict[str, ProviderBucket] | None = None,
        provider_of: dict[str, str] | None = None,
    ) -> None:
        self.tiers = tiers
        self.mix = TierMix(tiers, categories, rng)
        self.policy = admission_policy(tiers)
        self.budgets = TenantBudgets(tenant_limits(tiers))
        #: Tasks waiting for an agent: in the pools' queues and in agents' local queues.
        self.waiting = waiting
        #: Category -> the provider account its calls spend (categories with no model: absent).
        self.provider_of = provider_of or {}
        self.buckets = providers or {}
        #: Tasks shed at the door, over the whole run (the conservation ledger's share).
        self.shed = 0
        self._tenant_of: dict[int, str] = {}
        self._rows: list[tuple[Any, ...]] = []
        self._top_priority = float(len(tiers.levels) - 1)
        #: Tasks shed per tier since the last metrics sample.
        self._shed_since: dict[str, int] = {level.name: 0 for level in tiers.levels}

    def admit(self, task: Task, now: float) -> bool:
        """Draw the task's tier and tenant and decide; True: dispatch it, False: it is shed."""
        tier, tenant = self.mix.draw(task.category)
        provider = self.provider_of.get(task.category)
        obs = AdmissionObservation(
            tier=tier,
            queue_depth=self.waiting(),
            provider=provider,
            provider_used=budget_used(self.buckets[provider], now) if provider else 0.0,
            tenant_overdraft=self.budgets.overdraft(tenant, now),
        )
        decision = self.policy.decide(obs)
        name = self.mix.names[tier]
        if decision.admit:
            self._tenant_of[task.id] = tenant
            if self.tiers.priority_queue:
                task.priority = self._top_priority - tier  # the top tier is taken first
            self._rows.append((task.id, task.category, name, tenant, now, "admitted", ""))
            return True
        self.shed += 1
        self._shed_since[name] += 1
        self._rows.append((task.id, task.category, name, tenant, now, "shed", decision.reason))
        return False

    def tier_rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows (level ``tier``): tasks shed per tier since the last sample."""
        rows = tier_rows(now, self._shed_since)
        self._shed_since = dict.fromkeys(self._shed_since, 0)
        return rows

    def charge(self, task: Task, now: float, tokens: float) -> None:
        """A call of *task* was granted *tokens*: its tenant's budget pays (DAG nodes: nobody)."""
        tenant = self._tenant_of.get(task.id)
        if tenant is not None:
            self.budgets.charge(tenant, now, tokens)

    def frame(self, replication: int) -> pd.DataFrame:
        """One row per independent task that arrived (``tiers.parquet``)."""
        return tier_frame(self._rows, replication)


def build_admission(
    scenario: Scenario, streams: Streams, waiting: Callable[[], int], llm: LlmWork | None
) -> Admission | None:
    """The run's admission when the scenario has tiers; tenants' budgets hear *llm*'s calls."""
    tiers, section = scenario.tiers, scenario.llm
    if tiers is None:
        return None
    provider_of = (
        {c: section.models[m].provider for c, m in section.categories.items()}
        if section is not None
        else None
    )
    admission = Admission(
        tiers,
        list(scenario.topology.categories),
        streams.get("tiers"),
        waiting,
        llm.buckets if llm is not None else None,
        provider_of,
    )
    if llm is not None and tiers.budgets:
        llm.on_tokens = admission.charge
    return admission
