"""AI agents at work: a task attempt as model calls and tool steps, under the provider's limits.

Scenario: a specialist starts a task whose category has an anatomy. It runs
the calls in order; before each it asks its provider's bucket — one per
account, shared by the whole fleet — for the call's requests and tokens.
Refused (429), it waits what the retry rule says and asks again; when the
rule's budget is spent the attempt fails with reason ``rate_limited`` and
the escalation takes over. Admitted, the call holds for the model's latency
(time to first token plus its output tokens at the inter-token latency),
then the agent does the tool work before the next call (tool time scales
with the agent's speed; model latency does not).

Every decision is sim.policies.llm's; this module keeps time and books: one
row per attempt (tokens, throttles, backoff, dollars) and per-provider
counters that the sampler turns into tokens per minute against the limits.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import simpy

from sim.metrics.llm_summary import ATTEMPT_COLUMNS
from sim.policies.keyed_draws import backoff_draw, task_key
from sim.policies.llm import RATE_LIMITED, ProviderBucket, RetryDecision
from sim.policies.task_faults import Fault
from sim.scenario.llm import Llm
from sim.world.llm_fleet import (
    AnatomySource,
    ReplaySource,
    build_limiters,
    call_latency,
    call_usd,
)
from sim.world.llm_plan import AttemptPlan
from sim.world.llm_task_plans import TaskPlans
from sim.world.streams import Streams

if TYPE_CHECKING:
    from sim.model.task import Task


class Worker(Protocol):
    """What an attempt reads of the agent serving it (a Specialist; narrow, to stay a leaf)."""

    @property
    def speed(self) -> float: ...

    @property
    def slowdown(self) -> float: ...


class FaultDraw(Protocol):
    """The escalator's per-attempt fault draw (keyed by the task and attempt: keyed_draws)."""

    def fault(self, agent: Any, task: Task, service_s: float) -> Fault | None: ...


#: Columns the provider rows add to ``metrics.parquet`` (per minute over the interval).
PROVIDER_COLUMNS = (
    "requests_per_min",
    "requests_limit_per_min",
    "input_tokens_per_min",
    "input_tokens_limit_per_min",
    "output_tokens_per_min",
    "output_tokens_limit_per_min",
    "throttled_per_min",
    "calls_in_flight",
)


