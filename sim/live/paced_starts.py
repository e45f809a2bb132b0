"""Agent starts at their turns on the event loop, for either provisioner.

Scenario: a dead zone's agents are replaced at once, but the provisioner
starts one per gap (``sim.world.start_turns``: a host starting processes in
turn, a cloud API's launch rate). A start waiting for its turn is a timer
here; killing that agent cancels it, and the agent never starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sim.world.start_turns import StartTurns


class PacedStarts:
    """Launches at their turns (at once while the gap is 0), by agent id."""

    def __init__(self) -> None:
        self.turns = StartTurns(0.0)
        self._waiting: dict[str, asyncio.TimerHandle] = {}

    def pace(self, gap_s: float) -> None:
        """From now on, starts at least *gap_s* wall seconds apart (0: at once)."""
        self.turns = StartTurns(gap_s)

    def start(self, agent_id: str, launch: Callable[[], None]) -> None:
        """Call *launch* at the agent's turn: now, or later when others are ahead of it."""
        if self.turns.gap_s <= 0:
            launch()
            return
        loop = asyncio.get_running_loop()
        wait = self.turns.wait(loop.time())
        if wait <= 0:
            launch()
        else:
            self._waiting[agent_id] = loop.call_later(wait, self._launch, agent_id, launch)

    def _launch(self, agent_id: str, launch: Callable[[], None]) -> None:
        self._waiting.pop(agent_id, None)
        launch()

    def cancel(self, agent_id: str) -> bool:
        """The agent was still waiting for its turn: it never starts (True)."""
        waiting = self._waiting.pop(agent_id, None)
        if waiting is None:
            return False
        waiting.cancel()
        return True

    def cancel_all(self) -> None:
        for waiting in self._waiting.values():
            waiting.cancel()
        self._waiting.clear()
