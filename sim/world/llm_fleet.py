"""The LLM fleet as both shells see it: each category's model, its task anatomy, the limiters.

Neutral like the rest of sim.world: no clock. ``build_limiters`` is the one
place a scenario's ``llm`` section becomes pure policies (a ProviderBucket
per account, one RetryRule), so the simulator and a live coordinator enforce
the same limits. ``AnatomySource`` draws what one task attempt will do —
its calls' tokens and the tool time between them — from the category's
own random stream, so turning the LLM model on for one category never
reshuffles another's draws.
"""

from __future__ import annotations

import math

import numpy as np

from sim.policies.llm import ProviderBucket, ProviderLimits, RetryRule
from sim.scenario.llm import Anatomy, Draw, Llm, Model
from sim.world.llm_plan import AttemptPlan, Call
from sim.world.otlp import fit_anatomy, read_otlp
from sim.world.streams import Batched, Streams
from sim.world.workload import WorkloadError


def build_limiters(llm: Llm) -> tuple[dict[str, ProviderBucket], RetryRule]:
    """One bucket per provider account, shared fleet-wide, and the retry rule."""
    buckets = {
        name: ProviderBucket(
            ProviderLimits(
                requests_per_min=p.requests_per_min,
                input_tokens_per_min=p.input_tokens_per_min,
                output_tokens_per_min=p.output_tokens_per_min,
                concurrency=p.concurrency,
            )
        )
        for name, p in llm.providers.items()
    }
    r = llm.retry
    rule = RetryRule(
        base_s=r.base,
        factor=r.factor,
        max_s=r.max,
        max_retries=r.max_retries,
        max_wait_s=r.max_wait,
        use_retry_after=r.use_retry_after,
    )
    return buckets, rule


def call_latency(model: Model, call: Call) -> float:
    """Time to first token plus the rest of the output at the inter-token latency."""
    return model.ttft + call.output_tokens * model.inter_token


def call_usd(model: Model, call: Call) -> float:
    return tokens_usd(model, call.input_tokens, call.cached_tokens, call.output_tokens)


def tokens_usd(model: Model, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
    """Dollars for tokens at *model*'s prices (cached input is part of *input_tokens*)."""
    fresh = input_tokens - cached_tokens
    return (
        fresh * model.input_usd_per_mtok
        + cached_tokens * model.cached_input_usd_per_mtok
        + output_tokens * model.output_usd_per_mtok
    ) / 1e6


class _Lognormal:
    """Lognormal draws with a given mean and cv (cv 0: always the mean), batched."""

    def __init__(self, draw: Draw, rng: np.random.Generator) -> None:
        self.mean = draw.mean
        sigma2 = math.log1p(draw.cv**2)
        self.mu = math.log(draw.mean) - sigma2 / 2
        self.sigma = math.sqrt(sigma2)
        self.normal = Batched(lambda n: rng.standard_normal(n)) if draw.cv > 0 else None

    def __call__(self) -> float:
        if self.normal is None:
            return self.mean
        return math.exp(self.mu + self.sigma * self.normal())


class AnatomySource:
    """Draws attempt plans for one category from its stream ``llm.<category>``."""

    def __init__(self, anatomy: Anatomy, model: Model, rng: np.random.Generator) -> None:
        self.anatomy = anatomy
        self.model = model
        extra = anatomy.calls - 1.0
        self._extra_calls = Batched(lambda n: rng.poisson(extra, n)) if extra > 0 else None
        self._input = _Lognormal(anatomy.input_tokens, rng)
        self._output = _Lognormal(anatomy.output_tokens, rng)
        self._tool = _Lognormal(anatomy.tool_time, rng)

    def draw(self) -> AttemptPlan:
        n = 1 + (int(self._extra_calls()) if self._extra_calls is not None else 0)
        context = self.model.context_tokens
        calls = []
        for _ in range(n):
            tokens = min(context, max(1, round(self._input())))
            calls.append(
                Call(
                    input_tokens=tokens,
                    output_tokens=max(1, round(self._output())),
                    cached_tokens=round(tokens * self.anatomy.cached_share),
                )
            )
        tools = tuple(self._tool() for _ in range(n - 1))
        return AttemptPlan(tuple(calls), tools)


class ReplaySource:
    """A category's recorded tasks, handed out in order (from the first again when used up)."""

    def __init__(self, plans: list[AttemptPlan], model: Model) -> None:
        self.model = model
        self._plans = plans
        self._next = 0

    def draw(self) -> AttemptPlan:
        plan = self._plans[self._next % len(self._plans)]
        self._next += 1
        return plan


def anatomy_sources(llm: Llm, streams: Streams) -> dict[str, AnatomySource | ReplaySource]:
    """A source per category with an anatomy or a recorded trace (others keep one work time)."""
    anatomy = dict(llm.anatomy)
    replayed: dict[str, list[AttemptPlan]] = {}
    if llm.trace is not None:
        recorded = read_otlp(llm.trace)
        for task in recorded:
            if task.category not in llm.categories:
                raise WorkloadError(
                    f"{llm.trace}: trace {task.trace_id}: category {task.category!r} calls no "
                    f"model; expected one of llm.categories ({', '.join(llm.categories)})"
                )
        if llm.trace_mode == "fit":
            anatomy.update(fit_anatomy(recorded))
        else:
            for task in recorded:
                replayed.setdefault(task.category, []).append(task.plan)
    sources: dict[str, AnatomySource | ReplaySource] = {}
    for category in sorted(set(anatomy) | set(replayed)):
        model = llm.models[llm.categories[category]]
        if category in replayed:
            sources[category] = ReplaySource(replayed[category], model)
        else:
            sources[category] = AnatomySource(
                anatomy[category], model, streams.get(f"llm.{category}")
            )
    return sources
