"""A simulated fleet's heartbeats, bundled: one registry write per chunk of agents per period.

Why a module of its own: the fleet (``provisioner.SimulatedFleet``) hosts
the agents; this is only how their liveness reaches the registry
(``sim.live.beats`` says why bundles, and how readers open them). Each
period it takes every registered agent's beat (``LiveAgent.beat``, the
document its own key would hold) and writes one bundle per chunk of
``AGENTS_PER_BUNDLE`` agents, the chunks side by side. An agent belongs to
the chunk with the fewest members when it starts and leaves it when it is
killed or exits, so a dead agent's beats stop as its own key's would.

A bundle whose ack has not come by the time two more are due is superseded,
not awaited — the agents' own rule (``agent.BEAT_ACK_PERIODS``): a put in
flight when the broker died waits out the client's request timeout.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence

from sim.live.agent import BEAT_ACK_FLOOR_S, BEAT_ACK_PERIODS, LiveAgent
from sim.live.agent_link import AgentLink
from sim.live.beats import AGENTS_PER_BUNDLE, bundle, bundle_key
from sim.live.cancel import try_once


class FleetBeats:
    """The bundled heartbeats of one fleet process (see the module docstring)."""

    def __init__(
        self, heartbeat_s: float, per_bundle: int = AGENTS_PER_BUNDLE, name: str | None = None
    ) -> None:
        self.heartbeat_s, self.per_bundle = heartbeat_s, max(1, per_bundle)
        #: This process's fleet: a restarted fleet's bundles never overwrite the old ones'.
        self.name = name or secrets.token_hex(4)
        self._chunks: list[dict[str, LiveAgent]] = []
        #: Bundles written so far (each one registry put).
        self.writes = 0

    def add(self, agent: LiveAgent) -> None:
        """Carry *agent*'s beats from now on (once registered), in the emptiest chunk."""
        open_chunks = [c for c in self._chunks if len(c) < self.per_bundle]
        if open_chunks:
            chunk = min(open_chunks, key=len)
        else:
            chunk = {}
            self._chunks.append(chunk)
        chunk[agent.config.agent_id] = agent

    def remove(self, agent: LiveAgent) -> None:
        """Stop carrying *agent*'s beats (killed or exited; a restart under its id is not it)."""
        agent_id = agent.config.agent_id
        for chunk in self._chunks:
            if chunk.get(agent_id) is agent:
                del chunk[agent_id]

    async def run(self, links: Sequence[AgentLink]) -> None:
        """Write every chunk's bundle once a period, until cancelled."""
        ack_wait = max(BEAT_ACK_PERIODS * self.heartbeat_s, BEAT_ACK_FLOOR_S)
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await try_once(self.flush(links), ack_wait)  # the broker may be restarting

    async def flush(self, links: Sequence[AgentLink]) -> None:
        """One bundle per chunk now (the chunks' puts side by side, dealt over *links*)."""
        clock = await links[0].epoch.poll()
        time_s = clock.now() if clock is not None else -1.0
        wall = time.time()
        puts = []
        for index, chunk in enumerate(self._chunks):
            beats = [agent.beat() for agent in chunk.values() if agent.registered]
            link = links[index % len(links)]
            value = bundle(beats, wall, time_s)
            puts.append(link.registry.put(bundle_key(self.name, index), value))
        self.writes += len(puts)
        await asyncio.gather(*puts)


__all__ = ["FleetBeats"]
