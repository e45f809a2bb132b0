"""The zone gate: one rule for whether a zone takes work (declared dead, or its breaker open)."""

from __future__ import annotations

from sim.policies.dispatch import ZoneGate
from sim.policies.resilience import BreakerBoard, BreakerConfig, BreakerState
from sim.policies.routing import ZoneRouter

ZONES = ("A", "B")


def gate(breakers: bool = True) -> ZoneGate:
    router = ZoneRouter(ZONES, {(a, b): 0.0 if a == b else 10.0 for a in ZONES for b in ZONES})
    board = BreakerBoard(BreakerConfig(failure_threshold=3, open_s=30.0)) if breakers else None
    return ZoneGate(router, board)


def test_failed_calls_open_the_breaker_and_the_zone_takes_no_work_until_the_probe() -> None:
    g = gate()
    assert [g.call_failed("A", t).opened for t in (1.0, 2.0)] == [False, False]
    assert g.takes_work("A")  # two failures: still closed, still routed to
    call = g.call_failed("A", 3.0)
    assert call.opened and call.refused and not g.takes_work("A")
    assert g.call_failed("A", 4.0) == type(call)(opened=False, refused=True)  # already open
    assert g.probe("A", 33.0) and g.takes_work("A")  # half-open: one probe's worth of work
    assert g.breakers is not None
    assert g.breakers.state_at("zone:A", 33.0) is BreakerState.HALF_OPEN
    g.call_ok("A", 34.0)
    assert g.breakers.state_at("zone:A", 34.0) is BreakerState.CLOSED


def test_a_failed_probe_opens_it_again() -> None:
    g = gate()
    for t in (1.0, 2.0, 3.0):
        g.call_failed("A", t)
    g.probe("A", 33.0)
    call = g.call_failed("A", 34.0)
    assert call.opened and not g.takes_work("A")


def test_a_zone_the_health_checks_declared_is_not_probed_back_in() -> None:
    """Once declared dead, the failover owns the zone: the breaker's probe leaves it out."""
    g = gate()
    for t in (1.0, 2.0, 3.0):
        g.call_failed("A", t)
    g.declare_down("A")
    assert not g.probe("A", 33.0) and not g.takes_work("A")
    g.declare_up("A")  # reachable again: routed to, whatever the breaker said
    assert g.takes_work("A") and "A" not in g.declared


def test_without_breakers_failed_calls_change_nothing() -> None:
    g = gate(breakers=False)
    for t in range(10):
        call = g.call_failed("B", float(t))
        assert not call.opened and not call.refused
    assert g.takes_work("B") and not g.probe("B", 100.0)
    g.call_ok("B", 101.0)
    g.declare_down("B")
    assert not g.takes_work("B")


def test_calls_to_a_dark_zone_fail_and_the_third_opens_with_the_probe_due_open_s_later() -> None:
    """``reach`` is the call both shells make: a dark zone fails it, an answered zone succeeds."""
    g = gate()
    assert g.reach("A", 0.5) is None  # not dark: answered (and no breaker made)
    g.mark_dark("A", True)
    verdicts = [g.reach("A", t) for t in (1.0, 2.0, 3.0)]
    assert [v is not None and (v.opened, v.refused) for v in verdicts] == [
        (False, False),
        (False, False),
        (True, True),
    ]
    assert [v.probe_after_s for v in verdicts if v is not None] == [None, None, 30.0]
    assert not g.takes_work("A") and g.takes_work("B") and g.reach("B", 3.0) is None
    assert g.probe("A", 33.0)
    g.mark_dark("A", False)  # back before the probe's call: the call is answered...
    assert g.reach("A", 34.0) is None
    assert g.breakers is not None  # ...and closes the half-open breaker
    assert g.breakers.state_at("zone:A", 34.0) is BreakerState.CLOSED
    states = [t.to_state.value for _, t in g.breakers.drain_transitions()]
    assert states == ["open", "half_open", "closed"]


def test_without_breakers_a_dark_zones_calls_fail_but_nothing_is_refused() -> None:
    g = gate(breakers=False)
    g.mark_dark("B", True)
    for t in range(5):
        call = g.reach("B", float(t))
        assert call is not None and not call.opened and not call.refused
    assert g.takes_work("B")  # waits at the door until the checks declare it
