"""The coordinator's deadlines are acted on when they fall due, not at the next poll.

Live looked for due retries (and lost assignments' TTLs) every 0.1 wall
seconds: at x40 up to four scenario seconds late, longer than the default
1 s backoff, so live's retries trailed its replay's. ``Deadlines`` sleeps
until the earliest deadline and is woken when a source takes an earlier one.
On a real event loop and the wall clock, at scale 1 (scenario s = wall s).
"""

from __future__ import annotations

import asyncio
import heapq
import time

import pytest

from sim.live.coordinator.deadlines import Deadlines


class Timers:
    """A source: deadlines in a heap, each act recording when (scenario time) it ran."""

    def __init__(self, deadlines: Deadlines, expected: int) -> None:
        self.deadlines, self.expected = deadlines, expected
        self.pending: list[float] = []
        self.acted: list[tuple[float, float]] = []  # (deadline, scenario time acted)
        self.all_done = asyncio.Event()

    def take(self, at: float) -> None:
        heapq.heappush(self.pending, at)
        self.deadlines.changed()

    def next_due(self) -> float | None:
        return self.pending[0] if self.pending else None

    async def act(self) -> None:
        now = self.deadlines.now()
        while self.pending and self.pending[0] <= now:
            self.acted.append((heapq.heappop(self.pending), now))
        if len(self.acted) == self.expected:
            self.all_done.set()


def clock() -> Deadlines:
    start = time.monotonic()
    return Deadlines(lambda: time.monotonic() - start, lambda t: start + t - time.monotonic())


async def play(takes: list[tuple[float, float]]) -> Timers:
    """Run the loop; at each (when, deadline) take the deadline; wait for every act."""
    deadlines = clock()
    timers = Timers(deadlines, len(takes))
    deadlines.watch(timers.next_due, timers.act)
    loop = asyncio.ensure_future(deadlines.run())
    try:
        for when, at in takes:
            await asyncio.sleep(max(0.0, when - deadlines.now()))
            timers.take(at)
        await asyncio.wait_for(timers.all_done.wait(), 10.0)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    return timers


def test_a_deadline_taken_while_nothing_is_pending_wakes_the_loop() -> None:
    timers = asyncio.run(play([(0.02, 0.08)]))  # the loop slept with no timeout at all
    [(at, acted)] = timers.acted
    assert acted >= at  # never before its time


def test_an_earlier_deadline_is_acted_on_before_the_later_one_the_loop_slept_for() -> None:
    # Sleeping until 1.5 s when the 0.1 s deadline comes: it must not wait for 1.5 s.
    timers = asyncio.run(play([(0.0, 1.5), (0.02, 0.1)]))
    assert [at for at, _ in timers.acted] == [0.1, 1.5]
    (early_at, early_acted), (late_at, late_acted) = timers.acted
    assert early_at <= early_acted < late_at
    assert late_acted >= late_at


def test_deadlines_already_passed_are_acted_on_at_once_and_once() -> None:
    timers = asyncio.run(play([(0.05, 0.0), (0.05, 0.01), (0.06, 0.2)]))
    assert [at for at, _ in timers.acted] == [0.0, 0.01, 0.2]
    assert all(acted >= at for at, acted in timers.acted)


def test_the_loop_sleeps_until_the_deadline_without_polling() -> None:
    """A loop that looked every 0.1 s would ask its sources four times in 0.4 s; this asks once."""

    async def body() -> int:
        deadlines = clock()
        asked = 0

        def next_due() -> float:
            nonlocal asked
            asked += 1
            return 1000.0

        async def act() -> None:
            raise AssertionError("nothing is due")

        deadlines.watch(next_due, act)
        loop = asyncio.ensure_future(deadlines.run())
        await asyncio.sleep(0.4)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return asked

    assert asyncio.run(body()) == 1


def test_a_failing_action_is_reported_and_tried_again_not_fatal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As the coordinator's periodic loops do: one failure (a broker hiccup) is printed and
    the deadline, still due, is acted on again a moment later."""

    async def body() -> int:
        deadlines = clock()
        pending = [0.0]
        calls = 0
        done = asyncio.Event()

        async def act() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("broker hiccup")
            pending.clear()
            done.set()

        deadlines.watch(lambda: pending[0] if pending else None, act)
        loop = asyncio.ensure_future(deadlines.run())
        await asyncio.wait_for(done.wait(), 10.0)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return calls

    assert asyncio.run(body()) == 2
    assert "broker hiccup" in capsys.readouterr().out
