"""What a live run is asked (``LiveOptions``) and what it returns (``LiveRun``).

Why a module of its own: the command line, the tests and the benchmarks build
these without starting anything; ``runtime`` is what starts the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.live.transport import TaskStream
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LiveOptions:
    """How to run a scenario live; times in wall seconds unless named otherwise."""

    time_scale: float = 60.0
    nats_url: str | None = None  # None: an embedded broker on loopback
    token: str | None = None
    handler: str = "sleep"
    webhook_url: str | None = None
    metrics_port: int | None = None
    store_dir: Path | None = None
    log_dir: Path | None = None
    grace_s: float = 60.0  # wall time allowed after the duration for work in flight
    drain: bool = True  # wait for every submitted task after the duration
    heartbeat_s: float | None = None  # default: the health interval, scaled
    lease_s: float = 1.5
    standbys: int = 1
    #: Scenario times at which the embedded broker is stopped and restarted (same store).
    broker_restarts: list[float] = field(default_factory=list)
    #: Scenario times at which the embedded broker is killed (SIGKILL) and restarted.
    broker_kills: list[float] = field(default_factory=list)
    #: ``process``: one OS process per agent; ``simulated``: every agent an asyncio task
    #: of this process (sim.live.provisioner.SimulatedFleet), for fleets of thousands.
    agents_mode: str = "process"
    #: The embedded broker's JetStream ``sync_interval`` (see EmbeddedServer).
    broker_sync: str = "always"
    #: Sustained lag allowed, as a fraction of the health interval (scenario time): beyond
    #: it the run stops with one line saying the largest time-scale it sustained.
    lag_budget: float = 0.5
    #: Test hook: (from, to, wall s) — every health round in [from, to) (scenario s) blocks
    #: the event loop that long between reading the heartbeats and judging them.
    loop_stalls: tuple[tuple[float, float, float], ...] = ()


@dataclass
class LiveRun:
    summary: dict[str, Any]
    result: Any  # sim.model.engine.RunResult (the shared record format)
    webhooks: list[dict[str, Any]]
    wall_s: float
    #: The work-queue streams on the broker once the run is over (one per zone).
    task_streams: list[TaskStream] = field(default_factory=list)
    #: Tasks that ended after the duration, while the run drained (sim.live.records).
    drained: pd.DataFrame | None = None


def scaled_scenario(scenario: Scenario, agents: int | None) -> Scenario:
    """*scenario* with its specialists scaled to *agents* (bounds clamped to fit)."""
    if agents is None:
        return scenario
    control = scenario.control_agents()
    scaling = scenario.scaling
    total = agents + control
    new_scaling = scaling.model_copy(
        update={
            "default_agents": total,
            "min_agents": min(scaling.min_agents, total),
            "max_agents": max(scaling.max_agents if scaling.max_agents <= total else total, total),
        }
    )
    topology = scenario.topology.model_copy(update={"specialists": agents})
    return scenario.model_copy(update={"topology": topology, "scaling": new_scaling})
