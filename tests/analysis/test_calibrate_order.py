"""The dispatch spread is fitted for a chief that keeps each zone's link in order.

The simulator's chief never lets a task overtake the one sent before it to the
same zone, so a drawn overhead delays the tasks close behind it too. A spread
fitted as if every task's draw stood alone makes a replay of close arrivals
(a burst, a DAG's released nodes) wait longer than live did. The fit with
live's send sequence (``send_sequence``) plays the order; without it, the
same data comes out too slow. The order here is played by a plain loop, not
by the fit's own code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.analysis.calibrate_dispatch import Sends, overhead_spread, send_sequence

N = 4_000


def in_order(arrival: np.ndarray, zone: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Delays once no send overtakes an earlier one of its zone (arrivals in time order)."""
    out = np.empty_like(delay)
    last: dict[int, float] = {}
    for i in np.argsort(arrival, kind="stable"):
        delivered = max(arrival[i] + delay[i], last.get(int(zone[i]), -math.inf))
        last[int(zone[i])] = delivered
        out[i] = delivered - arrival[i]
    return out


def case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Arrivals 0.15 s apart on average in two zones (a burst's pace); live's overhead is
    long-tailed, so a good share of the tasks are held behind the one before (the share
    is the last value)."""
    rng = np.random.default_rng(5)
    arrival = np.cumsum(rng.exponential(0.15, N))
    zone = rng.integers(0, 2, N)
    own = rng.uniform(0.01, 0.05, N)
    alone = own + rng.lognormal(math.log(0.05), 1.0, N)
    live = in_order(arrival, zone, alone)
    return arrival, zone, own, live, float((live > alone + 1e-9).mean())


def sends_of(arrival: np.ndarray, zone: np.ndarray) -> Sends:
    order = np.lexsort((arrival, zone))
    return Sends(arrival[order], zone[order], np.ones(N, dtype=bool))


def replay_quantiles(spread: np.ndarray, levels: list[float]) -> np.ndarray:
    """The replay's free delays: its own delays plus a draw of *spread*, kept in order."""
    arrival, zone, own, _, _ = case()
    rng = np.random.default_rng(8)
    delays = [in_order(arrival, zone, rng.permutation(own) + rng.choice(spread, N)) for _ in "abc"]
    return np.quantile(np.concatenate(delays), levels)


def test_the_fit_with_the_send_sequence_gives_lives_quantiles_back_in_order() -> None:
    """Each quantile within its binomial band (the sample quantile's rank, 4 standard
    errors). Not the 0.99: a held task's delay is its predecessor's, so the far tail comes
    in clusters and its sample quantile varies more than independent draws' would."""
    arrival, zone, own, live, held = case()
    levels = [0.25, 0.5, 0.75, 0.9]
    fitted = replay_quantiles(
        np.array(overhead_spread(live, own, 0.5, sends_of(arrival, zone))), levels
    )
    naive = replay_quantiles(np.array(overhead_spread(live, own, 0.5)), levels)
    for q, got, slow in zip(levels, fitted, naive, strict=True):
        band = 4 * math.sqrt(q * (1 - q) / N)
        low, high = np.quantile(live, [max(q - band, 0.0), min(q + band, 1.0)])
        assert low <= got <= high, (q, low, got, high)
        if q == 0.5:
            assert slow > high, (slow, high)  # fitted as if each draw stood alone: too slow
    assert held > 0.1  # a tenth of the tasks or more held behind the one before


def test_the_send_sequence_is_every_first_attempt_zone_by_zone_with_the_free_marked() -> None:
    tasks = pd.DataFrame(
        {
            "attempt": [1, 1, 2, 1, 1],
            "home_zone": ["B", "A", "A", "B", "A"],
            "arrival_s": [3.0, 2.0, 2.0, 1.0, 5.0],
            "start_s": [3.5, 9.0, 9.5, 1.2, 5.1],
            "queue_s": [0.0, 6.0, 0.0, 0.0, 0.0],
            "outcome": ["completed", "completed", "completed", "completed", "failed"],
        }
    )
    sends = send_sequence(tasks)
    assert sends.arrival.tolist() == [2.0, 5.0, 1.0, 3.0]  # A's in time, then B's
    assert sends.zone.tolist() == [0, 0, 1, 1]
    # Free: completed first attempts that found an agent free (the queued one is not).
    assert sends.free.tolist() == [False, False, True, True]
