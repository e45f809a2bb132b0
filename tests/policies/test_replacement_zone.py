"""Where a failed agent's replacement starts: one rule, asked by both shells' failover."""

from __future__ import annotations

from sim.policies.routing import ZoneRouter

ZONES = ("A", "B", "C", "D")
#: Zone A's neighbours nearest first: C (20 ms), then B (60 ms), then D (90 ms).
RTT = {("A", "B"): 60.0, ("A", "C"): 20.0, ("A", "D"): 90.0, ("B", "C"): 40.0}


def router() -> ZoneRouter:
    rtt = {(a, b): 0.0 for a in ZONES for b in ZONES if a == b}
    for (a, b), ms in {**RTT, ("B", "D"): 50.0, ("C", "D"): 70.0}.items():
        rtt[a, b] = rtt[b, a] = ms
    return ZoneRouter(ZONES, rtt)


def test_a_replacement_starts_in_its_own_zone_while_that_zone_is_reachable() -> None:
    assert router().replacement_zone("A", dark=["B", "D"]) == "A"


def test_a_dark_zones_replacement_goes_to_the_nearest_live_zone() -> None:
    r = router()
    assert r.neighbours["A"] == ("C", "B", "D")
    assert r.replacement_zone("A", dark=["A"]) == "C"
    assert r.replacement_zone("A", dark={"A", "C"}) == "B"
    assert r.replacement_zone("A", dark={"A", "C", "B"}) == "D"


def test_with_every_zone_dark_it_stays_home() -> None:
    assert router().replacement_zone("B", dark=ZONES) == "B"