class LlmWork:
    """The fleet's model calls in simulated time: limiters, draws and records of one run."""

    def __init__(self, env: simpy.Environment, llm: Llm, streams: Streams, seed: int) -> None:
        self.env = env
        self.llm = llm
        self.buckets, self.rule = build_limiters(llm)
        #: Each task's calls, drawn as it is submitted (the rule live keeps too).
        self.plans = TaskPlans(llm, streams)
        #: Categories whose tasks run as calls.
        self.sources: dict[str, AnatomySource | ReplaySource] = self.plans.sources
        #: The run's key for the draws both shells key by task (``policy_set.fault_seed``):
        #: a throttled call's backoff is live's for the same refusal (``backoff_draw``).
        self._seed = seed
        self._rows: list[tuple[Any, ...]] = []
        self._counts = {p: [0, 0, 0, 0] for p in self.buckets}  # requests, in, out, throttled
        self._last_sample = 0.0
        #: Told of every granted call's tokens (the tenants' budgets; None: nobody listens).
        self.on_tokens: Callable[[Task, float, float], None] | None = None

    def serve(
        self, agent: Worker, task: Task, escalator: FaultDraw | None
    ) -> Generator[simpy.Event, Any, str | None]:
        """Run one attempt; return None when it completed, else why it failed."""
        env, source = self.env, self.sources[task.category]
        model_name = self.llm.categories[task.category]
        model = source.model
        provider = model.provider
        bucket: ProviderBucket = self.buckets[provider]
        counts = self._counts[provider]
        plan = _calls_of(task)
        scale = agent.slowdown / agent.speed
        nominal = sum(call_latency(model, c) for c in plan.calls) + sum(plan.tools_s) * scale
        start = env.now
        row = [0, 0, 0, 0, 0, 0.0, 0.0]  # calls, in, cached, out, throttled, wait, usd
        fault = escalator.fault(agent, task, nominal) if escalator is not None else None
        if fault is not None:
            yield env.timeout(fault.after_s)
            self._record(task, model_name, provider, start, fault.reason, row)
            return fault.reason
        outcome: str | None = None
        try:
            for index, call in enumerate(plan.calls):
                retries, waited = 0, 0.0
                while True:
                    answer = bucket.try_acquire(env.now, call.input_tokens, call.output_tokens)
                    if answer.granted:
                        break
                    retries += 1
                    row[4] += 1
                    counts[3] += 1
                    decision = self._backoff(task, index, retries, waited, answer.wait_s)
                    if not decision.retry:
                        outcome = RATE_LIMITED
                        return outcome
                    waited += decision.delay_s
                    row[5] += decision.delay_s
                    yield env.timeout(decision.delay_s)
                if self.on_tokens is not None:
                    self.on_tokens(task, env.now, call.input_tokens + call.output_tokens)
                counts[0] += 1
                counts[1] += call.input_tokens
                counts[2] += call.output_tokens
                row[0] += 1
                row[1] += call.input_tokens
                row[2] += call.cached_tokens
                row[3] += call.output_tokens
                row[6] += call_usd(model, call)
                try:
                    yield env.timeout(call_latency(model, call))
                finally:
                    bucket.release()
                if index < len(plan.tools_s):
                    yield env.timeout(plan.tools_s[index] * scale)
            return None
        except simpy.Interrupt:
            outcome = "interrupted"
            raise
        finally:
            self._record(task, model_name, provider, start, outcome or "completed", row)

    def _backoff(
        self, task: Task, call: int, retries: int, waited: float, retry_after_s: float
    ) -> RetryDecision:
        """The rule's answer to the *retries*-th refusal of call *call*, with its jitter the
        keyed draw live's agent takes for the same refusal (``keyed_draws.backoff_draw``)."""
        key = task_key(self._seed, task.arrival, task.job_id, task.node)
        u = backoff_draw(key, task.attempt, call, retries)
        return self.rule.next(retries, waited, retry_after_s, u)

    def _record(
        self, task: Task, model: str, provider: str, start: float, outcome: str, row: list[Any]
    ) -> None:
        self._rows.append(
            (
                task.id,
                task.attempt,
                task.category,
                model,
                provider,
                start,
                self.env.now,
                outcome,
                *row,
            )
        )

    def provider_rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows: each provider's use per minute since the last sample."""
        span_min = max(now - self._last_sample, 1e-9) / 60.0
        self._last_sample = now
        rows = []
        for name, bucket in self.buckets.items():
            counts, limits = self._counts[name], bucket.limits
            rows.append(
                {
                    "time_s": now,
                    "level": "provider",
                    "id": name,
                    "zone": None,
                    "status": None,
                    "requests_per_min": counts[0] / span_min,
                    "requests_limit_per_min": _or_nan(limits.requests_per_min),
                    "input_tokens_per_min": counts[1] / span_min,
                    "input_tokens_limit_per_min": _or_nan(limits.input_tokens_per_min),
                    "output_tokens_per_min": counts[2] / span_min,
                    "output_tokens_limit_per_min": _or_nan(limits.output_tokens_per_min),
                    "throttled_per_min": counts[3] / span_min,
                    "calls_in_flight": float(bucket.in_flight),
                }
            )
            counts[:] = [0, 0, 0, 0]  # in place: attempts in progress hold this list
        return rows

    def frame(self, replication: int) -> pd.DataFrame:
        """One row per attempt that ran as model calls (``llm.parquet``)."""
        frame = pd.DataFrame(self._rows, columns=list(ATTEMPT_COLUMNS))
        frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
        return frame


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _calls_of(task: Task) -> AttemptPlan:
    """The task's calls, drawn when it was submitted (each task of a model's category has them)."""
    if task.plan is None:
        raise RuntimeError(f"task {task.id} ({task.category}) reached an agent without its calls")
    return task.plan
