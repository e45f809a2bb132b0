"""A live run's coordinator replicas: started, watched for a primary, crashed, stopped.

Why a module of its own: the runtime, the chaos timeline (a primary crash, a
replica back as a standby) and the end of the run all act on the same set of
replicas; this is that set (``sim.live.chaos.Replicas`` is what chaos sees of it).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import Any

from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.lag import LagMonitor
from sim.live.provisioner import Provisioner
from sim.live.run_options import LiveOptions
from sim.scenario.schema import Scenario
from sim.world.topology import World


class RunReplicas:
    """The run's coordinators, each with its task; ``clock`` is set once the epoch is known."""

    def __init__(
        self,
        scenario: Scenario,
        options: LiveOptions,
        url: str,
        token: str | None,
        provisioner: Provisioner,
        world: World,
        lag: LagMonitor,
    ) -> None:
        self.scenario, self.options, self.url, self.token = scenario, options, url, token
        self.provisioner, self.world, self.lag = provisioner, world, lag
        self.coordinators: list[tuple[Coordinator, asyncio.Task[None]]] = []
        self.clock: Clock | None = None

    def start(self) -> Coordinator:
        """Start one more replica (it takes the lease or waits as a standby)."""
        if self.clock is None:
            raise RuntimeError("a coordinator started before the run's epoch")
        config = CoordinatorConfig(
            self.url,
            self.token,
            self.clock,
            lease_s=self.options.lease_s,
            webhook_url=self.options.webhook_url,
            metrics_port=self.options.metrics_port,
            lag=self.lag,
            stalls=tuple(self.options.loop_stalls),
        )
        name = f"coord-{len(self.coordinators)}-{secrets.token_hex(2)}"
        coordinator = Coordinator(
            name,
            self.scenario,
            config,
            self.provisioner,
            tuple(self.world.zones),
            tuple(self.world.categories),
        )
        self.coordinators.append((coordinator, asyncio.create_task(coordinator.run())))
        return coordinator

    def primary(self) -> Coordinator | None:
        for coordinator, task in self.coordinators:
            if coordinator.is_primary and not task.done():
                return coordinator
        return None

    def primary_chief(self) -> str | None:
        """The scenario chief the primary plays: ``chief-1`` until the run's first takeover
        (the simulator bootstraps ``chief-1`` as its leader); after one, None — which chief
        the scenario's Raft would have elected is its own to say."""
        primary = self.primary()
        if primary is None or primary is not self._first_primary():
            return None
        return "chief-1"

    def _first_primary(self) -> Coordinator | None:
        led = [c for c, _ in self.coordinators if c.led_since is not None]
        return min(led, key=lambda c: c.led_since or 0.0) if led else None

    def _chiefs(self) -> list[Coordinator]:
        """The replicas as the scenario's chiefs: ``chief-1`` the run's first primary, the
        others in the order they started."""
        first = self._first_primary()
        rest = [c for c, _ in self.coordinators if c is not first]
        return [first, *rest] if first is not None else rest

    def crash(self, target: str) -> str:
        """Crash the replica a chaos ``coordinator_crash`` names; the role it had.

        The primary plays the scenario's leader and the standbys its followers:
        ``leader`` is the primary, ``follower`` the oldest standby still running,
        and ``chief-k`` the k-th of ``_chiefs`` (``chief-1`` the run's first
        primary, as the simulator bootstraps chief-1 as its leader) — or, past
        the replicas, a follower with nothing to crash, as the spec's third
        chief is to a run of two. A crash is a
        cancelled task: it says nothing, and a primary's lease lapses.
        """
        primary = self.primary()
        running = [(c, t) for c, t in self.coordinators if not t.done()]
        if target == "leader":
            victim = primary
        elif target.startswith("chief-"):
            index = int(target.removeprefix("chief-")) - 1
            chiefs = self._chiefs()
            victim = chiefs[index] if 0 <= index < len(chiefs) else None
        else:
            victim = next((c for c, _ in running if c is not primary), None)
        for coordinator, task in running:
            if coordinator is victim:
                task.cancel()
        return "leader" if victim is not None and victim is primary else "follower"

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook any replica sent."""
        return [w for c, _ in self.coordinators for w in c.webhooks_sent]

    async def wait_for_primary(self, fleet: int, clock: Clock) -> None:
        """Wait until a primary coordinates the whole fleet (or scenario second 0 has come)."""
        while clock.now() < 0:
            primary = self.primary()
            if primary is not None and len(primary.agents) >= fleet:
                return
            await asyncio.sleep(0.02)
        primary = self.primary()
        seen = len(primary.agents) if primary is not None else 0
        print(
            f"live run: scenario second 0 came before a primary saw the whole fleet "
            f"({seen} of {fleet} agents); the first arrivals may wait for it"
        )

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Cancel the coordinators and wait for them — boundedly: a shutdown never hangs.

        A coordinator that does not stop in time is named on stderr and left
        behind (its connection closes with the process); the run's records
        come from the broker's streams, not from it.
        """
        tasks = [task for _, task in self.coordinators]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
        for coordinator, task in self.coordinators:
            if task in stuck:
                print(
                    f"live run: coordinator {coordinator.name} did not stop within "
                    f"{timeout_s:g} s of being cancelled; left behind",
                    file=sys.stderr,
                )
