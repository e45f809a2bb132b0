"""The Raft paper's leader-election experiment (Ongaro & Ousterhout 2014, §9.3, Figure 16).

Five chiefs; the leader is crashed at a uniformly random point of its
heartbeat interval (half the minimum election timeout) and the time until the
others hear a new leader is measured, for several election-timeout ranges,
under the one network model of ``sim.analysis.raft_election.PAPER_SETUP``
(one-way delay 2.5 ms with lognormal jitter, cv 0.1; a 10 ms disk write per
vote or entry; broadcast time 2 x 2.5 + 10 = 15 ms, the paper's).

Quantitative claims, each within 25 % of the paper, with tolerances from the
trial count (distribution-free confidence intervals on order statistics, a
normal interval on the mean):

1. 150-155 ms: median 287 ms.
2. 150-200 ms: worst 513 ms over 1,000 trials.
3. 12-24 ms: mean 35 ms, longest 152 ms over 1,000 trials.

Qualitative claims of the paper, and etcd's documented one: without
randomness elections keep splitting; the smallest downtime is about half the
minimum timeout; downtime scales with the timeout; a new leader "about an
election timeout" after a leader failure (etcd's failure-modes page), i.e.
within two base timeouts.

The figure, the distribution table and the sensitivity table over the
one-way delay are written to reports/raft_election/ at full size
(ORCHESTRA_FULL=1), to test-output/ in `make test`. The three ranges the
paper quantifies run 1,000 trials either way (the worst of 1,000 needs
1,000); the other ranges and the sensitivity table run fewer in `make test`.
"""

from __future__ import annotations

import fcntl
import math

import numpy as np
import pytest
from support import FULL, ROOT, quantile_band

from sim.analysis.raft_election import (
    PAPER_FIGURES,
    PAPER_SETUP,
    ElectionSetup,
    election_downtimes,
    paper_figures,
)

PAPER_TRIALS = 1000
OTHER_TRIALS = 1000 if FULL else 200
SENSITIVITY_TRIALS = 1000 if FULL else 150
PAPER_RANGES = [(150, 155), (150, 200), (12, 24)]
OTHER_RANGES = [(150, 175), (150, 300), (25, 50), (50, 100)]
ONE_WAYS_MS = [1.0, 2.5, 5.0, 7.5]
Z95 = 1.959964

pytestmark = pytest.mark.xdist_group("raft_election")


