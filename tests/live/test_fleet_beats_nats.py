"""A simulated fleet's bundled heartbeats on a real nats-server.

The registry holds one key per agent (written at its join) and one bundle per
chunk of agents; read as the coordinator reads it (``NatsBroker.kv_entries``
then ``agent_beats``) every agent beats, at the period, for a few registry
writes a period rather than one per agent. A killed agent's beats stop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sim.live.beats import agent_beats, is_bundle_key
from sim.live.nats_broker import NatsBroker
from sim.live.provisioner import AgentSpec, SimulatedFleet
from sim.live.status import snapshot
from sim.live.transport import AGENTS_BUCKET, EmbeddedServer, Layout, connect, ensure_layout

AGENTS, PER_BUNDLE, PERIOD_S = 60, 25, 0.2


async def fleet_beats(server: EmbeddedServer) -> None:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()
    await ensure_layout(js, Layout(("A",), ("CodeGen",), 5.0, 30.0))
    broker = NatsBroker(nc)
    fleet = SimulatedFleet(server.url, server.token, 1.0, handler="noop", heartbeat_s=PERIOD_S)
    fleet.beats.per_bundle = PER_BUNDLE
    try:
        await fleet.open()
        for n in range(AGENTS):
            fleet.start(AgentSpec(f"a{n}", "A", "CodeGen", 1.0, 1))
        while fleet.registered < AGENTS:
            await asyncio.sleep(0.05)
        joined = time.time()
        writes0 = (await js.stream_info("KV_orch_agents")).state.last_seq
        await asyncio.sleep(10 * PERIOD_S)
        writes = (await js.stream_info("KV_orch_agents")).state.last_seq - writes0
        entries = await broker.kv_entries(AGENTS_BUCKET)
        beats = agent_beats({k: e.value for k, e in entries.items()})
        assert sorted(beats) == sorted(f"a{n}" for n in range(AGENTS))
        # Every agent beat after its join, though its own key holds only the join.
        assert all(b["wall"] > joined for b in beats.values())
        assert sum(is_bundle_key(k) for k in entries) == 3  # 60 agents, 25 to a bundle
        shown = (await snapshot(js))["agents"]  # ``orchestra live status`` reads them so too
        assert sorted(shown) == sorted(beats) and all(b["wall"] > joined for b in shown.values())
        # Ten periods: at most 3 bundles each, and at least one round of them (the agents'
        # own beats would have been 600; slack for a late timer).
        assert 3 <= writes <= 3 * 12
        assert fleet.kill("a7")
        killed = time.time()
        beats = await beats_after(broker, killed + 3 * PERIOD_S)
        assert beats["a7"]["wall"] < killed  # its beats stopped with it
        assert all(b["wall"] > killed for a, b in beats.items() if a != "a7")
    finally:
        await fleet.close()
        await nc.close()


async def beats_after(broker: NatsBroker, wall: float) -> dict[str, dict[str, Any]]:
    """The registry's beats once every bundle was written after *wall* (within 60 s)."""
    deadline = time.monotonic() + 60.0
    while True:
        entries = await broker.kv_entries(AGENTS_BUCKET)
        bundles = [e.document()["wall"] for k, e in entries.items() if is_bundle_key(k)]
        if min(bundles) > wall or time.monotonic() > deadline:
            return agent_beats({k: e.value for k, e in entries.items()})
        await asyncio.sleep(PERIOD_S / 2)


def test_a_simulated_fleet_beats_in_bundles_read_as_every_agents_beat(
    nats_server: EmbeddedServer,
) -> None:
    asyncio.run(asyncio.wait_for(fleet_beats(nats_server), 120.0))
