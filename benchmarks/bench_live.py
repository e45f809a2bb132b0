"""Headroom of the live shell: coordinator dispatch rate with simulated fleets, clean time-scales.

Covers: the live coordinator over a real nats-server with 200, 1,000 and
10,000 simulated agents (``--agents-mode simulated``, no-op handler), and the
largest time-scale at which the spec's fleet (173 agents of
``scenarios/baseline_200.yaml``) runs clean, with agent processes and with
simulated agents.

Scenario, part 1: the broker, one primary coordinator and N simulated agents
all up and registered; then a burst of tasks submitted as fast as the broker
takes them (spread over every pool), each served by a no-op handler. Figures:
the submit rate, the coordinator's dispatch rate (assignments per second,
first to last) and the throughput from the first submission to the last
completion. Goal (DESIGN.md): at least 1,000 dispatches per second on this
2-core machine. The broker fsyncs every write (``sync_interval: always``,
the live default); the 200-agent burst is also run with NATS's default
(``2m``) for the price of that guarantee.

Scenario, part 2: the baseline fleet for a short run (warm-up 0) at growing
time-scales; a run is clean when no agent was declared dead (no chaos in the
scenario, so every ``agent_detected`` is the machine falling behind). The
figure is the largest clean scale, for each agents mode.

Where the time went (issue 11; strace of nats-server and /proc of both
processes during 1,000-3,000-task bursts, ``sync_interval: always``, this
2-core machine shared with other work at load 10-16). The broker fsyncs each
stored message before it acks it, one after another per stream (a lone file
here: 600-1,600 fsyncs/s; eight side by side ~16,000/s: a stream's order,
not the disk, is the ceiling). A task cost ~9.3 fsyncs: its agent's consumer
state 3 (delivery, ack), the task message 2 (stored, removed at its ack), the
attempt's start and end 2, the submission 1 and heartbeats ~0.8. Then ~4.8:
the agents' consumers keep their state in the broker's memory
(``sim.live.layout``), an attempt shorter than 10 ms reports only its end
(``sim.live.start_report``), arrivals go on per-zone submission streams, and
the coordinator's stream followers route their next batch while up to four
earlier batches are written (``sim.live.coordinator.outbox``).

Now ~2.1 fsynced writes a task: what one writer emits many of at once goes
as one stored message, and a zone's work queue is eight streams.

* A simulated fleet's heartbeats go as one registry bundle per 250 agents
  per period (``sim.live.beats``, ``sim.live.fleet_beats``), an agent's own
  key written only at its join and its ``offline``: 10,000 agents beating
  every 5 s made 2,000 fsynced puts a second on the one ``KV_orch_agents``
  stream (~630/s taken under load 10-16: the fleet never registered), now
  8 a second; 10,000 agents are up in 13-20 s (this tree) and the
  coordinator has them all 5-7 s later.
* Its end reports that arrive while one is being stored go together as one
  ``records`` message (``sim.live.fleet_reports``): ~0.02 results-stream
  writes a task instead of 1.
* Submissions go 256 to a message (``SubmitClient.submit_many``,
  ``task_message.submission_batch``; ``burst(batch=1)`` submits one per
  message as before): ~0.01 writes a task instead of 1.
* Each zone's work queue is eight streams (``subjects.TASK_SHARDS``, an
  agent's subject in one by a hash of its id). nats-server 2.15 scans every
  consumer of a work-queue stream on each ack (perf during a 10,000-agent
  burst: 62 % of the broker's samples in ``stream.ackMsg`` →
  ``checkForInterest`` → ``consumer.needAck`` / ``isFilteredMatch``, over
  the 2,500 agents' consumers of a zone's one stream); with an eighth each,
  the broker's CPU per task at 10,000 agents fell from ~1.2 ms to ~0.5.

What a task still costs: its message on its agent's subject, stored and then
removed at the agent's ack (two fsyncs on one of its zone's work queues),
the agent's pull request and ack, and shares of bundles; ~0.7-1.0 ms of CPU
(this process's coordinator and simulated fleet, plus the broker) against
~1.1-1.6 before, the spread being the machine's other load. Two cores of
our own would allow 2,000-2,800 tasks/s; with the other load's share, the
goal holds with little to spare at 200 agents.

Alternating A/B bursts in fresh processes, 5,000 tasks, 3 runs each,
medians and ranges, dispatches/s. Before: main at db5acb4, one submission
per message. Run 1 (load average 1.5-3.6): "after" is bundles without the
shards (commit 77379a2), batches of 256; "batch 1" the same tree submitting
one per message:

    agents  sync     before               after                ratio  batch 1
       200  always     991 (926-1,081)    1,508 (1,474-1,670)  x1.52  1,222 (1,156-1,346)
     1,000  always   1,165 (1,012-1,176)  1,900 (1,724-1,985)  x1.63  1,172 (1,014-1,511)
    10,000  always     204 (1 run)          648 (599-2,895)    x3.2   -
       200  2m       1,487 (1,449-1,832)  2,427 (2,165-2,563)  x1.63  1,908 (1,714-1,946)

Run 2 (load average 2.4-5.5, another engineer's benchmarks alongside):
"bundles" as "after" above, "sharded" this tree (bundles and shards):

    agents  sync     before             bundles              sharded              ratio
       200  always     949 (817-953)    1,123 (1,071-1,184)  1,153 (998-1,207)    x1.21
     1,000  always     828 (707-1,074)  1,346 (1,184-1,456)  1,289 (1,199-1,434)  x1.56
    10,000  always     194 (186-307)      626 (594-1,341)    1,209 (1,026-1,286)  x6.2
       200  2m       1,556 (925-1,662)  2,523 (1,780-3,317)  1,953 (1,685-3,157)  x1.26

(ratio: sharded over before.) CPU ms per task in run 2, this process +
broker, medians: before 0.71+0.57 (200), 0.86+0.70 (1,000), 3.65+3.23
(10,000); sharded 0.52+0.46, 0.65+0.42, 0.80+0.52. Stored messages per
task (all streams but the registry): ~3.05 before, ~1.05 after, plus each
task's removal. The "before" fleet of 10,000 registered in these runs
(17-71 s, its beats ~1,000 puts/s during a burst): the machine was quieter
than when it did not. At 200 agents with ``2m`` the shards cost a little
(32 work queues for 200 agents; the ranges overlap).

Run 3, after the merge (main at 3dbda79, nothing else running, load 1.0 at
the start): three ``--skip-scales`` runs of this tree alone, dispatches/s
(completions/s):

    agents  sync     run 1           run 2           run 3
       200  always   2,756 (2,723)   1,692 (1,673)   2,180 (2,155)
     1,000  always   2,204 (2,092)   1,770 (1,735)   1,676 (1,622)
    10,000  always   1,242 (1,147)   3,049 (1,643)   1,282 (1,030)
       200  2m       3,325 (3,296)   1,456 (1,443)   1,203 (1,195)

and ``--skip-bursts --quick``: the 173-agent baseline clean up to x40 with
agent processes and x160 with simulated agents (3-minute runs, no
``agent_detected``).

The goal (1,000/s with ``sync_interval: always``) is met by this tree at
200, 1,000 and 10,000 agents in run 2's medians (lowest runs 998, 1,199 and
1,026/s: little margin at 200 agents under load); the bundles alone met it
at 200 and 1,000 agents in both runs, not at 10,000. It takes about a
core of our own: a task costs ~1 ms of CPU, so with one of the two cores
taken by another process (a profiler at 100 %, load 3.3) a quick burst
(2,000 tasks, 200 agents) ran at 648/s with ``always`` and 849/s with
``2m``. What would buy more: fewer broker requests a
task (an agent fetching and acking several tasks at once, a consumer per
agent's slot pool rather than per agent), or the work-queue message itself
bundled per agent when several go to one agent in one routing batch.

``--profile N`` runs one burst with N agents under cProfile (coordinator and
simulated fleet share the process) and prints where the time goes.

Run with ``python benchmarks/bench_live.py`` (``--quick``: smaller bursts,
fewer scales). Prints a table and writes ``benchmarks/results/bench_live.json``
(git-ignored: figures of one machine on one day).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Measure the tree this file lives in, not whichever checkout the venv installed.
sys.path.insert(0, str(ROOT))
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BASELINE = ROOT / "scenarios" / "baseline_200.yaml"
FLEETS = (200, 1_000, 10_000)
BURST = 5_000  # tasks per burst
QUICK_BURST = 2_000
SCALES = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
QUICK_SCALES = (10.0, 40.0, 160.0)
CLEAN_RUN = "3m"  # scenario time of each time-scale probe
GOAL_PER_S = 1_000.0
SUBMIT_BATCH = 256  # submissions per message (SubmitClient.submit_many's batches)


async def burst(
    agents: int, tasks: int, sync: str = "always", batch: int = SUBMIT_BATCH
) -> dict[str, Any]:
    """One burst of *tasks* no-op tasks through a coordinator with *agents* simulated agents.

    *batch*: submissions per message (``SubmitClient.submit_many``'s batches; 1: one
    message each, as a client submitting one at a time, and as trees before batches).
    """
    from sim.live.broker import unbundle
    from sim.live.clock import Clock
    from sim.live.coordinator import Coordinator, CoordinatorConfig
    from sim.live.provisioner import AGENTS_PER_LINK, AgentSpec, SimulatedFleet
    from sim.live.runtime import scaled_scenario
    from sim.live.transport import (
        LEASE_BUCKET,
        EmbeddedServer,
        Layout,
        connect,
        encode,
        ensure_layout,
        read_all,
        read_records,
        submit_streams,
    )
    from sim.scenario.load import load_scenario
    from sim.world.streams import Streams
    from sim.world.topology import build_world

    scenario = scaled_scenario(
        load_scenario(BASELINE, ["duration=1h", "warmup=0", "scaling.auto_scale.enabled=false"]),
        agents,
    )
    world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
    scale = 1.0  # scenario seconds are wall seconds
    heartbeat_s = scenario.health.interval / scale / 2
    ack_wait_s = (scenario.health.threshold + 1) * scenario.health.interval / scale
    with tempfile.TemporaryDirectory() as store:
        server = EmbeddedServer(Path(store), sync=sync)
        server.start()
        fleet = SimulatedFleet(
            server.url,
            server.token,
            scale,
            handler="noop",
            heartbeat_s=heartbeat_s,
            ack_wait_s=ack_wait_s,
            links=-(-agents // AGENTS_PER_LINK),
        )
        coordinator_task: asyncio.Task[None] | None = None
        try:
            nc = await connect(server.url, server.token, "bench")
            js = nc.jetstream()
            zones, categories = tuple(world.zones), tuple(world.categories)
            await ensure_layout(
                js, Layout(zones, categories, ack_wait_s, max(2.0, 20 * heartbeat_s))
            )
            await fleet.open()
            up_started = time.perf_counter()
            for spec in world.specialists:
                fleet.start(
                    AgentSpec(spec.agent_id, spec.zone, spec.category, spec.speed, spec.slots)
                )
            while fleet.registered < agents:  # (the registry's key listing times out at 10,000)
                await asyncio.sleep(0.2)
            fleet_up_s = time.perf_counter() - up_started
            clock = Clock(time.time() + 0.1, scale)
            await (await js.key_value(LEASE_BUCKET)).put("epoch", encode({"epoch": clock.epoch}))
            config = CoordinatorConfig(server.url, server.token, clock, autoscale=False)
            coordinator = Coordinator("bench", scenario, config, fleet, zones, categories)
            coordinator_task = asyncio.create_task(coordinator.run())
            joined_by = time.monotonic() + 120.0
            while len(coordinator.agents) < agents and time.monotonic() < joined_by:
                await asyncio.sleep(0.05)
            joined = len(coordinator.agents)
            coordinator_up_s = time.perf_counter() - up_started - fleet_up_s
            # Every agent's pool once per cycle, the zones taking turns: a burst shorter than
            # the fleet (5,000 tasks, 10,000 agents) still spreads over every zone's streams.
            by_zone = [
                [(s.zone, s.category) for s in world.specialists if s.zone == z] for z in zones
            ]
            pools = [p for turn in itertools.zip_longest(*by_zone) for p in turn if p is not None]
            seq0 = await _stream_sequences(js)
            cpu0 = (time.process_time(), _process_cpu_s(server.pid))
            queued0 = (_run_queue_s(os.getpid()), _run_queue_s(server.pid))
            t0 = time.time()
            await _submit(js, pools, tasks, clock, batch)
            submitted_s = time.time() - t0
            deadline = time.monotonic() + 60.0 + tasks / 100.0
            while coordinator.counters.completed < tasks and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            completed = coordinator.counters.completed
            drained_at = time.time()
            cpu1 = (time.process_time(), _process_cpu_s(server.pid))
            queued1 = (_run_queue_s(os.getpid()), _run_queue_s(server.pid))
            writes = {
                name: last - seq0.get(name, 0)
                for name, last in (await _stream_sequences(js)).items()
                if last > seq0.get(name, 0)
            }
            results = await read_records(js, zones)
            submits = [
                doc
                for stream, subject in submit_streams(zones)
                for doc in unbundle(await read_all(js, stream, subject))
            ]
            await nc.close()
        finally:
            if coordinator_task is not None:
                coordinator_task.cancel()
                await asyncio.gather(coordinator_task, return_exceptions=True)
            await fleet.close()
            server.stop()
    start_s = clock.epoch
    assigns = sorted(float(r["assign_s"]) for r in results if r["kind"] == "assign")
    ends = sorted(float(r["end_s"]) for r in results if r["kind"] == "end")
    t0_s = (t0 - start_s) * scale
    dispatch_span = (assigns[-1] - assigns[0]) if len(assigns) > 1 else float("nan")
    return {
        "agents": agents,
        "tasks": tasks,
        "sync": sync,
        "fleet_up_s": fleet_up_s,
        "coordinator_joined": joined,
        "coordinator_up_s": coordinator_up_s,
        "submitted": len(submits),
        "completed": completed,
        "submit_per_s": tasks / submitted_s,
        "dispatch_per_s": len(assigns) / dispatch_span if dispatch_span > 0 else float("nan"),
        "assignments": len(assigns),
        "throughput_per_s": completed / (ends[-1] - t0_s) if ends else 0.0,
        "burst_wall_s": (ends[-1] - t0_s) if ends else float("nan"),
        # Where the wall time went, from the first submission until the coordinator counted
        # the last completion: CPU of this process (coordinator and simulated fleet) and of
        # nats-server, as shares of that wall time (the rest is waiting, chiefly on fsync).
        "process_cpu_share": (cpu1[0] - cpu0[0]) / (drained_at - t0),
        # CPU per completed task (ms): what a burst costs whatever share of the cores the
        # machine's other load leaves us; two cores over their sum bounds the rate.
        "process_cpu_ms_per_task": 1e3 * (cpu1[0] - cpu0[0]) / max(1, completed),
        "server_cpu_ms_per_task": 1e3 * (cpu1[1] - cpu0[1]) / max(1, completed),
        "server_cpu_share": (cpu1[1] - cpu0[1]) / (drained_at - t0),
        # Time runnable but not running (waiting for a core: other load on the machine),
        # summed over threads, as shares of the same wall time.
        "process_run_queue_share": (queued1[0] - queued0[0]) / (drained_at - t0),
        "server_run_queue_share": (queued1[1] - queued0[1]) / (drained_at - t0),
        # Stored messages per stream during the burst (fsynced one after another per stream).
        "stream_writes": writes,
        "stream_writes_per_s": {k: v / (drained_at - t0) for k, v in writes.items()},
    }


async def _submit(js: Any, pools: list[Any], tasks: int, clock: Any, batch: int) -> None:
    """Submit *tasks* tasks over *pools* on their zones' subjects, *batch* to a message.

    In waves of 500 submissions, each wave's messages published concurrently."""
    from sim.live.transport import encode, submit_subject

    for first in range(0, tasks, 500):
        by_zone: dict[str, list[dict[str, Any]]] = {}
        for i in range(first, min(first + 500, tasks)):
            zone, category = pools[i % len(pools)]
            document = {"kind": "task", "task_id": i, "category": category, "zone": zone}
            document.update(arrival_s=clock.now(), work_s=1.0)
            by_zone.setdefault(zone, []).append(document)
        messages = []
        for zone, docs in by_zone.items():
            for at in range(0, len(docs), batch):
                messages.append((submit_subject(zone), *_message(docs[at : at + batch])))
        await asyncio.gather(
            *(js.publish(s, encode(d), headers={"Nats-Msg-Id": m}) for s, d, m in messages)
        )


