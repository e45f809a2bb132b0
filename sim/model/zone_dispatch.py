"""The zone coordinators: place a task on an agent, spill it, or queue it; hand it down.

Scenario: a TASK_ASSIGN message reaches a zone coordinator. It asks the
dispatch core for a specialist of the task's category with room; if there is
one the task goes down through the agent's team lead (gRPC, two hops), if
not and another zone has a free agent the task spills there through NATS,
and otherwise it waits in the zone's queue until a specialist pulls it. A
sleeping slot is woken by the message itself, task in hand; a busy agent
queues it locally. A call to an agent that died is answered by nobody: with
circuit breakers on it fails and the task is placed anew, otherwise the
task waits at the dead agent until the failure is detected.

Every choice is the dispatch core's (``sim.policies.dispatch``); this
module keeps time: latency, the coordinators' queues, message counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import simpy

from sim.model.agent import Specialist
from sim.model.breakers import CallBreakers
from sim.model.calls import Call
from sim.model.ledger import Ledger
from sim.model.roster import Roster
from sim.model.task import Task
from sim.model.traffic import Kind
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.world.network import Network

if TYPE_CHECKING:
    from sim.model.staging import StagedDags

#: Message counter indexes as plain ints: an IntEnum lookup per message shows on the hot path.
_ASSIGN_GRPC, _ASSIGN_NATS = int(Kind.ASSIGN_GRPC), int(Kind.ASSIGN_NATS)


class ZoneDispatch:
    """Every zone coordinator's dispatch, in simulated time."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        core: DispatchCore[Any],
        zones: dict[str, ZoneState],
        roster: Roster,
        breakers: CallBreakers,
        ledger: Ledger,
        msgs: list[int],
    ) -> None:
        self.env = env
        self.net = network
        self.core = core
        self.zones = zones
        self.roster = roster
        self.agents = roster.agents
        self.breakers = breakers
        self.ledger = ledger
        #: The message counters (``Traffic.counts``), indexed by ``Kind``.
        self._msgs = msgs
        #: Planned DAG dispatch (None: every DAG node is released and placed dynamically).
        self.staging: StagedDags | None = None

    def receive(self, task: Task, zone: str, now: float) -> None:
        """The zone coordinator places the task on an agent, spills it, or queues it (at *now*)."""
        state = self.zones[zone]
        # The zone coordinator processes the message whatever it decides.
        delay = state.coord.through(now) if state.coord is not None else 0.0
        spread = task.spread
        if spread:  # its dispatch overhead, on its way to the agent (once: the first placing)
            delay += spread
            task.spread = 0.0
        if task.planned is not None:
            assert self.staging is not None
            self.staging.deliver(task, zone, delay)  # the plan chose its agent already
            return
        agent_id = self.core.place(task, zone, now)
        if agent_id is None:
            task.enqueued = now  # the core queued it
            if self.staging is not None:
                self.staging.work_queued()
            return
        agent = self.agents[agent_id]
        other = agent.zone
        if other == zone:
            self._assign(agent, task, delay + self.net.zone_to_agent(zone), now)
        else:
            self._msgs[_ASSIGN_NATS] += 1  # spilled to the nearest zone with a free agent
            latency = self.net.cross_zone(zone, other) + self.net.zone_to_agent(other)
            self._assign(agent, task, delay + latency, now)

    def _assign(self, agent: Specialist, task: Task, latency: float, now: float) -> None:
        self._msgs[_ASSIGN_GRPC] += 2  # zone coordinator -> team lead -> specialist
        if agent.lead is not None:
            latency += agent.lead.through(now)
        self.zones[agent.zone].in_flight += 1
        self.core.hold(task, agent.id)
        task.dispatch = now
        task.agent = agent.id
        task.zone = agent.zone
        if agent.assigned(task, latency):
            return  # a sleeping slot takes it on arrival
        if latency <= 0:
            self._deliver(agent, task)
        else:
            Call(self.env, latency, (agent, task), self._delivered_to_agent)

    def hold_planned(self, agent_id: str, task: Task) -> None:
        """A planned task goes down to the agent its plan chose: booked there, as _assign does."""
        agent = self.agents[agent_id]
        self._msgs[_ASSIGN_GRPC] += 2  # zone coordinator -> team lead -> specialist
        self.zones[agent.zone].in_flight += 1
        self.core.hold(task, agent.id)
        task.dispatch = self.env.now
        task.agent = agent.id
        task.zone = agent.zone

    def take_back(self, task: Task) -> None:
        """A planned task its job no longer needs leaves the agent that holds it (if any)."""
        holder = task.agent
        if holder and self.core.holder.get(task.id) == holder:
            self.core.release(task, holder)
            self.zones[task.zone].in_flight -= 1
            agent = self.agents.get(holder)
            if agent is not None:
                agent.incoming.pop(task.id, None)

    def _delivered_to_agent(self, event: Call) -> None:
        agent: Specialist
        task: Task
        agent, task = event.payload
        if not agent.arrived(task):
            return  # redistributed while on its way (the agent's failure was detected)
        self._deliver(agent, task)

    def _deliver(self, agent: Specialist, task: Task) -> None:
        if agent.crashed:
            if self.breakers.board is not None:
                self._call_failed(agent, task)
            else:
                agent.strand(task)  # nobody there to take it; found at detection
            return
        if agent.id in self.breakers.targets:
            self.breakers.call_ok(agent, self.env.now)
        if agent.draining and agent.live_slots == 0:
            # The agent finished draining while this task was on its way: place it anew.
            self.core.release(task, agent.id)
            self.zones[agent.zone].in_flight -= 1
            self.roster.wake_reopened()
            task.agent = ""
            self.receive(task, agent.zone, self.env.now)
            return
        task.enqueued = self.env.now
        self.zones[agent.zone].local_queued += 1
        agent.queue(task)

    def _call_failed(self, agent: Specialist, task: Task) -> None:
        """The call to a dead agent fails: place the task anew, and count it against the agent.

        Nothing ran, so the task's retry budget is untouched; the breaker is
        what stops the coordinator from trying the same dead agent again.
        """
        now = self.env.now
        self.core.release(task, agent.id)
        self.zones[agent.zone].in_flight -= 1
        self.roster.wake_reopened()
        self.ledger.call_failures += 1
        task.agent = ""
        task.dispatch = -1.0
        self.breakers.call_failed(agent, now)
        self.receive(task, agent.zone, now)
