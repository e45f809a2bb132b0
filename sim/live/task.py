"""A task as the live coordinator tracks it: the dispatch core's ``Dispatchable``.

Times are scenario seconds. ``attempts`` numbers the assignment messages
(the next one's number, from 1 as the simulator numbers attempts: message
ids and result records carry it);
``attempt`` is the dispatch generation the retry budget counts, from 1, as
in the simulator's ``Task``. ``info`` and ``avoid`` belong to the dispatch
core (its cached balancer view, the agents a retry must not go back to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.policies.escalation import History
from sim.policies.types import TaskInfo

#: Fields of a submission the coordinator passes to the agent untouched (see task_message).
PASSED_THROUGH = ("payload", "llm")


@dataclass
class LiveTask:
    """A task as the live coordinator tracks it (see the module docstring)."""

    task_id: int
    category: str
    home_zone: str
    arrival_s: float
    work_s: float
    job_id: int = -1
    node: int = -1
    priority: float = 0.0
    critical: bool = False
    zone: str = ""  # the zone it was last routed to
    attempts: int = 1  # the next assignment's number: from 1, as the simulator numbers attempts
    dispatched: bool = False
    started: bool = False  # its latest attempt has started (False again when placed anew)
    counted_start: int = 0  # the latest attempt whose start the counters hold (0: none)
    done: bool = False
    attempt: int = 1
    affinity_key: int | None = None
    avoid: frozenset[str] | None = None
    info: TaskInfo | None = None
    near: tuple[str, float] | None = None  # DAG data locality (the live shell sets none yet)
    #: What the submission carried for the agent alone (PASSED_THROUGH), or None.
    carried: dict[str, Any] | None = None
    #: Its failed attempts as the escalation policy counts them (None: none yet).
    history: History | None = None
    #: Attempt numbers whose failure was escalated (a second report of one is a duplicate).
    failed_attempts: set[int] = field(default_factory=set)

    @property
    def id(self) -> int:
        return self.task_id


def carried(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pass-through fields of a submitted task or node (None: it has none)."""
    found = {key: doc[key] for key in PASSED_THROUGH if key in doc}
    return found or None


def attempt_failure(doc: dict[str, Any]) -> bool:
    """An end report of an agent's failed attempt, which the escalation handles: not the
    task's end (that is a completion, or the coordinator's failure with ``final``)."""
    return doc["outcome"] != "completed" and not doc.get("final", False)
