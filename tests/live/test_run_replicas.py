"""Which of a live run's coordinator replicas a chaos target names.

The simulator bootstraps ``chief-1`` as its leader, so live's ``chief-1`` is
the run's first primary — whichever replica won the first lease, not the
first one started (two replicas start together, and the second often wins):
``chief-1`` had named the first replica started, a standby as often as not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sim.live.replicas import RunReplicas


@dataclass
class Replica:
    """What RunReplicas reads of a coordinator."""

    name: str
    is_primary: bool = False
    led_since: float | None = None


class Task:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.stopped = False

    def done(self) -> bool:
        return self.stopped

    def cancel(self) -> None:
        self.stopped = True


def replicas(*members: Replica) -> tuple[RunReplicas, dict[str, Task]]:
    run = RunReplicas.__new__(RunReplicas)
    tasks = {r.name: Task(r) for r in members}
    run.coordinators = cast(Any, [(r, tasks[r.name]) for r in members])
    return run, tasks


def test_chief_1_is_the_runs_first_primary_whichever_replica_started_first() -> None:
    first, second = Replica("coord-0"), Replica("coord-1", is_primary=True, led_since=5.0)
    run, tasks = replicas(first, second)
    assert run.primary_chief() == "chief-1"
    assert run.crash("chief-2") == "follower" and tasks["coord-0"].stopped
    assert not tasks["coord-1"].stopped


def test_crashing_chief_1_hits_the_primary_and_a_successor_plays_no_named_chief() -> None:
    first, second = Replica("coord-0"), Replica("coord-1", is_primary=True, led_since=5.0)
    run, tasks = replicas(first, second)
    assert run.crash("chief-1") == "leader" and tasks["coord-1"].stopped
    second.is_primary = False
    first.is_primary, first.led_since = True, 9.0  # the standby takes the lease
    assert run.primary_chief() is None  # which chief the scenario's Raft elected is its own
    assert run.crash("chief-1") == "follower"  # chief-1 stays the first primary, gone
    assert not tasks["coord-0"].stopped
