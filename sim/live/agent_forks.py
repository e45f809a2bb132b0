"""Agent processes forked from a warm zygote (``sim.live.agent_zygote``), watched by pidfd.

Why: an agent process started with ``python -m sim.live.agent`` costs about
0.3 CPU-seconds before it says a word, and the provisioner's fork of the
coordinator's own large process blocked the coordinator's event loop for
tens of milliseconds each time. A fork of the zygote costs a few
milliseconds, outside the coordinator. A burst of starts — a fleet coming
up, a zone's replacements, a zone back from an outage — no longer takes the
CPU the coordinator needs to keep the scenario's time.

A forked agent is not this process's child, so it is watched through a
pidfd (Linux 5.3): readable once the process has ended, and signalled
without a race against the reuse of its pid. Where there is no pidfd or
no fork (another OS), ``AgentForks.available`` is False and the provisioner
starts each agent as a process of its own, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from sim.live.cancel import wait_bounded


def _pidfds_work() -> bool:
    if not (hasattr(os, "fork") and hasattr(os, "pidfd_open")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a sandbox that forbids the call
        return False
    return hasattr(signal, "pidfd_send_signal")


class ForkedAgent:
    """One agent process forked by the zygote: the part of ``Popen`` the provisioner uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        #: The pidfd while the process runs; None once it has ended.
        self._fd: int | None = None
        with contextlib.suppress(ProcessLookupError):  # ended and reaped already
            self._fd = os.pidfd_open(pid)

    @property
    def returncode(self) -> int | None:
        """None while the process runs; 0 once it has ended (its own code is not known
        here: the zygote's kernel reaped it)."""
        return None if self._fd is not None else 0

    def poll(self) -> int | None:
        if self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], 0)
            if readable:
                self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            if not readable:
                raise subprocess.TimeoutExpired(["agent", str(self.pid)], timeout or 0.0)
            self._ended()
        return 0

    def send_signal(self, signum: int) -> None:
        if self._fd is not None:
            try:
                signal.pidfd_send_signal(self._fd, signum)
            except ProcessLookupError:
                self._ended()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _ended(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AgentForks:
    """The zygote of one provisioner: ``spawn`` an agent, ``close`` at the end."""

    available = _pidfds_work()

    def __init__(self, env: dict[str, str]) -> None:
        self._zygote = subprocess.Popen(
            [sys.executable, "-m", "sim.live.agent_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        assert self._zygote.stdin is not None
        assert self._zygote.stdout is not None
        self._requests: IO[bytes] = self._zygote.stdin
        self._replies: IO[bytes] = self._zygote.stdout

    @property
    def pid(self) -> int:
        """The zygote's own process id (its agents' parent)."""
        return self._zygote.pid

    def spawn(self, argv: list[str], log: Path | None) -> ForkedAgent:
        """Fork an agent with *argv* (``sim.live.agent``'s arguments), its output to *log*."""
        request = {"argv": argv, "log": str(log) if log is not None else None}
        self._requests.write(json.dumps(request).encode() + b"\n")
        self._requests.flush()
        reply = self._replies.readline()
        if not reply:
            raise RuntimeError(f"the agent zygote exited (code {self._zygote.poll()})")
        return ForkedAgent(int(json.loads(reply)["pid"]))

    def close(self) -> None:
        """End the zygote (its agents run on until stopped on their own)."""
        with contextlib.suppress(OSError):
            self._requests.close()
        wait_bounded(self._zygote)
        self._replies.close()
