"""Prometheus text format on ``/metrics``, served by the primary coordinator.

A minimal HTTP/1.1 responder on asyncio streams (one GET, one answer, close):
enough for a Prometheus scrape or curl, without a web framework dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sized
from typing import Protocol

from sim.live.coordinator.state import AgentView, Counters


class FleetView(Protocol):
    """What the exposition reads of a coordinator: a narrow view, not the replica itself."""

    @property
    def counters(self) -> Counters: ...

    @property
    def agents(self) -> Mapping[str, AgentView]: ...

    @property
    def in_flight(self) -> Sized: ...

    @property
    def latencies(self) -> Iterable[float]: ...

    def queue_depth(self) -> int: ...


#: Upper bounds (scenario seconds) of the latency histogram's buckets.
LATENCY_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def render(coordinator: FleetView) -> str:
    """The coordinator's view of the fleet as Prometheus exposition text."""
    c = coordinator.counters
    lines = [
        "# HELP orchestra_agents Agents by status, from their heartbeats.",
        "# TYPE orchestra_agents gauge",
    ]
    by_status: dict[str, int] = {}
    for agent in coordinator.agents.values():
        status = agent.status if agent.healthy else "offline"
        by_status[status] = by_status.get(status, 0) + 1
    for status in ("idle", "busy", "error", "offline"):
        lines.append(f'orchestra_agents{{status="{status}"}} {by_status.get(status, 0)}')
    lines += [
        "# HELP orchestra_queue_depth Tasks dispatched and waiting for an agent.",
        "# TYPE orchestra_queue_depth gauge",
        f"orchestra_queue_depth {coordinator.queue_depth()}",
        "# HELP orchestra_tasks_in_flight Task attempts being served.",
        "# TYPE orchestra_tasks_in_flight gauge",
        f"orchestra_tasks_in_flight {len(coordinator.in_flight)}",
        "# HELP orchestra_tasks_total Tasks by outcome (completions counted once per task id).",
        "# TYPE orchestra_tasks_total counter",
        f'orchestra_tasks_total{{outcome="submitted"}} {c.submitted}',
        f'orchestra_tasks_total{{outcome="completed"}} {c.completed}',
        f'orchestra_tasks_total{{outcome="failed"}} {c.failed}',
        f'orchestra_tasks_total{{outcome="shed"}} {c.shed}',
        f'orchestra_tasks_total{{outcome="duplicate"}} {c.duplicates}',
        "# HELP orchestra_task_latency_seconds Arrival to completion, scenario seconds.",
        "# TYPE orchestra_task_latency_seconds histogram",
    ]
    latencies = list(coordinator.latencies)
    for bound in LATENCY_BUCKETS:
        count = sum(1 for v in latencies if v <= bound)
        lines.append(f'orchestra_task_latency_seconds_bucket{{le="{bound:g}"}} {count}')
    lines.append(f'orchestra_task_latency_seconds_bucket{{le="+Inf"}} {len(latencies)}')
    lines.append(f"orchestra_task_latency_seconds_sum {sum(latencies):.6f}")
    lines.append(f"orchestra_task_latency_seconds_count {len(latencies)}")
    return "\n".join(lines) + "\n"


async def serve_metrics(coordinator: FleetView, port: int) -> None:
    """Serve ``GET /metrics`` on 127.0.0.1:*port* until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            path = request.split()[1] if len(request.split()) > 1 else b"/"
            if path == b"/metrics":
                body = render(coordinator).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body, head = (
                    b"not found\n",
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n",
                )
            writer.write(
                head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()
