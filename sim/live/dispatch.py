"""The live coordinator's dispatch books: the simulator's dispatch path on the wall clock.

This is ``sim.model.coordinator.Dispatcher`` without the simulated network:
a task reaching the coordinator is routed to a zone (``ZoneRouter``), then
the scenario's load balancer (``make_balancer``, the very object the
simulator builds) picks an agent of that zone's pool with room; failing
that, a free agent of the nearest other zone (spill); failing that, the
task waits in the pool's queue (highest priority first, then arrival),
which an agent drains as its slots free. Live, an agent's "pull" is its end
report: the coordinator hands the next queued task to the agent whose slot
just freed, own zone first, then the nearest zones.

The balancer is fed exactly what the simulator feeds it: joins when an
agent's first heartbeat is seen, leaves when it drains, goes offline or is
declared dead, and the number of tasks each agent holds (assigned and not
yet ended) after every assignment and every end report.

No I/O and no clock here: the coordinator passes ``now`` and carries out the
returned assignments (a message on the agent's own work-queue subject). The
books are the coordinator's memory only; a coordinator taking over rebuilds
them from the broker's streams (``adopt`` for assignments that survived).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sim.policies.balancing import LoadBalancer
from sim.policies.routing import ZoneRouter
from sim.policies.types import AgentInfo, TaskInfo


@dataclass
class LiveTask:
    """A task as the live coordinator tracks it (times in scenario seconds)."""

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
    started: bool = False
    done: bool = False


@dataclass(frozen=True)
class Assignment:
    """Send *task* to *agent_id* (its number is ``task.attempts`` before the send)."""

    task: LiveTask
    agent_id: str
    zone: str  # the agent's zone: its work-queue stream carries the task


class Dispatch:
    """Pools, queues and who holds what (see the module docstring)."""

    def __init__(
        self,
        balancer: LoadBalancer,
        router: ZoneRouter,
        *,
        spill: bool,
        allow: Callable[[str, float], bool] | None = None,
    ) -> None:
        self.balancer = balancer
        self.router = router
        self.spill = spill
        #: Whether a zone may receive work now (the circuit breaker's verdict).
        self.allow = allow or (lambda zone, now: True)
        self.members: dict[str, AgentInfo] = {}
        #: Task ids each agent holds: assigned to it and not yet ended.
        self.held: dict[str, set[int]] = {}
        self.holder: dict[int, str] = {}
        self.queues: dict[tuple[str, str], list[tuple[float, int, LiveTask]]] = {}
        self._seq = itertools.count()

    # ------------------------------------------------------------------ membership

    def join(self, info: AgentInfo) -> list[Assignment]:
        """An agent joins its pool; its free slots take queued work at once."""
        self.members[info.agent_id] = info
        self.balancer.agent_joined(info)
        held = self.held.setdefault(info.agent_id, set())
        if held:
            self.balancer.load_changed(info.agent_id, len(held))
        return self.pull(info.agent_id)

    def withdraw(self, agent_id: str) -> None:
        """The agent takes no new work (draining); it still finishes what it holds."""
        if self.members.pop(agent_id, None) is not None:
            self.balancer.agent_left(agent_id)

    def gone(self, agent_id: str) -> list[int]:
        """The agent is dead or offline: the ids of the tasks it held, to be placed anew."""
        self.withdraw(agent_id)
        orphans = self.held.pop(agent_id, set())
        for task_id in orphans:
            if self.holder.get(task_id) == agent_id:
                del self.holder[task_id]
        return sorted(orphans)

    def pool_size(self, zone: str, category: str) -> int:
        return self.balancer.size(zone, category)

    # ------------------------------------------------------------------ tasks

    def route(self, task: LiveTask, now: float) -> Assignment | None:
        """The chief's zone choice, then the zone coordinator's; None: the task is queued."""

        def size(zone: str, category: str) -> int:
            return self.balancer.size(zone, category) if self.allow(zone, now) else 0

        zone = self.router.home_zone(task.category, task.home_zone, size)
        return self.receive(task, zone, now)

    def receive(self, task: LiveTask, zone: str, now: float) -> Assignment | None:
        """Place the task on an agent of *zone*, spill it to a free one elsewhere, or queue it."""
        task.zone = zone
        info = TaskInfo(task.task_id, task.category, zone, None, task.priority, task.critical)
        agent_id = self.balancer.choose(info, now)
        if agent_id is None and self.spill:
            other = self.router.spill_target(task.category, zone, self.balancer.has_room)
            if other is not None:
                spilled = TaskInfo(
                    task.task_id, task.category, other, None, task.priority, task.critical
                )
                agent_id = self.balancer.choose(spilled, now)
        if agent_id is not None:
            return self._assign(task, agent_id)
        heapq.heappush(
            self.queues.setdefault((zone, task.category), []),
            (-task.priority, next(self._seq), task),
        )
        return None

    def adopt(self, task: LiveTask, agent_id: str) -> None:
        """A takeover found *task* on *agent_id*'s subject: book it there, send nothing."""
        self._hold(task.task_id, agent_id)

    def started(self, task: LiveTask, agent_id: str) -> None:
        """An attempt started: whoever reports it holds the task (a takeover may not know)."""
        if task.done or self.holder.get(task.task_id) == agent_id:
            return
        self._release(task.task_id)
        self._hold(task.task_id, agent_id)

    def ended(self, task_id: int, agent_id: str) -> list[Assignment]:
        """An attempt ended on *agent_id*: its slot is free and pulls the next queued task."""
        held = self.held.get(agent_id)
        if held is not None and task_id in held:
            held.discard(task_id)
            if self.holder.get(task_id) == agent_id:
                del self.holder[task_id]
            if agent_id in self.members:
                self.balancer.load_changed(agent_id, len(held))
        if agent_id not in self.members:
            return []
        return self.pull(agent_id)

    def pull(self, agent_id: str) -> list[Assignment]:
        """Queued work for the agent's free slots: its zone first, then the nearest (spill)."""
        info = self.members[agent_id]
        held = self.held.setdefault(agent_id, set())
        out: list[Assignment] = []
        while len(held) < info.slots:
            task = self._pop(info.zone, info.category)
            if task is None and self.spill and info.zone not in self.router.down:
                for other in self.router.neighbours[info.zone]:
                    if other not in self.router.down:
                        task = self._pop(other, info.category)
                        if task is not None:
                            break
            if task is None:
                break
            out.append(self._assign(task, agent_id))
        return out

    def stranded_pools(self) -> list[tuple[str, str]]:
        """Pools with queued tasks and no agent while another zone has one of the category.

        The simulator's ``evacuate``: their tasks go to the nearest staffed zone.
        """
        out = []
        for (zone, category), queue in sorted(self.queues.items()):
            if not any(self._waiting(entry[2]) for entry in queue):
                continue
            empty = self.balancer.size(zone, category) == 0 or zone in self.router.down
            if empty and any(
                self.balancer.size(z, category) > 0
                for z in self.router.zones
                if z != zone and z not in self.router.down
            ):
                out.append((zone, category))
        return out

    def evacuate(self, zone: str, category: str) -> list[LiveTask]:
        """Empty the pool's queue; the caller routes each task again (in arrival order)."""
        queue = self.queues.pop((zone, category), [])
        return sorted((e[2] for e in queue if self._waiting(e[2])), key=lambda t: t.task_id)

    def queued(self) -> int:
        return sum(1 for q in self.queues.values() for e in q if self._waiting(e[2]))

    # ------------------------------------------------------------------ internals

    def _waiting(self, task: LiveTask) -> bool:
        return not task.done and task.task_id not in self.holder

    def _pop(self, zone: str, category: str) -> LiveTask | None:
        queue = self.queues.get((zone, category))
        while queue:
            task = heapq.heappop(queue)[2]
            if self._waiting(task):  # a takeover may have found it held already
                return task
        return None

    def _assign(self, task: LiveTask, agent_id: str) -> Assignment:
        self._hold(task.task_id, agent_id)
        # Only pool members are chosen (the balancer's pick, or a member's free slot), and
        # the member's own zone names the stream the task goes on, wherever it was routed.
        return Assignment(task, agent_id, self.members[agent_id].zone)

    def _hold(self, task_id: int, agent_id: str) -> None:
        held = self.held.setdefault(agent_id, set())
        held.add(task_id)
        self.holder[task_id] = agent_id
        if agent_id in self.members:
            self.balancer.load_changed(agent_id, len(held))

    def _release(self, task_id: int) -> None:
        agent_id = self.holder.pop(task_id, None)
        if agent_id is None:
            return
        held = self.held.get(agent_id)
        if held is not None:
            held.discard(task_id)
            if agent_id in self.members:
                self.balancer.load_changed(agent_id, len(held))
