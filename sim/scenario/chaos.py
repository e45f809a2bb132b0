"""Scenario sections for the failure timeline: hand-written chaos events and random failures.

``chaos:`` lists events (kill, zone outage, coordinator crash, partition,
latency spike, message loss, gray agents, error bursts, one-way partitions,
WAL stalls, team-lead crashes); ``chaos_random:`` draws failures for soaks.
Names are checked against the topology by ``Scenario``, which knows it.
"""

from __future__ import annotations

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import Duration, Strict
from sim.scenario.faults import ErrorBurst, OneWayPartition, WalStall
from sim.scenario.spot import SpotReclaim


class AgentSelector(Strict):
    """Which specialists an event hits: ids, or a fraction (or count) of a category/zone."""

    agents: list[str] | None = Field(
        None, description="Agent ids (an empty list hits nobody, as a replayed no-op does)."
    )
    category: str | None = None
    zone: str | None = None
    fraction: float | None = Field(None, gt=0, le=1, description="Share of the matching agents.")
    count: PositiveInt | None = Field(None, description="Number of the matching agents.")


class Spike(Strict):
    factor: PositiveFloat = Field(description="Latency multiplier on the affected paths.")
    zones: list[str] = Field(default_factory=list, description="Zones affected (all if empty).")


class Loss(Strict):
    rate: float = Field(gt=0, lt=1, description="Share of TASK_ASSIGN messages lost.")
    zones: list[str] | None = Field(
        None, description="Only the chief -> zone paths to these zones lose messages (all if None)."
    )


class Slow(AgentSelector):
    factor: PositiveFloat = Field(description="Service time multiplier for 'gray' agents.")


class RandomChaos(Strict):
    """Failures drawn at random for soak runs: exponential times between failures per component."""

    enabled: bool = False
    agent_mtbf: Duration = Field(7 * 86400.0, description="Mean time between failures per agent.")
    agent_mttr: Duration = Field(600.0, description="Mean time to repair (restart) an agent.")
    zone_mtbf: Duration | None = Field(None, description="Per zone; None: zones never fail.")
    zone_mttr: Duration = Field(1800.0, description="Mean length of a zone outage.")
    chief_mtbf: Duration | None = Field(
        None, description="Per chief coordinator; None: chiefs never fail."
    )
    chief_mttr: Duration = Field(60.0, description="Mean time to restart a chief.")
    start: Duration | None = Field(None, description="First failure no earlier; default warm-up.")


class Partition(Strict):
    """Groups that can only reach their own members: chiefs (chief-1 ...) and zones (A ...).

    Chiefs split as the groups say (Raft decides who leads). A zone in a group
    without a majority of the chiefs is cut off from the control plane: its
    agents keep serving what they hold, but the chief can no longer reach its
    coordinator, so its work is routed to the zones on the majority's side.
    Names no group lists form one more group together, so a partition that
    names only chiefs cuts every zone off: to isolate a chief alone, name the
    zones with the majority (``[[chief-1], [chief-2, chief-3, A, B, C, D]]``).
    """

    groups: list[list[str]] = Field(
        min_length=1,
        description="Names that can only reach their own group; the unnamed form one more.",
    )


class AgentJoin(Strict):
    """A specialist that joins on its own: ready at ``at``, lent by no reserve pool.

    Not a failure but a fleet change from outside the model's policies: a
    service's agents start themselves (``orchestra live agent``), and a
    record window's replay plays the ones that joined mid-window at their
    times (``sim.live.segment_fleet``). What the autoscaler or the failover
    asked for they ask for again in a replay; this is for the rest.
    """

    zone: str = Field(description="The zone it joins.")
    category: str = Field(description="Its category.")
    agent: str | None = Field(None, description="Its id (default: the zone's next free name).")


CHAOS_ACTIONS = (
    "kill",
    "zone_outage",
    "coordinator_crash",
    "partition",
    "latency_spike",
    "message_loss",
    "slow",
    "error_burst",
    "one_way_partition",
    "wal_stall",
    "team_lead_crash",
    "spot_reclaim",
    "join",
)


class ChaosEvent(Strict):
    """One entry of the failure timeline: when, what, and for how long.

    Exactly one action: ``kill`` (agents crash; ``restart_after`` brings their
    hosts back, and each agent serves one start-up later, ``scaling.spawn_delay``,
    as after a ``zone_outage``), ``coordinator_crash`` (a chief — ``leader``, ``follower`` or by
    name — or a zone coordinator, whose standby is then promoted;
    ``restart_after`` restarts a chief), ``zone_outage`` (a whole zone and its
    coordinators go dark for ``duration``), ``partition`` (chiefs split into
    groups for ``duration``), ``latency_spike``, ``message_loss`` or ``slow``
    (gray agents) for ``duration``; ``one_way_partition`` (a chief's links
    work one way only) or ``wal_stall`` (a chief's fsyncs take seconds) for
    ``duration``; ``team_lead_crash`` (a team lead dies; its team takes no new
    work until the zone coordinator's checks notice and a member takes over);
    ``spot_reclaim`` (spot agents get a notice, drain, and are gone at its end);
    ``join`` (a specialist joins on its own, ready at once: a service's fleet).
    """

    at: Duration
    duration: Duration | None = None
    restart_after: Duration | None = None
    kill: AgentSelector | None = None
    zone_outage: str | None = None
    coordinator_crash: str | None = Field(
        None, description="'leader', 'follower', a chief (chief-2) or a zone coordinator (A-coord)."
    )
    partition: Partition | None = None
    latency_spike: Spike | None = None
    message_loss: Loss | None = None
    slow: Slow | None = None
    error_burst: ErrorBurst | None = None
    one_way_partition: OneWayPartition | None = None
    wal_stall: WalStall | None = None
    team_lead_crash: str | None = Field(
        None, description="A team lead (A-T01-lead): its team gets no new work until replaced."
    )
    spot_reclaim: SpotReclaim | None = Field(
        None, description="Spot agents reclaimed after a notice (sim.scenario.spot)."
    )
    join: AgentJoin | None = Field(
        None, description="A specialist joins on its own, ready at once (a service's fleet)."
    )

    @model_validator(mode="after")
    def _one_action(self) -> ChaosEvent:
        given = [name for name in CHAOS_ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of {', '.join(CHAOS_ACTIONS)}, got {given or 'none'}"
            )
        once = ("kill", "coordinator_crash", "team_lead_crash", "spot_reclaim", "join")
        if given[0] not in once and (self.duration is None):
            raise ValueError(f"{given[0]}: expected a duration")
        return self

    @property
    def action(self) -> str:
        return next(name for name in CHAOS_ACTIONS if getattr(self, name) is not None)
