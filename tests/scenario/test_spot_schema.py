"""The ``purchase`` section and the ``spot_reclaim`` chaos action, as a scenario reads them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sim.scenario.schema import ChaosEvent, Scenario
from sim.scenario.spot import Billing, Spot


def test_the_share_of_a_pool_category_over_zone_over_fleet() -> None:
    spot = Spot(share=0.5, by_zone={"B": 0.8}, by_category={"Security": 0.0})
    assert spot.share_of("A", "CodeGen") == 0.5
    assert spot.share_of("B", "CodeGen") == 0.8
    assert spot.share_of("B", "Security") == 0.0  # the category wins over the zone


def test_defaults_buy_nothing_on_spot_and_bill_continuously() -> None:
    purchase = Scenario().purchase
    assert purchase.spot is None
    assert purchase.billing.unit_s is None and purchase.billing.minimum == 0.0
    assert Billing(unit="hour").unit_s == 3600.0 and Billing(unit="second").unit_s == 1.0


def test_bad_purchase_settings_name_their_field() -> None:
    with pytest.raises(ValidationError, match="drain_near_paid_end: expected a billing unit"):
        Billing(drain_near_paid_end=True)
    with pytest.raises(ValidationError, match=r"by_category\.Review: expected a share in \[0, 1\]"):
        Spot(by_category={"Review": 1.5})
    with pytest.raises(ValidationError, match=r"purchase\.spot\.by_category\.Nope: unknown"):
        Scenario.model_validate({"purchase": {"spot": {"by_category": {"Nope": 0.5}}}})


def test_a_spot_reclaim_needs_no_duration_and_defaults_to_the_whole_share() -> None:
    event = ChaosEvent.model_validate({"at": "3h", "spot_reclaim": {"zone": "B"}})
    assert event.action == "spot_reclaim" and event.duration is None
    assert event.spot_reclaim is not None and event.spot_reclaim.fraction == 1.0
    with pytest.raises(ValidationError, match="expected exactly one of"):
        ChaosEvent.model_validate({"at": 1, "spot_reclaim": {}, "kill": {"count": 1}})
