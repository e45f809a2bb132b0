"""A live agent's model calls under the fleet's provider limits: ask the gate, back off, call.

Scenario: before each model call the agent asks the primary's gate
(``sim.live.llm_protocol``). Granted, it calls — the ``sleep`` handler waits
the model's nominal latency; a real handler calls its provider inside
``async with caller().call(model, input_tokens, output_tokens)`` — and says
when the call ended. Refused (429), it waits what the simulator's retry rule
says (the same ``sim.policies.llm.RetryRule``, with the settings the gate
sends, and the simulator's draw for the same refusal: ``backoff_draw`` of
the key its coordinator sent with the task) and asks again; when the rule
gives up, the attempt fails with reason ``rate_limited`` and the
coordinator's escalation takes over, as in the simulator.

A gate that does not answer (no primary during a takeover) is asked again
after a short wait; that time counts against the rule's wait budget, not its
retries, since no provider refused anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sim.live.broker import decode, encode
from sim.live.cancel import stop_if_cancelled
from sim.live.llm_protocol import ACQUIRE_SUBJECT, RELEASE_SUBJECT, rule_from
from sim.policies.keyed_draws import backoff_draw
from sim.policies.llm import RATE_LIMITED, RetryRule

#: Scenario seconds to wait before asking a gate that did not answer again.
UNANSWERED_WAIT_S = 1.0
#: Wall seconds to wait for the gate's answer.
ANSWER_TIMEOUT_S = 2.0

Request = Callable[[str, bytes, float], Awaitable[bytes]]
Notify = Callable[[str, bytes], Awaitable[None]]


class RateLimited(Exception):
    """A call's retry budget is spent: the attempt fails with reason ``rate_limited``."""

    reason = RATE_LIMITED


@dataclass
class CallBooks:
    """One attempt's calls, as the simulator's per-attempt table counts them."""

    model: str = ""
    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    throttled: int = 0
    retry_wait_s: float = 0.0
    #: The task the calls are for (-1: not said); the gate charges its tenant's budget.
    task_id: int = -1
    #: The task's key for its backoff draws (``keyed_draws.task_key``, sent by the
    #: coordinator; None: not sent, and the caller's own generator draws) and the attempt.
    backoff_key: int | None = None
    attempt: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "cached_tokens": self.cached_tokens,
            "output_tokens": self.output_tokens,
            "throttled": self.throttled,
            "retry_wait_s": self.retry_wait_s,
        }


class LlmCaller:
    """One agent's way to the gate (see the module docstring); times are scenario seconds."""

    def __init__(
        self, request: Request, notify: Notify, agent_id: str, time_scale: float, seed: int
    ) -> None:
        self._request, self._notify = request, notify
        self.agent_id, self.time_scale = agent_id, time_scale
        self.rule = RetryRule()
        self._random = random.Random(seed)

    async def acquire(
        self, model: str, input_tokens: int, output_tokens: int, books: CallBooks
    ) -> float | None:
        """Wait until the gate grants the call; its nominal latency (None: not known).

        Raises RateLimited when the retry rule gives up.
        """
        body = encode(
            {
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "agent": self.agent_id,
                "task_id": books.task_id,
            }
        )
        retries, waited = 0, 0.0
        while True:
            try:
                answer = decode(await self._request(ACQUIRE_SUBJECT, body, ANSWER_TIMEOUT_S))
            except Exception:
                stop_if_cancelled()  # (nats-py reports a cancelled request as a timeout)
                answer = None  # nobody answered (a takeover): ask again shortly
            if answer is None:
                delay = UNANSWERED_WAIT_S
                if waited + delay > self.rule.max_wait_s:
                    raise RateLimited(f"{model}: no gate answered for {waited:.0f} s") from None
            else:
                if "retry" in answer:
                    self.rule = rule_from(answer["retry"])
                latency = answer.get("latency_s")
                if answer.get("granted"):
                    return None if latency is None else float(latency)
                retries += 1
                books.throttled += 1
                hint = answer.get("wait_s")
                retry_after = math.inf if hint is None else float(hint)
                decision = self.rule.next(retries, waited, retry_after, self._draw(books, retries))
                if not decision.retry:
                    raise RateLimited(f"{model}: refused {retries} times over {waited:.1f} s")
                delay = decision.delay_s
                books.retry_wait_s += delay
            waited += delay
            await asyncio.sleep(delay / self.time_scale)

    def _draw(self, books: CallBooks, retries: int) -> float:
        """The jitter of the backoff after the *retries*-th refusal of the attempt's next call
        (its index: the calls granted so far): the simulator's keyed draw when the task came
        with its key, else the caller's own."""
        if books.backoff_key is None:
            return self._random.random()
        return backoff_draw(books.backoff_key, books.attempt, books.calls, retries)

    async def release(self, model: str) -> None:
        with contextlib.suppress(Exception):  # a lost release only delays a concurrency slot
            await self._notify(RELEASE_SUBJECT, encode({"model": model, "agent": self.agent_id}))

    @contextlib.asynccontextmanager
    async def call(
        self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0
    ) -> AsyncIterator[float | None]:
        """One call under the limits: the body runs once granted (it gets the latency)."""
        books = _books.get()
        latency = await self.acquire(model, input_tokens, output_tokens, books)
        books.model = model
        books.calls += 1
        books.input_tokens += input_tokens
        books.cached_tokens += cached_tokens
        books.output_tokens += output_tokens
        try:
            yield latency
        finally:
            await self.release(model)


_caller: contextvars.ContextVar[LlmCaller] = contextvars.ContextVar("llm_caller")
_books: contextvars.ContextVar[CallBooks] = contextvars.ContextVar("llm_books")


def caller() -> LlmCaller:
    """The running agent's caller: what a ``module:function`` handler uses around its calls."""
    try:
        return _caller.get()
    except LookupError:
        raise RuntimeError("no live agent is running this task") from None


def begin_attempt(
    agent_caller: LlmCaller, task_id: int = -1, backoff_key: int | None = None, attempt: int = 0
) -> CallBooks:
    """Open the books of one attempt (in the task's own context: slots do not share them)."""
    books = CallBooks(task_id=task_id, backoff_key=backoff_key, attempt=attempt)
    _caller.set(agent_caller)
    _books.set(books)
    return books


async def run_declared_calls(task: dict[str, Any], speed: float, time_scale: float) -> None:
    """The ``sleep`` handler's work for a task that declares its calls.

    Each call waits for the gate, then the model's nominal latency (or the
    call's own ``latency_s``), then its tool time at the agent's speed.
    """
    plan = task["llm"]
    model = str(plan["model"])
    agent_caller = caller()
    for call in plan["calls"]:
        async with agent_caller.call(
            model,
            int(call["input_tokens"]),
            int(call["output_tokens"]),
            int(call.get("cached_tokens", 0)),
        ) as latency:
            seconds = float(call.get("latency_s", latency if latency is not None else 0.0))
            await asyncio.sleep(seconds / time_scale)
        tool = float(call.get("tool_s", 0.0))
        if tool > 0:
            await asyncio.sleep(tool / speed / time_scale)


def wall_seed(agent_id: str) -> int:
    """A seed for an agent's backoff jitter: its own, and different on each start."""
    return hash((agent_id, time.time_ns())) & 0xFFFFFFFF
