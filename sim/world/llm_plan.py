"""What one LLM task attempt does: its model calls and the tool time between them.

Its own module because both the anatomy sampler (``sim.world.llm_fleet``)
and the trace reader (``sim.world.otlp``) produce plans, and neither should
import the other to share them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Call:
    """One model call: its tokens (cached input is part of ``input_tokens``)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int


@dataclass(frozen=True, slots=True)
class AttemptPlan:
    """One attempt: ``calls[i]``, then ``tools_s[i]`` seconds of tool work (none after the last)."""

    calls: tuple[Call, ...]
    tools_s: tuple[float, ...]
