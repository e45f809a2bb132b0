"""Start turns: a provisioner that starts agents at most one per gap, in the order asked.

Scenario: a dead zone's 43 agents are replaced at once, but nothing starts
43 machines in the same instant. Cloud APIs throttle launches, a Kubernetes
controller creates pods at its own rate, one host starts one process after
another. Each start waits for its turn, first come first served, and its
start-up (``scaling.spawn_delay``) runs from there; a burst joins spread out
in the order it was asked for, the last one a whole burst of turns late.

One rule for every shell: the simulator's fleet books its starts here, live's
process provisioner paces real ``python -m sim.live.agent`` starts here, and
calibration replays a live run's requests through it to tell each start-up
from its wait.
"""

from __future__ import annotations

import math


class StartTurns:
    """The turns of one provisioner's starts, at least *gap_s* apart (0: every start at once)."""

    def __init__(self, gap_s: float) -> None:
        if gap_s < 0 or math.isnan(gap_s):
            raise ValueError(f"gap_s: expected seconds >= 0, got {gap_s!r}")
        self.gap_s = gap_s
        #: The earliest time the next start may have its turn.
        self._next = -math.inf

    def wait(self, asked_at: float) -> float:
        """Seconds a start asked for at *asked_at* waits for its turn; the turn is booked.

        A start that never happens (its agent killed while waiting) keeps its
        turn booked, as a provisioner's rate limit counts the request.
        """
        if self.gap_s <= 0:
            return 0.0
        turn = max(asked_at, self._next)
        self._next = turn + self.gap_s
        return turn - asked_at


def waits(asked: list[float], gap_s: float) -> list[float]:
    """The wait of each start asked for at the times *asked* (in the order asked)."""
    turns = StartTurns(gap_s)
    return [turns.wait(at) for at in asked]
