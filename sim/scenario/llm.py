"""Scenario section ``llm``: the fleet's model calls, the providers' limits and token prices.

The spec's specialists are AI coding agents: a task is a chain of model calls
with tool steps between them, its time and money go into tokens, and the
limit that binds is usually the provider's rate limit, shared by the whole
fleet. The section is opt-in: without it (``llm: null``, the default) every
category keeps its single drawn work time and nothing else changes; with it,
each category listed under ``anatomy`` runs as its calls and tool steps.

A call's latency is the model's time to first token plus its output tokens
times the inter-token latency; input tokens beyond the model's context limit
are cut to it (the agent truncates its prompt). Prices are US dollars per
million tokens; limits are per minute, refilled continuously.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from sim.scenario.base import Duration, Strict


class Model(Strict):
    """One model: where it is served, what it costs, how fast it answers."""

    provider: str = Field(description="The provider account whose limits the calls spend.")
    input_usd_per_mtok: NonNegativeFloat = Field(3.0, description="Per million input tokens.")
    output_usd_per_mtok: NonNegativeFloat = Field(15.0, description="Per million output tokens.")
    cached_input_usd_per_mtok: NonNegativeFloat = Field(
        0.3, description="Per million input tokens read from the prompt cache."
    )
    ttft: Duration = Field(0.8, description="Time to first token.")
    inter_token: Duration = Field(0.015, description="Seconds per output token after the first.")
    context_tokens: PositiveInt = Field(200_000, description="Largest input a call may carry.")


class Provider(Strict):
    """One provider account's limits (None: that dimension is not limited)."""

    requests_per_min: PositiveFloat | None = Field(None, description="Requests a minute.")
    input_tokens_per_min: PositiveFloat | None = Field(None, description="Input tokens a minute.")
    output_tokens_per_min: PositiveFloat | None = Field(None, description="Output tokens a minute.")
    concurrency: PositiveInt | None = Field(None, description="Calls in flight at once.")


class Draw(Strict):
    """A positive quantity drawn per call or step: lognormal with this mean and cv (0: fixed)."""

    mean: PositiveFloat = Field(description="Mean of the draw (tokens or seconds).")
    cv: NonNegativeFloat = Field(1.0, description="Coefficient of variation; 0 draws the mean.")


class Anatomy(Strict):
    """What one task of a category does: model calls, with tool time after each but the last."""

    calls: PositiveFloat = Field(
        description="Mean model calls per task: 1 + Poisson(calls - 1), so at least one."
    )
    input_tokens: Draw = Field(description="Input tokens per call (prompt and context).")
    output_tokens: Draw = Field(description="Output tokens per call.")
    tool_time: Draw = Field(
        Draw(mean=5.0, cv=1.0),
        description="Seconds of tool work between calls on a base agent (scales with speed).",
    )
    cached_share: float = Field(
        0.0, ge=0, le=1, description="Share of input tokens read from the prompt cache."
    )


class LlmRetry(Strict):
    """What a throttled (429) call does: backoff with full jitter, or the provider's retry-after."""

    base: Duration = Field(1.0, description="First backoff cap.")
    factor: float = Field(2.0, ge=1, description="Growth of the cap per retry.")
    max: Duration = Field(60.0, description="Largest backoff cap.")
    max_retries: int = Field(8, ge=0, description="Retries of one call before the attempt fails.")
    max_wait: Duration = Field(600.0, description="Total backoff of one call before it fails.")
    use_retry_after: bool = Field(True, description="Wait what the provider says when it says.")


class Llm(Strict):
    """Models, provider accounts, which category calls which model, and task anatomy."""

    models: dict[str, Model] = Field(min_length=1, description="Models by name.")
    providers: dict[str, Provider] = Field(
        min_length=1, description="Provider accounts by name, with their limits."
    )
    categories: dict[str, str] = Field(description="Category -> model it calls.")
    anatomy: dict[str, Anatomy] = Field(
        default_factory=dict,
        description="Per category: its tasks run as model calls (others keep one work time).",
    )
    retry: LlmRetry = LlmRetry()
    trace: Path | None = Field(
        None,
        description=(
            "OTLP/JSON export of agent runs (GenAI spans, sim.world.otlp), relative to the "
            "scenario's folder: its categories run as recorded instead of as drawn."
        ),
    )
    trace_mode: Literal["replay", "fit"] = Field(
        "replay",
        description=(
            "replay: each task of a category takes the next recorded task's calls and tool "
            "times, in order (cycling); fit: the recorded tasks become the category's anatomy."
        ),
    )

    @model_validator(mode="after")
    def _references(self) -> Llm:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(
                    f"models.{name}.provider: unknown provider {model.provider!r}; expected one "
                    f"of {', '.join(self.providers)}"
                )
        for category, model_name in self.categories.items():
            if model_name not in self.models:
                raise ValueError(
                    f"categories.{category}: unknown model {model_name!r}; expected one of "
                    f"{', '.join(self.models)}"
                )
        for category in self.anatomy:
            if category not in self.categories:
                raise ValueError(
                    f"anatomy.{category}: the category calls no model; add it to llm.categories"
                )
        return self

    def check_categories(self, known: dict[str, float]) -> None:
        """Every category named must be one of the topology's (called by the Scenario)."""
        for section in ("categories", "anatomy"):
            for category in getattr(self, section):
                if category not in known:
                    raise ValueError(
                        f"llm.{section}.{category}: unknown category; expected one of "
                        f"{', '.join(known)}"
                    )
