"""The task message: what a client publishes on ``orch.submit``, and the reply it gets back.

Why a module of its own: three parties read the same message — the Python
client (``sim.live.client``) and ``orchestra live submit`` check it before
sending, and the coordinator checks it again on receipt, since anybody with
credentials may publish on the subject. A coordinator that trusted the
message would crash on a malformed one, and its standby would crash on the
same message after taking over (a poison message); a checked one is
rejected with a reply instead. ``docs/task-message.schema.json`` documents
the same rules for clients written in other languages (a test keeps the two
in step).

The submission (``orch.submit``, one JSON object):

* ``{"kind": "task", "task_id", "category", "zone", "work_s", "arrival_s"}``;
* ``{"kind": "job", "job_id", "zone", "arrival_s", "nodes": [{"node", "task_id",
  "category", "work_s"}], "edges": [[src, dst, data_mb]]}`` — a DAG job.

A task may carry its priority ``tier`` and its ``tenant`` (names: the scenario's
``tiers`` section's, when it has one; a task naming neither gets them drawn
from the section's shares, as the simulator draws them; without the section
both are ignored). A task (or node) may also carry ``payload`` — any JSON object, passed to the
agent's handler as it came (the work's own inputs; at most ``MAX_PAYLOAD``
bytes encoded) — and ``llm``: the model calls it will make, ``{"model",
"calls": [{"input_tokens", "output_tokens", "cached_tokens"?, "tool_s"?}]}``,
so the ``sleep`` handler can run them under the fleet's provider limits.

Several submissions may share one message, a batch
``{"kind": "records", "records": [submission, ...]}`` (``submission_batch``):
each is checked and taken on its own, as if sent alone.

Ids are chosen by the client (integers, unique per deployment: a task id
names one task for ever, and a resubmission of an id is the same task —
submission is idempotent). ``arrival_s`` is the service's clock (seconds
since its epoch); the client stamps it.

The reply (``orch.reply.task.<task_id>`` on ``ORCH_REPLIES``, or
``orch.reply.job.<job_id>`` when a whole job is rejected): the task's
outcome (``completed``, ``failed``, ``shed`` — turned away at admission, lowest
tier first, with the reason — or ``rejected``) with its times. The
stream keeps the last reply per subject, so a client that resubmits a
finished task reads its result again rather than running it again.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from sim.live.broker import BUNDLE

#: Largest id: JSON numbers are doubles in most clients; beyond 2**53 ids collide.
MAX_ID = 2**53 - 1
#: What a zone or category name may be: what a scenario may name it (any text), bounded,
#: with no control characters (subjects and file names are made of sanitised copies).
NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
#: Most nodes one DAG job may have (a bound against a message that swamps the coordinator).
MAX_NODES = 10_000
#: Largest payload a task may carry, encoded (NATS's default message limit is 1 MiB).
MAX_PAYLOAD = 64 * 1024
#: Most model calls one task may declare.
MAX_CALLS = 1_000
REPLY_PREFIX = "orch.reply"


class InvalidMessage(ValueError):
    """A submission that breaks the schema: its message names the field path and the rule."""


@dataclass(frozen=True)
class Pools:
    """The zones and categories a deployment serves (None: not checked, e.g. a client)."""

    zones: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    #: The scenario's tier and tenant names (None: the deployment has no tiers).
    tiers: frozenset[str] | None = None
    tenants: frozenset[str] | None = None


#: Submissions per batch message (``submission_batch``): a few hundred bytes each.
SUBMISSIONS_PER_BATCH = 256


def submission_id(doc: dict[str, Any]) -> str:
    """A submission's message id: the broker stores a resubmitted id once (its dedupe)."""
    kind = str(doc.get("kind"))
    return f"sub.{doc.get(f'{kind}_id')}.{kind}"


