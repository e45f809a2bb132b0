"""Heartbeats in the ``orch_agents`` registry: an agent's own key, or a fleet's bundle.

Why bundles: every registry write is an fsynced message on the one
``KV_orch_agents`` stream, which stores them one after another (~600-1,600
a second here). An agent process beats on its own key; a process hosting
thousands of agents (``provisioner.SimulatedFleet``) would make the stream
take thousands of puts a second, and agents joining would queue behind
their neighbours' beats. So a fleet writes, like a node lease carrying its
pods, one key per chunk of a few hundred agents (``fleet.<name>.<chunk>``)
each heartbeat period, carrying each agent's beat; an agent's own key is
written only when it joins and when it leaves (status ``offline``).

Readers see one beat per agent whichever way it came: ``agent_beats``
opens the bundles and keeps, per agent, the newest beat by its ``wall``
time (its own key and a bundle may both hold one; the newer says more). A
bundled beat is the very document an agent would have put on its own key
(the bundle's shared ``wall`` and ``time_s`` filled in), so the
coordinator's health check, its lag books and ``agent_detected`` read it
exactly as they read a per-agent beat. A killed agent drops out of its
bundle: its last beat ages as its own key would, and a dead fleet's
bundles expire with the bucket's TTL as agents' keys do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sim.live.broker import decode, encode

#: The kind of a bundle document, and the prefix of its keys (agent ids hold no dot).
BEATS = "beats"
BUNDLE_PREFIX = "fleet."
#: Agents per bundle: a few hundred beats of ~250 bytes stay far below NATS's 1 MB payload.
AGENTS_PER_BUNDLE = 250


def bundle_key(fleet: str, chunk: int) -> str:
    """The registry key of chunk *chunk* of fleet *fleet*."""
    return f"{BUNDLE_PREFIX}{fleet}.{chunk}"


def is_bundle_key(key: str) -> bool:
    return key.startswith(BUNDLE_PREFIX)


def bundle(beats: Iterable[dict[str, Any]], wall: float, time_s: float) -> bytes:
    """One bundle of *beats* (agents' beats without ``wall`` and ``time_s``) taken at *wall*."""
    return encode({"kind": BEATS, "wall": wall, "time_s": time_s, "beats": list(beats)})


def unbundle_beats(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-agent beats a bundle carries, each as the agent's own key would hold it."""
    wall, time_s = document["wall"], document["time_s"]
    return [{**beat, "wall": wall, "time_s": time_s} for beat in document["beats"]]


def agent_beats(values: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Each agent's newest beat, from registry *values* (key → stored bytes).

    Own keys and bundles alike (see the module docstring); a value that is
    neither (empty, not JSON, no ``wall``) is skipped.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        try:
            document = decode(value or b"{}")
        except ValueError:  # (json's errors are ValueErrors) not a beat: nobody's
            continue
        if is_bundle_key(key):
            if document.get("kind") != BEATS:
                continue
            for beat in unbundle_beats(document):
                _keep_newer(out, str(beat["agent"]), beat)
        elif "wall" in document:
            _keep_newer(out, key, document)
    return out


def _keep_newer(out: dict[str, dict[str, Any]], agent_id: str, beat: dict[str, Any]) -> None:
    held = out.get(agent_id)
    if held is None or float(beat["wall"]) > float(held["wall"]):
        out[agent_id] = beat


__all__ = [
    "AGENTS_PER_BUNDLE",
    "BEATS",
    "agent_beats",
    "bundle",
    "bundle_key",
    "is_bundle_key",
    "unbundle_beats",
]
