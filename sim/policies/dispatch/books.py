"""The dispatch books: pool queues, who holds which task, and the balancer's view of load.

Every task the dispatch core has been given is, at any moment, in exactly
one of three places: *queued* in its pool's queue, *held* by one agent
(assigned and not yet ended, wherever it physically is: on its way, in the
agent's local queue, being fetched or served), or *out* of the books (done,
failed, or between a lost attempt and its next dispatch — the shell's
business). The conservation property tests check that.

Pool queues
    One heap per (zone, category) pool, entries ``(-priority, seq, task)``:
    highest priority first, then arrival order (``seq`` counts every push).
    Entries are removed lazily: a task taken out of the queue by something
    other than a pop (a takeover found it held, it ended elsewhere) stays in
    the heap until it reaches the top and is skipped. ``queued_in`` counts
    the *waiting* tasks of each zone, so a zone with nothing waiting is
    skipped without a look at its heaps.

Holdings
    ``held[agent]`` maps task ids to tasks; ``holder`` maps each held task
    to its agent. An agent's load is the size of its holding.

The balancer's view of load
    The balancer hears an agent's load only when a shell *syncs* it, and
    only when it differs from what it last heard (``reported``). The
    simulator syncs when an assignment is made, when a slot takes work from
    the agent's local queue, and when a slot looks for queued work and finds
    none — not when a task ends: a slot that ends one task and pulls the next
    leaves the load where it was, and the balancer never sees the dip. That
    timing is part of the decision (it decides ties), so both shells keep it:
    :meth:`release` never syncs, :meth:`sync` and :meth:`hold` do.

The team bulkhead (``policies.team_limit``)
    A team whose agents hold *team_limit* tasks between them takes no more
    work until one ends: the books count every task held by a team's agents
    (:meth:`hold` adds, :meth:`release` and :meth:`take_all` subtract, so no
    shell can forget a move), and the count crossing the limit is the rule.
    Reaching it withdraws the team's members from the pool and stops their
    slots pulling (:meth:`team_closed`); dropping below it admits them again,
    reporting their load, and lists the members other than the one whose
    change reopened it in :attr:`reopened`, in join order: their free slots
    may pull queued work now (the shell wakes them). Members draining, or
    known by the shell not to answer (:attr:`unreachable`: crashed, not yet
    declared dead; their breaker's business), are neither withdrawn nor
    admitted.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic

from sim.policies.balancing import LoadBalancer
from sim.policies.dispatch.types import T
from sim.policies.types import AgentInfo

__all__ = ["AgentBooks", "DispatchBooks"]

#: A heap entry: (-priority, push number, task, zone); the push number settles every tie.
_Entry = tuple[float, int, T, str]


class AgentBooks(Generic[T]):
    """One agent's holding and the load the balancer last heard for it."""

    __slots__ = ("held", "reported")

    def __init__(self) -> None:
        self.held: dict[int, T] = {}
        self.reported = 0


