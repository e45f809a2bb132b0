"""Broker credentials: how every live process proves itself to a remote NATS, and over what.

Why from the environment: an agent started by the provisioner (or by
someone else, on another host) must present the same credentials as the
service, and secrets on a command line are visible to every user through
``ps``. So each process reads them from its environment, and children
inherit them; the CLI's file options (``--creds``, ``--tls-ca``) only set
the variables below for the process and its children.

* ``ORCHESTRA_NATS_TOKEN`` — a token;
* ``ORCHESTRA_NATS_USER`` + ``ORCHESTRA_NATS_PASSWORD`` — user and password;
* ``ORCHESTRA_NATS_CREDS`` — a ``.creds`` file (user JWT and NKey seed), or
  ``ORCHESTRA_NATS_NKEY`` — an NKey seed file;
* TLS when the URL says ``tls://``: the system's CAs, or
  ``ORCHESTRA_NATS_CA``; a client certificate from ``ORCHESTRA_NATS_CERT`` and
  ``ORCHESTRA_NATS_KEY`` where the server asks for one.

Closed by default (DESIGN.md): ``require`` refuses to reach a broker off
this host with no credential at all unless the user says so
(``--allow-anonymous``), and says when credentials would travel in clear.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "ORCHESTRA_NATS_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class CredentialError(ValueError):
    """Credentials that cannot be used (a missing file, a refused anonymous connection)."""


@dataclass(frozen=True)
class Auth:
    """One process's broker credentials (see the module docstring); all optional."""

    token: str | None = None
    user: str | None = None
    password: str | None = None
    creds_file: Path | None = None
    nkey_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Auth:
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            return env.get(PREFIX + name) or None

        def path(name: str) -> Path | None:
            value = text(name)
            return Path(value) if value else None

        return cls(
            token=text("TOKEN"),
            user=text("USER"),
            password=text("PASSWORD"),
            creds_file=path("CREDS"),
            nkey_file=path("NKEY"),
            ca_file=path("CA"),
            cert_file=path("CERT"),
            key_file=path("KEY"),
        )

    @property
    def anonymous(self) -> bool:
        return not (self.token or self.user or self.creds_file or self.nkey_file)

    def connect_options(self, url: str) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect`` (files checked first: one-line errors)."""
        for name, file in (
            ("ORCHESTRA_NATS_CREDS", self.creds_file),
            ("ORCHESTRA_NATS_NKEY", self.nkey_file),
            ("ORCHESTRA_NATS_CA", self.ca_file),
            ("ORCHESTRA_NATS_CERT", self.cert_file),
            ("ORCHESTRA_NATS_KEY", self.key_file),
        ):
            if file is not None and not file.is_file():
                raise CredentialError(f"{name}: {file}: file not found")
        if self.user and not self.password:
            raise CredentialError("ORCHESTRA_NATS_PASSWORD: expected a password for the user")
        options: dict[str, Any] = {}
        if self.token:
            options["token"] = self.token
        if self.user:
            options["user"], options["password"] = self.user, self.password
        if self.creds_file is not None:
            options["user_credentials"] = str(self.creds_file)
        elif self.nkey_file is not None:
            options["nkeys_seed"] = str(self.nkey_file)
        if urlsplit(url).scheme == "tls":
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.cert_file is not None:
                key = str(self.key_file) if self.key_file else None
                context.load_cert_chain(str(self.cert_file), key)
            options["tls"] = context
        return options


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK


def require(url: str, auth: Auth, *, allow_anonymous: bool = False) -> str | None:
    """Refuse an anonymous connection off this host; a warning to print, if any."""
    scheme = urlsplit(url).scheme
    if scheme not in ("nats", "tls"):
        raise CredentialError(f"--nats: expected a nats:// or tls:// URL, got {url!r}")
    if auth.anonymous and not is_loopback(url) and not allow_anonymous:
        raise CredentialError(
            f"--nats {url}: no credentials (set ORCHESTRA_NATS_TOKEN, _USER/_PASSWORD, "
            "_CREDS or _NKEY; or pass --allow-anonymous)"
        )
    if not auth.anonymous and scheme == "nats" and not is_loopback(url):
        return f"warning: credentials sent to {url} without TLS (use tls://)"
    return None


def export(creds: Path | None = None, ca: Path | None = None) -> None:
    """The CLI's file options, set for this process and every child it starts."""
    if creds is not None:
        os.environ[PREFIX + "CREDS"] = str(creds.resolve())
    if ca is not None:
        os.environ[PREFIX + "CA"] = str(ca.resolve())
