"""A failed attempt in live: the simulator's escalation policy, on the coordinator's books.

Scenario: an agent reports an attempt ``failed`` (its handler raised or
returned false; a model call ran out of retries, ``rate_limited``). As in the
simulator, that is not yet the task's end: ``sim.policies.escalation`` decides
— the team lead retries on another agent of the category after a backoff
while its budget lasts, then the zone coordinator makes its moves (another
team, a bigger agent, another zone), then the chief picks a zone not yet
tried — and only when every budget is spent does the task fail for good, with
the reason of its last attempt.

What differs from the SimPy shell is only what a shell owns: the hierarchy's
messages take no modelled time here (live has no team lead process), the
backoff is waited on the scenario clock. The chief's own pick is called
through the zone gate, as the simulator's chief sends it (a refusing
breaker routes it elsewhere). What is feasible and where a move
goes is ``sim.policies.escalation_moves``, the simulator's own: agents carry
their team (the topology's, or ``team_for`` for a started one; an agent
that says none is its own team), and zones that are dark are never tried.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.live.coordinator.state import Books, EventLog
from sim.live.task import LiveTask
from sim.policies.dispatch import Assignment, DispatchCore
from sim.policies.escalation import Action, EscalationPolicy, History, ZoneMove
from sim.policies.escalation_moves import EscalationMoves, FleetView, Member
from sim.policies.routing import ZoneRouter


@dataclass(frozen=True)
class Verdict:
    """What a failed attempt leads to: an assignment to send now, or the task's end."""

    assignment: Assignment[LiveTask] | None = None
    fail_reason: str | None = None  # the task fails for good, for this reason
    #: Escalated to the chief: the zone it chose, which the chief calls through the zone
    #: gate (``zone_calls``) as it calls any zone — the simulator's chief sends it so.
    chief_zone: str | None = None


@dataclass(order=True)
class _Due:
    at: float
    order: int
    task: LiveTask = field(compare=False)
    zone: str = field(compare=False)


class Escalation:
    """Failed attempts → retry, a zone move, the chief, or the end (module docstring)."""

    def __init__(
        self,
        policy: EscalationPolicy,
        books: Books,
        dispatcher: DispatchCore[LiveTask],
        router: ZoneRouter,
        event: EventLog,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.policy, self.books, self.dispatcher = policy, books, dispatcher
        self.router, self.event = router, event
        #: Told of every new backoff, so that the retry goes out when it ends (``deadlines``).
        self.notify = notify
        #: Retries waiting out the team lead's backoff, soonest first.
        self._due: list[_Due] = []
        self._order = itertools.count()
        #: Escalations made, per level (as the simulator counts them).
        self.escalations = {"zone": 0, "chief": 0}

    async def failed(
        self, task: LiveTask, agent_id: str, zone: str, reason: str, now: float
    ) -> Verdict:
        """Decide for a failed attempt of *task* on *agent_id* in *zone*."""
        history = task.history or History()
        feasible = self.moves.feasible(task.category, zone, history.failed(agent_id, zone, reason))
        decision = self.policy.on_failure(history, agent_id, zone, reason, feasible)
        task.history = decision.history
        if decision.action is Action.FAIL:
            await self.event("task_failed", str(task.task_id), reason=reason)
            return Verdict(fail_reason=reason)
        task.attempt += 1
        failed_agents = frozenset(decision.history.agents)
        task.avoid = failed_agents
        moves = self.moves
        if decision.action is Action.RETRY:
            heapq.heappush(self._due, _Due(now + decision.delay_s, next(self._order), task, zone))
            self.notify()
            return Verdict()
        to_chief = decision.action is Action.CHIEF
        self.escalations["chief" if to_chief else "zone"] += 1
        move = decision.move
        await self.event(
            "escalation",
            str(task.task_id),
            level=decision.action.value,
            move=move.value if move is not None else "",
            zone=zone,
        )
        if to_chief:
            return Verdict(
                chief_zone=moves.chief_zone(task.category, task.home_zone, decision.history)
            )
        if move is ZoneMove.ANOTHER_TEAM:
            task.avoid = moves.team_mates(task.category, zone, failed_agents)
        elif move is ZoneMove.BIGGER_AGENT:
            task.critical = True  # every balancer sends critical work to the fastest agent
            task.info = None
        elif move is ZoneMove.ANOTHER_ZONE:
            zone = moves.other_zone(task.category, zone, decision.history)
        return Verdict(self.dispatcher.receive(task, zone, now))

    def due(self, now: float) -> list[Assignment[LiveTask] | None]:
        """Retries whose backoff has passed by *now*, placed (a task done since is skipped)."""
        placed: list[Assignment[LiveTask] | None] = []
        while self._due and self._due[0].at <= now:
            item = heapq.heappop(self._due)
            if not item.task.done:
                placed.append(self.dispatcher.receive(item.task, item.zone, now))
        return placed

    def next_due(self) -> float | None:
        """When the first backoff ends (None: no retry waits)."""
        return self._due[0].at if self._due else None

    @property
    def waiting(self) -> int:
        """Tasks waiting out a backoff (in flight, in no queue)."""
        return sum(1 for item in self._due if not item.task.done)

    # ------------------------------------------------------------------ what is feasible

    @property
    def moves(self) -> EscalationMoves:
        """The escalation's moves over the books as they are now (the simulator's own rule)."""
        d = self.dispatcher
        return EscalationMoves(FleetView(self.router, self._pool, self._known, d.pool_size, d.dark))

    def _pool(self, category: str, zone: str) -> list[Member]:
        return [
            Member(a.agent_id, a.team, a.speed)
            for a in self.books.serving()
            if a.category == category and a.zone == zone
        ]

    def _known(self, agent_id: str) -> Member | None:
        view = self.books.agents.get(agent_id)
        return None if view is None else Member(view.agent_id, view.team, view.speed)
