"""Replications by index, in worker processes, returning only their summaries.

The planner and the tuner run many small simulations and add replications
to a candidate a few at a time (successive halving), so they need
replication *r* on its own — not replications 0..R-1 again, as
:func:`sim.runner.run` would — and only the summary back: the task tables
stay in the worker instead of being pickled across. Replication *r* is the
same run as replication *r* of ``sim.runner.run`` (same streams), so common
random numbers hold across candidates: every fleet size sees the same
arrivals and demands.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from types import TracebackType
from typing import Any

from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.schema import Scenario


def replicate(scenario: Scenario, replication: int) -> dict[str, Any]:
    """The summary of one replication (runs in a worker)."""
    return summary_of(run_scenario(scenario, replication))


class Replicas:
    """A process pool for replications; one worker runs them in this process (tests, debugging)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: Executor | None = (
            ProcessPoolExecutor(max_workers=self.workers) if self.workers > 1 else None
        )
        #: Simulations run so far (the planner reports its budget).
        self.runs = 0

    def summaries(self, scenario: Scenario, replications: Sequence[int]) -> list[dict[str, Any]]:
        """Summaries of the given replications, in the order asked."""
        self.runs += len(replications)
        if self._pool is None or len(replications) == 1:
            return [replicate(scenario, r) for r in replications]
        futures = [self._pool.submit(replicate, scenario, r) for r in replications]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Replicas:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
