"""Who a task is for and how much it matters: its tier and tenant, and the admission's settings.

Neutral ground for both shells: the draw of a task's tier (from its
category's weights, or the tiers' shares) and tenant (from the tenants'
shares) out of one random stream, and the translation of the ``tiers``
section into the pure admission policy's settings.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

from sim.policies.admission import AdmissionConfig, TenantLimits, TierAdmission
from sim.scenario.tiers import Tiers
from sim.world.streams import Batched


def admission_policy(tiers: Tiers) -> TierAdmission:
    """The pure admission policy for the section (tier 0 is the first level, the top)."""
    return TierAdmission(
        AdmissionConfig(
            shares=tuple(level.admit_below for level in tiers.levels),
            queue_limit=tiers.queue_limit,
            hysteresis=tiers.hysteresis,
            tenant_step=tiers.tenant_step,
        )
    )


def tenant_limits(tiers: Tiers) -> dict[str, TenantLimits]:
    """The tenants' token budgets (tenants without one are left out)."""
    return {
        name: TenantLimits(tenant.tokens_per_min, tenant.tokens_per_day)
        for name, tenant in tiers.tenants.items()
        if tenant.tokens_per_min is not None or tenant.tokens_per_day is not None
    }


class TierMix:
    """Draws each arriving task's tier and tenant: two uniform draws per task, always.

    Always two draws, whichever the category, so the tenants a run draws do
    not depend on its mix of categories (common random numbers across what-ifs).
    """

    def __init__(self, tiers: Tiers, categories: list[str], rng: np.random.Generator) -> None:
        self.names = [level.name for level in tiers.levels]
        self.tenants = list(tiers.tenants)
        self._tier_cdf = {c: _cdf(tiers.weights(c)) for c in categories}
        self._tenant_cdf = _cdf([tenant.share for tenant in tiers.tenants.values()])
        self._uniform = Batched(lambda n: rng.random(n))

    def draw(self, category: str) -> tuple[int, str]:
        """A tier index (0: the top) and a tenant name for one task of *category*."""
        tier = _pick(self._tier_cdf[category], self._uniform())
        tenant = self.tenants[_pick(self._tenant_cdf, self._uniform())]
        return tier, tenant


def _cdf(weights: list[float]) -> list[float]:
    total = sum(weights)
    cdf = [w / total for w in itertools.accumulate(weights)]
    cdf[-1] = 1.0
    return cdf


def _pick(cdf: list[float], u: float) -> int:
    """The first index whose cumulative weight exceeds *u* (zero weights are never picked)."""
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)
