"""The model-call gate: the simulator's provider buckets kept by the primary, asked by agents.

In one process through the in-memory broker (the real-NATS run is in
test_llm_live.py): the gate admits what the bucket admits, a refused call
backs off by the retry rule the gate sends and gives up as ``rate_limited``,
a dead agent's calls give their concurrency back, and a task's declared
calls pass the message check (the JSON Schema agrees).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sim.live.broker import decode, encode
from sim.live.coordinator.llm_gate import LlmGate, serve_gate
from sim.live.llm_calls import CallBooks, LlmCaller, RateLimited, begin_attempt
from sim.live.memory_broker import MemoryBroker
from sim.live.task_message import InvalidMessage, validate
from sim.scenario.llm import Llm

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "task-message.schema.json").read_text())
#: Scenario seconds per wall second in these tests: a minute of limits passes in 60 ms.
SCALE = 1000.0


def llm(retries: int = 50, retry_after: bool = True, **provider: Any) -> Llm:
    return Llm.model_validate(
        {
            "models": {"m": {"provider": "p", "ttft": 0.5, "inter_token": 0.01}},
            "providers": {"p": provider},
            "categories": {"CodeGen": "m"},
            "retry": {
                "base": 1.0,
                "max": 4.0,
                "max_retries": retries,
                "max_wait": 120.0,
                "use_retry_after": retry_after,
            },
        }
    )


class Rig:
    """A gate served on a memory broker on a fast scenario clock, and callers for agents."""

    def __init__(self, limits: Llm, scale: float = SCALE) -> None:
        self.scale = scale
        self.broker = MemoryBroker()
        self.gate = LlmGate(limits)
        self.t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self.t0) * self.scale

    def caller(self, agent: str, seed: int = 0) -> LlmCaller:
        async def request(subject: str, data: bytes, timeout_s: float) -> bytes:
            return await self.broker.request(subject, data)

        return LlmCaller(request, self.broker.notify, agent, self.scale, seed)

    async def serve(self, alive: set[str] | None = None) -> asyncio.Task[None]:
        task = asyncio.ensure_future(
            serve_gate(self.broker, self.gate, self.now, lambda: alive or set(), 0.001)
        )
        await asyncio.sleep(0)  # subscribed
        return task


def test_the_gate_answers_with_the_models_latency_and_the_retry_rule() -> None:
    gate = LlmGate(llm(input_tokens_per_min=6000))
    answer = gate.acquire({"model": "m", "input_tokens": 1000, "output_tokens": 50}, 0.0)
    assert answer["granted"] and answer["latency_s"] == pytest.approx(0.5 + 50 * 0.01)
    assert answer["retry"]["max_s"] == 4.0 and answer["retry"]["max_retries"] == 50
    # A call larger than a minute's burst can never fit: refused with no retry-after.
    never = gate.acquire({"model": "m", "input_tokens": 7000, "output_tokens": 1}, 0.0)
    assert not never["granted"] and never["wait_s"] is None
    # A model the scenario does not name is not limited, and a malformed request is refused.
    assert gate.acquire({"model": "x", "input_tokens": 10**9, "output_tokens": 0}, 0.0)["granted"]
    bad = decode(gate.answer(False, b'{"model": "m"}', 0.0) or b"{}")
    assert not bad["granted"] and "bad request" in bad["error"]


def test_served_tokens_never_exceed_the_limit_and_refused_calls_back_off() -> None:
    """20 agents offer ~4x the limit for 30 scenario s: served ≤ burst + rate × span."""
    limit_per_min, size = 6000.0, 500
    rig = Rig(llm(input_tokens_per_min=limit_per_min))
    books = [CallBooks() for _ in range(20)]

    async def agent(k: int, until: float) -> None:
        caller = rig.caller(f"a{k}", seed=k)
        while rig.now() < until:
            begin_attempt(caller)  # this agent's books for the call below
            try:
                await caller.acquire("m", size, 10, books[k])
            except RateLimited:
                return
            books[k].calls += 1
            await caller.release("m")
            await asyncio.sleep(0)

    async def body() -> float:
        server = await rig.serve()
        start = rig.now()
        await asyncio.gather(*(agent(k, start + 30.0) for k in range(20)))
        server.cancel()
        return rig.now() - start

    span = asyncio.run(body())
    served = sum(b.calls for b in books) * size
    granted = rig.gate.counts["p"]
    assert granted.granted * size == served
    assert served <= limit_per_min + limit_per_min / 60.0 * span + size
    assert served >= limit_per_min  # at least the burst: the limit was offered, and used
    assert sum(b.throttled for b in books) == granted.throttled > 0
    assert all(b.retry_wait_s > 0 for b in books if b.throttled)


def test_below_the_limit_nothing_is_throttled() -> None:
    rig = Rig(llm(input_tokens_per_min=1e9, requests_per_min=1e6))

    async def body() -> CallBooks:
        server = await rig.serve()
        caller, books = rig.caller("a"), CallBooks()
        for _ in range(50):
            await caller.acquire("m", 1000, 100, books)
            await caller.release("m")
        server.cancel()
        return books

    books = asyncio.run(body())
    assert books.throttled == 0 and rig.gate.counts["p"].granted == 50


def test_a_call_that_can_never_fit_fails_the_attempt_as_rate_limited() -> None:
    rig = Rig(llm(input_tokens_per_min=6000))

    async def body() -> CallBooks:
        server = await rig.serve()
        caller, books = rig.caller("a"), CallBooks()
        with pytest.raises(RateLimited, match="refused 1 times"):
            await caller.acquire("m", 10_000, 1, books)
        server.cancel()
        return books

    assert asyncio.run(body()).throttled == 1


def test_the_retry_budget_ends_in_rate_limited() -> None:
    """max_retries 2: the third refusal in a row gives up (the rule the simulator uses).

    At x20 the bucket's next request is 3 wall s away and the two backoffs take
    at most 0.15 wall s: a loaded machine cannot make the call fit in between.
    """
    rig = Rig(llm(retries=2, retry_after=False, requests_per_min=1.0), scale=20.0)

    async def body() -> CallBooks:
        server = await rig.serve()
        caller, books = rig.caller("a"), CallBooks()
        await caller.acquire("m", 1, 1, books)  # the one request of this minute
        with pytest.raises(RateLimited):
            await caller.acquire("m", 1, 1, books)
        server.cancel()
        return books

    books = asyncio.run(body())
    assert books.throttled == 3
    assert 0 < books.retry_wait_s <= 1.0 + 2.0  # two backoffs, each within its cap


def test_a_dead_agents_calls_give_their_concurrency_back() -> None:
    gate = LlmGate(llm(concurrency=2))
    call = {"model": "m", "input_tokens": 1, "output_tokens": 1}
    assert gate.acquire({**call, "agent": "a"}, 0.0)["granted"]
    assert gate.acquire({**call, "agent": "a"}, 0.0)["granted"]
    refused = gate.acquire({**call, "agent": "b"}, 0.0)
    assert not refused["granted"] and refused["wait_s"] == 0.0  # concurrency: no hint
    gate.release({"model": "m", "agent": "zzz"})  # not holding anything: ignored
    assert not gate.acquire({**call, "agent": "b"}, 0.0)["granted"]
    assert gate.forget({"a", "b"}) == 0 and gate.forget({"b"}) == 2  # a is gone
    assert gate.acquire({**call, "agent": "b"}, 0.0)["granted"]


def test_an_unanswered_gate_is_asked_again_then_the_attempt_gives_up() -> None:
    rig = Rig(llm())  # nobody serves the gate: no responders

    async def body() -> None:
        with pytest.raises(RateLimited, match="no gate answered"):
            await rig.caller("a").acquire("m", 1, 1, CallBooks())

    asyncio.run(body())


def test_a_late_gate_is_asked_again_until_it_answers() -> None:
    rig = Rig(llm())

    async def body() -> CallBooks:
        books = CallBooks()
        asking = asyncio.ensure_future(rig.caller("a").acquire("m", 1, 1, books))
        await asyncio.sleep(0.02)  # 20 scenario s without a primary
        assert not asking.done()
        await rig.serve()
        await asyncio.wait_for(asking, 1.0)
        return books

    assert asyncio.run(body()).throttled == 0  # unanswered is not a provider's refusal


def task(**fields: Any) -> dict[str, Any]:
    doc = {"kind": "task", "task_id": 1, "category": "CodeGen", "zone": "A", "work_s": 2.0}
    return {**doc, "arrival_s": 0.0, **fields}


CALLS = {"model": "m", "calls": [{"input_tokens": 10, "output_tokens": 2, "tool_s": 1.5}]}
INVALID = [
    (task(payload=[1]), "payload: expected a JSON object"),
    (task(payload={"x": "y" * 70_000}), "payload: expected at most 65536 bytes"),
    (task(llm={"calls": []}), "llm.model: expected a name"),
    (task(llm={"model": "m", "calls": []}), "llm.calls: expected a list of 1"),
    (task(llm={"model": "m", "calls": [{"output_tokens": 1}]}), "input_tokens: expected an"),
    (
        task(llm={"model": "m", "calls": [{"input_tokens": -1, "output_tokens": 1}]}),
        "llm.calls[0].input_tokens: expected an integer >= 0",
    ),
    (
        task(llm={"model": "m", "calls": [{"input_tokens": 1, "output_tokens": 1, "tool_s": -1}]}),
        "llm.calls[0].tool_s: expected seconds",
    ),
]


@pytest.mark.parametrize(("doc", "message"), INVALID)
def test_a_bad_llm_or_payload_field_is_named(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMessage, match=re.escape(message)):
        validate(doc)


def test_declared_calls_and_payloads_pass_the_check_and_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    good = task(llm=CALLS, payload={"repo": "x", "prompt": "fix the bug"})
    node = {"node": 0, "task_id": 5, "category": "CodeGen", "work_s": 1.0, "llm": CALLS}
    job = {"kind": "job", "job_id": 1, "zone": "A", "arrival_s": 0.0, "nodes": [node]}
    for doc in (good, job):
        validate(doc)
        assert not list(validator.iter_errors(doc)), doc
    for doc, _ in INVALID:
        if "65536" not in _:  # (a size in bytes is beyond a JSON Schema)
            assert list(validator.iter_errors(doc)), doc
    assert encode(good)  # and it is plain JSON
