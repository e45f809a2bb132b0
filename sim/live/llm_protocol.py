"""The model-call gate's wire format: what an agent asks before a call, what it is told.

Its own module because both ends speak it — the primary coordinator's gate
(``sim.live.coordinator.llm_gate``) and the agent's caller
(``sim.live.llm_calls``) — and neither may import the other.

* ``orch.llm.acquire`` (core request/reply): ``{"model", "input_tokens",
  "output_tokens", "agent"}`` → ``{"granted": bool, "wait_s": float,
  "latency_s": float | null, "retry": {RetryRule's fields}}``. ``wait_s``
  is the provider's retry-after (scenario seconds; ``null``: it can never
  fit); ``latency_s`` the model's nominal latency for the call (what the
  ``sleep`` handler waits; ``null`` when the model is not in the scenario).
* ``orch.llm.release`` (core publish): ``{"model"}`` when a granted call ends
  (the provider's concurrency limit counts calls in flight).

An LLM task's assignment carries its draw key (``backoff_key``, from the
coordinator: ``keyed_draws.task_key``), and the agent backs off a refusal by
``keyed_draws.backoff_draw`` of it, the simulator's draw for the same
refusal.

A model the scenario does not name is granted without limit: the gate
enforces what the scenario states, and nothing it does not.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sim.policies.llm import RetryRule

ACQUIRE_SUBJECT = "orch.llm.acquire"
RELEASE_SUBJECT = "orch.llm.release"
#: The assignment's field with the task's key for its backoff draws.
BACKOFF_KEY_FIELD = "backoff_key"


def rule_document(rule: RetryRule) -> dict[str, Any]:
    return asdict(rule)


def rule_from(document: dict[str, Any]) -> RetryRule:
    return RetryRule(**{k: document[k] for k in rule_document(RetryRule()) if k in document})
