"""Scenario sections for noticing failures and retrying the tasks they hit.

The ``health:`` block (spec section 7.1: three consecutive failed checks, or
phi accrual on heartbeats) and the ``retry:`` budget.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import Duration, Strict


class Health(Strict):
    """How failures are noticed (spec section 7.1: 3 consecutive failed checks)."""

    detector: Literal["consecutive", "phi_accrual"] = Field(
        "consecutive",
        description="The spec's consecutive failed checks, or phi accrual on heartbeats.",
    )
    phi_threshold: PositiveFloat = Field(8.0, description="phi_accrual: suspicion level.")
    phi_min_std: Duration = Field(0.5, description="phi_accrual: floor on the interval's std.")
    interval: Duration = Field(10.0, description="Health-check (or heartbeat) interval per agent.")
    threshold: PositiveInt = Field(3, description="Consecutive failed checks to mark unhealthy.")
    timeout: Duration = Field(2.0, description="A check fails this long after it is sent.")
    per_message: bool = Field(
        False,
        description=(
            "Simulate every check as an event (fidelity mode); by default detection times "
            "are computed from the check schedule, with identical results."
        ),
    )
    replace_failed: bool = Field(
        True, description="Spawn a replacement from the reserve pool for each failed agent."
    )
    zone_promotion: Duration = Field(
        15.0, description="Time to promote a zone coordinator's standby."
    )
    phases: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Named agents' check-schedule offsets, seconds in [0, interval): each is "
            "checked (or beats) at its offset plus whole intervals. Others draw theirs "
            "from the seed. `orchestra calibrate` fits them from when a live run detected "
            "each failed agent, so the replay declares the same agents at the same times."
        ),
    )

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Health:
        if self.interval <= 0 or self.timeout >= self.interval:
            raise ValueError("expected 0 <= timeout < interval")
        if self.per_message and self.detector == "phi_accrual":
            raise ValueError("per_message: expected the consecutive detector (phi is analytic)")
        for agent_id, phase in self.phases.items():
            if not 0.0 <= phase < self.interval:
                raise ValueError(
                    f"phases.{agent_id}: expected 0 <= phase < interval ({self.interval:g}), "
                    f"got {phase:g}"
                )
        return self


class Retry(Strict):
    """What happens to a task whose agent failed under it."""

    budget: NonNegativeInt = Field(
        3, description="Re-dispatches after failures before a task fails for good."
    )
