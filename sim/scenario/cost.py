"""Scenario section for the price of compute, per vCPU-hour and GB-hour, by region."""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeFloat,
)

from sim.scenario.base import Strict


class RegionPrice(Strict):
    vcpu_hour_usd: NonNegativeFloat
    gb_hour_usd: NonNegativeFloat


class Cost(Strict):
    """Prices of compute. Defaults: AWS Fargate on-demand, Linux/x86, us-east-1."""

    vcpu_hour_usd: NonNegativeFloat = Field(0.04048, description="Price of one vCPU for an hour.")
    gb_hour_usd: NonNegativeFloat = Field(0.004445, description="Price of one GB for an hour.")
    regions: dict[str, RegionPrice] = Field(
        default_factory=lambda: {
            "ap-northeast-1": RegionPrice(vcpu_hour_usd=0.05056, gb_hour_usd=0.00553)
        },
        description="Per-region prices overriding the defaults.",
    )
    include_standbys: bool = Field(True, description="Standby coordinators are paid for too.")
