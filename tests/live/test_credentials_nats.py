"""Credentials against a real nats-server: user and password over TLS, and the refusals.

The server is the embedded one with a configuration of its own (users, a
self-signed certificate made here with openssl): the same ``connect`` every
live process uses reads the credentials from the environment.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.live.transport import EmbeddedServer, LiveError, connect


class SecuredServer(EmbeddedServer):
    """A nats-server with users and TLS (the certificate is its own CA)."""

    def __init__(self, store: Path, cert: Path, key: Path) -> None:
        super().__init__(store)
        self.cert, self.key = cert, key

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        return json.dumps(
            {
                "host": "127.0.0.1",
                "port": self.port,
                "authorization": {"users": [{"user": "svc", "password": "s3cret"}]},
                "tls": {"cert_file": str(self.cert), "key_file": str(self.key)},
                "jetstream": {"store_dir": str(self.store_dir)},
            }
        )


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredServer]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [
            *request,
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    server = SecuredServer(tmp_path / "store", cert, key)
    server.start()
    yield server
    server.stop()


def attempt(url: str) -> str:
    async def body() -> str:
        started = time.monotonic()
        try:
            nc = await connect(url, None, "credentials-test")
        except LiveError as exc:
            assert time.monotonic() - started < 10  # refused at once, not retried for ever
            return f"refused: {exc}"
        info = await nc.jetstream().account_info()  # a JetStream request over the link
        await nc.close()
        return f"ok: {info.streams} streams"

    return asyncio.run(asyncio.wait_for(body(), 30))


def test_user_and_password_over_tls_and_every_refusal_in_one_line(
    secured: SecuredServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRA_NATS_TOKEN", raising=False)
    monkeypatch.setenv("ORCHESTRA_NATS_USER", "svc")
    monkeypatch.setenv("ORCHESTRA_NATS_PASSWORD", "s3cret")
    monkeypatch.setenv("ORCHESTRA_NATS_CA", str(secured.cert))
    assert attempt(secured.url) == "ok: 0 streams"
    monkeypatch.setenv("ORCHESTRA_NATS_PASSWORD", "wrong")
    assert "refused: " in (out := attempt(secured.url)) and "Authorization Violation" in out
    monkeypatch.setenv("ORCHESTRA_NATS_PASSWORD", "s3cret")
    monkeypatch.delenv("ORCHESTRA_NATS_CA")  # the system's CAs do not know this server
    assert "certificate verify failed" in attempt(secured.url).lower()
