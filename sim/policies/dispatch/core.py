"""The dispatch core: every dispatch decision, written once, for both shells.

A task reaching the chief is routed to a zone (:meth:`DispatchCore.home_zone`:
its home zone unless nobody there serves its category, or the zone gate
holds the zone out — declared dead, or its breaker open (``zones``); then
the nearest zone that does). The zone
coordinator places it (:meth:`DispatchCore.place`): the scenario's load
balancer picks an agent of the zone's pool with room — for a retry, one not
on the task's avoid list; failing that, a free agent of the nearest other
zone (spill, when the scenario allows it); failing that, the task waits in
the pool's queue, highest priority first, then arrival order. A DAG node
whose largest input sits on one agent goes to that agent first, when it has
a free slot, or room in its local queue and is expected to free a slot
sooner than moving the input elsewhere would take (data locality, as
data-aware workflow schedulers do): the transfer it saves is the time it
would otherwise wait for its input.

An agent whose slot is free asks for queued work (:meth:`DispatchCore.pull_one`):
its own zone's pool first, then the other zones nearest first, skipping
zones that are down (their queue lives in a coordinator nobody can reach)
or have nothing waiting; a retry is never handed to an agent it avoids.

When an agent dies, each task it held is retried within the retry budget
(:meth:`DispatchCore.retry`): dispatched again with the dead agent added to
its avoid list, or failed for good (``retries_exhausted``) once a task has
been dispatched ``budget + 1`` times. A dead zone's queue is evacuated
(:meth:`DispatchCore.evacuate`) in arrival order, as is the queue of a pool
left with no agent while another zone has one
(:meth:`DispatchCore.stranded_pools`). On scale-down the idlest agent of the
pool drains (:meth:`DispatchCore.drain_choice`). A team holding its bulkhead's
limit takes no work — neither placed nor pulled — until a task of its ends
(the books keep the count; see ``books``).

No clock, no I/O: ``now`` comes in, decisions go out as plain returns
(an agent id, a task, a bool) on the hot path and as :class:`Assignment`
records from the composite operations the live coordinator calls
(:meth:`join`, :meth:`route`, :meth:`ended`, ...). The simulator calls the
primitives in between its own timing (latency, coordinator queues, waking
the slots of a reopened team) — the books' order of calls into the balancer
is the same in both.

Live, the composites map the simulator's agent loop onto broker messages:
an agent's first heartbeat is :meth:`join` (its free slots pull at once);
draining, going offline or being declared dead take it out of the pool
(:meth:`drain`, :meth:`gone`); an agent's "pull" is its end report
(:meth:`ended`): the coordinator hands the next queued task to the agent
whose slot just freed, own zone first, then the nearest zones. An
assignment is a message on the agent's own work-queue subject, on its own
zone's stream, wherever the task was routed. The books are the
coordinator's memory only: a coordinator taking over rebuilds them from the
broker's streams (:meth:`adopt` for assignments that survived, :meth:`started`
when an attempt's start names another agent than the books did).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.policies.balancing import LoadBalancer
from sim.policies.dispatch.books import DispatchBooks
from sim.policies.dispatch.types import Assignment, T
from sim.policies.dispatch.zones import ZoneGate
from sim.policies.resilience import BreakerBoard
from sim.policies.routing import ZoneRouter
from sim.policies.types import AgentInfo, TaskInfo

__all__ = ["RETRIES_EXHAUSTED", "DispatchCore"]

#: ``tuple.__new__``: builds a named tuple from all its fields without a Python frame.
_new_tuple = tuple.__new__

#: The reason a task fails for good when its retry budget is spent.
RETRIES_EXHAUSTED = "retries_exhausted"


class DispatchCore(DispatchBooks[T]):
    """Routing, placement, pulls, evacuation, retries and drains (see the module docstring).

    *breakers* holds the zones' circuit breakers (None: they are off); the
    zone gate (:attr:`zones`, see ``zones``) decides with them and the
    health checks' verdicts whether a zone takes work. *retry_budget* is how
    many times a task may be dispatched again after an attempt was lost with
    its agent.
    *frees_in(agent, now)* is the shell's estimate of the seconds until one of
    the agent's slots frees (None: unknown, so a busy holder is never waited
    for).
    """

    def __init__(
        self,
        balancer: LoadBalancer,
        router: ZoneRouter,
        *,
        spill: bool,
        retry_budget: int,
        breakers: BreakerBoard | None = None,
        frees_in: Callable[[str, float], float] | None = None,
        team_limit: int | None = None,
    ) -> None:
        super().__init__(balancer, router.zones, team_limit)
        self.frees_in = frees_in
        self.router = router
        self.spill = spill
        self.retry_budget = retry_budget
        #: Whether each zone takes work: declared dead, or its breaker open (one rule).
        self.zones = ZoneGate(router, breakers)
        #: Zones whose coordinator cannot be reached now, known or not (the gate's; the
        #: router's ``down`` holds the ones held out of routing; both are skipped by pulls).
        self.dark: set[str] = self.zones.dark
        #: Per task id: dispatches it was given back through no fault of its own
        #: (:meth:`requeue`), which the retry budget does not count.
        self.requeued: dict[int, int] = {}

    # ------------------------------------------------------------------ decisions

    def home_zone(self, task: T, now: float) -> str:
        """The chief's zone for *task*: never one the zone gate holds out (``zones``)."""
        home = task.home_zone
        # The router's first rule, asked here first: almost every task stays home.
        if home not in self.router.down and self.balancer.size(home, task.category) > 0:
            return home
        return self.router.home_zone(task.category, home, self.balancer.size)

    def place(self, task: T, zone: str, now: float) -> str | None:
        """The zone coordinator's choice: an agent (not yet booked), or None: queued.

        The agent is of *zone* unless the task spilled to the nearest zone
        with a free agent; its zone says which.
        """
        info = task.info
        if info is None or info.zone != zone:
            # TaskInfo(...) without the named tuple's __new__ frame: every field is given.
            info = task.info = _new_tuple(
                TaskInfo,
                (task.id, task.category, zone, task.affinity_key, task.priority, task.critical),
            )
        if task.near is not None:
            holder = self.near_choice(task, zone, now)
            if holder is not None:
                return holder
        balancer = self.balancer
        avoid = task.avoid
        if avoid is None:
            agent_id = balancer.choose(info, now)
        else:
            agent_id = balancer.choose_excluding(info, now, avoid)
        if agent_id is not None:
            return agent_id
        if self.spill:
            other = self.router.spill_target(task.category, zone, balancer.has_room)
            if other is not None:
                spilled = TaskInfo(
                    task.id, task.category, other, task.affinity_key, task.priority, task.critical
                )
                if avoid is None:
                    agent_id = balancer.choose(spilled, now)
                else:
                    agent_id = balancer.choose_excluding(spilled, now, avoid)
                if agent_id is not None:
                    return agent_id
        self.enqueue(task, zone)
        return None

    def near_choice(self, task: T, zone: str, now: float) -> str | None:
        """The agent holding the task's largest input, if it should run the task (or None).

        It must be in the pool, serve the category, not be avoided, and be in
        *zone* unless tasks may spill. It runs the task when a slot is free, or
        when its local queue has room and a slot is expected to free sooner
        than the input would take to move.
        """
        near = task.near
        if near is None:
            return None  # not a DAG node with its inputs somewhere
        agent_id, transfer_s = near
        info = self.members.get(agent_id)
        if info is None or info.category != task.category:
            return None
        if info.zone != zone and not self.spill:
            return None
        avoid = task.avoid
        if avoid is not None and agent_id in avoid:
            return None
        load = self.load(agent_id)
        if load < info.slots:
            return agent_id
        frees_in = self.frees_in
        if load < info.capacity and frees_in is not None and frees_in(agent_id, now) < transfer_s:
            return agent_id
        return None

    def pull_one(self, agent_id: str, zone: str, category: str) -> tuple[T, str] | None:
        """Queued work for one free slot of *agent_id*: (task, the zone it waited in), or None.

        The task leaves the queue but is not yet booked on the agent.
        """
        queued_in = self.queued_in
        if queued_in[zone]:
            task = self.pop(zone, category, agent_id)
            if task is not None:
                return task, zone
        if not self.spill or zone in self.dark:
            return None
        dark, down = self.dark, self.router.down
        for other in self.router.neighbours[zone]:
            if queued_in[other] and other not in dark and other not in down:
                task = self.pop(other, category, agent_id)
                if task is not None:
                    return task, other
        return None

    def retry(self, task: T, agent_id: str) -> bool:
        """An attempt of *task* was lost with *agent_id*: True to dispatch it again.

        False when the budget is spent (the task fails for good with
        :data:`RETRIES_EXHAUSTED`). A retry avoids the agent that lost it.
        """
        if task.attempt - self.requeued.get(task.id, 0) > self.retry_budget:
            return False
        task.attempt += 1
        avoid = task.avoid
        task.avoid = frozenset((agent_id,)) if avoid is None else avoid | {agent_id}
        return True

    def requeue(self, task: T, agent_id: str) -> None:
        """*task* was taken from *agent_id* through no fault of its own: dispatch it again.

        A spot reclaim is the provider's doing, not the task's, so the new
        attempt is numbered as any other but not charged to the retry budget:
        a task at its budget survives a reclaim. It still avoids the agent.
        """
        self.requeued[task.id] = self.requeued.get(task.id, 0) + 1
        task.attempt += 1
        avoid = task.avoid
        task.avoid = frozenset((agent_id,)) if avoid is None else avoid | {agent_id}

    def drain_choice(self, zone: str, category: str) -> str | None:
        """The agent of the pool to drain on scale-down: the one holding least (then by id)."""
        candidates = [
            (self.load(agent_id), agent_id)
            for agent_id, info in self.agents.items()
            if info.zone == zone and info.category == category and agent_id not in self.draining
        ]
        return min(candidates)[1] if candidates else None

    def drain(self, agent_id: str) -> None:
        """The agent drains: out of the pool; it finishes what it holds."""
        self.draining.add(agent_id)
        self.withdraw(agent_id)

    def evacuate(self, zone: str, category: str | None = None) -> list[T]:
        """The tasks waiting in a dead zone (or one stranded pool) that move, in arrival order."""
        return self.take_queued(zone, category)

    def stranded_pools(self) -> list[tuple[str, str]]:
        """Pools with waiting tasks and no agent while another live zone has the category."""
        down = self.router.down
        size = members = self.balancer.size
        if self.closed_teams:
            # A full team's agents are out of the pool, not gone: their pool is staffed.
            full = {
                (info.zone, info.category)
                for agent_id, info in self.agents.items()
                if info.team in self.closed_teams and agent_id not in self.draining
            }

            def staffed(zone: str, category: str) -> int:
                return members(zone, category) or int((zone, category) in full)

            size = staffed
        pools = {(entry[3], entry[2].category) for entry in self.waiting.values()}
        out = []
        for zone, category in sorted(pools):
            empty = zone in down or size(zone, category) == 0
            if empty and any(
                size(other, category) > 0
                for other in self.router.zones
                if other != zone and other not in down
            ):
                out.append((zone, category))
        return out

    def mark_dark(self, zone: str, dark: bool) -> None:
        """The zone's coordinator became unreachable (or reachable again): calls to it fail."""
        self.zones.mark_dark(zone, dark)

    # ------------------------------------------------------------------ live composites

    def pool_size(self, zone: str, category: str) -> int:
        return self.balancer.size(zone, category)

    def join(self, info: AgentInfo) -> list[Assignment[T]]:
        """An agent joins its pool; its free slots take queued work at once.

        A newcomer to a team at its bulkhead's limit is enrolled only: it
        joins the pool when the team has room again.
        """
        self.enroll(info)
        if self.team_closed(info.agent_id):
            return []
        self.admit(info, report_load=self.load(info.agent_id) > 0)
        return self.pull(info.agent_id)

    def gone(self, agent_id: str) -> list[T]:
        """The agent is dead or offline: out of the fleet; the tasks it held, by id.

        Its team's count drops by what it held (which may reopen the team:
        see :meth:`wake_reopened`).
        """
        self.withdraw(agent_id)
        self._leave_team(agent_id)
        self.agents.pop(agent_id, None)
        self.draining.discard(agent_id)
        return self.take_all(agent_id)

    def route(self, task: T, now: float) -> Assignment[T] | None:
        """The chief's zone choice, then the zone coordinator's; None: the task is queued."""
        return self.receive(task, self.home_zone(task, now), now)

    def receive(self, task: T, zone: str, now: float) -> Assignment[T] | None:
        """Place the task on an agent of *zone*, spill it to a free one elsewhere, or queue it."""
        task.zone = zone
        agent_id = self.place(task, zone, now)
        return None if agent_id is None else self._assign(task, agent_id)

    def adopt(self, task: T, agent_id: str) -> None:
        """A takeover found *task* on *agent_id*'s subject: book it there, send nothing."""
        self._move(task, agent_id)

    def restore_order(self, reached: Callable[[str], float]) -> None:
        """A takeover rebuilt these books (agents joined by id, what each holds adopted): the
        balancer puts agents of equal load back in the order they reached it, *reached*
        (agent) saying when, as books that never restarted hold them."""
        self.balancer.restore_order(reached)

    def started(self, task: T, agent_id: str) -> None:
        """An attempt started: whoever reports it holds the task (a takeover may not know)."""
        if self.holder.get(task.id) != agent_id:
            self._move(task, agent_id)

    def ended(self, task_id: int, agent_id: str) -> list[Assignment[T]]:
        """An attempt ended on *agent_id*: the task is out; the free slot pulls the next.

        Any copy of the task still waiting leaves the queue too (the agent
        was wrongly declared dead and its task queued again: it ran once).
        """
        self.release_id(task_id, agent_id)
        self.unqueue(task_id)
        out = self.pull(agent_id) if agent_id in self.members else []
        return out + self.wake_reopened()

    def wake_reopened(self) -> list[Assignment[T]]:
        """Queued work for the free slots of teams' members that may pull again.

        As the simulator wakes their sleeping slots: after the slot whose end
        reopened the team has pulled, each member in join order.
        """
        out: list[Assignment[T]] = []
        for agent_id in self.take_reopened():
            if agent_id in self.members:
                out.extend(self.pull(agent_id))
        return out

    def pull(self, agent_id: str) -> list[Assignment[T]]:
        """Queued work for the agent's free slots, then its load reported.

        As the simulator's slots do: a slot that finds its agent's local
        queue non-empty takes from it (the agent holds more than its slots);
        a free slot pulls (:meth:`pull_one`) until it finds nothing.
        """
        info = self.members[agent_id]
        out: list[Assignment[T]] = []
        if self.team_closed(agent_id):
            return out  # its team is at its limit: the slots wait to be woken, report nothing
        while self.load(agent_id) < info.slots:
            found = self.pull_one(agent_id, info.zone, info.category)
            if found is None:
                break
            out.append(self._assign(found[0], agent_id))
            if self.team_closed(agent_id):
                return out  # that task filled the team: the next slot finds it closed
        self.sync(agent_id)
        return out

    def _assign(self, task: T, agent_id: str) -> Assignment[T]:
        # Only pool members are chosen (the balancer's pick, or a member's free slot), and
        # the member's own zone names the work queue the task goes on, wherever it was routed
        # (read first: the task may fill its team, which takes the member out of the pool).
        zone = self.members[agent_id].zone
        self.hold(task, agent_id)
        return Assignment(task, agent_id, zone)

    def _move(self, task: T, agent_id: str) -> None:
        """Book *task* on *agent_id*, taking it from its queue or its previous holder."""
        self.unqueue(task.id)
        previous = self.holder.get(task.id)
        if previous is not None and previous != agent_id:
            self.release(task, previous)
            if previous in self.members:
                self.sync(previous)
        self.hold(task, agent_id)
