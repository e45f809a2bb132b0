"""An attempt's fate on the agent's side: where its run is cut off, and why.

The coordinator sends, with each assignment, what the simulator's fault
draw needs and only it knows (``sim.live.coordinator.attempt_faults``): the
category's error probability, the error bursts still to come or under way,
two uniform draws, the deadline. The agent alone knows when the attempt
starts and its service time — its work over its speed, times any slowdown —
and finishes the decision with the simulator's own rules
(``sim.policies.task_faults``): the probability at the start (a burst's if
one covers it), then an error at that uniform point of the service, or a
timeout at the deadline.

Synthetic work (``sleep``, ``noop``) honours the error draws, since the
scenario's error model is what its work stands for; a real handler brings
its own errors, and only the deadline cuts it off. So with a DAG node's
input transfer: synthetic work waits it out before it starts, as the
simulator's slot does; a real handler fetches its inputs itself.
"""

from __future__ import annotations

from typing import Any

from sim.policies.task_faults import Fault, attempt_fate, probability_at

#: The task message's fields: [error probability outside bursts, u_error, u_when], the
#: bursts that may cover its start ([start_s, end_s, probability] each), the deadline (s).
FAULT_FIELD = "fault"
BURSTS_FIELD = "error_bursts"
DEADLINE_FIELD = "deadline_s"
#: A DAG node's input transfer (scenario s), and the attempt records that carry it.
TRANSFER_FIELD = "transfer_s"
#: Handlers whose work is the scenario's drawn work: they honour the error draws.
SYNTHETIC_HANDLERS = ("sleep", "noop")


def attempt_limit(
    task: dict[str, Any], synthetic: bool, speed: float, slowdown: float, start_s: float
) -> Fault | None:
    """Where this attempt, starting at scenario *start_s*, is cut off (scenario seconds into
    its service), None: it runs out."""
    deadline = task.get(DEADLINE_FIELD)
    deadline_s = None if deadline is None else float(deadline)
    drawn = task.get(FAULT_FIELD)
    if synthetic and drawn is not None and "llm" not in task:
        base, u_error, u_when = (float(x) for x in drawn)
        probability = probability_at(base, task.get(BURSTS_FIELD, ()), start_s)
        service_s = float(task["work_s"]) / speed * slowdown
        return attempt_fate(probability, deadline_s, service_s, u_error, u_when)
    if deadline_s is not None:
        return Fault("timeout", deadline_s)  # real work: cut off if it runs that long
    return None


def transfer_s(task: dict[str, Any]) -> float:
    """Seconds a DAG node's inputs take to reach this agent before its work starts (the
    coordinator's draw of the simulator's transfer: ``sim.live.coordinator.dag_transfers``)."""
    return float(task.get(TRANSFER_FIELD, 0.0))
