"""A live agent's settings and its command line (``orchestra live agent``).

Why a module of its own: the provisioner starts agents by this command line
and a simulated fleet builds the same ``AgentConfig`` in process; both read
the settings from here, apart from the agent's lifecycle (``agent``).
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    zone: str
    category: str
    url: str
    token: str | None
    time_scale: float
    epoch: float | None = None  # None: read the run's epoch from the lease bucket
    handler: str = "sleep"
    speed: float = 1.0
    slots: int = 1
    heartbeat_s: float = 0.1  # wall seconds between heartbeats
    ack_wait_s: float = 1.0  # wall seconds; long tasks send in-progress within it
    #: The team it belongs to ("": none), said in its heartbeats: the team bulkhead counts it.
    team: str = ""
    #: Runs on spot capacity, said in its heartbeats: the coordinator's spot books count it.
    spot: bool = False
    #: Wall seconds one pull waits on the broker for a task. Each idle slot asks again
    #: after it, so a fleet of N idle slots costs the broker about 2 N / fetch_s requests
    #: per second: a simulated fleet of thousands waits longer (a drain or a reconnect
    #: cuts the wait short, so it only costs idle traffic, never responsiveness).
    fetch_s: float = 0.5


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True)
    parser.add_argument("--category", required=True)
    parser.add_argument("--team", default="", help="its team (the team bulkhead counts it)")
    parser.add_argument("--spot", action="store_true", help="it runs on spot capacity")
    parser.add_argument("--id", dest="agent_id", help="agent id (default zone-category-pid)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="broker URL")
    parser.add_argument(
        "--handler",
        dest="agent_handler",
        default="sleep",
        help="sleep | noop | command:TEMPLATE | mod:func",
    )
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--epoch", type=float, help="wall time of scenario second 0 (default: the run's)"
    )
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--heartbeat", type=float, default=0.1, help="wall seconds")
    parser.add_argument("--ack-wait", type=float, default=1.0, help="wall seconds")


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """The agent's settings from its command line (``add_agent_arguments``), checked."""
    if args.agent_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", args.agent_id):
        raise ValueError(f"--id: expected letters, digits, '_' or '-', got {args.agent_id!r}")
    # (imported here: the simulator's CLI builds this parser too, and need not load nats)
    from sim.live.transport import env_token

    return AgentConfig(
        agent_id=args.agent_id or f"{args.zone}-{args.category}-{int(time.time() * 1000) % 10**6}",
        zone=args.zone,
        category=args.category,
        team=args.team,
        spot=args.spot,
        url=args.nats,
        token=env_token(),
        time_scale=args.time_scale,
        epoch=args.epoch,
        handler=args.agent_handler,
        speed=args.speed,
        slots=args.slots,
        heartbeat_s=args.heartbeat,
        ack_wait_s=args.ack_wait,
    )
