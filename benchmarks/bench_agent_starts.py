"""What starting an agent process costs: forked from the warm zygote, or run from its command.

Scenario: a real nats-server with the run's layout; a provisioner starts N
agent processes at once (a fleet coming up, a zone back from an outage) and
waits until every one answers a call on its control subject. Figures, for
each way of starting (``LocalProcessProvisioner.use_forks`` True and False,
alternating, the same run):

* CPU-seconds the agents spent from their start to their first answer
  (``/proc/<pid>/stat``: user + system), per agent;
* CPU-seconds the provisioner's own process spent in ``start`` (the
  coordinator's event loop is blocked for that long), per agent;
* wall seconds until all N answered.

Ratios are fork / exec, measured in one run (the machine is shared).

    python benchmarks/bench_agent_starts.py [--agents 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.live.layout import Layout, ensure_layout  # noqa: E402
from sim.live.provisioner import AgentSpec, LocalProcessProvisioner  # noqa: E402
from sim.live.server import EmbeddedServer  # noqa: E402
from sim.live.subjects import control_subject  # noqa: E402
from sim.live.transport import CALL, connect  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def answering(nc: Any, agents: list[str]) -> None:
    waiting = list(agents)
    while waiting:
        try:
            await nc.request(control_subject(waiting[0]), CALL, timeout=0.5)
            waiting.pop(0)
        except Exception:
            await asyncio.sleep(0.05)


async def one_round(
    server: EmbeddedServer, agents: int, forks: bool, logs: Path
) -> dict[str, float]:
    p = LocalProcessProvisioner(server.url, server.token, 1.0, log_dir=logs)
    p.use_forks = forks
    nc = await connect(server.url, server.token, "bench")
    ids = [f"A-CodeGen-{n:03d}" for n in range(agents)]
    try:
        began_wall, began_cpu = time.monotonic(), time.process_time()
        for agent_id in ids:
            p.start(AgentSpec(agent_id, "A", "CodeGen"))
        start_cpu = time.process_time() - began_cpu
        await answering(nc, ids)
        wall = time.monotonic() - began_wall
        agents_cpu = [cpu_s(p.processes[a].pid) for a in ids]
    finally:
        await nc.close()
        await asyncio.to_thread(p.stop_all)
    return {
        "agent_cpu_s": statistics.mean(agents_cpu),
        "start_cpu_s": start_cpu / agents,
        "wall_s": wall,
    }


async def main_async(agents: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "store")
        server.start()
        try:
            nc = await connect(server.url, server.token, "layout")
            await ensure_layout(nc.jetstream(), Layout(("A",), ("CodeGen",), 1.0, 2.0))
            await nc.close()
            results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
            for n in range(rounds):
                for forks in (True, False):
                    logs = Path(tmp) / f"logs-{n}-{forks}"
                    results[forks].append(await one_round(server, agents, forks, logs))
        finally:
            server.stop()
    print(f"{agents} agents started at once, best of {rounds} rounds each")
    print(f"{'':<28}{'forked':>12}{'exec':>12}{'fork/exec':>12}")
    for key, label in (
        ("agent_cpu_s", "agent CPU s, to answering"),
        ("start_cpu_s", "provisioner CPU s / start"),
        ("wall_s", f"wall s, all {agents} answering"),
    ):
        forked = min(r[key] for r in results[True])
        execd = min(r[key] for r in results[False])
        print(f"{label:<28}{forked:>12.4f}{execd:>12.4f}{forked / execd:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main_async(args.agents, args.rounds))


if __name__ == "__main__":
    main()
