"""Money: what an agent costs per hour, and what a run cost.

Prices are per vCPU-hour and per GB-hour (the scenario's ``cost`` section,
defaults AWS Fargate on-demand), optionally per region. Both shells record
when each agent joined and left; cost is the integral of price over those
lives, so a scale-up shows in the bill exactly for as long as it lasted.
A scenario's ``purchase`` section rounds each life up to a billing unit
(per second, per hour, with a minimum) and prices spot agents at a discount.
"""

from __future__ import annotations

import pandas as pd

from sim.policies.autoscale.billing import billed_seconds
from sim.scenario.schema import Cost
from sim.scenario.spot import Billing, Purchase


def hourly_price(cost: Cost, region: str, vcpu: float, mem_gb: float) -> float:
    """US dollars per hour for one agent of this size in *region*."""
    price = cost.regions.get(region)
    vcpu_price = price.vcpu_hour_usd if price else cost.vcpu_hour_usd
    gb_price = price.gb_hour_usd if price else cost.gb_hour_usd
    return vcpu * vcpu_price + mem_gb * gb_price


def compute_cost(cost: Cost, agents: pd.DataFrame, billing: Billing | None = None) -> float:
    """Dollars for every agent's lifetime in ``agents.parquet`` (standbys as configured).

    With *billing*, each life is rounded up to its unit and minimum; spot
    agents are priced as on-demand here (:func:`cost_split` applies the discount).
    """
    total = 0.0
    unit_s, minimum_s = (None, 0.0) if billing is None else (billing.unit_s, billing.minimum)
    columns = ("role", "region", "vcpu", "mem_gb", "joined_s", "left_s")
    rows = zip(*(agents[c].tolist() for c in columns), strict=True)
    for role, region, vcpu, mem_gb, joined_s, left_s in rows:
        if role == "zone_standby" and not cost.include_standbys:
            continue
        hours = billed_seconds(float(left_s) - float(joined_s), unit_s, minimum_s) / 3600.0
        total += hours * hourly_price(cost, str(region), float(vcpu), float(mem_gb))
    return total


def cost_split(cost: Cost, purchase: Purchase, agents: pd.DataFrame) -> tuple[float, float]:
    """(spot, on-demand) dollars of a run, billed as *purchase* says.

    Spot agents are the rows whose ``spot`` column is true (absent: none);
    they pay ``1 - discount`` of the on-demand price for the same billed time.
    """
    if "spot" in agents.columns:
        on_spot = agents["spot"].eq(True)  # coordinators' rows have no value: on demand
    else:
        on_spot = pd.Series(False, index=agents.index)
    spot_full = compute_cost(cost, agents[on_spot], purchase.billing)
    on_demand = compute_cost(cost, agents[~on_spot], purchase.billing)
    discount = purchase.spot.discount if purchase.spot is not None else 0.0
    return spot_full * (1.0 - discount), on_demand


class CostMeter:
    """Running cost of a fleet whose members come and go: integrates the hourly rate.

    The shell reports each agent's arrival and departure; ``total(now)`` is
    what has been spent so far, which the metrics sample as ``cost_usd``.
    """

    def __init__(self, cost: Cost) -> None:
        self._cost = cost
        self._rate_per_s = 0.0
        self._spent = 0.0
        self._since = 0.0

    def _advance(self, now: float) -> None:
        self._spent += self._rate_per_s * (now - self._since)
        self._since = now

    def joined(
        self, now: float, region: str, vcpu: float, mem_gb: float, factor: float = 1.0
    ) -> None:
        """An agent starts costing; *factor* scales its price (a spot discount)."""
        self._advance(now)
        self._rate_per_s += factor * hourly_price(self._cost, region, vcpu, mem_gb) / 3600.0

    def left(
        self, now: float, region: str, vcpu: float, mem_gb: float, factor: float = 1.0
    ) -> None:
        self._advance(now)
        self._rate_per_s -= factor * hourly_price(self._cost, region, vcpu, mem_gb) / 3600.0

    def total(self, now: float) -> float:
        return self._spent + self._rate_per_s * (now - self._since)
