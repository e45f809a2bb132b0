"""The chief's calls to zones, live: the zone gate's verdict acted on as the simulator acts.

Scenario: the primary routes a task to a zone (``DispatchCore.home_zone``)
and calls it. Whether the call is answered is the dispatch core's zone gate's
rule (``sim.policies.dispatch.zones``), the one the simulator's chief
follows: a zone announced dark (chaos ``zone_outage``, read by the health
checks) does not answer; its circuit breaker counts the failed calls and
opens after ``circuit_breaker.failure_threshold`` of them. On the verdict:

* answered: the zone places the task (an agent, a spill, or its queue);
* refused (the breaker is open): the task is routed again, elsewhere;
* failed, breaker still closed: the task waits at the zone's door, until
  the zone is declared dead (it is evacuated with the zone's queue) or is
  reachable again (the zone places it);
* the call that opened the breaker also routes what waits at the door
  elsewhere, and the half-open probe falls due ``probe_after_s`` later.

Before the call, a chaos ``message_loss`` may lose the assignment on its
way (``message_loss``): it is sent again, routed afresh, once its TTL is over.

No I/O here: assignments go back to the intake, which sends them, and the
breakers' transitions are drained for the event log by the caller.
"""

from __future__ import annotations

from sim.live.coordinator.message_loss import MessageLoss
from sim.live.task import LiveTask
from sim.policies.dispatch import Assignment, DispatchCore

__all__ = ["ZoneCalls"]


class ZoneCalls:
    """Doors of dark zones and due probes, around the dispatch core's zone gate."""

    def __init__(
        self, dispatcher: DispatchCore[LiveTask], losses: MessageLoss | None = None
    ) -> None:
        self.dispatcher = dispatcher
        #: The timeline's message loss (None: no assignment is ever lost).
        self.losses = losses
        #: Per dark zone: tasks sent to it that no one answered, in the order sent.
        self.doors: dict[str, list[LiveTask]] = {}
        #: Per zone whose breaker opened: the scenario time its half-open probe is due.
        self.probes: dict[str, float] = {}

    def route(
        self, task: LiveTask, now: float, zone: str | None = None
    ) -> list[Assignment[LiveTask]]:
        """Route *task* to a zone and call it; the assignments that follow (see the module).

        *zone*: the zone the chief chose itself (an escalation to the chief), called
        first; if its breaker refuses, the task is routed as any other.
        """
        core, gate = self.dispatcher, self.dispatcher.zones
        out: list[Assignment[LiveTask]] = []
        refused_by: set[str] = set()
        chosen = zone
        while True:
            zone, chosen = chosen or core.home_zone(task, now), None
            task.zone = zone
            if zone in refused_by:
                # Every zone staffed for it refuses: it waits at the door of the one it got.
                self.doors.setdefault(zone, []).append(task)
                return out
            if self.losses is not None and self.losses.lost(task, zone, now):
                return out  # never acknowledged: sent again when its TTL is over
            call = gate.reach(zone, now)
            if call is None:
                assignment = core.receive(task, zone, now)
                if assignment is not None:
                    out.append(assignment)
                return out
            if call.opened:
                assert call.probe_after_s is not None
                self.probes[zone] = now + call.probe_after_s
                for waiting in self.doors.pop(zone, []):
                    out.extend(self.route(waiting, now))
            if not call.refused:
                self.doors.setdefault(zone, []).append(task)  # nobody answers: it waits
                return out
            refused_by.add(zone)

    def probe_due(self, now: float) -> list[str]:
        """The zones whose probe is due by *now*, let back in half-open (unless declared)."""
        gate = self.dispatcher.zones
        probed = []
        for zone, due in sorted(self.probes.items(), key=lambda item: (item[1], item[0])):
            if due > now:
                continue
            del self.probes[zone]
            if gate.probe(zone, due):
                probed.append(zone)
        return probed

    def take_door(self, zone: str) -> list[LiveTask]:
        """What waits at *zone*'s door, handed over (declared dead, or reachable again)."""
        return self.doors.pop(zone, [])
