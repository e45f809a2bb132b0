"""Paced agent starts: during a run, local agent processes start one turn apart.

A start costs an agent process about 0.3 CPU-seconds from its command; a burst of them at
once (a zone outage's replacements at the spec's fleet) held both cores of a
2-core machine and the coordinator fell behind. These are real processes
(a sleeping interpreter stands in for the agent: what is tested is when
each is started).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

from sim.live.paced_starts import PacedStarts
from sim.live.provisioner import AgentSpec, LocalProcessProvisioner

GAP_S = 0.2


class Sleepers(LocalProcessProvisioner):
    use_forks = False  # each start runs the command below

    def command(self, spec: AgentSpec) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(30)"]


async def until_running(p: LocalProcessProvisioner, count: int, timeout_s: float = 10.0) -> float:
    started = time.monotonic()
    while len(p.running()) < count:
        assert time.monotonic() - started < timeout_s, p.running()
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_paced_starts_take_turns_and_a_kill_before_its_turn_starts_nothing() -> None:
    async def body() -> None:
        p = Sleepers("nats://unused", None, 1.0)
        try:
            p.start(AgentSpec("first", "A", "Gen"))  # not paced yet: the fleet starts at once
            p.start(AgentSpec("second", "A", "Gen"))
            assert len(p.running()) == 2
            p.pace(GAP_S)
            begun = time.monotonic()
            for name in ("third", "fourth", "fifth"):
                p.start(AgentSpec(name, "A", "Gen"))
            assert p.running() == ["first", "second", "third"]  # the first turn is now
            assert set(p.specs) == {"first", "second", "third", "fourth", "fifth"}
            await until_running(p, 4)
            assert time.monotonic() - begun >= GAP_S  # never before its turn
            assert "fourth" in p.running() and "fifth" not in p.running()
            assert p.kill("fifth") is False  # still waiting: cancelled, nothing was running
            await asyncio.sleep(3 * GAP_S)
            assert "fifth" not in p.running() and len(p.running()) == 4
        finally:
            p.stop_all()
        assert p.running() == []

    asyncio.run(body())


def test_paced_starts_launch_at_their_turns_on_the_loop_for_either_provisioner() -> None:
    """The rule both provisioners pace by (``PacedStarts``, over ``StartTurns``): launches
    one gap apart in the order asked; one cancelled while it waits never launches."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        paced = PacedStarts()
        launched: list[tuple[str, float]] = []

        def launch(name: str) -> Callable[[], None]:
            return lambda: launched.append((name, loop.time()))

        paced.start("at-once", launch("at-once"))  # not paced: now
        assert [n for n, _ in launched] == ["at-once"]
        paced.pace(0.05)
        begun = loop.time()
        for name in ("a", "b", "c", "d"):
            paced.start(name, launch(name))
        assert paced.cancel("c") is True and paced.cancel("a") is False  # a has launched
        await asyncio.sleep(0.3)
        names = [n for n, _ in launched]
        assert names == ["at-once", "a", "b", "d"]
        times = {n: t - begun for n, t in launched[1:]}
        assert times["b"] >= 0.05 and times["d"] >= 0.15  # c's turn stays booked

    asyncio.run(body())
