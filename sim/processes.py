"""Ending a child process within a bound: asked to stop, then killed if it will not.

Both the live shell (agent processes, the embedded broker) and the sweeps'
local Dask cluster start processes that must not outlive their owner, nor hold
it for ever when one hangs in its shutdown.
"""

from __future__ import annotations

import subprocess
from typing import Protocol

__all__ = ["wait_bounded"]


class _Ending(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


def wait_bounded(process: _Ending, timeout_s: float = 10.0) -> None:
    """Wait *timeout_s* for a process told to stop, then kill -9 it and reap it."""
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
