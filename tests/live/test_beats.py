"""A fleet's bundles: heartbeats read as per-agent beats, end reports gathered per subject.

Without a server: the registry's values as the coordinator reads them, and a
fleet's bundles written to a stand-in registry. The coordinator's verdicts on
bundled beats are held to its verdicts on per-agent beats in
test_coordinator_logic (every test there runs both ways and compares the
event logs); the real-NATS side is test_fleet_beats_nats.
"""

from __future__ import annotations

import asyncio
from typing import Any

from test_coordinator_logic import Fleet

from sim.live.agent import LiveAgent
from sim.live.agent_config import AgentConfig
from sim.live.beats import agent_beats, bundle, bundle_key
from sim.live.broker import decode, encode
from sim.live.fleet_beats import FleetBeats
from sim.live.fleet_reports import FleetReports
from sim.live.transport import result_subject


def beat(agent: str, wall: float, status: str = "idle") -> dict[str, Any]:
    return {"agent": agent, "zone": "A", "category": "CodeGen", "status": status, "wall": wall}


def without_times(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("wall", "time_s")}


def test_a_bundled_beat_reads_as_the_agents_own_key_would_hold_it() -> None:
    values = {bundle_key("f1", 0): bundle([without_times(beat("a1", 0.0))], 12.5, 2.5)}
    assert agent_beats(values) == {"a1": {**beat("a1", 12.5), "time_s": 2.5}}


def test_the_newest_beat_wins_whether_own_key_or_bundle() -> None:
    """A join on the own key, then bundles; an ``offline`` on the own key after the bundle."""
    joined = {"a1": encode(beat("a1", 10.0)), "a2": encode(beat("a2", 10.0))}
    bundled = bundle([without_times(beat("a1", 0)), without_times(beat("a2", 0))], 11.0, 1.0)
    offline = encode(beat("a2", 11.5, "offline"))
    # An old fleet's bundle (a restarted process) says less than the new one.
    stale = bundle([without_times(beat("a1", 0, "busy"))], 9.0, -1.0)
    values = {"a1": joined["a1"], "a2": offline, bundle_key("f1", 0): bundled}
    values[bundle_key("f0", 0)] = stale
    beats = agent_beats(values)
    assert beats["a1"]["wall"] == 11.0 and beats["a1"]["status"] == "idle"
    assert beats["a2"]["wall"] == 11.5 and beats["a2"]["status"] == "offline"


def test_values_that_are_no_beat_are_skipped() -> None:
    values = {
        "a1": b"",
        "a2": b"not json",
        "a3": encode({"status": "idle"}),  # no wall
        bundle_key("f1", 0): encode({"kind": "records"}),
        "a4": encode(beat("a4", 3.0)),
    }
    assert list(agent_beats(values)) == ["a4"]


class Registry:
    """A stand-in for an agent link's registry: remembers each put."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.puts = 0

    async def put(self, key: str, value: bytes) -> int:
        self.values[key] = value
        self.puts += 1
        return self.puts


class Link:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

        class Watch:
            async def poll(self) -> None:
                return None

        self.epoch = Watch()


def agent(agent_id: str, joined: bool = True) -> LiveAgent:
    config = AgentConfig(agent_id, "A", "CodeGen", "nats://unused", None, 1.0, handler="noop")
    live = LiveAgent(config)
    live._joined = joined  # (as ``register`` leaves it once its first beat is written)
    return live


def test_a_fleet_writes_one_bundle_per_chunk_with_only_its_live_registered_agents() -> None:
    registry = Registry()
    beats = FleetBeats(0.1, per_bundle=4, name="f1")
    agents = [agent(f"a{n}") for n in range(10)] + [agent("late", joined=False)]
    for live in agents:
        beats.add(live)
    beats.remove(agents[3])  # killed: its beats stop
    beats.remove(agent("a4"))  # a restart under a1's id is not the agent in the chunk
    asyncio.run(beats.flush([Link(registry)]))  # type: ignore[list-item]
    assert registry.puts == 3 and beats.writes == 3  # 11 agents, 4 to a bundle
    assert sorted(registry.values) == [bundle_key("f1", n) for n in range(3)]
    read = agent_beats(registry.values)
    assert sorted(read) == sorted(f"a{n}" for n in range(10) if n != 3)
    assert all(b["time_s"] == -1.0 for b in read.values())  # no epoch yet, as agents say
    sizes = [len(decode(registry.values[bundle_key("f1", n)])["beats"]) for n in range(3)]
    assert sizes == [3, 4, 2]  # a0-a3 less a3; a4-a7; a8, a9 ("late" not registered yet)


class Stream:
    """A stand-in JetStream: stores what is published, fails the first *failures* publishes."""

    def __init__(self, failures: int = 0) -> None:
        self.stored: list[tuple[str, dict[str, Any], str]] = []
        self.failures = failures
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish(self, subject: str, data: bytes, headers: Any, timeout: float) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker restarting")
        self.stored.append((subject, decode(data), headers["Nats-Msg-Id"]))


def test_ends_that_wait_behind_one_in_flight_go_together_and_a_retry_keeps_its_id() -> None:
    """A lone end goes as itself; the ends that arrive while it is stored go as one bundle,
    retried after a failure under the same digest id; a killed agent's waiting end is
    taken out; every caller returns only once its end is stored."""

    async def body() -> None:
        reports, js = FleetReports(), Stream()
        js.gate.clear()  # the first publish hangs until we let it through
        ends = [{"kind": "end", "task_id": n} for n in range(5)]
        first = asyncio.create_task(reports.publish(js, "r.A", ends[0], "e.0.1"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        rest = [
            asyncio.create_task(reports.publish(js, "r.A", ends[n], f"e.{n}.1"))  # type: ignore[arg-type]
            for n in range(1, 5)
        ]
        await asyncio.sleep(0)
        rest[1].cancel()  # killed before its end went out
        js.failures = 1
        js.gate.set()
        await asyncio.gather(first, rest[0], rest[2], rest[3])
        assert rest[1].cancelled()
        assert [doc for _, doc, _ in js.stored] == [
            ends[0],
            {"kind": "records", "records": [ends[1], ends[3], ends[4]]},
        ]
        assert js.stored[0][2] == "e.0.1" and js.stored[1][2].startswith("r.")
        assert reports.messages == 2 and reports.reports == 4
        assert js.failures == 0  # the failed publish was tried again

    asyncio.run(body())


def test_gathered_ends_count_once_each_and_feed_the_follow_lag_record_by_record() -> None:
    """Two ends in one ``records`` message: both complete, each one's age is a lag sample."""

    async def body(fleet: Fleet) -> None:
        for agent_id in ("a1", "a2"):
            await fleet.beat(agent_id)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1)
        await c.pump()
        ends = []
        for task_id, agent_id in ((0, "a1"), (1, "a2")):
            [(task, attempt)] = await fleet.take(agent_id)
            assert task == task_id
            end = {"kind": "end", "task_id": task, "attempt": attempt, "agent": agent_id}
            end.update(zone="A", outcome="completed", start_s=0.0, end_s=0.0)
            ends.append(end)
        fleet.wall.t += 4.0  # read four seconds after both ends were written
        follows = len(c.lag.follow_s)
        await fleet.broker.publish(result_subject("A"), {"kind": "records", "records": ends})
        await c.pump()
        assert c.counters.completed == 2
        assert list(c.lag.follow_s)[follows:] == [4.0, 4.0]

    asyncio.run(body(Fleet()))
