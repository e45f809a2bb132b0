"""A spot reclaim is not the task's fault: ``DispatchCore.requeue`` re-dispatches off budget."""

from __future__ import annotations

import pytest
from test_dispatch_core import Job, core


@pytest.mark.parametrize("budget", [0, 1, 2])
def test_requeues_are_not_charged_to_the_retry_budget(budget: int) -> None:
    d = core(budget=budget)
    job = Job(1)
    for n in range(budget):
        assert d.retry(job, f"x{n}")
    # at its budget: one more lost attempt would fail it, but reclaims do not count
    for n in range(3):
        d.requeue(job, f"spot{n}")
    assert job.attempt == budget + 4  # every dispatch is numbered, requeued or not
    assert job.avoid is not None and {"spot0", "spot1", "spot2"} <= job.avoid
    assert not d.retry(job, "late")  # the budget itself is unchanged: the next loss fails it
    other = Job(2)
    assert [d.retry(other, f"y{n}") for n in range(budget + 1)] == [True] * budget + [False]
