"""Whether a zone takes work: one rule, consulted by both shells' routing.

Scenario: the chief sends a task to a zone whose coordinator has gone
silent. Two things can take the zone out of the routing, and both are
decided here:

* the **health checks declare** the zone's coordinator dead
  (:meth:`ZoneGate.declare_down`), until it is reachable again
  (:meth:`ZoneGate.declare_up`) — the simulator's failover at the end of its
  detection time, the live coordinator when the outage is announced;
* the zone's **circuit breaker** opens after the chief's calls to it failed
  ``circuit_breaker.failure_threshold`` times in a row
  (:meth:`ZoneGate.call_failed`); ``open`` seconds later the shell asks for
  the half-open probe (:meth:`ZoneGate.probe`): the zone takes work again,
  unless it was declared dead meanwhile (the failover owns it then), and the
  next call's result closes the breaker (:meth:`ZoneGate.call_ok`) or opens
  it again.

What a call *is* is the same in both shells: the chief sends a task to the
zone it routed it to (:meth:`ZoneGate.reach`), and the call fails when the
zone is **dark** — its coordinator cannot be reached, known or not yet
(:meth:`ZoneGate.mark_dark`: the simulator's outage or partition, the live
coordinator's ``zones_down`` announcement). Both shells act on the verdict
the same way: a zone that answered places the task; a refused call routes
it elsewhere now; any other failed call leaves the task waiting at the
zone's door (until the zone is declared dead and evacuated, or reachable
again); a call that *opened* the breaker also routes what waits at the
door elsewhere and asks for the probe ``probe_after_s`` later.

A zone takes work (:meth:`ZoneGate.takes_work`) when neither holds it out;
the router's ``down`` set is where that verdict is kept, so the chief's
zone choice, spills and pulls (``ZoneRouter``, ``DispatchCore.pull_one``)
read it without a call. The breakers live on the run's ``BreakerBoard``
under ``zone:NAME`` (beside the agents' breakers); the shell drains and logs
their transitions and keeps the timers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.policies.resilience import BreakerBoard, BreakerState
from sim.policies.routing import ZoneRouter

__all__ = ["ZoneCall", "ZoneGate"]


@dataclass(frozen=True, slots=True)
class ZoneCall:
    """The verdict on a failed call: *opened* now (route around it, probe later); *refused*."""

    opened: bool
    #: The breaker is open: send the call's task elsewhere (else it waits at the zone's door).
    refused: bool
    #: When *opened*: seconds until the half-open probe (:meth:`ZoneGate.probe`) is due.
    probe_after_s: float | None = None


class ZoneGate:
    """The zones' verdicts: declared dead, breaker open, or taking work (see the module)."""

    def __init__(self, router: ZoneRouter, breakers: BreakerBoard | None) -> None:
        self.router = router
        self.breakers = breakers
        #: Zones the health checks declared dead and that are not reachable again yet.
        self.declared: set[str] = set()
        #: Zones whose breaker has seen a failed call (only they count successes).
        self.breaker_zones: set[str] = set()
        #: Zones whose coordinator cannot be reached now, known or not (the router's
        #: ``down`` holds the ones held out of routing; calls to a dark zone fail).
        self.dark: set[str] = set()

    def mark_dark(self, zone: str, dark: bool) -> None:
        """The zone's coordinator became unreachable (or reachable again)."""
        if dark:
            self.dark.add(zone)
        else:
            self.dark.discard(zone)

    def reach(self, zone: str, now: float) -> ZoneCall | None:
        """A call of the chief's reaches *zone*: None if it answers, else the failure's verdict.

        An answer counts as a success on the zone's breaker (a half-open
        probe's success closes it).
        """
        if zone in self.dark:
            return self.call_failed(zone, now)
        if zone in self.breaker_zones:
            self.call_ok(zone, now)
        return None

    def takes_work(self, zone: str) -> bool:
        """Whether the chief may route work to *zone* now."""
        return zone not in self.router.down

    def declare_down(self, zone: str) -> None:
        """The health checks declared the zone's coordinator dead: route around it."""
        self.declared.add(zone)
        self.router.mark_down(zone)

    def declare_up(self, zone: str) -> None:
        """The zone is reachable again (back, reconnected, restarted): it takes work."""
        self.declared.discard(zone)
        self.router.mark_up(zone)

    def call_failed(self, zone: str, now: float) -> ZoneCall:
        """A call to *zone* got no answer (breakers off: nothing opens, nothing refused)."""
        board = self.breakers
        if board is None:
            return ZoneCall(opened=False, refused=False)
        target = f"zone:{zone}"
        self.breaker_zones.add(zone)
        was_open = board.state_at(target, now) is BreakerState.OPEN
        board.record_failure(target, now)
        refused = board.state_at(target, now) is BreakerState.OPEN
        opened = refused and not was_open
        if opened:
            self.router.mark_down(zone)
            return ZoneCall(opened, refused, board.config.open_s)
        return ZoneCall(opened, refused)

    def call_ok(self, zone: str, now: float) -> None:
        """A call to *zone* was answered (a half-open probe's success closes its breaker)."""
        if zone in self.breaker_zones:
            assert self.breakers is not None
            self.breakers.record_success(f"zone:{zone}", now)

    def probe(self, zone: str, now: float) -> bool:
        """The breaker's open time is over: half-open, the zone takes work again.

        False (nothing changes) when the health checks declared it dead meanwhile.
        """
        if zone in self.declared or self.breakers is None:
            return False
        self.breakers.allow(f"zone:{zone}", now)
        self.router.mark_up(zone)
        return True
