"""Scenario section naming the decision policies the coordinators run.

The ``policies:`` block: load balancing, cross-zone spill, DAG ordering, the
circuit breaker and the team bulkhead. Named ``policies_block`` so it is not
confused with the ``sim.policies`` package that implements them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
)

from sim.scenario.base import Duration, Strict


class DagPolicy(Strict):
    critical_to_fastest: bool = Field(
        True, description="Send critical-path tasks to the fastest agent with room (HEFT style)."
    )
    order: Literal["upward_rank", "fifo"] = Field(
        "upward_rank", description="Order of ready DAG tasks in the queues."
    )
    data_locality: bool = Field(
        False,
        description=(
            "Run a ready task on the agent holding its largest input when that agent has a free "
            "slot, or frees one sooner than moving the input would take."
        ),
    )
    dispatch: Literal["dynamic", "planned"] = Field(
        "dynamic",
        description=(
            "dynamic: the chief releases a node when its last predecessor's report arrives and "
            "the coordinators place it then. planned: when a job arrives the chief plans it "
            "(HEFT over the slots of the agents in its zone, or every zone when tasks may spill) "
            "and sends every node to its planned agent at once; producers push outputs straight "
            "to the consumers' agents (data staging) and each slot runs its nodes in planned "
            "order as soon as their inputs are there, so the per-level control messages leave "
            "the critical path. For a job that has its agents to itself (simulator only)."
        ),
    )


class Breaker(Strict):
    """A circuit breaker per agent on the zone coordinator's calls (closed/open/half-open)."""

    enabled: bool = True
    failure_threshold: PositiveInt = Field(3, description="Consecutive failed calls to open.")
    open: Duration = Field(30.0, description="How long it stays open before a probe.")


class Policies(Strict):
    """Which decision policies the coordinators run."""

    load_balancing: Literal[
        "round_robin", "least_connections", "weighted", "affinity", "power_of_two"
    ] = "least_connections"
    affinity_epsilon: PositiveFloat = Field(
        0.25, description="Bounded-load slack c = 1 + epsilon for consistent hashing."
    )
    spill_across_zones: bool = Field(
        True,
        description=(
            "A task whose zone has no free agent goes to another zone's free agent (paying the "
            "cross-region path), and idle agents take work queued in other zones."
        ),
    )
    dag: DagPolicy = DagPolicy()
    circuit_breaker: Breaker = Breaker()
    team_limit: PositiveInt | None = Field(
        None,
        description=(
            "Bulkhead per team: most tasks one team's agents hold at once (None: no limit). "
            "Each agent's own bulkhead is its slots plus queue_limit."
        ),
    )