class DispatchBooks(Generic[T]):
    """Queues, holdings and pool membership (see the module docstring)."""

    def __init__(
        self, balancer: LoadBalancer, zones: tuple[str, ...], team_limit: int | None = None
    ) -> None:
        self.balancer = balancer
        #: Agents of the fleet (joined, not gone or left), whether in the pool or not.
        self.agents: dict[str, AgentInfo] = {}
        #: Agents in the balancer's pool: eligible for new work.
        self.members: dict[str, AgentInfo] = {}
        #: Agents draining: they finish what they hold and take nothing new.
        self.draining: set[str] = set()
        self.books: dict[str, AgentBooks[T]] = {}
        self.holder: dict[int, str] = {}
        self.queues: dict[tuple[str, str], list[_Entry[T]]] = {}
        #: Waiting tasks by id: their live heap entry (any other entry of theirs is stale).
        self.waiting: dict[int, _Entry[T]] = {}
        self.queued_in: dict[str, int] = dict.fromkeys(zones, 0)
        self._seq = itertools.count()
        #: The team bulkhead: most tasks one team's agents hold at once (None: no limit).
        self.team_limit = team_limit
        #: Each team's enrolled agents, in join order, and the tasks they hold between them;
        #: each agent's team, kept after it leaves (a task it held may end later).
        self.teams: dict[str, list[str]] = {}
        self.team_of: dict[str, str] = {}
        self.team_load: dict[str, int] = {}
        #: Teams at their limit: their members are out of the pool and do not pull.
        self.closed_teams: set[str] = set()
        #: Agents the shell knows do not answer (crashed, not yet declared dead).
        self.unreachable: set[str] = set()
        #: Members of reopened teams whose free slots may pull now, oldest first (the
        #: shell takes them; see the module docstring).
        self.reopened: list[str] = []

    # ------------------------------------------------------------------ membership

    def enroll(self, info: AgentInfo) -> None:
        """The agent is part of the fleet (not yet, or not necessarily, in the pool)."""
        self.agents[info.agent_id] = info
        self.draining.discard(info.agent_id)
        self.unreachable.discard(info.agent_id)
        if info.agent_id not in self.books:
            self.books[info.agent_id] = AgentBooks()
        if self.team_limit is not None and info.team:
            self.team_of[info.agent_id] = info.team
            members = self.teams.setdefault(info.team, [])
            if info.agent_id not in members:
                members.append(info.agent_id)

    def admit(self, info: AgentInfo, *, report_load: bool = False) -> None:
        """Put the agent in the balancer's pool; *report_load*: tell the balancer its load.

        Without *report_load* the balancer starts the agent at zero load and
        the books keep the figure they last reported (the simulator's breaker
        probe does this; the team bulkhead's reopening reports).
        """
        agent_id = info.agent_id
        self.members[agent_id] = info
        self.balancer.agent_joined(info)
        if report_load:
            books = self.books.get(agent_id)
            if books is None:
                books = self.books[agent_id] = AgentBooks()
            books.reported = len(books.held)
            self.balancer.load_changed(agent_id, books.reported)

    def withdraw(self, agent_id: str) -> None:
        """Out of the balancer's pool (draining, bulkhead full, breaker open, dead)."""
        self.members.pop(agent_id, None)
        self.balancer.agent_left(agent_id)

    def leave(self, agent_id: str) -> None:
        """The agent is out of the fleet (stopped after draining); its books stay while it holds."""
        self._leave_team(agent_id)
        self.agents.pop(agent_id, None)
        self.members.pop(agent_id, None)
        self.draining.discard(agent_id)
        books = self.books.get(agent_id)
        if books is not None and not books.held:
            del self.books[agent_id]

    # ------------------------------------------------------------------ the team bulkhead

    def team_closed(self, agent_id: str) -> bool:
        """Whether the agent's team is at its limit (its slots do not pull, it is not admitted)."""
        return bool(self.closed_teams) and self.team_of.get(agent_id) in self.closed_teams

    def _leave_team(self, agent_id: str) -> None:
        members = self.teams.get(self.team_of.get(agent_id, ""))
        if members is not None and agent_id in members:
            members.remove(agent_id)
        self.unreachable.discard(agent_id)

    def _team_moved(self, agent_id: str, delta: int) -> None:
        """The agent's team holds *delta* tasks more: close or reopen it at the limit."""
        limit = self.team_limit
        team = self.team_of.get(agent_id)
        if limit is None or team is None:
            return
        before = self.team_load.get(team, 0)
        after = before + delta
        self.team_load[team] = after
        if after >= limit > before:
            self.closed_teams.add(team)
            for member in self.teams.get(team, ()):
                if member not in self.draining and member not in self.unreachable:
                    self.withdraw(member)
        elif before >= limit > after:
            self.closed_teams.discard(team)
            for member in self.teams.get(team, ()):
                if member not in self.draining and member not in self.unreachable:
                    self.admit(self.agents[member], report_load=True)
                    if member != agent_id:
                        self.reopened.append(member)

    def take_reopened(self) -> list[str]:
        """Members of reopened teams whose free slots may pull now (see :attr:`reopened`)."""
        reopened, self.reopened = self.reopened, []
        return reopened

    # ------------------------------------------------------------------ holdings

    def load(self, agent_id: str) -> int:
        """Tasks the agent holds."""
        books = self.books.get(agent_id)
        return len(books.held) if books is not None else 0

    def holding(self, agent_id: str) -> list[T]:
        """The tasks the agent holds, by id."""
        books = self.books.get(agent_id)
        return sorted(books.held.values(), key=_task_id) if books is not None else []

    def take(self, task: T, agent_id: str) -> None:
        """Book *task* on *agent_id* without telling the balancer (see :meth:`sync`)."""
        books = self.books.get(agent_id)
        if books is None:
            books = self.books[agent_id] = AgentBooks()
        books.held[task.id] = task
        self.holder[task.id] = agent_id
        if self.team_limit is not None:
            self._team_moved(agent_id, +1)

    def hold(self, task: T, agent_id: str) -> None:
        """Book *task* on *agent_id* and report the agent's new load."""
        books = self.books.get(agent_id)
        if books is None:
            books = self.books[agent_id] = AgentBooks()
        held = books.held
        held[task.id] = task
        self.holder[task.id] = agent_id
        n = len(held)
        if n != books.reported:
            books.reported = n
            self.balancer.load_changed(agent_id, n)
        if self.team_limit is not None:
            self._team_moved(agent_id, +1)

    def sync(self, agent_id: str) -> int:
        """Report the agent's load to the balancer if it changed since the last report; the load."""
        books = self.books[agent_id]
        n = len(books.held)
        if n != books.reported:
            books.reported = n
            self.balancer.load_changed(agent_id, n)
        return n

    def release(self, task: T, agent_id: str) -> bool:
        """The agent no longer holds *task* (ended, lost, moved); the balancer hears it later."""
        books = self.books.get(agent_id)
        if books is None or books.held.pop(task.id, None) is None:
            return False
        del self.holder[task.id]
        if self.team_limit is not None:
            self._team_moved(agent_id, -1)
        return True

    def release_id(self, task_id: int, agent_id: str) -> bool:
        """:meth:`release` by the task's id (a result may name a task the books never saw)."""
        books = self.books.get(agent_id)
        if books is None or books.held.pop(task_id, None) is None:
            return False
        del self.holder[task_id]
        if self.team_limit is not None:
            self._team_moved(agent_id, -1)
        return True

    def take_all(self, agent_id: str) -> list[T]:
        """Everything the agent held, by id; its books are closed (its team's count drops)."""
        books = self.books.pop(agent_id, None)
        if books is None:
            return []
        holder = self.holder
        for task_id in books.held:
            del holder[task_id]
        if self.team_limit is not None and books.held:
            self._team_moved(agent_id, -len(books.held))
        return sorted(books.held.values(), key=_task_id)

    # ------------------------------------------------------------------ queues

    def enqueue(self, task: T, zone: str) -> None:
        """The task waits in its (zone, category) pool's queue."""
        if task.id in self.waiting:
            self.unqueue(task.id)  # queued again elsewhere: the old entry goes stale
        key = (zone, task.category)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = []
        entry = (-task.priority, next(self._seq), task, zone)
        heapq.heappush(queue, entry)
        self.waiting[task.id] = entry
        self.queued_in[zone] += 1

    def unqueue(self, task_id: int) -> bool:
        """Take a task out of the waiting books without popping it (its heap entry goes stale)."""
        entry = self.waiting.pop(task_id, None)
        if entry is None:
            return False
        self.queued_in[entry[3]] -= 1
        return True

    def pop(self, zone: str, category: str, agent_id: str) -> T | None:
        """The pool's first waiting task that *agent_id* may take, or None.

        A retry must go to someone else than the agents it avoids: when the
        head avoids *agent_id* the next task is taken instead, the head
        staying queued; when both avoid it, nothing is taken.
        """
        queue = self.queues.get((zone, category))
        if not queue:
            return None
        waiting = self.waiting
        while waiting.get(queue[0][2].id) is not queue[0]:
            heapq.heappop(queue)  # stale: held, ended or queued again elsewhere
            if not queue:
                return None
        entry = heapq.heappop(queue)
        task = entry[2]
        avoid = task.avoid
        if avoid is not None and agent_id in avoid:
            while queue and waiting.get(queue[0][2].id) is not queue[0]:
                heapq.heappop(queue)
            if not queue or agent_id in (queue[0][2].avoid or ()):
                heapq.heappush(queue, entry)
                return None
            task = heapq.heapreplace(queue, entry)[2]
        del waiting[task.id]
        self.queued_in[zone] -= 1
        return task

    def pool_waiting(self, zone: str, category: str) -> list[T]:
        """The pool's waiting tasks in the order they would be taken."""
        queue = self.queues.get((zone, category), [])
        live = [entry for entry in queue if self.waiting.get(entry[2].id) is entry]
        return [entry[2] for entry in sorted(live, key=_order)]

    def pool_queued(self, zone: str, category: str) -> int:
        """How many tasks wait in the pool's queue."""
        waiting = self.waiting
        queue = self.queues.get((zone, category), ())
        return sum(1 for entry in queue if waiting.get(entry[2].id) is entry)

    def queued(self) -> int:
        """Tasks waiting in every pool's queue."""
        return len(self.waiting)

    def take_queued(self, zone: str, category: str | None = None) -> list[T]:
        """Empty the zone's queues (one pool's, with *category*); the tasks by id."""
        keys = [
            key
            for key in self.queues
            if key[0] == zone and (category is None or key[1] == category)
        ]
        moved: list[T] = []
        for key in keys:
            for entry in self.queues.pop(key):
                if self.waiting.get(entry[2].id) is entry:
                    self.unqueue(entry[2].id)
                    moved.append(entry[2])
        return sorted(moved, key=_task_id)


def _order(entry: _Entry[T]) -> tuple[float, int]:
    return entry[0], entry[1]


def _task_id(task: T) -> int:
    return task.id
