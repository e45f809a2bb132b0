"""Chaos ``message_loss``, live: the chief's task assignments to a zone lost, sent again later.

Scenario: for a while a share of the chief's TASK_ASSIGN messages to some
zones (all, if none is named) never arrive. No acknowledgement comes back,
so the chief sends the task again once the message's time to live
(``network.message_ttl``) is over, routing it afresh: a task unlucky twice
waits two TTLs. The simulator's chief does this (``sim.model.chief``), with
the loss drawn by its network's rule (``Network.lost``: a path outside the
named zones draws nothing).

Live, the primary and its zones talk through one broker that loses
nothing, so the primary plays the loss itself: when it routes a task to a
zone during a loss window it draws with the same rule, and a lost task
waits here until its TTL is over, then is routed again
(``Placement.resend_lost``, called at that time by ``deadlines``). The
window comes from the scenario's timeline, as the error bursts' do; chaos
logs it for the replay. Live had skipped the
action: a scenario with a fifth of its assignments lost ran live with none.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from sim.live.task import LiveTask
from sim.policies.keyed_draws import task_key
from sim.scenario.chaos import Loss
from sim.scenario.schema import Scenario
from sim.world.network import rules_network

__all__ = ["MessageLoss", "message_loss"]


class MessageLoss:
    """The loss windows, the draws, and the tasks in transit until their TTL is over."""

    def __init__(
        self,
        scenario: Scenario,
        notify: Callable[[], None] = lambda: None,
        seed: int = 0,
    ) -> None:
        #: Told of every lost assignment, so that it goes again when its TTL ends.
        self.notify = notify
        #: The run's key for the loss draws (``policy_set.fault_seed``: the simulator's): keyed
        #: by the task, as the simulator's chief keys them (``keyed_draws.loss_draw``).
        self.seed = seed
        #: The simulator's network, for its loss rule and keyed draws.
        self.network = rules_network(scenario)
        self.ttl_s = scenario.network.message_ttl
        #: (start, end, loss) in the timeline's order: a later window overrides an earlier
        #: one while both last, as the simulator's chaos sets the network's rate.
        self.windows: list[tuple[float, float, Loss]] = [
            (event.at, event.at + (event.duration or 0.0), event.message_loss)
            for event in scenario.chaos
            if event.message_loss is not None
        ]
        #: (due, order, task): lost assignments waiting for their TTL to run out.
        self._in_transit: list[tuple[float, int, LiveTask]] = []
        #: Assignments sent again after a loss (the simulator's ``resent_messages``).
        self.resent = 0

    def lost(self, task: LiveTask, zone: str, now: float) -> bool:
        """Whether the assignment of *task* to *zone* at *now* is lost; if so it is held."""
        loss = self._window(now)
        if loss is None:
            return False
        network = self.network
        network.loss_rate, network.loss_zones = loss.rate, frozenset(loss.zones or ())
        key = task_key(self.seed, task.arrival_s, task.job_id, task.node)
        if not network.lost(zone, key, task.task_id):  # the simulator's chief's draw
            return False
        heapq.heappush(self._in_transit, (now + self.ttl_s, self.resent, task))
        self.resent += 1
        self.notify()
        return True

    def due(self, now: float) -> list[LiveTask]:
        """The lost assignments whose TTL is over by *now*, in the order they were sent."""
        out = []
        while self._in_transit and self._in_transit[0][0] <= now:
            out.append(heapq.heappop(self._in_transit)[2])
        return out

    def next_due(self) -> float | None:
        """When the first lost assignment's TTL ends (None: none is in transit)."""
        return self._in_transit[0][0] if self._in_transit else None

    @property
    def waiting(self) -> int:
        return len(self._in_transit)

    def _window(self, now: float) -> Loss | None:
        found = None
        for start, end, loss in self.windows:
            if start <= now < end:
                found = loss
        return found


def message_loss(
    scenario: Scenario, notify: Callable[[], None] = lambda: None, seed: int = 0
) -> MessageLoss | None:
    """The scenario's message loss, or None when its timeline loses nothing."""
    loss = MessageLoss(scenario, notify, seed)
    return loss if loss.windows else None
