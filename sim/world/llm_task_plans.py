"""Each LLM task's model calls, drawn once, when it is submitted: the rule both shells keep.

Scenario: a task's calls (how many, their tokens, the tool time between them)
decide how long it serves, so a live run and its replay must give each task
the same calls, as they give it the same arrival and the same work. The draws
come from each category's own stream, so the *order* of the draws decides
which task gets which plan. The simulator used to draw a plan as each attempt
started and live as each task was submitted: at the spec's fleet on the
``llm_rate_limits`` scenario, 46 % of the tasks made a different number of
calls in the two, and their latencies were 4.15 s apart at the median.

So the one rule: a plan per task (a retry runs the same calls again, as a
retried job re-sends its prompts), drawn as the task is submitted, in
submission order — an independent task as it arrives, a DAG job's nodes in
node order as the job arrives (live sends the calls in the task message).
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.scenario.llm import Llm
from sim.world.llm_fleet import AnatomySource, ReplaySource, anatomy_sources
from sim.world.llm_plan import AttemptPlan
from sim.world.streams import Streams


class TaskPlans:
    """Draws each submitted task's plan from its category's source (None: no model calls)."""

    def __init__(self, llm: Llm | None, streams: Streams) -> None:
        self.sources: dict[str, AnatomySource | ReplaySource] = (
            anatomy_sources(llm, streams) if llm is not None else {}
        )

    def for_task(self, category: str) -> AttemptPlan | None:
        """The plan of an independent task of *category*, drawn as it arrives."""
        source = self.sources.get(category)
        return source.draw() if source is not None else None

    def for_job(self, categories: Iterable[str]) -> list[AttemptPlan | None]:
        """The plans of a DAG job's nodes (their categories in node order), as the job arrives."""
        return [self.for_task(category) for category in categories]
