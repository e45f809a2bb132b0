"""The failure modes of the failure matrix, and when in a trial each is injected.

Scenario: a warmed-up fleet runs undisturbed for ten minutes (the "before"
window), then one thing breaks at an instant drawn uniformly over one health
check period plus one Raft heartbeat and one (maximal) election timeout, so
that across trials the failure lands at every phase of the timers that must
notice it; the trial then runs ten more minutes (the "after" window) and a
short tail.

Each mode is one chaos entry of the scenario schema (nothing here injects a
failure by itself: the SimPy shell's chaos timeline does, exactly as for a
hand-written scenario, so any trial can be replayed as a scenario). A mode
names its *scope*: the whole fleet (the chiefs: nothing is dispatched
anywhere without a leader) or one zone, the first of the topology (whose
own demand is what its failure can starve).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sim.scenario.schema import Scenario

Scope = Literal["fleet", "zone"]

#: How long the "before" and "after" windows last, seconds.
WINDOW_S = 600.0
#: The trial's warm-up is the scenario's, capped here (a trial must stay short).
MAX_WARMUP_S = 600.0
#: The run goes on this long past the "after" window, so that a task arriving at
#: its end is dispatched (or shown to be stuck) rather than cut off by the run's end.
TAIL_S = 120.0


@dataclass(frozen=True)
class Mode:
    """One failure mode: what breaks (a chaos entry for a zone), and what it can starve."""

    name: str
    what: str
    scope: Scope
    chaos: Callable[[str], dict[str, Any]]


def _mode(name: str, what: str, scope: Scope, chaos: Callable[[str], dict[str, Any]]) -> Mode:
    return Mode(name, what, scope, chaos)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        _mode(
            "agent_crash",
            "one specialist of the zone crashes (restarts after 5 min)",
            "zone",
            lambda z: {"kill": {"zone": z, "count": 1}, "restart_after": 300.0},
        ),
        _mode(
            "gray_agent",
            "one specialist of the zone serves 10x slower for 5 min, still heartbeating",
            "zone",
            lambda z: {"slow": {"zone": z, "count": 1, "factor": 10.0}, "duration": 300.0},
        ),
        _mode(
            "team_lead_loss",
            "a team lead of the zone crashes; its team is unreachable until a member takes over",
            "zone",
            lambda z: {"team_lead_crash": f"{z}-T01-lead"},
        ),
        _mode(
            "zone_coordinator_crash",
            "the zone coordinator crashes; its standby is promoted",
            "zone",
            lambda z: {"coordinator_crash": f"{z}-coord"},
        ),
        _mode(
            "region_outage",
            "the zone's whole region goes dark for 5 min",
            "zone",
            lambda z: {"zone_outage": z, "duration": 300.0},
        ),
        _mode(
            "chief_leader_crash",
            "the chief leader crashes (restarts after 60 s)",
            "fleet",
            lambda z: {"coordinator_crash": "leader", "restart_after": 60.0},
        ),
        _mode(
            "chief_follower_crash",
            "a chief follower crashes (restarts after 60 s)",
            "fleet",
            lambda z: {"coordinator_crash": "follower", "restart_after": 60.0},
        ),
        _mode(
            "chief_partition",
            "symmetric partition: the leader (chief-1, the bootstrap leader) alone for 60 s",
            "fleet",
            lambda z: {"partition": {"groups": [["chief-1"]]}, "duration": 60.0},
        ),
        _mode(
            "leader_oneway_inbound",
            "asymmetric partition: the leader hears nobody for 60 s (its messages still leave)",
            "fleet",
            lambda z: {
                "one_way_partition": {"chief": "leader", "direction": "inbound"},
                "duration": 60.0,
            },
        ),
        _mode(
            "leader_oneway_outbound",
            "asymmetric partition: nobody hears the leader for 60 s (it hears everyone)",
            "fleet",
            lambda z: {
                "one_way_partition": {"chief": "leader", "direction": "outbound"},
                "duration": 60.0,
            },
        ),
        _mode(
            "message_loss",
            "half the chief -> zone messages to the zone are lost for 60 s",
            "zone",
            lambda z: {"message_loss": {"rate": 0.5, "zones": [z]}, "duration": 60.0},
        ),
        _mode(
            "latency_spike",
            "the zone's paths are 10x slower for 5 min",
            "zone",
            lambda z: {"latency_spike": {"factor": 10.0, "zones": [z]}, "duration": 300.0},
        ),
        _mode(
            "wal_stall",
            "the leader's WAL fsyncs take 5 s each for 30 s",
            "fleet",
            lambda z: {"wal_stall": {"chief": "leader", "fsync": 5.0}, "duration": 30.0},
        ),
    )
}


def parse_modes(names: list[str] | None) -> list[Mode]:
    """The modes asked for (default: all), or a ValueError naming the unknown one."""
    if not names:
        return list(MODES.values())
    wanted: list[str] = []
    for item in names:
        wanted.extend(part.strip() for part in item.split(",") if part.strip())
    for name in wanted:
        if name not in MODES:
            raise ValueError(f"--modes: unknown mode {name!r}; expected some of {', '.join(MODES)}")
    return [MODES[name] for name in dict.fromkeys(wanted)]


@dataclass(frozen=True)
class TrialPlan:
    """When a trial starts, fails and ends; the same for every mode (common random numbers).

    The injection instant of trial *k* is drawn from its own generator keyed
    by the scenario seed and *k*, so trial *k* of every mode breaks at the
    same instant of the same arrivals (replication *k*'s random streams).
    """

    seed: int
    warmup_s: float
    span_s: float
    window_s: float = WINDOW_S

    @classmethod
    def of(cls, scenario: Scenario) -> TrialPlan:
        plane = scenario.topology.control_plane
        span = scenario.health.interval + plane.heartbeat + plane.election_timeout[1]
        return cls(scenario.seed, min(scenario.warmup, MAX_WARMUP_S), span)

    def inject_at(self, trial: int) -> float:
        rng = np.random.default_rng([self.seed, trial, 0xFA11])
        return self.warmup_s + self.window_s + float(rng.uniform(0.0, self.span_s))

    @property
    def duration_s(self) -> float:
        return self.warmup_s + 2 * self.window_s + self.span_s + TAIL_S
