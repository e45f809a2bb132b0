"""Static schedules of one task graph on a set of agents: HEFT, and greedy FIFO to compare with.

A scheduler's makespan means little alone; it means something beside the
lower bound (:func:`sim.policies.dag.makespan_lower_bound`) and beside the
simplest schedule anyone would write. This module holds both schedules the
validation suite compares the simulator with:

* :func:`heft_schedule` — Heterogeneous Earliest Finish Time (Topcuoglu,
  Hariri and Wu, IEEE TPDS 13(3), 2002): tasks in descending upward rank, each
  on the agent where it finishes earliest, by default allowed into an idle gap
  between two tasks already on that agent (the paper's insertion-based policy).
* :func:`greedy_schedule` — plain greedy FIFO list scheduling: tasks in the
  order they became ready, each to the first free agent, no look-ahead;
  optionally paying a dispatcher's messages (:class:`ControlPath`), the
  like-for-like reference for a dynamic dispatcher such as the simulator's.

Both are pure functions of the graph, the agents (in the order given) and a
transfer-time function; ties are broken the same way every time, so the same
inputs always give the same schedule. Categories are ignored: every agent may
run every task. Times are float seconds.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sim.policies.dag import Dag, DagIndex, checked_index, rank_nodes, zero_transfer

__all__ = ["AgentSlot", "ControlPath", "Schedule", "greedy_schedule", "heft_schedule"]

#: transfer_s(data_mb, from_zone, to_zone) -> seconds to move an edge's data between two agents.
TransferFn = Callable[[float, str, str], float]


@dataclass(frozen=True)
class AgentSlot:
    """An agent a schedule may place tasks on: its relative speed and the zone it sits in.

    ``category``: the only task category it serves (empty: it serves every
    category, as the validation fleets do). HEFT places a task only on agents
    that serve its category.
    """

    agent_id: str
    speed: float
    zone: str
    category: str = ""


@dataclass(frozen=True)
class Schedule:
    """A static schedule: where each task runs, when it starts and finishes, and the makespan.

    ``sequence`` is the order in which the scheduler placed the tasks (HEFT's
    rank order; greedy's dispatch order), which is what one needs to replay or
    compare two schedulers' decisions step by step.
    """

    placement: Mapping[int, str]
    start: Mapping[int, float]
    finish: Mapping[int, float]
    makespan: float
    sequence: tuple[int, ...] = ()


def _check_agents(agents: Sequence[AgentSlot], who: str) -> None:
    if not agents:
        raise ValueError(f"{who} needs at least one agent")
    for a in agents:
        if not a.speed > 0.0:
            raise ValueError(f"agent {a.agent_id!r} has non-positive speed {a.speed!r}")


def _mean_transfer(agents: Sequence[AgentSlot], transfer_s: TransferFn) -> Callable[[float], float]:
    """HEFT's mean communication cost of an edge, over ordered pairs of distinct agents.

    Agents in the same zone cost the same, so the mean is taken over zone
    pairs weighted by how many agent pairs each stands for: a 200-agent fleet
    in three zones needs nine calls per edge, not 39,800.
    """
    n = len(agents)
    if n < 2:
        return zero_transfer
    count: dict[str, int] = {}
    for a in agents:
        count[a.zone] = count.get(a.zone, 0) + 1
    pairs: list[tuple[str, str, float]] = []
    for za, ca in count.items():
        for zb, cb in count.items():
            k = ca * (cb - 1) if za == zb else ca * cb
            if k:
                pairs.append((za, zb, k / (n * (n - 1))))

    def mean(mb: float) -> float:
        return sum(wt * transfer_s(mb, za, zb) for za, zb, wt in pairs)

    return mean


class _Timeline:
    """One agent's booked tasks as sorted busy intervals, for HEFT's gap search.

    Intervals never overlap, so sorting them by start sorts their finishes
    too; ``finishes`` can then be bisected to skip, in O(log k), every
    interval that ends before a task's inputs are ready. ``gaps`` keeps the
    lengths of the idle stretches before each interval, sorted, so a task
    longer than the longest of them goes straight to the end instead of
    walking every gap of a busy agent (most tasks, once agents fill up).
    """

    __slots__ = ("finishes", "gaps", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.finishes: list[float] = []
        self.gaps: list[float] = []

    def last_finish(self) -> float:
        return self.finishes[-1] if self.finishes else 0.0

    def earliest_gap(self, ready: float, duration: float) -> tuple[float, int]:
        """The earliest start >= *ready* where *duration* fits, and where the booking goes.

        The candidate before the first interval still running at *ready*
        starts at *ready* itself; each later candidate starts when an interval
        ends. A gap fits when the task ends no later than the next interval
        starts (touching is allowed). Past the last interval everything fits.
        """
        starts, finishes = self.starts, self.finishes
        n = len(starts)
        if not n or duration > self.gaps[-1]:
            return max(ready, self.last_finish()), n  # no idle stretch is long enough
        k = bisect_right(finishes, ready)
        begin = ready
        while k < n:
            if begin + duration <= starts[k]:
                return begin, k
            begin = max(finishes[k], ready)
            k += 1
        return begin, n

    def book(self, index: int, start: float, finish: float) -> None:
        starts, finishes, gaps = self.starts, self.finishes, self.gaps
        before = finishes[index - 1] if index else 0.0
        if index < len(starts):
            # The gap this booking splits: the same operands give the same float to remove.
            del gaps[bisect_left(gaps, starts[index] - before)]
            insort(gaps, starts[index] - finish)
        insort(gaps, start - before)
        starts.insert(index, start)
        finishes.insert(index, finish)


def heft_schedule(
    dag: Dag,
    agents: Sequence[AgentSlot],
    transfer_s: TransferFn,
    *,
    insertion: bool = True,
) -> Schedule:
    """Static HEFT list scheduling (Topcuoglu, Hariri and Wu, 2002).

    Tasks are taken in descending upward rank, computed at the agents' mean
    speed and mean transfer cost (ties in topological order, so a task never
    precedes a predecessor). Each is placed on the agent where it would
    finish earliest: it may start once every predecessor's output has arrived,
    a transfer of ``transfer_s(data_mb, from_zone, to_zone)`` being paid only
    when the predecessor ran on a different agent.

    With *insertion* (the default, the paper's policy) a task takes the
    earliest idle gap on the agent that is long enough, even one between two
    tasks booked earlier; without it, a task is appended after the agent's
    last task. Waiting for transfers leaves such gaps, and on real workflows
    filling them is what keeps HEFT ahead of greedy FIFO scheduling.

    An agent with a ``category`` takes only tasks of that category; a task
    no agent serves raises ValueError.

    Insertion never delays the task being placed (each agent's insertion start
    is at most its append start), but it is a greedy choice: a different
    placement changes what later tasks see, so insertion can lose to append
    on some graphs. Ties go to the earliest finish, then the agent listed first.
    """
    _check_agents(agents, "heft_schedule")
    ix, order = checked_index(dag)
    mean_speed = math.fsum(a.speed for a in agents) / len(agents)
    rank = rank_nodes(ix, order, _mean_transfer(agents, transfer_s), mean_speed)
    topo_pos = {nid: i for i, nid in enumerate(order)}
    sequence = sorted(order, key=lambda n: (-rank[n], topo_pos[n]))
    placer = _HeftPlacer(dag, agents, transfer_s, insertion)
    for nid in sequence:
        placer.place(nid, ix.pred[nid], ix.work[nid])
    return Schedule(
        placement={nid: agents[placer.where[nid]].agent_id for nid in order},
        start={nid: placer.start[nid] for nid in order},
        finish={nid: placer.finish[nid] for nid in order},
        makespan=max(placer.finish.values(), default=0.0),
        sequence=tuple(sequence),
    )


class _HeftPlacer:
    """HEFT's placement step and what it has decided so far.

    Holds each agent's booked timeline and where and when every placed task
    runs; :meth:`place` puts one more task (its predecessors already placed)
    where it finishes earliest.
    """

    def __init__(
        self, dag: Dag, agents: Sequence[AgentSlot], transfer_s: TransferFn, insertion: bool
    ) -> None:
        self.dag_name = dag.name
        self.agents = agents
        self.transfer_s = transfer_s
        self.insertion = insertion
        self.zones = sorted({a.zone for a in agents})
        self.category = {n.node_id: n.category for n in dag.nodes}
        self.typed = any(a.category for a in agents)
        self.lines = [_Timeline() for _ in agents]
        self.where: dict[int, int] = {}
        self.start: dict[int, float] = {}
        self.finish: dict[int, float] = {}

    def place(self, nid: int, preds: Sequence[tuple[int, float]], work: float) -> None:
        """Book *nid* on the agent where it finishes earliest (ties: the agent listed first)."""
        arrive_zone = self._arrival_by_zone(preds)
        # Agents that ran a predecessor get that input for free.
        hosts = {self.where[src] for src, _mb in preds}
        best_i = best_at = -1
        best_start = best_finish = math.inf
        for i, agent in enumerate(self.agents):
            if self.typed and agent.category and agent.category != self.category[nid]:
                continue  # a specialist of another kind
            ready = self._ready_on_host(i, preds) if i in hosts else arrive_zone[agent.zone]
            duration = work / agent.speed
            s, at = self._slot(self.lines[i], ready, duration)
            f = s + duration
            if f < best_finish:
                best_i, best_at, best_start, best_finish = i, at, s, f
        if best_i < 0:
            raise ValueError(
                f"dag {self.dag_name!r}: no agent serves node {nid} ({self.category[nid]!r})"
            )
        self.lines[best_i].book(best_at, best_start, best_finish)
        self.where[nid] = best_i
        self.start[nid] = best_start
        self.finish[nid] = best_finish

    def _arrival_by_zone(self, preds: Sequence[tuple[int, float]]) -> dict[str, float]:
        """When all inputs reach an agent that holds none of them, per zone (zones are few)."""
        arrive_zone: dict[str, float] = {}
        for z in self.zones:
            t = 0.0
            for src, mb in preds:
                t = max(
                    t, self.finish[src] + self.transfer_s(mb, self.agents[self.where[src]].zone, z)
                )
            arrive_zone[z] = t
        return arrive_zone

    def _ready_on_host(self, i: int, preds: Sequence[tuple[int, float]]) -> float:
        """When all inputs reach agent *i*, which ran some of the predecessors itself."""
        agent = self.agents[i]
        ready = 0.0
        for src, mb in preds:
            j = self.where[src]
            cost = 0.0 if j == i else self.transfer_s(mb, self.agents[j].zone, agent.zone)
            ready = max(ready, self.finish[src] + cost)
        return ready

    def _slot(self, line: _Timeline, ready: float, duration: float) -> tuple[float, int]:
        """Start and booking index on *line*: the earliest fitting gap, or after its last task."""
        if self.insertion:
            return line.earliest_gap(ready, duration)
        return max(line.last_finish(), ready), len(line.starts)


@dataclass(frozen=True)
class ControlPath:
    """What a dynamic dispatcher's messages cost, in seconds, for :func:`greedy_schedule`.

    A static plan is handed out before anything runs, so the planners pay
    only data transfers; a dispatcher that decides as tasks finish pays its
    messages too, and a scheduler is only comparable with another that pays
    the same. The four legs of the simulator's hierarchy:

    * ``report_s`` — a task's end until the dispatcher knows (its completion
      report; the job ends when the last one arrives);
    * ``route_s`` — a released task from the dispatcher to the queue agents
      are served from (chief to zone coordinator);
    * ``assign_s`` — from that queue to an idle agent (pushed);
    * ``pull_s`` — an agent that frees while work waits: its request for the
      queue's head and the answer (pulled).
    """

    report_s: float = 0.0
    route_s: float = 0.0
    assign_s: float = 0.0
    pull_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("report_s", "route_s", "assign_s", "pull_s"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"ControlPath.{name} must be finite and >= 0, got {value!r}")


def greedy_schedule(
    dag: Dag,
    agents: Sequence[AgentSlot],
    transfer_s: TransferFn,
    control: ControlPath | None = None,
) -> Schedule:
    """Greedy FIFO list scheduling: the reference any scheduler must beat.

    Time moves from one event to the next. Whenever a task is ready (all
    its predecessors done) and an agent is free, the task that became ready
    first goes to the free agent listed first — no ranks, no look-ahead, no
    preference for the agent that holds its inputs. The agent then fetches
    the inputs that other agents produced (the slowest transfer, paid from
    the moment the task reaches it, as a dynamic dispatcher's agent would)
    and serves the task. Tasks that become ready at the same instant queue in
    the order their predecessors completed, then by id.

    With *control* the dispatcher pays its messages (see :class:`ControlPath`):
    a task joins the queue ``report_s + route_s`` after its last predecessor
    ends (entry tasks ``route_s`` after the job's release at 0); it reaches an
    idle agent ``assign_s`` after it joined, or an agent that frees while it
    waits ``pull_s`` after that agent freed; the makespan is the last
    completion report's arrival. Without it (or with every leg 0) this is
    the textbook schedule, where decisions cost nothing.
    """
    _check_agents(agents, "greedy_schedule")
    ix, _order = checked_index(dag)
    run = _GreedyRun(ix, agents, transfer_s, control if control is not None else ControlPath())
    run.play()
    return Schedule(
        placement={nid: agents[run.where[nid]].agent_id for nid in ix.ids},
        start={nid: run.start[nid] for nid in ix.ids},
        finish={nid: run.finish[nid] for nid in ix.ids},
        makespan=max(run.finish.values(), default=0.0) + (run.ctl.report_s if run.finish else 0.0),
        sequence=tuple(run.sequence),
    )


class _GreedyRun:
    """One run of greedy FIFO scheduling, moved from event to event by :meth:`play`.

    Three queues carry the state: tasks on their way to the ready queue
    (``joining``, by the time they join), the ready queue itself (FIFO), and
    the tasks running (``running``, by finish); free agents wait in a heap so
    the agent listed first is always taken first.
    """

    def __init__(
        self, ix: DagIndex, agents: Sequence[AgentSlot], transfer_s: TransferFn, ctl: ControlPath
    ) -> None:
        self.ix = ix
        self.agents = agents
        self.transfer_s = transfer_s
        self.ctl = ctl
        #: A finished task to its successors joining the queue: its report, then their route.
        self.release_s = ctl.report_s + ctl.route_s
        self.missing = {nid: len(ps) for nid, ps in ix.pred.items()}
        # Tasks on their way to the queue: (time they join it, sequence no., node).
        self.joining: list[tuple[float, int, int]] = []
        self.joined = 0
        self.ready: deque[int] = deque()
        self.free = list(range(len(agents)))  # ascending: already a heap
        self.freed_at = [-math.inf] * len(
            agents
        )  # when each agent last freed (idle from the start)
        self.running: list[tuple[float, int, int, int]] = []  # (finish, dispatch no., agent, node)
        self.where: dict[int, int] = {}
        self.start: dict[int, float] = {}
        self.finish: dict[int, float] = {}
        self.sequence: list[int] = []

    def play(self) -> None:
        """Release the entry tasks, then alternate dispatching and completing until all ran."""
        for nid in self.ix.ids:
            if self.missing[nid] == 0:
                self._send_to_queue(self.ctl.route_s, nid)
        joining, running = self.joining, self.running
        now = joining[0][0] if joining else 0.0
        while True:
            while joining and joining[0][0] <= now:
                self.ready.append(heapq.heappop(joining)[2])
            while self.ready and self.free:
                self._dispatch(now, self.ready.popleft(), heapq.heappop(self.free))
            if not running and not joining:
                return
            now = min(
                running[0][0] if running else math.inf, joining[0][0] if joining else math.inf
            )
            while running and running[0][0] == now:
                self._complete(now)

    def _send_to_queue(self, at: float, nid: int) -> None:
        heapq.heappush(self.joining, (at, self.joined, nid))
        self.joined += 1

    def _dispatch(self, now: float, nid: int, i: int) -> None:
        """Task *nid* to free agent *i*: it fetches the inputs other agents made, then serves."""
        agent = self.agents[i]
        ctl = self.ctl
        # Pulled by an agent that freed while the task waited, else pushed to an idle one.
        reached = now + (ctl.pull_s if self.freed_at[i] == now else ctl.assign_s)
        fetched = reached
        for src, mb in self.ix.pred[nid]:
            j = self.where[src]
            if j != i:
                fetched = max(
                    fetched, reached + self.transfer_s(mb, self.agents[j].zone, agent.zone)
                )
        self.where[nid] = i
        self.start[nid] = fetched
        self.finish[nid] = fetched + self.ix.work[nid] / agent.speed
        heapq.heappush(self.running, (self.finish[nid], len(self.sequence), i, nid))
        self.sequence.append(nid)

    def _complete(self, now: float) -> None:
        """The next running task ends: its agent frees; successors with all inputs now done go."""
        _f, _no, i, nid = heapq.heappop(self.running)
        heapq.heappush(self.free, i)
        self.freed_at[i] = now
        released = []
        for dst, _mb in self.ix.succ[nid]:
            self.missing[dst] -= 1
            if self.missing[dst] == 0:
                released.append(dst)
        for dst in sorted(released):
            self._send_to_queue(now + self.release_s, dst)
