"""Scenario time from the wall clock: every live record is in scenario seconds.

All processes of a run share one *epoch* (wall time of scenario second 0) and
one *time scale*; a record's time is ``(wall - epoch) * scale``, so a live run
and a simulated one are read by the same analyses on the same axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    epoch: float  # wall time (time.time()) of scenario second 0
    scale: float  # scenario seconds per wall second

    def now(self) -> float:
        return (time.time() - self.epoch) * self.scale

    def wall(self, scenario_s: float) -> float:
        """Wall seconds that *scenario_s* scenario seconds last."""
        return scenario_s / self.scale

    def until(self, scenario_t: float) -> float:
        """Wall seconds from now until scenario time *scenario_t* (0 if past)."""
        return max(0.0, self.epoch + scenario_t / self.scale - time.time())
