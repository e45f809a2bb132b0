"""The coordinator's own deadlines, each acted on at its scenario time, not at the next poll.

Scenario: a failed attempt's retry waits out the team lead's backoff
(``escalation.backoff``, 1 s by default), and a lost assignment is sent again
once its TTL is over. The simulator schedules each as a timeout and acts at
that instant. Live used to look for due work every 0.1 wall seconds: at x10
that is up to a scenario second late, at x40 up to four — longer than the
backoff itself — so live's retries went out 1–5 s after a failure where its
replay's went out after the backoff (a full-fleet ``error_burst``, and the
reduced x40 copy where live made a fifth attempt the replay never made).

Here one loop sleeps until the earliest deadline any source holds, acts on
the sources that are due, and sleeps again; a source that takes a new
deadline calls ``changed`` so that the loop wakes to re-arm (a 1 s backoff at
x40 falls due in 25 wall ms, well inside any poll). The sources keep their
own books (``Escalation.due``, ``MessageLoss.due``); this only says when.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sim.live.cancel import stop_if_cancelled
from sim.live.coordinator.state import LeaseLost

__all__ = ["Deadlines"]

#: Wall seconds slept past a deadline, so that the clock reads it as passed (float rounding).
SLACK_S = 1e-4
#: Wall seconds before trying again after an action failed (the old poll's period).
RETRY_S = 0.1


@dataclass(frozen=True)
class _Source:
    next_due: Callable[[], float | None]
    act: Callable[[], Awaitable[None]]


class Deadlines:
    """Wakes at the earliest scenario time a source has work due (module docstring)."""

    def __init__(self, now: Callable[[], float], until: Callable[[float], float]) -> None:
        #: Scenario time now, and wall seconds until a scenario time (the coordinator's clock).
        self.now, self.until = now, until
        self._sources: list[_Source] = []
        self._changed = asyncio.Event()

    def watch(
        self, next_due: Callable[[], float | None], act: Callable[[], Awaitable[None]]
    ) -> None:
        """Call *act* whenever scenario time passes *next_due()* (None: nothing pending)."""
        self._sources.append(_Source(next_due, act))

    def changed(self) -> None:
        """A source took a deadline that may be earlier than the one the loop sleeps for."""
        self._changed.set()

    def next_due(self) -> float | None:
        pending = [at for at in (source.next_due() for source in self._sources) if at is not None]
        return min(pending, default=None)

    async def act_on_due(self) -> None:
        """Act on every source whose earliest deadline has passed."""
        now = self.now()
        for source in self._sources:
            at = source.next_due()
            if at is not None and at <= now:
                await source.act()

    async def run(self) -> None:
        """Sleep until the next deadline (or a new one), act on what is due; until cancelled."""
        while True:
            stop_if_cancelled()
            self._changed.clear()
            at = self.next_due()
            if at is None or at > self.now():
                wait = None if at is None else self.until(at) + SLACK_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
            try:
                await self.act_on_due()
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:  # as the coordinator's periodic loops: report, go on
                stop_if_cancelled()
                print(f"deadlines: {exc!r}")
                await asyncio.sleep(RETRY_S)  # what is due is still due: not a busy loop
