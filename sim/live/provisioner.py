"""Provisioners: where autoscaling decisions and chaos become real processes.

The coordinator decides *how many* agents and *which pools* (sim.policies);
a provisioner only carries that out. ``LocalProcessProvisioner`` runs each
agent as a local OS process (``python -m sim.live.agent``, i.e. ``orchestra live agent``);
a Kubernetes
provisioner would create and delete pods behind the same small interface.
Scale-down drains: the agent is told to stop pulling, finishes what it holds
and exits on its own; ``kill`` is chaos (SIGKILL, nothing finished).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    zone: str
    category: str
    speed: float = 1.0
    slots: int = 1


class Provisioner(Protocol):
    def start(self, spec: AgentSpec) -> None: ...
    def kill(self, agent_id: str) -> bool: ...
    def running(self) -> list[str]: ...
    def reap(self) -> list[str]: ...
    def stop_all(self) -> None: ...


class LocalProcessProvisioner:
    """Agents as child processes of this one, their output in *log_dir*."""

    def __init__(
        self,
        url: str,
        token: str | None,
        time_scale: float,
        *,
        handler: str = "sleep",
        heartbeat_s: float = 0.1,
        ack_wait_s: float = 1.0,
        log_dir: Path | None = None,
    ) -> None:
        self.url, self.token, self.time_scale = url, token, time_scale
        self.handler, self.heartbeat_s, self.ack_wait_s = handler, heartbeat_s, ack_wait_s
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, AgentSpec] = {}

    def command(self, spec: AgentSpec) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sim.live.agent",
            "--zone",
            spec.zone,
            "--category",
            spec.category,
            "--id",
            spec.agent_id,
            "--nats",
            self.url,
            "--handler",
            self.handler,
            "--time-scale",
            repr(self.time_scale),
            "--speed",
            repr(spec.speed),
            "--slots",
            str(spec.slots),
            "--heartbeat",
            repr(self.heartbeat_s),
            "--ack-wait",
            repr(self.ack_wait_s),
        ]

    def start(self, spec: AgentSpec) -> None:
        env = dict(os.environ)
        if self.token:
            env["ORCHESTRA_NATS_TOKEN"] = self.token  # not on the command line: ps shows that
        out: int | None = subprocess.DEVNULL
        handle = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.log_dir / f"{spec.agent_id}.log", "ab")  # noqa: SIM115
            out = handle.fileno()
        self.processes[spec.agent_id] = subprocess.Popen(
            self.command(spec), env=env, stdout=out, stderr=out, start_new_session=True
        )
        if handle is not None:
            handle.close()
        self.specs[spec.agent_id] = spec

    def kill(self, agent_id: str) -> bool:
        """kill -9: the chaos of a crashed host."""
        process = self.processes.get(agent_id)
        if process is None or process.poll() is not None:
            return False
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True

    def running(self) -> list[str]:
        return sorted(a for a, p in self.processes.items() if p.poll() is None)

    def reap(self) -> list[str]:
        """Agents whose process has exited since the last call (drained or killed)."""
        gone = [a for a, p in self.processes.items() if p.poll() is not None]
        for agent_id in gone:
            del self.processes[agent_id]
        return gone

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
