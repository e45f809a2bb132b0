"""``metrics.parquet`` rows of the opt-in levels both shells sample: ``tier`` and ``purchase``.

One builder per level, so the simulator's and the live coordinator's rows
mean the same: ``tier`` rows count the tasks shed per tier since the last
sample (column ``tasks_shed``); ``purchase`` rows count the specialists on
spot and on demand at the sample (column ``total_agents``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["purchase_rows", "tier_rows"]


def tier_rows(now: float, shed_since: Mapping[str, int]) -> list[dict[str, Any]]:
    """Level ``tier``: per tier (in the mapping's order), tasks shed since the last sample."""
    return [
        {
            "time_s": now,
            "level": "tier",
            "id": name,
            "zone": None,
            "status": None,
            "tasks_shed": float(count),
        }
        for name, count in shed_since.items()
    ]


def purchase_rows(now: float, spot: int, on_demand: int) -> list[dict[str, Any]]:
    """Level ``purchase``: specialists on spot and on demand (in the fleet, on the bill) now."""
    return [
        {
            "time_s": now,
            "level": "purchase",
            "id": name,
            "zone": None,
            "status": None,
            "total_agents": float(count),
        }
        for name, count in (("spot", spot), ("on_demand", on_demand))
    ]
