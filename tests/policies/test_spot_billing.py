"""The pure spot and billing rules: the share kept by joins, billed time, the paid-hour drain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.autoscale.billing import (
    DrainCandidate,
    billed_seconds,
    drain_by_paid_time,
    paid_time_left,
)
from sim.policies.spot import joins_as_spot, spot_target


@given(st.floats(0, 1), st.integers(0, 60))
def test_joining_one_by_one_fills_the_share_exactly(share: float, size: int) -> None:
    spot = 0
    for n in range(1, size + 1):
        if joins_as_spot(share, spot, n):
            spot += 1
        assert spot == spot_target(share, n)  # never above, never behind the share


def test_the_share_rounds_half_up() -> None:
    assert [spot_target(0.5, n) for n in range(1, 6)] == [1, 1, 2, 2, 3]
    assert spot_target(0.0, 10) == 0 and spot_target(1.0, 7) == 7


def test_billed_seconds_by_hand() -> None:
    assert billed_seconds(90.0, None) == 90.0  # continuous: the life itself
    assert billed_seconds(90.5, 1.0) == 91.0
    assert billed_seconds(30.0, 1.0, 60.0) == 60.0  # AWS's one-minute minimum
    assert billed_seconds(3601.0, 3600.0) == 7200.0
    assert billed_seconds(3600.0, 3600.0) == 3600.0
    assert billed_seconds(0.0, 3600.0, 60.0) == 0.0  # never ran: nothing billed


@given(st.floats(0, 1e6), st.floats(0, 120))
def test_coarser_units_never_bill_less(life: float, minimum: float) -> None:
    exact = billed_seconds(life, None, minimum)
    second = billed_seconds(life, 1.0, minimum)
    hour = billed_seconds(life, 3600.0, minimum)
    assert exact <= second + 1e-6 and second <= hour + 1e-6
    if life > 0:
        assert hour >= life
        assert hour % 3600.0 == 0.0  # whole hours (the minimum is below one)


def test_paid_time_left_in_the_hour() -> None:
    assert paid_time_left(0.0, 3600.0) == 3600.0
    assert paid_time_left(3000.0, 3600.0) == pytest.approx(600.0)
    assert paid_time_left(3600.0, 3600.0) == 3600.0  # a new hour just started and is paid
    assert paid_time_left(7100.0, 3600.0) == pytest.approx(100.0)


def test_the_drain_prefers_the_agent_whose_paid_hour_ends_soonest() -> None:
    candidates = [
        DrainCandidate("a", age_s=600.0, load=0),  # 50 min of paid time left
        DrainCandidate("b", age_s=3500.0, load=2),  # 100 s left: drain this one
        DrainCandidate("c", age_s=3700.0, load=0),  # just paid another hour
    ]
    assert drain_by_paid_time(candidates, 3600.0) == "b"
    tie = [DrainCandidate("x", 100.0, 3), DrainCandidate("y", 100.0, 1)]
    assert drain_by_paid_time(tie, 3600.0) == "y"  # then the one holding least
    assert drain_by_paid_time([], 3600.0) is None