def submission_batch(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Several submissions as one message, and its message id (a digest of theirs).

    Why: each stored message costs the broker an fsync (``sync_interval:
    always``), one after another per stream; a client submitting many at
    once pays one per batch instead (``SubmitClient.submit_many``). The
    coordinator takes the batch's submissions one by one, in order, each
    checked on its own (``{"kind": "records", "records": [...]}``, the
    bundle every stream reader opens). The broker dedupes a batch sent
    again whole; a task id sent again in another batch is stored twice and
    booked once (the coordinator knows its ids).
    """
    digest = hashlib.blake2b("|".join(submission_id(d) for d in docs).encode(), digest_size=12)
    return {"kind": BUNDLE, "records": docs}, f"subs.{digest.hexdigest()}"


def reply_subject(kind: str, ident: int) -> str:
    """The subject a task's (or a rejected job's) reply is published on."""
    return f"{REPLY_PREFIX}.{kind}.{ident}"


def validate(doc: Any, pools: Pools = Pools()) -> dict[str, Any]:
    """*doc* if it is a valid submission; InvalidMessage (field path: what was expected)."""
    if not isinstance(doc, dict):
        raise InvalidMessage("submission: expected a JSON object")
    kind = doc.get("kind")
    if kind == "task":
        _id(doc, "task_id", "task_id")
        _name(doc, "category", "category", pools.categories)
        _name(doc, "zone", "zone", pools.zones)
        _seconds(doc, "work_s", "work_s")
        _time(doc, "arrival_s")
        for key, allowed in (("tier", pools.tiers), ("tenant", pools.tenants)):
            if key in doc:
                _name(doc, key, key, allowed)
        _extras(doc, "")
        return doc
    if kind != "job":
        raise InvalidMessage(f"kind: expected 'task' or 'job', got {kind!r}")
    _id(doc, "job_id", "job_id")
    _name(doc, "zone", "zone", pools.zones)
    _time(doc, "arrival_s")
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not 1 <= len(nodes) <= MAX_NODES:
        raise InvalidMessage(f"nodes: expected a list of 1 to {MAX_NODES} nodes")
    seen_nodes: set[int] = set()
    seen_tasks: set[int] = set()
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise InvalidMessage(f"{where}: expected an object")
        seen_nodes.add(_id(node, "node", f"{where}.node", seen_nodes))
        seen_tasks.add(_id(node, "task_id", f"{where}.task_id", seen_tasks))
        _name(node, "category", f"{where}.category", pools.categories)
        _seconds(node, "work_s", f"{where}.work_s")
        _extras(node, f"{where}.")
    edges = doc.get("edges", [])
    if not isinstance(edges, list):
        raise InvalidMessage("edges: expected a list of [src, dst, data_mb]")
    for i, edge in enumerate(edges):
        ok = (
            isinstance(edge, list)
            and len(edge) == 3
            and all(_is_int(v) for v in edge[:2])
            and edge[0] in seen_nodes
            and edge[1] in seen_nodes
            and edge[0] != edge[1]
            and _is_number(edge[2])
            and edge[2] >= 0
        )
        if not ok:
            raise InvalidMessage(
                f"edges[{i}]: expected [src, dst, data_mb] between two different nodes, data >= 0"
            )
    if _cyclic(seen_nodes, [(int(a), int(b)) for a, b, _ in edges]):
        raise InvalidMessage("edges: expected an acyclic graph")
    return doc


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _id(doc: dict[str, Any], key: str, where: str, taken: set[int] | None = None) -> int:
    value = doc.get(key)
    if not _is_int(value) or not 0 <= value <= MAX_ID:
        raise InvalidMessage(f"{where}: expected an integer from 0 to 2**53-1, got {value!r}")
    if taken is not None and value in taken:
        raise InvalidMessage(f"{where}: {value} appears twice in the job")
    return int(value)


def _name(doc: dict[str, Any], key: str, where: str, allowed: frozenset[str] | None) -> None:
    value = doc.get(key)
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidMessage(
            f"{where}: expected a name (1 to 64 characters, no control characters)"
        )
    if allowed is not None and value not in allowed:
        expected = ", ".join(sorted(allowed))
        raise InvalidMessage(f"{where}: unknown {value!r}; expected one of {expected}")


def _seconds(doc: dict[str, Any], key: str, where: str) -> None:
    value = doc.get(key)
    if not _is_number(value) or value < 0:
        raise InvalidMessage(f"{where}: expected seconds (a number >= 0), got {value!r}")


def _time(doc: dict[str, Any], where: str) -> None:
    if not _is_number(doc.get("arrival_s")):
        raise InvalidMessage(f"{where}: expected the service clock's seconds (a number)")


def _extras(doc: dict[str, Any], where: str) -> None:
    """The optional ``payload`` and ``llm`` fields (see the module docstring)."""
    if "payload" in doc:
        payload = doc["payload"]
        if not isinstance(payload, dict):
            raise InvalidMessage(f"{where}payload: expected a JSON object")
        if len(json.dumps(payload, separators=(",", ":"))) > MAX_PAYLOAD:
            raise InvalidMessage(f"{where}payload: expected at most {MAX_PAYLOAD} bytes encoded")
    if "llm" not in doc:
        return
    plan = doc["llm"]
    if not isinstance(plan, dict):
        raise InvalidMessage(f"{where}llm: expected an object with model and calls")
    _name(plan, "model", f"{where}llm.model", None)
    calls = plan.get("calls")
    if not isinstance(calls, list) or not 1 <= len(calls) <= MAX_CALLS:
        raise InvalidMessage(f"{where}llm.calls: expected a list of 1 to {MAX_CALLS} calls")
    for i, call in enumerate(calls):
        at = f"{where}llm.calls[{i}]"
        if not isinstance(call, dict):
            raise InvalidMessage(f"{at}: expected an object")
        for key in ("input_tokens", "output_tokens", "cached_tokens"):
            value = call.get(key, 0)
            if not _is_int(value) or value < 0 or (key != "cached_tokens" and key not in call):
                raise InvalidMessage(f"{at}.{key}: expected an integer >= 0")
        if call.get("cached_tokens", 0) > call["input_tokens"]:
            raise InvalidMessage(f"{at}.cached_tokens: expected at most input_tokens")
        for key in ("tool_s", "latency_s"):
            if key in call:
                _seconds(call, key, f"{at}.{key}")


def _cyclic(nodes: set[int], edges: list[tuple[int, int]]) -> bool:
    """Whether *edges* close a cycle (Kahn's algorithm leaves nodes unsorted)."""
    incoming = dict.fromkeys(nodes, 0)
    out: dict[int, list[int]] = {n: [] for n in nodes}
    for a, b in edges:
        out[a].append(b)
        incoming[b] += 1
    ready = [n for n, k in incoming.items() if k == 0]
    sorted_count = 0
    while ready:
        n = ready.pop()
        sorted_count += 1
        for m in out[n]:
            incoming[m] -= 1
            if incoming[m] == 0:
                ready.append(m)
    return sorted_count < len(nodes)


def task_ids(doc: dict[str, Any]) -> list[int]:
    """The task ids a (valid) submission asks for: one, or one per DAG node."""
    if doc["kind"] == "task":
        return [int(doc["task_id"])]
    return [int(n["task_id"]) for n in doc["nodes"]]


def rejection(doc: Any, error: str) -> tuple[str, dict[str, Any]] | None:
    """The reply to an invalid submission, on the subject its id names (None: no usable id)."""
    if not isinstance(doc, dict):
        return None
    kind = "job" if doc.get("kind") == "job" else "task"
    ident = doc.get(f"{kind}_id")
    if not _is_int(ident) or not 0 <= ident <= MAX_ID:
        return None
    reply = {"kind": kind, f"{kind}_id": ident, "outcome": "rejected", "reason": error}
    return reply_subject(kind, int(ident)), reply
