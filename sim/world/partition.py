"""Who is on which side of a chaos ``partition``, and which zones it cuts off from the chiefs.

Scenario: a partition's groups name chiefs (``chief-2``) and zones (``A``);
each can reach only its own group, and whatever no group names forms one
more group together. Raft decides who leads among the chiefs; the side that
holds a majority of them keeps a leader, and a zone anywhere else is cut off
from the control plane (its agents work on, out of the chief's reach).

Both shells read a partition through this one rule: the simulator splits its
Raft links and cuts the zones off (``sim.model.chaos``); live fences a primary
that is not on the majority's side and announces the zones cut off
(``sim.live.chaos``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PartitionSides", "partition_sides"]


@dataclass(frozen=True, slots=True)
class PartitionSides:
    """A partition read against the topology."""

    #: The chiefs of each side that has any, in the groups' order (the rest last).
    chief_sides: list[list[str]]
    #: Everything on the side holding a majority of the chiefs (empty: no side does).
    connected: frozenset[str]
    #: The zones not on that side, in the topology's order.
    cut_zones: list[str]


def partition_sides(
    groups: Sequence[Sequence[str]], chiefs: Sequence[str], zones: Sequence[str]
) -> PartitionSides:
    """The sides of a partition of *groups* among *chiefs* (``chief-k``) and *zones*."""
    listed = {name for group in groups for name in group}
    everyone = [*chiefs, *zones]
    sides = [list(group) for group in groups] + [[n for n in everyone if n not in listed]]
    chief_sides = [[n for n in side if n.startswith("chief-")] for side in sides]
    majority = len(chiefs) // 2 + 1
    leading = [side for side in sides if sum(n.startswith("chief-") for n in side) >= majority]
    connected = frozenset(leading[0]) if leading else frozenset()
    return PartitionSides(
        [side for side in chief_sides if side],
        connected,
        [zone for zone in zones if zone not in connected],
    )
