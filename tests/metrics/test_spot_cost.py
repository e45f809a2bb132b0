"""Billing granularity and the spot discount, against a hand computation on a tiny fleet."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.metrics.cost import compute_cost, cost_split
from sim.scenario.schema import Cost
from sim.scenario.spot import Billing, Purchase, Spot

# One vCPU and 2 GB at $0.04 + 2 x $0.005 = $0.05 an hour, in one region.
COST = Cost(vcpu_hour_usd=0.04, gb_hour_usd=0.005, regions={})
HOURLY = 0.05


def _agents() -> pd.DataFrame:
    """Three specialists: 90 s on spot, 30 s on demand, 3,700 s on spot."""
    rows = [
        ("s1", 0.0, 90.0, True),
        ("o1", 100.0, 130.0, False),
        ("s2", 0.0, 3700.0, True),
    ]
    return pd.DataFrame(
        [
            {
                "agent": agent,
                "role": "specialist",
                "region": "us-east-1",
                "vcpu": 1.0,
                "mem_gb": 2.0,
                "joined_s": joined,
                "left_s": left,
                "spot": spot,
            }
            for agent, joined, left, spot in rows
        ]
    )


def test_hourly_and_per_second_bills_by_hand() -> None:
    agents = _agents()
    per_second = Billing(unit="second", minimum=60.0)
    per_hour = Billing(unit="hour")
    exact = compute_cost(COST, agents)
    assert exact == pytest.approx(HOURLY * (90 + 30 + 3700) / 3600)
    # Per second with a minute's minimum: the 30 s life is billed 60 s.
    assert compute_cost(COST, agents, per_second) == pytest.approx(HOURLY * (90 + 60 + 3700) / 3600)
    # Per hour: 1 + 1 + 2 hours.
    assert compute_cost(COST, agents, per_hour) == pytest.approx(HOURLY * 4)


def test_spot_pays_the_discounted_price_for_the_same_billed_time() -> None:
    purchase = Purchase(billing=Billing(unit="hour"), spot=Spot(share=0.5, discount=0.7))
    usd_spot, usd_on_demand = cost_split(COST, purchase, _agents())
    assert usd_spot == pytest.approx(0.3 * HOURLY * 3)  # s1: 1 h, s2: 2 h
    assert usd_on_demand == pytest.approx(HOURLY * 1)


def test_without_a_spot_column_everything_is_on_demand() -> None:
    agents = _agents().drop(columns="spot")
    usd_spot, usd_on_demand = cost_split(COST, Purchase(), agents)
    assert usd_spot == 0.0
    assert usd_on_demand == compute_cost(COST, agents)


def test_the_report_header_shows_the_spot_share_of_the_bill() -> None:
    from sim.report.html.cards import header_section

    cost = {"usd_per_day": 231.3, "usd_total": 80.0, "usd_spot": 10.0, "reclaims": 48}
    html = header_section({"scenario": "spot_fleet", "cost": cost}, pd.DataFrame())
    assert "spot 12% of it · 48 reclaims" in html
    plain = {"usd_per_day": 298.2, "usd_total": 99.4, "usd_spot": 0.0, "reclaims": 0}
    assert "reclaims" not in header_section({"cost": plain}, pd.DataFrame())
