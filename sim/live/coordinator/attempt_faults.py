"""The scenario's attempt errors and deadlines, sent with each assignment for the agent to act on.

Scenario: the simulator's agent draws, for every attempt, whether it errors
(``errors.probability``, raised by a chaos ``error_burst`` while it lasts)
and when (a uniform point of its service), and cuts it off at its deadline
(``errors.timeout``): ``sim.policies.task_faults``. Live, work is an agent's
handler. The coordinator holds the scenario and its bursts, so it sends with
the task what the simulator's fault draw needs — the category's error
probability, the bursts that may still cover the attempt's start, two
uniform draws, the deadline; the agent, which alone knows when the attempt
starts and its service time (speed and any slowdown), finishes the decision
with the same policy (``sim.live.attempt_fate``).

The two draws of an attempt are keyed by its task and number
(``keyed_draws.task_key``, ``attempt_draws``), as the simulator's are: both
shells err on the same attempts whatever order they take them in. (Each had
drawn from a stream of its own in its own order: at the spec's full fleet
under an error burst, 14 % of the tasks made a different number of attempts
live and in the replay.)

The simulator reads the bursts when the attempt *starts*. The coordinator
had sent the probability at assignment, so work queued at an agent during
a burst and started after it still erred at the burst's rate: at the spec's
full fleet 1.8 % of the attempts outside a burst erred live against the 1 %
the scenario says.

Synthetic work (the ``sleep`` and ``noop`` handlers, the simulated fleet)
honours the draws: the scenario's error model *is* its work. A real handler
brings its own errors and ignores them; its deadline still holds. Live had
ignored the whole section: a scenario with 20 % errors ran live with none,
while its replay drew them (utilisation 1.10, wait p99 3.9 times live's).

An LLM task's assignment carries the task's key too (``backoff_key``): its
agent draws each throttled call's backoff from it (``backoff_draw``), as the
simulator's agent does for the same refusal.
"""

from __future__ import annotations

from typing import Any

from sim.live.attempt_fate import BURSTS_FIELD, DEADLINE_FIELD, FAULT_FIELD
from sim.live.llm_protocol import BACKOFF_KEY_FIELD
from sim.live.task import LiveTask
from sim.policies.keyed_draws import attempt_draws, task_key
from sim.policies.task_faults import AttemptFaults
from sim.scenario.schema import Scenario
from sim.world.policy_set import attempt_faults, error_bursts


class FaultDraws:
    """What each assignment carries of the scenario's fault model (module docstring)."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.faults: AttemptFaults = attempt_faults(scenario)
        self.bursts = error_bursts(scenario)
        #: The run's key for the attempts' draws: the simulator's (``policy_set.fault_seed``).
        self.seed = seed
        #: Whether any attempt may fail at all.
        self.faulty = self.faults.active or bool(self.bursts)
        #: Whether agents make model calls, whose backoffs are keyed by the task.
        self.calls = scenario.llm is not None

    def fields(self, task: LiveTask, attempt: int, zone: str, now: float) -> dict[str, Any]:
        """The fields for attempt *attempt* of *task* assigned in *zone* at scenario *now*: it
        starts at *now* or later, so a burst over by then is left out. Its draws are keyed
        by the task and attempt (``keyed_draws.task_key``), as the simulator's are."""
        if not (self.faulty or self.calls):
            return {}  # nothing to carry
        category = task.category
        key = task_key(self.seed, task.arrival_s, task.job_id, task.node)
        found: dict[str, Any] = {BACKOFF_KEY_FIELD: key} if self.calls else {}
        if not self.faulty:
            return found
        u_error, u_when = attempt_draws(key, attempt)
        base = self.faults.base_probability(category)
        found[FAULT_FIELD] = [base, float(u_error), float(u_when)]
        windows = [
            [start, end, burst.probability]
            for start, end, burst in self.bursts
            if end > now and burst.covers(category, zone)
        ]
        if windows:
            found[BURSTS_FIELD] = windows
        deadline = self.faults.deadline(category)
        if deadline is not None:
            found[DEADLINE_FIELD] = deadline
        return found
