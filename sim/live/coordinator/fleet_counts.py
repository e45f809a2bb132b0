"""The fleet's counts from the coordinator's own records, in the simulator's definitions.

The autoscaler, the drain choice, the admission, the alerts and the metrics
all read how many tasks wait for an agent, how many are held, and which
agents serve. The simulator moves these counts as things happen
(``sim.model.zone_state.ZoneState``):

* a task **waits** while it is in its pool's queue (the dispatch core's) or
  in the local queue of an agent whose slots are all busy — not while it is
  on its way to a free slot;
* a task is **held** (in flight) from its assignment to its end, wherever it is;
* an agent or a slot is **busy** from a service's start to its end.

Live read them otherwise, and its decisions drifted from the replay's. A task
counted as waiting from its dispatch until the agent's report of its start
came back, a round trip that under load lasts seconds of scenario time at
x30; and a pool with a waiting task gives no agent to a scale-down
(``pick_drains``), so the burst test's third scale-down went missing or came
a minute late. Busy agents were read from heartbeats, as old as the health
check's last read. Here every count comes from the dispatch core (queues and
holdings, which both shells keep alike) and the books' attempts started and
not ended (the coordinator's record of starts): the agent beyond its slots is
the one live thing the simulator's local queue stands for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sim.live.coordinator.state import Books
from sim.live.task import LiveTask
from sim.policies.dispatch import DispatchCore


@dataclass(frozen=True, slots=True)
class ZoneCounts:
    """One zone's counts at an instant (the metrics' zone row reads these)."""

    waiting: int  # in the zone's pool queues and its agents' local queues
    queued: int  # in the zone's pool queues only
    held: int  # assigned to the zone's agents and not ended
    busy_agents: int
    busy_slots: int


class FleetCounts:
    """Counts over the dispatch core and the books (see the module docstring)."""

    def __init__(self, books: Books, dispatcher: DispatchCore[LiveTask]) -> None:
        self.books = books
        self.dispatcher = dispatcher

    def waiting(self) -> int:
        """Tasks waiting for an agent, fleet-wide (the autoscaler's and admission's queue)."""
        beyond_slots = (
            max(0, len(agent_books.held) - self._seat(agent_id)[1])
            for agent_id, agent_books in self.dispatcher.books.items()
        )
        return self.dispatcher.queued() + sum(beyond_slots)

    def held(self) -> int:
        """Tasks assigned and not ended, fleet-wide (the simulator's zones' in flight)."""
        return len(self.dispatcher.holder)

    def busy_agents(self) -> set[str]:
        """The agents serving at least one attempt started and not ended."""
        return {who for who, _, _ in self.books.in_flight.values()}

    def pool_queued(self, zone: str, category: str) -> int:
        """Tasks in the pool's queue (what makes a pool keep its agents on a scale-down)."""
        return self.dispatcher.pool_queued(zone, category)

    def by_zone(self, zones: Iterable[str]) -> dict[str, ZoneCounts]:
        """Each of *zones*' counts now, from one pass over the holdings and the attempts."""
        dispatcher = self.dispatcher
        waiting = {zone: dispatcher.queued_in.get(zone, 0) for zone in zones}
        queued = dict(waiting)
        held = dict.fromkeys(waiting, 0)
        for agent_id, agent_books in dispatcher.books.items():
            zone, slots = self._seat(agent_id)
            if zone in held:
                held[zone] += len(agent_books.held)
                waiting[zone] += max(0, len(agent_books.held) - slots)
        busy: dict[str, set[str]] = {zone: set() for zone in waiting}
        busy_slots = dict.fromkeys(waiting, 0)
        for who, where, _ in self.books.in_flight.values():
            if where in busy:
                busy[where].add(who)
                busy_slots[where] += 1
        return {
            zone: ZoneCounts(
                waiting[zone], queued[zone], held[zone], len(busy[zone]), busy_slots[zone]
            )
            for zone in waiting
        }

    def _seat(self, agent_id: str) -> tuple[str, int]:
        """The agent's zone and slots: the dispatch core's, else its last heartbeat's (an
        agent gone from the pools still holds what it held), else nowhere and one."""
        info = self.dispatcher.agents.get(agent_id)
        if info is not None:
            return info.zone, info.slots
        view = self.books.agents.get(agent_id)
        return (view.zone, view.slots) if view is not None else ("", 1)
