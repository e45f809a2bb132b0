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

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from sim.analysis.executors import Executor, make_executor
from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.schema import Scenario


def replicate(scenario: Scenario, replication: int) -> dict[str, Any]:
    """The summary of one replication (runs in a worker)."""
    return summary_of(run_scenario(scenario, replication))


class Replicas:
    """Replications on an executor: local processes by default, one worker in this process.

    *executor* is anything :func:`sim.analysis.executors.make_executor`
    takes — a Dask ``Client`` or scheduler address included — so the planner
    and the tuner run on the same engines as sweeps.
    """

    def __init__(self, workers: int | None = None, executor: Executor | Any | None = None) -> None:
        self._executor: Executor | None
        self._executor, self._owned = make_executor(executor, workers=workers)
        self.workers = self._executor.slots
        #: Simulations run so far (the planner reports its budget).
        self.runs = 0

    def summaries(self, scenario: Scenario, replications: Sequence[int]) -> list[dict[str, Any]]:
        """Summaries of the given replications, in the order asked."""
        assert self._executor is not None, "Replicas used after close()"
        self.runs += len(replications)
        futures = [self._executor.submit(replicate, scenario, r) for r in replications]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._executor is not None and self._owned:
            self._executor.close()
        self._executor = None

    def __enter__(self) -> Replicas:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
