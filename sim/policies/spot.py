"""Spot capacity: which joining agent runs on spot, and which agents a reclaim hits.

Pure rules, no clock: the shell tells the rule a pool's size and spot count
and gets a yes or no; the pool's share is kept as agents come and go, with
no random draw (so adding spot to a scenario reshuffles nothing else).
"""

from __future__ import annotations

import math

__all__ = ["joins_as_spot", "spot_target"]


def spot_target(share: float, pool_size: int) -> int:
    """Spot agents a pool of *pool_size* should hold: the share, rounded half up."""
    return math.floor(share * pool_size + 0.5)


def joins_as_spot(share: float, spot_now: int, pool_size_after: int) -> bool:
    """An agent joining a pool runs on spot while the pool is below its spot share.

    *spot_now* is the pool's spot agents before the join, *pool_size_after*
    its size with the newcomer. Filling a pool of n one by one gives exactly
    ``spot_target(share, n)`` spot agents, spread over the joins.
    """
    return spot_now < spot_target(share, pool_size_after)
