"""Failure detection: consecutive failed health checks, and φ accrual.

Scenario: a specialist stops answering. The spec's failover (§7.1) starts
when its health check fails three times in a row: the agent is marked
unhealthy, its tasks are redistributed and a replacement is spawned. How long
that takes is decided here.

Every detector has two faces that agree:

* **Per-message** (fidelity): the shell feeds each check result or heartbeat
  to :meth:`FailureDetector.observe` and gets a transition back when one
  happens.
* **Analytic** (the default): the shell simulates no healthy heartbeat at all.
  When an agent goes down it calls :meth:`FailureDetector.detection_time` and
  schedules one event at the answer; when the agent comes back it calls
  :meth:`FailureDetector.recovered` and schedules the transitions returned.

The analytic face is a small state machine of up/down changes, one per agent;
its contract with the shell:

1. Changes are reported in time order, one agent's ``detection_time`` (down)
   and ``recovered`` (up) alternating.
2. Each answer is the detector's prediction from ``now`` on, assuming the
   agent stays in its new state. It replaces every earlier prediction timed at
   or after ``now``; earlier predictions timed before ``now`` have happened.
   A change therefore takes precedence over a predicted transition at the very
   same instant: the shell should process changes before detector timers of
   the same time (otherwise it sees a blip of zero length).
3. ``detection_time`` returns the time of the unhealthy declaration covering
   the outage. A value before ``failed_at`` means the agent is still declared
   unhealthy from an earlier outage (it failed again before it was declared
   healthy): there is nothing new to schedule.

A shell uses one face per agent; the two keep separate state.

Layout: ``contract`` holds the verdicts and the protocol both detectors
implement; ``grid`` the per-agent check (or heartbeat) times both read;
``consecutive`` the spec's consecutive-failure check; ``phi`` φ accrual.
"""

from __future__ import annotations

from sim.policies.health.consecutive import ConsecutiveFailureDetector
from sim.policies.health.contract import FailureDetector, HealthState, HealthTransition
from sim.policies.health.grid import PhaseSource
from sim.policies.health.phi import Cdf, PhiAccrualDetector, phi_value

__all__ = [
    "Cdf",
    "ConsecutiveFailureDetector",
    "FailureDetector",
    "HealthState",
    "HealthTransition",
    "PhaseSource",
    "PhiAccrualDetector",
    "phi_value",
]