def _message(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """One submission as itself, several as a batch (``task_message.submission_batch``)."""
    if len(docs) == 1:
        return docs[0], f"sub.{docs[0]['task_id']}.task"
    from sim.live.task_message import submission_batch

    return submission_batch(docs)


async def _stream_sequences(js: Any) -> dict[str, int]:
    """Each stream's last sequence (messages stored since it was created)."""
    return {str(info.config.name): int(info.state.last_seq) for info in await js.streams_info()}


def _run_queue_s(pid: int | None) -> float:
    """Seconds the threads of process *pid* waited runnable for a core (Linux schedstat)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(stat.read_text().split()[1])
    return total / 1e9


def _process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process *pid* so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def publish_round_trip(sync: str, count: int = 500) -> float:
    """Median wall seconds of one JetStream publish awaited for its ack (one at a time).

    An unbatched coordinator awaited three of these in a row per assignment
    (the dispatch record, the task on the agent's subject, the assignment
    record): ``1 / (3 * this)`` bounded it. The coordinator now publishes a
    batch's writes concurrently, several batches at once
    (``sim.live.coordinator.outbox``), so its ceiling is each zone's streams'
    fsync rate over the writes a task makes there (module docstring).
    """
    from sim.live.transport import EmbeddedServer, connect

    with tempfile.TemporaryDirectory() as store:
        server = EmbeddedServer(Path(store), sync=sync)
        server.start()
        try:
            nc = await connect(server.url, server.token, "rtt")
            js = nc.jetstream()
            await js.add_stream(name="RTT", subjects=["rtt"])
            times = []
            for i in range(count):
                began = time.perf_counter()
                await js.publish("rtt", b"{}", headers={"Nats-Msg-Id": str(i)})
                times.append(time.perf_counter() - began)
            await nc.close()
        finally:
            server.stop()
    return sorted(times)[len(times) // 2]


def clean_scale(mode: str, scales: tuple[float, ...]) -> dict[str, Any]:
    """The largest time-scale (of *scales*, tried in order) at which the baseline runs clean."""
    from sim.live.runtime import LiveOptions, live_run
    from sim.live.transport import LiveError
    from sim.scenario.load import load_scenario

    scenario = load_scenario(BASELINE, [f"duration={CLEAN_RUN}", "warmup=0"])
    probes: list[dict[str, Any]] = []
    best = None
    for scale in scales:
        with tempfile.TemporaryDirectory() as tmp:
            options = LiveOptions(
                time_scale=scale,
                agents_mode=mode,
                store_dir=Path(tmp) / "store",
                log_dir=Path(tmp) / "logs",
                grace_s=30.0,
            )
            started = time.perf_counter()
            try:
                run = asyncio.run(live_run(scenario, options))
            except LiveError as exc:
                probes.append({"scale": scale, "clean": False, "error": str(exc)})
                break
            events = run.result.events
            detected = int((events["kind"] == "agent_detected").sum())
            counts = run.summary["tasks"]
            probe = {
                "scale": scale,
                "clean": detected == 0,
                "agent_detected": detected,
                "completed": counts["completed"],
                "submitted": counts["submitted"],
                "wall_s": time.perf_counter() - started,
            }
            probes.append(probe)
            print(
                f"  {mode:>9}  x{scale:<6g} agent_detected {detected:>4}"
                f"  wall {probe['wall_s']:.1f} s"
            )
            if detected:
                break
            best = scale
    return {"mode": mode, "largest_clean_scale": best, "probes": probes}


def profile_burst(agents: int, tasks: int) -> str:
    """cProfile of one burst: the top functions by own time, and by package."""
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(burst(agents, tasks))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    by_area: dict[str, float] = {}
    total = 0.0
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        area = _area(filename)
        by_area[area] = by_area.get(area, 0.0) + tottime
        total += tottime
    out.write("own time by area:\n")
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        out.write(f"  {area:<28} {seconds:>7.2f} s  {seconds / total:>6.1%}\n")
    return out.getvalue()


def _area(filename: str) -> str:
    for marker, area in (
        ("sim/live/coordinator", "coordinator"),
        ("sim/policies/dispatch", "dispatch core"),
        ("sim/live/agent", "simulated agents"),
        ("sim/live/transport", "transport helpers"),
        ("sim/live/subjects", "transport helpers"),
        ("sim/policies", "policies"),
        ("sim/metrics", "metrics"),
        ("nats/js", "nats-py jetstream"),
        ("nats/aio", "nats-py client"),
        ("nats/protocol", "nats-py parser"),
        ("asyncio", "asyncio"),
        ("json", "json"),
    ):
        if marker in filename:
            return area
    return "other" if filename != "~" else "builtins"


def print_bursts(bursts: list[dict[str, Any]], rtt: dict[str, float]) -> None:
    print("dispatch burst (no-op handler; broker fsync per write unless noted):")
    print(
        f"  {'agents':>7} {'sync':>6} {'fleet up s':>10} {'submit/s':>9} {'dispatch/s':>10}"
        f" {'done/s':>8} {'done':>7} {'CPU ms/task: us':>16} {'broker':>7} {'2-core cap/s':>12}"
        f" {'run queue: us':>14} {'broker':>7}"
    )
    for b in bursts:
        cpu = b["process_cpu_ms_per_task"] + b["server_cpu_ms_per_task"]
        print(
            f"  {b['agents']:>7,} {b['sync']:>6} {b['fleet_up_s']:>10.1f}"
            f" {b['submit_per_s']:>9,.0f} {b['dispatch_per_s']:>10,.0f}"
            f" {b['throughput_per_s']:>8,.0f} {b['completed']:>7,}"
            f" {b['process_cpu_ms_per_task']:>16.2f} {b['server_cpu_ms_per_task']:>7.2f}"
            f" {2e3 / cpu if cpu > 0 else float('nan'):>12,.0f}"
            f" {b['process_run_queue_share']:>14.2f} {b['server_run_queue_share']:>7.2f}"
        )
    print(f"  goal: >= {GOAL_PER_S:,.0f} dispatches/s")
    print(
        "  (CPU ms/task: this process — coordinator and simulated fleet — and nats-server;"
        " 2-core cap: tasks/s if both cores were ours; run queue: threads waiting for a core"
        " on average, other load on the machine)"
    )
    for sync, seconds in rtt.items():
        print(
            f"  one awaited publish (sync {sync}): {seconds * 1e3:.2f} ms median;"
            f" three in a row per assignment (unbatched) bound dispatch at"
            f" {1 / (3 * seconds):,.0f}/s"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller bursts, fewer scales")
    parser.add_argument(
        "--fleets", type=int, nargs="*", help="agents per burst (default 200 1000 10000)"
    )
    parser.add_argument("--skip-scales", action="store_true", help="only the dispatch bursts")
    parser.add_argument("--skip-bursts", action="store_true", help="only the time-scale probes")
    parser.add_argument("--profile", type=int, metavar="N", help="profile one burst with N agents")
    args = parser.parse_args()
    tasks = QUICK_BURST if args.quick else BURST
    if args.profile:
        print(profile_burst(args.profile, tasks))
        return
    print(
        f"orchestra live benchmark ({'quick' if args.quick else 'full'}), {os.cpu_count()} cores\n"
    )
    bursts: list[dict[str, Any]] = []
    rtt: dict[str, float] = {}
    if not args.skip_bursts:
        for agents in args.fleets or FLEETS:
            bursts.append(asyncio.run(burst(agents, tasks)))
        bursts.append(asyncio.run(burst(200, tasks, sync="2m")))
        rtt = {sync: asyncio.run(publish_round_trip(sync)) for sync in ("always", "2m")}
        print_bursts(bursts, rtt)
    scales: list[dict[str, Any]] = []
    if not args.skip_scales:
        print(f"largest clean time-scale, baseline_200 (173 agents), {CLEAN_RUN} runs, warm-up 0:")
        for mode in ("process", "simulated"):
            scales.append(clean_scale(mode, QUICK_SCALES if args.quick else SCALES))
        for s in scales:
            print(f"  {s['mode']:>9}: x{s['largest_clean_scale']}")
    RESULTS_DIR.mkdir(exist_ok=True)
    document = {
        "publish_round_trip_s": rtt,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cores": os.cpu_count(),
        "bursts": bursts,
        "scales": scales,
    }
    path = RESULTS_DIR / "bench_live.json"
    path.write_text(json.dumps(document, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
