"""Scenario sections for everyday task failures: errors, timeouts, and how the hierarchy escalates.

Crashes of agents and coordinators are the chaos sections' business; these
are the failures of single attempts that real fleets see far more often.
Defaults keep a scenario failure-free (probability 0, no deadline), so the
spec's design runs as written unless a scenario says otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, field_validator

from sim.scenario.base import Duration, Strict

ZoneMoveName = Literal["another_team", "bigger_agent", "another_zone"]
_DEFAULT_MOVES: tuple[ZoneMoveName, ...] = ("another_team", "another_zone")


class TaskErrors(Strict):
    """How often an attempt errors, and how long it may run (spec section 6.1: error_rate)."""

    probability: float = Field(
        0.0, ge=0, lt=1, description="Chance that an attempt errors (independently per attempt)."
    )
    by_category: dict[str, float] = Field(
        default_factory=dict, description="Per-category error probability, overriding the default."
    )
    timeout: Duration | None = Field(
        None, description="Deadline of an attempt; one that would run longer is cut off here."
    )
    timeout_by_category: dict[str, Duration] = Field(
        default_factory=dict, description="Per-category deadlines, overriding the default."
    )

    @field_validator("by_category")
    @classmethod
    def _probabilities(cls, values: dict[str, float]) -> dict[str, float]:
        for category, p in values.items():
            if not 0 <= p < 1:
                raise ValueError(f"{category}: expected a probability in [0, 1), got {p}")
        return values

    @field_validator("timeout", "timeout_by_category")
    @classmethod
    def _positive(cls, value: float | dict[str, float] | None) -> float | dict[str, float] | None:
        values = value.values() if isinstance(value, dict) else [value]
        for v in values:
            if v is not None and v <= 0:
                raise ValueError(f"expected a positive duration, got {v}")
        return value


class Escalation(Strict):
    """What the team lead, zone coordinator and chief do with a failed attempt (spec 3.1)."""

    team_retries: NonNegativeInt = Field(
        2, description="Retries the team lead makes on another agent of the category."
    )
    backoff: Duration = Field(1.0, ge=0, description="Wait before the first team retry.")
    backoff_factor: float = Field(2.0, ge=1, description="Each further retry waits this much more.")
    backoff_max: Duration = Field(60.0, ge=0, description="Cap on the wait between retries.")
    zone_moves: list[ZoneMoveName] = Field(
        default_factory=lambda: list(_DEFAULT_MOVES),
        description=(
            "The zone coordinator's moves, tried once each in order: another team of the zone, "
            "the fastest agent of the category (bigger_agent), or the nearest other zone."
        ),
    )
    chief_retries: NonNegativeInt = Field(
        1, description="Re-dispatches the chief makes to a zone where the task has not failed."
    )


class ErrorBurst(Strict):
    """A chaos action: the error probability rises to *probability* for the event's duration."""

    probability: PositiveFloat = Field(lt=1, description="Error probability during the burst.")
    categories: list[str] = Field(
        default_factory=list, description="Categories hit (all if empty)."
    )
    zones: list[str] = Field(default_factory=list, description="Zones hit (all if empty).")


class OneWayPartition(Strict):
    """A chaos action: a chief's links work in one direction only (an asymmetric partition).

    ``inbound`` cuts what the chief hears (its messages still go out: it keeps
    heartbeating but never sees an acknowledgement); ``outbound`` cuts what it
    says (it hears everyone, nobody hears it). Real networks produce both — a
    half-broken NIC, a one-sided firewall rule — and Raft must neither lose a
    commit nor let the cut-off chief disrupt the others (pre-vote, check-quorum).
    """

    chief: str = Field("leader", description="'leader', 'follower' or a chief (chief-2).")
    direction: Literal["inbound", "outbound"] = Field(
        "inbound", description="inbound: the chief hears nobody; outbound: nobody hears it."
    )


class WalStall(Strict):
    """A chaos action: a chief's disk stalls, each fsync of its WAL taking *fsync* seconds.

    A Raft node's loop persists before it sends (see Ready): while its disk is
    stuck, nothing it says — heartbeats included — leaves before the write in
    front of it is done, and nothing it commits is applied. Its followers see
    the heartbeats stop and elect someone else.
    """

    chief: str = Field("leader", description="'leader', 'follower' or a chief (chief-2).")
    fsync: Duration = Field(gt=0, description="Time one WAL write takes during the stall.")
