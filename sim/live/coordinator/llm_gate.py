"""The fleet's provider limits, kept by the primary: the simulator's own buckets, on scenario time.

Scenario: an agent about to call a model asks the primary (``orch.llm.acquire``,
see ``sim.live.llm_protocol``). The gate asks the provider's bucket — built by
``sim.world.llm_fleet.build_limiters``, exactly as the simulator builds it —
at the scenario's clock, and answers granted, or refused with the bucket's
retry-after. A granted call's end comes back on ``orch.llm.release`` (the
concurrency limit counts calls in flight). The agent backs off by the same
retry rule the simulator's agents use, which the gate sends with each answer,
so a live agent needs no scenario of its own.

Why the primary and not each agent: the limits are the account's, shared by
the whole fleet (one bucket per provider, as in the simulator). A standby
that takes over starts with full buckets, as a provider's would look after
a quiet spell; the answers it gives from then on follow the same rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.live.broker import Broker, decode, encode
from sim.live.llm_protocol import ACQUIRE_SUBJECT, RELEASE_SUBJECT, rule_document
from sim.policies.llm import ProviderBucket
from sim.scenario.llm import Llm
from sim.world.llm_fleet import build_limiters, call_latency
from sim.world.llm_plan import Call


@dataclass
class GateCounts:
    """What one provider's bucket was asked and granted (the coordinator's books)."""

    requests: int = 0
    granted: int = 0
    throttled: int = 0
    input_tokens: float = 0.0
    output_tokens: float = 0.0


class LlmGate:
    """One bucket per provider and the retry rule (see the module docstring)."""

    def __init__(self, llm: Llm) -> None:
        self.llm = llm
        self.buckets, rule = build_limiters(llm)
        self._rule = rule_document(rule)
        self.counts = {provider: GateCounts() for provider in self.buckets}
        #: Calls in flight per (agent, provider): an agent that dies holding calls gives
        #: their concurrency back when the coordinator stops counting it as alive.
        self.holding: dict[tuple[str, str], int] = {}
        #: Told of every granted call: (task id, scenario time, input + output tokens); the
        #: tenants' budgets listen (None: nobody). A request that names no task is not told.
        self.on_grant: Callable[[int, float, float], None] | None = None

    def acquire(self, request: dict[str, Any], now: float) -> dict[str, Any]:
        """The answer to one call's request at scenario time *now*."""
        model = self.llm.models.get(str(request.get("model")))
        if model is None:
            return {"granted": True, "wait_s": 0.0, "latency_s": None, "retry": self._rule}
        input_tokens = int(request["input_tokens"])
        output_tokens = int(request["output_tokens"])
        latency = call_latency(model, Call(input_tokens, output_tokens, 0))
        bucket: ProviderBucket = self.buckets[model.provider]
        counts = self.counts[model.provider]
        counts.requests += 1
        answer = bucket.try_acquire(now, input_tokens, output_tokens)
        if answer.granted:
            counts.granted += 1
            counts.input_tokens += input_tokens
            counts.output_tokens += output_tokens
            key = (str(request.get("agent", "")), model.provider)
            self.holding[key] = self.holding.get(key, 0) + 1
            task_id = request.get("task_id")
            if self.on_grant is not None and isinstance(task_id, int):
                self.on_grant(task_id, now, float(input_tokens + output_tokens))
            return {"granted": True, "wait_s": 0.0, "latency_s": latency, "retry": self._rule}
        counts.throttled += 1
        wait = None if math.isinf(answer.wait_s) else answer.wait_s
        return {"granted": False, "wait_s": wait, "latency_s": latency, "retry": self._rule}

    def release(self, request: dict[str, Any]) -> None:
        """A granted call ended: one call fewer in flight at its provider."""
        model = self.llm.models.get(str(request.get("model")))
        if model is None:
            return
        key = (str(request.get("agent", "")), model.provider)
        if self.holding.get(key, 0) > 0:  # (a call granted by a primary before a takeover: no)
            self.holding[key] -= 1
            self.buckets[model.provider].release()

    def forget(self, alive: set[str]) -> int:
        """Give back the calls held by agents no longer in *alive*; how many were given back."""
        freed = 0
        for (agent, provider), held in list(self.holding.items()):
            if agent not in alive and held > 0:
                for _ in range(held):
                    self.buckets[provider].release()
                freed += held
                del self.holding[(agent, provider)]
        return freed

    def answer(self, subject_is_release: bool, data: bytes, now: float) -> bytes | None:
        """A message on either subject → the reply to send (None: none is due)."""
        try:
            request = decode(data)
        except ValueError:
            return encode({"granted": False, "wait_s": None, "error": "expected a JSON object"})
        if subject_is_release:
            self.release(request)
            return None
        try:
            return encode(self.acquire(request, now))
        except (KeyError, TypeError, ValueError) as exc:
            # A malformed request is refused for good, not a crash of the primary.
            return encode({"granted": False, "wait_s": None, "error": f"bad request: {exc}"})


async def serve_gate(
    broker: Broker,
    gate: LlmGate,
    now: Callable[[], float],
    alive: Callable[[], set[str]],
    period_wall_s: float,
) -> None:
    """Answer the gate's subjects until cancelled; every period, free dead agents' calls."""
    stops = [
        await broker.respond(ACQUIRE_SUBJECT, lambda _s, data: gate.answer(False, data, now())),
        await broker.respond(RELEASE_SUBJECT, lambda _s, data: gate.answer(True, data, now())),
    ]
    try:
        while True:
            await asyncio.sleep(period_wall_s)
            gate.forget(alive())
    finally:
        for stop in stops:
            with contextlib.suppress(Exception):
                await stop()
