"""Admission at the live intake: each submitted task is admitted or shed, lowest tier first.

Scenario: a task (not a DAG node: those are never shed, as in the simulator)
reaches the primary. It carries a tier and a tenant — stamped by ``orchestra
live run`` from the simulator's own draw, or by a client; a submission that
names neither gets them drawn from the ``tiers`` section's shares, in
submission order, as the simulator draws them. The primary reads what the
simulator's chief reads — tasks waiting for an agent, the share of the
provider budget its calls would spend (the gate's buckets, ``llm_gate``), its
tenant's overdraft — and asks the one admission policy
(``sim.policies.admission``, built by ``sim.world.tier_mix`` as the simulator
builds it).

The verdict is a record on the zone's dispatch stream (``kind: admission``),
written with the task's routing record (the first phase of a batch, before
its assignment record: ``outbox``): a takeover reads it back before the
submissions and keeps the verdict rather than deciding again on its own
books (a primary dying between the two phases leaves its successor to decide
anew, as it routes anew), and ``sim.live.records`` folds the records into ``tiers.parquet`` and
``tasks.shed``. A shed task is done at once: never dispatched, so never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.live.coordinator.llm_gate import LlmGate
from sim.metrics.level_rows import tier_rows
from sim.policies.admission import (
    AdmissionDecision,
    AdmissionObservation,
    TenantBudgets,
    budget_used,
)
from sim.scenario.schema import Scenario
from sim.scenario.tiers import Tiers
from sim.world.streams import Streams
from sim.world.tier_mix import TierMix, admission_policy, tenant_limits

__all__ = ["ADMISSION", "LiveAdmission", "Verdict"]

#: The ``kind`` of an admission record on a dispatch stream.
ADMISSION = "admission"


@dataclass(frozen=True)
class Verdict:
    """One task's tier and tenant (names) and what the admission made of it."""

    tier: str
    tenant: str
    admit: bool
    reason: str = ""

    #: What the admission saw (AdmissionObservation's figures), kept in the record.
    seen: tuple[int, float, float] = (0, 0.0, 0.0)
    #: This primary's count of verdicts before this one. The policy keeps state
    #: (its hysteresis), so the order of decisions is part of what they mean; and
    #: the primary decides in the order submissions reach it, which across zones'
    #: streams need not be the order of their ids.
    order: int = -1

    def record(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The admission record of submission *doc* (a task): the verdict and what it saw."""
        waiting, provider_used, overdraft = self.seen
        return {
            "kind": ADMISSION,
            "task_id": int(doc["task_id"]),
            "category": doc["category"],
            "zone": doc["zone"],
            "arrival_s": float(doc["arrival_s"]),
            "tier": self.tier,
            "tenant": self.tenant,
            "admission": "admitted" if self.admit else "shed",
            "reason": self.reason,
            "queue_depth": waiting,
            "provider_used": provider_used,
            "tenant_overdraft": overdraft,
            "order": self.order,
        }

    @classmethod
    def from_record(cls, doc: dict[str, Any]) -> Verdict:
        admit = doc["admission"] == "admitted"
        return cls(str(doc["tier"]), str(doc["tenant"]), admit, str(doc.get("reason", "")))


class LiveAdmission:
    """Tiers, tenants and shedding for the primary (see the module docstring)."""

    def __init__(self, scenario: Scenario, tiers: Tiers, gate: LlmGate | None) -> None:
        self.tiers = tiers
        self.names = [level.name for level in tiers.levels]
        self.policy = admission_policy(tiers)
        self.budgets = TenantBudgets(tenant_limits(tiers))
        categories = list(scenario.topology.categories)
        #: For submissions that name no tier or tenant: the simulator's draw, its stream.
        self.mix = TierMix(tiers, categories, Streams(scenario.seed, 0).get("tiers"))
        llm = scenario.llm
        #: Category -> the provider account its calls spend (categories with no model: absent).
        self.provider_of = (
            {c: llm.models[m].provider for c, m in llm.categories.items()} if llm else {}
        )
        self.gate = gate
        #: Task id -> tenant, for the tenants' token budgets (admitted tasks only).
        self.tenant_of: dict[int, str] = {}
        #: Verdicts this primary has given (their ``order``).
        self.decided = 0
        #: Tasks this primary shed per tier since the last metrics sample.
        self.shed_since: dict[str, int] = dict.fromkeys(self.names, 0)

    def label(self, doc: dict[str, Any]) -> tuple[str, str]:
        """The task's tier and tenant: as submitted, else drawn (both draws, always)."""
        tier, tenant = doc.get("tier"), doc.get("tenant")
        if tier is None or tenant is None:
            index, drawn = self.mix.draw(str(doc["category"]))
            tier = self.names[index] if tier is None else tier
            tenant = drawn if tenant is None else tenant
        return str(tier), str(tenant)

    def decide(self, doc: dict[str, Any], waiting: int, now: float) -> Verdict:
        """Admit or shed one submitted task at scenario time *now* (*waiting*: queue depth)."""
        tier, tenant = self.label(doc)
        provider = self.provider_of.get(str(doc["category"]))
        used = 0.0
        if provider is not None and self.gate is not None:
            used = budget_used(self.gate.buckets[provider], now)
        obs = AdmissionObservation(
            tier=self.names.index(tier),
            queue_depth=waiting,
            provider=provider if self.gate is not None else None,
            provider_used=used,
            tenant_overdraft=self.budgets.overdraft(tenant, now),
        )
        decision: AdmissionDecision = self.policy.decide(obs)
        seen = (waiting, used, obs.tenant_overdraft)
        if not decision.admit:
            self.shed_since[tier] += 1
        self.decided += 1
        return Verdict(tier, tenant, decision.admit, decision.reason, seen, self.decided - 1)

    def admitted(self, task_id: int, verdict: Verdict) -> float:
        """An admitted task: remember its tenant; its queue priority (top tier first)."""
        self.tenant_of[task_id] = verdict.tenant
        if not self.tiers.priority_queue:
            return 0.0
        return float(len(self.names) - 1 - self.names.index(verdict.tier))

    def rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows (level ``tier``): tasks shed per tier since the last sample."""
        rows = tier_rows(now, self.shed_since)
        self.shed_since = dict.fromkeys(self.names, 0)
        return rows

    def charge(self, task_id: int, now: float, tokens: float) -> None:
        """A call of the task was granted *tokens*: its tenant's budget pays (unknown: nobody)."""
        tenant = self.tenant_of.get(task_id)
        if tenant is not None:
            self.budgets.charge(tenant, now, tokens)
