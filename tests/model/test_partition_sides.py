"""The one rule both shells read a chaos partition by (``sim.world.partition``)."""

from __future__ import annotations

from sim.world.partition import partition_sides

CHIEFS = ["chief-1", "chief-2", "chief-3"]
ZONES = ["A", "B", "C", "D"]


def test_a_lone_leader_leaves_the_zones_named_with_the_majority_connected() -> None:
    sides = partition_sides([["chief-1"], ["chief-2", "chief-3", *ZONES]], CHIEFS, ZONES)
    assert sides.chief_sides == [["chief-1"], ["chief-2", "chief-3"]]
    assert sides.connected == {"chief-2", "chief-3", *ZONES}
    assert sides.cut_zones == []


def test_the_names_no_group_lists_form_one_more_group() -> None:
    # The zones are not named: they form a group of their own, with no chief in it.
    sides = partition_sides([["chief-1"], ["chief-2", "chief-3"]], CHIEFS, ZONES)
    assert sides.chief_sides == [["chief-1"], ["chief-2", "chief-3"]]
    assert sides.cut_zones == ZONES
    # A zone named with a minority: cut off; the rest (two chiefs, three zones) lead.
    sides = partition_sides([["chief-1", "B"]], CHIEFS, ZONES)
    assert sides.chief_sides == [["chief-1"], ["chief-2", "chief-3"]]
    assert sides.connected == {"chief-2", "chief-3", "A", "C", "D"}
    assert sides.cut_zones == ["B"]


def test_with_no_majority_anywhere_every_zone_is_cut_off() -> None:
    sides = partition_sides([["chief-1", "A"], ["chief-2", "B"]], CHIEFS, ZONES)
    assert sides.chief_sides == [["chief-1"], ["chief-2"], ["chief-3"]]
    assert sides.connected == frozenset() and sides.cut_zones == ZONES


def test_zones_alone_split_no_chiefs() -> None:
    sides = partition_sides([["C", "D"]], CHIEFS, ZONES)
    assert sides.chief_sides == [CHIEFS]  # one side: Raft is not split
    assert sides.cut_zones == ["C", "D"]
