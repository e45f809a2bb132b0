"""The model in textbook form must be an M/M/c queue: Erlang C and Little's law.

``mmc_validation.yaml`` reduces the orchestra to one pooled FIFO queue in
front of 200 identical exponential servers, with Poisson arrivals and no
network. Erlang C (computed in sim.analysis.queueing by the stable Erlang B
recursion) then gives the mean wait and the probability of waiting exactly.

Tolerances come from the runs themselves: R independent replications give a
Student-t interval. Six comparisons are made (two figures at three loads),
so each uses a 99 % interval — Bonferroni for a familywise 95 %. When waits
are so rare that a replication may see none (utilisation 0.7: P(wait) is
about 1e-6), the interval is floored by the rule of three: with N customers
and no event seen, 3/N bounds the probability at 95 %.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from support import FULL, SCENARIOS

from sim.analysis.queueing import mmc
from sim.metrics.replications import t_quantile
from sim.runner import run
from sim.scenario.load import load_scenario

C = 200
MEAN_SERVICE_S = 60.0
REPLICATIONS = 10 if FULL else 4
DURATION = "24h" if FULL else "8h"

# One worker runs the module, so the runs at utilisation 0.9 that Erlang C and Little's law
# both read are simulated once (the cache below holds them for the module).
pytestmark = pytest.mark.xdist_group("mmc")


@functools.cache
def _simulate(rho: float):
    rate_per_min = rho * C / MEAN_SERVICE_S * 60.0
    scenario = load_scenario(
        SCENARIOS / "mmc_validation.yaml",
        [f"workload.arrivals.rate_per_min={rate_per_min}", f"duration={DURATION}"],
    )
    return scenario, run(scenario, REPLICATIONS, workers=1)


@pytest.mark.parametrize("rho", [0.7, 0.9, 0.95])
def test_wait_matches_erlang_c(rho: float) -> None:
    _, outcome = _simulate(rho)
    theory = mmc(rho * C / MEAN_SERVICE_S, 1.0 / MEAN_SERVICE_S, C)
    waits, shares, counts = [], [], []
    for result in outcome.results:
        done = result.tasks[(result.tasks["outcome"] == "completed") & result.tasks["warm"]]
        waits.append(done["wait_s"].mean())
        shares.append((done["queue_s"] > 0).mean())
        counts.append(len(done))
        assert result.counts["lost"] == 0
    n_total = sum(counts)
    t = t_quantile(REPLICATIONS - 1, 0.995)

    def half_width(values: list[float]) -> float:
        return t * float(np.std(values, ddof=1)) / math.sqrt(len(values))

    # Rule-of-three floors for rare waiting (see the module docstring).
    p_floor = 3.0 / n_total
    wq_floor = p_floor / (C / MEAN_SERVICE_S - rho * C / MEAN_SERVICE_S)
    wq, p_wait = float(np.mean(waits)), float(np.mean(shares))
    assert abs(wq - theory.wq) <= max(half_width(waits), wq_floor), (wq, theory.wq)
    assert abs(p_wait - theory.p_wait) <= max(half_width(shares), p_floor), (p_wait, theory.p_wait)
    # The model must not be trivially right: at high load waiting is common.
    if rho >= 0.9:
        assert p_wait > 0.05


def test_littles_law_holds_within_two_percent() -> None:
    """L (time-average number in system, from the sampled metrics) = lambda * W (from the tasks)."""
    scenario, outcome = _simulate(0.9)
    for result in outcome.results:
        warmup, end = scenario.warmup, scenario.duration
        samples = result.metrics[
            (result.metrics["level"] == "global") & (result.metrics["time_s"] > warmup)
        ]
        tasks = result.tasks
        arrived = tasks[(tasks["arrival_s"] >= warmup) & (tasks["arrival_s"] < end)]
        lam = len(arrived) / (end - warmup)
        w = arrived.loc[arrived["outcome"] == "completed", "latency_s"].mean()
        l_sampled = samples["in_system"].mean()
        assert l_sampled == pytest.approx(lam * w, rel=0.02)
