"""Agent processes forked from a warm zygote (``sim.live.agent_forks``), on a real nats-server.

Scenario: a provisioner starts three agents; each is a fork of one zygote
that imported the agent once, in a session of its own, and joins the fleet
(it answers a call on its control subject) as ``python -m sim.live.agent`` would. One is killed
(-9) and reaped; one the zygote cannot start (a bad argument) ends with its
error in its log; the rest stop with the provisioner, and the zygote with
them.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from sim.live.agent_forks import AgentForks
from sim.live.layout import Layout, ensure_layout
from sim.live.provisioner import AgentSpec, LocalProcessProvisioner
from sim.live.subjects import control_subject
from sim.live.transport import CALL, CALL_ANSWERED, EmbeddedServer, connect

AGENTS = ["A-CodeGen-001", "A-CodeGen-002", "B-Review-001"]


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class BadArguments(LocalProcessProvisioner):
    def arguments(self, spec: AgentSpec) -> list[str]:
        return ["--no-such-option"] if spec.agent_id == "bad" else super().arguments(spec)


async def answering(server: EmbeddedServer, agents: list[str], timeout_s: float = 20.0) -> None:
    """Until each agent answers a call on its control subject (it is up and connected)."""
    nc = await connect(server.url, server.token, "test")
    try:
        deadline = time.monotonic() + timeout_s
        waiting = list(agents)
        while waiting:
            assert time.monotonic() < deadline, f"no answer from {waiting}"
            try:
                reply = await nc.request(control_subject(waiting[0]), CALL, timeout=0.5)
            except Exception:  # not subscribed yet
                await asyncio.sleep(0.1)
                continue
            assert reply.data == CALL_ANSWERED
            waiting.pop(0)
    finally:
        await nc.close()


def test_agents_fork_from_one_zygote_join_and_are_killed_reaped_and_stopped(
    tmp_path: Path, nats_server: EmbeddedServer
) -> None:
    assert AgentForks.available  # Linux with pidfds: a silent fallback would go untested
    logs = tmp_path / "logs"
    p = BadArguments(nats_server.url, nats_server.token, 1.0, log_dir=logs)

    async def body() -> None:
        nc = await connect(nats_server.url, nats_server.token, "layout")
        layout = Layout(("A", "B"), ("CodeGen", "Review"), 1.0, heartbeat_ttl_s=2.0)
        await ensure_layout(nc.jetstream(), layout)
        await nc.close()
        for agent_id in AGENTS:
            zone, category, _ = agent_id.split("-")
            p.start(AgentSpec(agent_id, zone, category))
        p.start(AgentSpec("bad", "A", "CodeGen"))
        assert p._forks is not None
        zygote = p._forks.pid
        pids = {a: p.processes[a].pid for a in [*AGENTS, "bad"]}
        assert {parent_of(pid) for pid in pids.values() if alive(pid)} <= {zygote}
        await answering(nats_server, AGENTS)
        assert all(os.getsid(pids[a]) == pids[a] for a in AGENTS)  # a session each (by now)
        assert p.processes["bad"].wait(10) is not None
        assert "orchestra live agent: error:" in (logs / "bad.log").read_text()
        assert p.kill("A-CodeGen-001") is True
        assert not alive(pids["A-CodeGen-001"])
        assert p.running() == ["A-CodeGen-002", "B-Review-001"]
        assert sorted(p.reap()) == ["A-CodeGen-001", "bad"]
        assert p.kill("A-CodeGen-001") is False  # gone already

    try:
        asyncio.run(body())
        survivors = [p.processes[a].pid for a in p.running()]
        zygote = p._forks.pid if p._forks else -1
    finally:
        p.stop_all()
    assert p.running() == [] and p._forks is None
    assert not any(alive(pid) for pid in [*survivors, zygote])
