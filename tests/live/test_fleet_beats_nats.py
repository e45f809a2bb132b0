"""A simulated fleet's bundled heartbeats on a real nats-server.

The registry holds one key per agent (written at its join) and one bundle per
chunk of agents; read as the coordinator reads it (``NatsBroker.kv_entries``
then ``agent_beats``) every agent beats, at the period, for a few registry
writes a period rather than one per agent. A killed agent's beats stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import nats
import pytest

from sim.live.beats import agent_beats, is_bundle_key
from sim.live.nats_broker import NatsBroker
from sim.live.provisioner import AgentSpec, SimulatedFleet
from sim.live.status import snapshot
from sim.live.transport import AGENTS_BUCKET, EmbeddedServer, Layout, connect, ensure_layout

AGENTS, PER_BUNDLE, PERIOD_S = 60, 25, 0.2


@contextlib.asynccontextmanager
async def registered_fleet(
    server: EmbeddedServer, heartbeat_s: float
) -> AsyncIterator[tuple[Any, NatsBroker, SimulatedFleet]]:
    """AGENTS simulated agents of zone A, all registered, beating in bundles of PER_BUNDLE."""
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()
    await ensure_layout(js, Layout(("A",), ("CodeGen",), 5.0, 30.0))
    fleet = SimulatedFleet(server.url, server.token, 1.0, handler="noop", heartbeat_s=heartbeat_s)
    fleet.beats.per_bundle = PER_BUNDLE
    try:
        await fleet.open()
        for n in range(AGENTS):
            fleet.start(AgentSpec(f"a{n}", "A", "CodeGen", 1.0, 1))
        while fleet.registered < AGENTS:
            await asyncio.sleep(0.05)
        yield js, NatsBroker(nc), fleet
    finally:
        await fleet.close()
        await nc.close()


async def fleet_beats(server: EmbeddedServer) -> None:
    async with registered_fleet(server, PERIOD_S) as (js, broker, fleet):
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
        shown = (await snapshot(broker))["agents"]  # ``orchestra live status`` reads them so too
        assert sorted(shown) == sorted(beats) and all(b["wall"] > joined for b in shown.values())
        # Ten periods: at most 3 bundles each, and at least one round of them (the agents'
        # own beats would have been 600; slack for a late timer).
        assert 3 <= writes <= 3 * 12
        assert fleet.kill("a7")
        killed = time.time()
        beats = await beats_after(broker, killed + 3 * PERIOD_S)
        assert beats["a7"]["wall"] < killed  # its beats stopped with it
        assert all(b["wall"] > killed for a, b in beats.items() if a != "a7")


async def beats_after(broker: NatsBroker, wall: float) -> dict[str, dict[str, Any]]:
    """The registry's beats once every bundle was written after *wall* (within 60 s)."""
    deadline = time.monotonic() + 60.0
    while True:
        entries = await broker.kv_entries(AGENTS_BUCKET)
        bundles = [e.document()["wall"] for k, e in entries.items() if is_bundle_key(k)]
        # (A watch begun while the bundles are rewritten may end before they are all read:
        # such a partial read is not an answer.)
        complete = len(bundles) == -(-AGENTS // PER_BUNDLE)
        if (complete and min(bundles) > wall) or time.monotonic() > deadline:
            return agent_beats({k: e.value for k, e in entries.items()})
        await asyncio.sleep(PERIOD_S / 2)


def test_a_simulated_fleet_beats_in_bundles_read_as_every_agents_beat(
    nats_server: EmbeddedServer,
) -> None:
    asyncio.run(asyncio.wait_for(fleet_beats(nats_server), 120.0))


class _Watcher:
    """nats-py's watcher: its end marker (None) where the race put it, then the entries."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    async def updates(self, timeout: float) -> Any:
        if not self.items:
            raise nats.errors.TimeoutError  # a broker that says nothing more
        return self.items.pop(0)

    async def stop(self) -> None:
        pass


class _Bucket:
    def __init__(self, items: list[Any], stored: int) -> None:
        self.items, self.stored = items, stored

    async def watchall(self, **_: Any) -> _Watcher:
        return _Watcher(list(self.items))

    async def status(self) -> Any:
        return SimpleNamespace(values=self.stored)


def _entry(key: str, delta: int, operation: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(key=key, value=b"{}", revision=1, delta=delta, operation=operation)


async def _read(bucket: _Bucket) -> dict[str, Any]:
    broker = NatsBroker(SimpleNamespace(jetstream=lambda: None))  # type: ignore[arg-type]

    async def kv(name: str) -> _Bucket:
        return bucket

    broker._kv = kv  # type: ignore[assignment,method-assign]
    return await broker.kv_entries(AGENTS_BUCKET)


def test_a_registry_read_ends_where_nothing_is_pending_wherever_the_marker_came() -> None:
    """The end marker first or among the values: every value is read; deletes are honoured."""
    a0, a1, a2 = _entry("a0", 2), _entry("a1", 1), _entry("a2", 0)
    assert sorted(asyncio.run(_read(_Bucket([None, a0, a1, a2], 3)))) == ["a0", "a1", "a2"]
    assert sorted(asyncio.run(_read(_Bucket([a0, None, a1, a2], 3)))) == ["a0", "a1", "a2"]
    assert asyncio.run(_read(_Bucket([None], 0))) == {}  # an empty bucket
    deleted = [a0, _entry("a1", 1), _entry("a1", 0, "DEL")]  # a1's last entry deletes it
    assert sorted(asyncio.run(_read(_Bucket(deleted, 3)))) == ["a0"]
    assert asyncio.run(_read(_Bucket([None, _entry("x", 0, "PURGE")], 1))) == {}
    with pytest.raises(nats.errors.TimeoutError):  # stalled half-way: a failed read
        asyncio.run(_read(_Bucket([None, a0], 3)))


async def busy_registry_reads(server: EmbeddedServer, reads: int) -> list[int]:
    async with registered_fleet(server, 0.05) as (_js, broker, _fleet):
        return [len(await broker.kv_entries(AGENTS_BUCKET)) for _ in range(reads)]


def test_reads_of_a_registry_rewritten_every_50_ms_are_never_empty(
    nats_server: EmbeddedServer,
) -> None:
    """On a real server, 300 reads while the bundles are rewritten: none empty, none gutted.

    Before the read ended where nothing is pending, about one read in 75 came back
    empty (4 of 300 here; this test then fails with probability 0.98), each of which
    the health checks took for every agent's missed beat. What remains, seen only on
    CI under full load (once in 300 reads, twice): a read one key short, most likely
    a bundle rewritten while the watch's snapshot is delivered (the bucket keeps one
    version, so the old one is gone and the new one comes after the last pending
    entry). The health checks count that as one missed round for its agents, far
    from a detection (three in a row). Allowed: at most five such reads (Poisson,
    rate 1 in 300: exceeded with probability 0.0006), each one key short.
    """
    sizes = asyncio.run(asyncio.wait_for(busy_registry_reads(nats_server, 300), 120.0))
    keys = AGENTS + -(-AGENTS // PER_BUNDLE)  # each agent's own key and the bundles
    short = [size for size in sizes if size != keys]
    assert all(size == keys - 1 for size in short), short
    assert len(short) <= 5, short
