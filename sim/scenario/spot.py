"""Scenario section ``purchase``: how the fleet's compute is bought — billing and spot capacity.

Clouds bill a running agent by the second or by the hour, usually with a
minimum; a run priced as a smooth integral (the default, as before) flatters
a fleet that scales up and down every few minutes. ``billing`` rounds every
agent's life up to its unit and minimum.

Spot capacity is the same machine at a discount that the provider may take
back at any time, after a short notice (two minutes on AWS). A share of the
specialists runs on spot — fleet-wide, per zone or per category — and
reclaims come three ways: a ``spot_reclaim`` chaos entry (a fraction of a
zone's spot share at a given time), a random rate per spot agent-hour, and
correlated mass reclaims (a whole zone's spot share at once, at random).
A reclaimed agent takes no new work from its notice, drains, and whatever it
still holds at the deadline is re-queued elsewhere — never lost.

The section is opt-in: without ``spot`` no agent is on spot and nothing
moves; without a billing unit cost is the integral it always was.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveInt, model_validator

from sim.scenario.base import Duration, Strict

__all__ = ["Billing", "Purchase", "Spot", "SpotReclaim"]


class Billing(Strict):
    """How an agent's life is billed: rounded up to a unit, never less than a minimum."""

    unit: Literal["continuous", "second", "hour"] = Field(
        "continuous",
        description=(
            "continuous: price x life, as a smooth integral (the default); second or hour: "
            "each life is rounded up to whole seconds or whole hours."
        ),
    )
    minimum: Duration = Field(
        0.0, ge=0, description="Shortest life billed (AWS: 60 s for per-second billing)."
    )
    drain_near_paid_end: bool = Field(
        False,
        description=(
            "Scale-down drains, in each pool, the agent with the least paid time left in its "
            "current unit (instead of the one holding least): an hour already paid is used."
        ),
    )

    @model_validator(mode="after")
    def _a_unit_to_drain_by(self) -> Billing:
        if self.drain_near_paid_end and self.unit == "continuous":
            raise ValueError("drain_near_paid_end: expected a billing unit (second or hour)")
        return self

    @property
    def unit_s(self) -> float | None:
        """The billing unit in seconds; None when billing is continuous."""
        return {"continuous": None, "second": 1.0, "hour": 3600.0}[self.unit]

    @property
    def drain_unit_s(self) -> float | None:
        """The unit a scale-down drains by (near its paid end); None: drain the idlest."""
        return self.unit_s if self.drain_near_paid_end else None


class Spot(Strict):
    """A share of the specialists on spot: cheaper, and the provider may take them back.

    The share applies per (zone, category) pool and is kept as agents come
    and go: an agent joins on spot while its pool's spot count is below the
    share of its size (rounded half up). ``by_category`` overrides
    ``by_zone``, which overrides ``share``.
    """

    share: float = Field(0.0, ge=0, le=1, description="Fleet-wide share of specialists on spot.")
    by_zone: dict[str, float] = Field(
        default_factory=dict, description="Per-zone share, overriding the fleet-wide one."
    )
    by_category: dict[str, float] = Field(
        default_factory=dict, description="Per-category share, overriding zone and fleet."
    )
    discount: float = Field(
        0.7, ge=0, lt=1, description="Spot price = (1 - discount) x on-demand price."
    )
    notice: Duration = Field(
        120.0, ge=0, description="Warning before a reclaim: the agent drains meanwhile."
    )
    reclaim_rate: NonNegativeFloat = Field(
        0.0, description="Random reclaims per spot agent-hour (independent, exponential)."
    )
    zone_reclaim_mtbf: Duration | None = Field(
        None,
        description=(
            "Correlated mass reclaims: mean time between reclaims of a whole zone's spot share, "
            "per zone (None: none)."
        ),
    )

    @model_validator(mode="after")
    def _shares(self) -> Spot:
        for name in ("by_zone", "by_category"):
            for key, value in getattr(self, name).items():
                if not 0 <= value <= 1:
                    raise ValueError(f"{name}.{key}: expected a share in [0, 1], got {value}")
        if self.zone_reclaim_mtbf is not None and self.zone_reclaim_mtbf <= 0:
            raise ValueError("zone_reclaim_mtbf: expected a positive duration")
        return self

    def share_of(self, zone: str, category: str) -> float:
        """The spot share of the pool (zone, category)."""
        if category in self.by_category:
            return self.by_category[category]
        return self.by_zone.get(zone, self.share)

    def check_names(self, zones: list[str], categories: list[str]) -> None:
        """Every zone and category named must exist (called by the scenario's cross-checks)."""
        for key in self.by_zone:
            if key not in zones:
                raise ValueError(
                    f"purchase.spot.by_zone.{key}: unknown zone; expected one of {', '.join(zones)}"
                )
        for key in self.by_category:
            if key not in categories:
                raise ValueError(
                    f"purchase.spot.by_category.{key}: unknown category; expected one of "
                    f"{', '.join(categories)}"
                )


class Purchase(Strict):
    """How compute is bought: the billing granularity, and an optional spot share."""

    billing: Billing = Billing()
    spot: Spot | None = Field(None, description="Opt-in spot capacity (None: all on-demand).")


class SpotReclaim(Strict):
    """A chaos action: the provider reclaims spot agents — by default a whole zone's spot share.

    Only agents running on spot are candidates; ``fraction`` (or ``count``) of
    those in ``zone`` (and ``category``) are picked from the chaos stream. The
    recorded event names the agents, so a replay reclaims the same ones.
    """

    agents: list[str] | None = Field(None, description="Agent ids (set when a log is replayed).")
    zone: str | None = Field(None, description="Zone whose spot agents are reclaimed (None: all).")
    category: str | None = Field(None, description="Only spot agents of this category.")
    fraction: float | None = Field(
        1.0, gt=0, le=1, description="Share of the matching spot agents (default: all of them)."
    )
    count: PositiveInt | None = Field(None, description="Number of the matching spot agents.")