@pytest.fixture(scope="session")  # not "module": other modules' tests may come between
def downtimes(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> dict[tuple[int, int], np.ndarray]:
    """The 3,800 elections, run once per test run: xdist deals this module's tests to both
    workers (``--dist loadgroup`` groups nothing here), and each had built the fixture,
    25-41 s of a 2-core run's CPU twice. The first worker to ask runs them and leaves
    them in the run's shared temporary directory; the other waits for them and reads
    them (the pattern of pytest-xdist's documentation, with the standard library's lock)."""
    if worker_id == "master":  # not under xdist: nobody to share with
        return _elections()
    shared = tmp_path_factory.getbasetemp().parent  # this run's, above each worker's own
    cache = shared / "raft_election_downtimes.npz"
    with open(shared / "raft_election_downtimes.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            with np.load(cache) as stored:
                return {_range(name): stored[name] for name in stored.files}
        results = _elections()
        partial = shared / "raft_election_downtimes.tmp.npz"
        np.savez(partial, **{f"{low}_{high}": v for (low, high), v in results.items()})
        partial.replace(cache)
        return results


def _elections() -> dict[tuple[int, int], np.ndarray]:
    results = {r: election_downtimes(*r, PAPER_TRIALS) for r in PAPER_RANGES}
    results |= {r: election_downtimes(*r, OTHER_TRIALS) for r in OTHER_RANGES}
    _write_report(results)
    return results


def _range(name: str) -> tuple[int, int]:
    low, high = name.split("_")
    return int(low), int(high)


def _band(paper: float) -> tuple[float, float]:
    return 0.75 * paper, 1.25 * paper


def _quantile_ci(values: np.ndarray, q: float) -> tuple[float, float]:
    """95 % distribution-free CI of the q-quantile: order statistics from the binomial."""
    return quantile_band(values, q, Z95)


def test_every_crash_gets_a_new_leader(downtimes) -> None:
    for key, values in downtimes.items():
        assert not np.isnan(values).any(), key


def test_150_155_median_within_a_quarter_of_the_papers(downtimes) -> None:
    """Paper: 5 ms of randomness gives a median downtime of 287 ms.

    The 95 % CI of our median (ranks n/2 -/+ 1.96 sqrt(n)/2) must lie inside 287 ms +/- 25 %.
    """
    lo, hi = _quantile_ci(downtimes[150, 155], 0.5)
    band = _band(PAPER_FIGURES[(150, 155), "median"])
    assert band[0] <= lo and hi <= band[1], (lo, hi, band)


def test_150_200_worst_case_within_a_quarter_of_the_papers(downtimes) -> None:
    """Paper: with 50 ms of randomness the worst of 1,000 trials took 513 ms.

    The worst of 1,000 is one extreme draw. Checked two ways: our own worst
    of 1,000 (this seed) within 513 ms +/- 25 %; and the paper's worst bounds
    its 99th percentile (all 1,000 trials fall below the 99th percentile with
    probability 0.99^1000 = 4e-5), so the 95 % upper confidence bound of our
    99th percentile may not exceed 513 ms + 25 %.
    """
    values = downtimes[150, 200]
    assert len(values) == PAPER_TRIALS
    band = _band(PAPER_FIGURES[(150, 200), "max"])
    assert band[0] <= values.max() <= band[1], (values.max(), band)
    assert _quantile_ci(values, 0.99)[1] <= band[1]


def test_12_24_mean_and_longest_within_a_quarter_of_the_papers(downtimes) -> None:
    """Paper: with 12-24 ms timeouts the mean downtime is 35 ms, the longest of 1,000 152 ms.

    The mean's 95 % normal CI must lie inside 35 ms +/- 25 %; the longest of
    our 1,000 within 152 ms +/- 25 %, and our 99th percentile's upper bound
    below 152 ms + 25 % (as for the 150-200 worst case).
    """
    values = downtimes[12, 24]
    assert len(values) == PAPER_TRIALS
    half = Z95 * values.std(ddof=1) / math.sqrt(len(values))
    mean_band = _band(PAPER_FIGURES[(12, 24), "mean"])
    assert mean_band[0] <= values.mean() - half and values.mean() + half <= mean_band[1], (
        values.mean(),
        half,
        mean_band,
    )
    max_band = _band(PAPER_FIGURES[(12, 24), "max"])
    assert max_band[0] <= values.max() <= max_band[1], (values.max(), max_band)
    assert _quantile_ci(values, 0.99)[1] <= max_band[1]


def test_a_new_leader_within_about_an_election_timeout_as_etcd_documents(downtimes) -> None:
    """etcd, "Failure modes" (etcd.io/docs/v3.4/op-guide/failures, "Leader failure"): "It
    takes about an election timeout to elect a new leader since the failure detection
    model is timeout based." etcd draws its timeout T' in [T, 2T), so "about an election
    timeout" means between half of T and two T (two election timeouts at most).

    Checked for the ranges of etcd's shape [T, 2T] that obey etcd's tuning rule
    (etcd.io/docs/v3.4/tuning: election timeouts "at least 10 times the round-trip
    time"; here the round trip is 5 ms, so T >= 50 ms): the 95 % CI of the median
    downtime lies within [T/2, 2T].
    """
    rtt = 2 * PAPER_SETUP.one_way_ms
    checked = [(low, high) for (low, high) in downtimes if high == 2 * low and low >= 10 * rtt]
    assert checked == [(150, 300), (50, 100)]
    for low, high in checked:
        lo, hi = _quantile_ci(downtimes[low, high], 0.5)
        assert low / 2 <= lo and hi <= 2 * low, ((low, high), lo, hi)


def test_smallest_downtime_is_about_half_the_minimum_timeout(downtimes) -> None:
    """Paper: "the smallest possible downtime was about half of the minimum election timeout".

    The crash falls at most a heartbeat interval (half the minimum timeout)
    after the last heartbeat, and an election costs at least a broadcast
    time (RequestVote out, the voter's write, the vote back) on top.
    """
    broadcast = PAPER_SETUP.broadcast_ms
    for (low, _), values in downtimes.items():
        assert low / 2 + broadcast <= values.min() < low / 2 + 2 * broadcast, (low, values.min())


def test_a_little_randomness_helps_significantly(downtimes) -> None:
    """Identical timeouts split the vote for seconds; 5 ms of spread settles it far sooner."""
    none = election_downtimes(150, 150, 5)
    # The paper saw more than 10 s in every trial; here some runs elect nobody at all
    # before the next crash (NaN), the rest take seconds.
    assert np.isnan(none).any() or np.nanmedian(none) > 1000
    assert float(np.median(downtimes[150, 155])) < np.nanmedian(np.append(none, np.inf)) / 2


def test_more_randomness_bounds_the_worst_case(downtimes) -> None:
    assert downtimes[150, 200].max() < downtimes[150, 155].max()
    assert np.percentile(downtimes[150, 300], 99) < np.percentile(downtimes[150, 155], 99)


def test_downtime_scales_with_the_timeout(downtimes) -> None:
    medians = [float(np.median(downtimes[r])) for r in [(12, 24), (25, 50), (50, 100), (150, 300)]]
    assert medians == sorted(medians), medians


def test_the_papers_median_pins_the_one_way_delay() -> None:
    """Sensitivity over the one-way delay, the disk write making up the 15 ms broadcast.

    A split vote happens when others time out before the first candidate's
    RequestVote reaches them: one one-way delay against the 5 ms spread of
    150-155 ms. Once the delay reaches the spread (5 ms, and the old model's
    7.5 ms) every first round splits and the median is more than twice the
    paper's; at 1 ms almost none does and it is far below; 2.5 ms is within 25 %.
    """
    table = _sensitivity()
    paper = PAPER_FIGURES[(150, 155), "median"]
    median = {one_way: row[(150, 155), "median"] for one_way, row in table.items()}
    assert median[5.0] > 2 * paper and median[7.5] > 2 * paper, median
    assert median[1.0] < 0.75 * paper, median
    assert 0.75 * paper <= median[2.5] <= 1.25 * paper, median


_SENSITIVITY: dict[float, dict[tuple[tuple[int, int], str], float]] = {}


def _sensitivity() -> dict[float, dict[tuple[tuple[int, int], str], float]]:
    """The paper's figures for each one-way delay (computed once, written to the report)."""
    if not _SENSITIVITY:
        for one_way in ONE_WAYS_MS:
            setup = ElectionSetup(one_way_ms=one_way)
            _SENSITIVITY[one_way] = paper_figures(SENSITIVITY_TRIALS, setup=setup)
        _write_sensitivity(_SENSITIVITY)
    return _SENSITIVITY


def _out_dir():
    # Full size refreshes the committed results; the reduced run leaves them alone.
    out = ROOT / "reports" / "raft_election" if FULL else ROOT / "test-output" / "raft_election"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_sensitivity(table: dict[float, dict[tuple[tuple[int, int], str], float]]) -> None:
    keys = list(PAPER_FIGURES)
    head = ",".join(f"{a}-{b}ms_{name}" for (a, b), name in keys)
    lines = [f"one_way_ms,disk_ms,trials,{head}"]
    lines.append("paper,,1000," + ",".join(f"{PAPER_FIGURES[k]:.1f}" for k in keys))
    for one_way, row in table.items():
        disk = ElectionSetup(one_way_ms=one_way).disk_ms
        values = ",".join(f"{row[k]:.1f}" for k in keys)
        lines.append(f"{one_way:g},{disk:g},{SENSITIVITY_TRIALS},{values}")
    (_out_dir() / "sensitivity_one_way.csv").write_text("\n".join(lines) + "\n")


def _write_report(results: dict[tuple[int, int], np.ndarray]) -> None:
    from matplotlib.figure import Figure

    out = _out_dir()
    figure = Figure(figsize=(8, 4.5))
    ax = figure.add_subplot()
    for (low, high), values in results.items():
        xs = np.sort(values)
        ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs) * 100, label=f"{low}-{high} ms")
    ax.set_xscale("log")
    ax.set_xlabel("time without a leader (ms)")
    ax.set_ylabel("cumulative % of trials")
    ax.set_title("Leader election after a leader crash (5 chiefs, cf. Raft paper Fig. 16)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    figure.savefig(out / "election_cdf.png", dpi=100)
    lines = ["range_ms,trials,min_ms,median_ms,mean_ms,p99_ms,max_ms"]
    for (low, high), v in results.items():
        lines.append(
            f"{low}-{high},{len(v)},{v.min():.1f},{np.median(v):.1f},{v.mean():.1f},"
            f"{np.percentile(v, 99):.1f},{v.max():.1f}"
        )
    (out / "election_downtimes.csv").write_text("\n".join(lines) + "\n")
