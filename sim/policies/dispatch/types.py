"""What the dispatch core sees of a task, and the decisions it hands back.

The core works on the shells' own task objects — the simulator's ``Task``
records, the live coordinator's ``LiveTask`` — through the small
:class:`Dispatchable` protocol, so the hot path of the simulator allocates
nothing of its own per task. The core reads ``id``, ``category``,
``home_zone``, ``priority``, ``critical`` and ``affinity_key``, and writes
three fields it owns: ``info`` (the balancer's view of the task for the zone
it is being placed in, cached), ``avoid`` (agents a retry must not go back
to) and ``attempt`` (the dispatch generation, from 1, that the retry budget
counts). The composites the live coordinator calls (``route``, ``receive``)
also write ``zone``, the zone the task was routed to, as the simulator's shell
sets its ``Task.zone`` around the primitives it calls. ``near`` is the shell's
estimate of a DAG node's data locality; the core decides what to make of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sim.policies.types import TaskInfo

__all__ = ["Assignment", "Dispatchable", "T"]


class Dispatchable(Protocol):
    """A task as the dispatch core handles it (see the module docstring)."""

    @property
    def id(self) -> int: ...

    @property
    def category(self) -> str: ...

    @property
    def home_zone(self) -> str: ...

    @property
    def priority(self) -> float: ...

    @property
    def critical(self) -> bool: ...

    @property
    def affinity_key(self) -> int | None: ...

    #: The balancer's view of the task for its current zone (the core's cache).
    info: TaskInfo | None
    #: Agents this task must not be dispatched to again (None: nobody to avoid).
    avoid: frozenset[str] | None
    #: The dispatch generation, from 1; a retry after a lost attempt adds one.
    attempt: int
    #: The zone it was last routed to (``receive`` writes it; a shell may move it on).
    zone: str
    #: A DAG node's data locality, set by the shell at release: the agent holding its
    #: largest input and the seconds moving that input elsewhere is expected to take.
    near: tuple[str, float] | None


T = TypeVar("T", bound=Dispatchable)


@dataclass(frozen=True, slots=True)
class Assignment(Generic[T]):
    """Send *task* to *agent_id*, whose own zone's work queue carries it."""

    task: T
    agent_id: str
    zone: str
