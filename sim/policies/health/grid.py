"""When each agent is checked (or beats): one phase per agent, then a fixed interval.

Both detectors and both faces of each read the same grid, so the analytic
answer and the per-message one agree to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeAlias

__all__ = ["CheckGrid", "PhaseSource"]

#: Where each agent's check (or heartbeat) grid starts, in [0, interval): a
#: function of the agent id (drawn by the shell from a seeded stream, say), a
#: mapping, or None for 0 everywhere. Each agent's phase is read once and kept.
PhaseSource: TypeAlias = Callable[[str], float] | Mapping[str, float] | None


class CheckGrid:
    """The instants ``phase(agent) + k * interval_s`` for every integer *k*."""

    def __init__(self, interval_s: float, phase: PhaseSource) -> None:
        if not (interval_s > 0.0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be positive and finite, got {interval_s!r}")
        self.interval_s = interval_s
        self._source = phase
        self._phases: dict[str, float] = {}

    def phase_of(self, agent_id: str) -> float:
        phase = self._phases.get(agent_id)
        if phase is None:
            source = self._source
            if source is None:
                phase = 0.0
            elif isinstance(source, Mapping):
                phase = float(source[agent_id])
            else:
                phase = float(source(agent_id))
            if not 0.0 <= phase < self.interval_s:
                raise ValueError(
                    f"phase of {agent_id!r} must lie in [0, {self.interval_s}), got {phase!r}"
                )
            self._phases[agent_id] = phase
        return phase

    def at(self, agent_id: str, k: int) -> float:
        return self.phase_of(agent_id) + k * self.interval_s

    def first_at_or_after(self, agent_id: str, t: float) -> int:
        """The smallest *k* with ``at(agent_id, k) >= t``, exact in floating point."""
        if not math.isfinite(t):
            raise ValueError(f"time must be finite, got {t!r}")
        phase, interval = self.phase_of(agent_id), self.interval_s
        k = math.ceil((t - phase) / interval)
        # The division rounds; settle on the grid as at() computes it, so both
        # faces of a detector see the very same floats.
        while phase + k * interval < t:
            k += 1
        while phase + (k - 1) * interval >= t:
            k -= 1
        return k
