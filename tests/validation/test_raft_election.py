"""The Raft paper's leader-election experiment (Ongaro & Ousterhout 2014, §9.3, Figure 16).

Five chiefs; the leader is crashed at a uniformly random point of its
heartbeat interval (half the minimum election timeout) and the time until a
new leader is elected is measured, for several election-timeout ranges. The
paper's claims, each checked here on our own runs:

1. Without randomness (150-150 ms) elections keep splitting: in the paper
   every trial took longer than 10 s.
2. A little randomness (150-155 ms) avoids most split votes (paper: median
   287 ms); more randomness (150-200 ms) bounds the worst case (paper: 513 ms
   over 1,000 trials).
3. Downtime scales with the election timeout: 12-24 ms gives a mean of
   35 ms in the paper.
4. The smallest possible downtime is about half the minimum election timeout
   (the crash falls within a heartbeat interval of half that length).

The figure and the distribution table are written to reports/raft_election/
at full size (1,000 trials per range, ORCHESTRA_FULL=1), to test-output/ in
`make test` (200 trials per range).
"""

from __future__ import annotations

import numpy as np
import pytest
from support import FULL, ROOT

from sim.analysis.raft_election import election_downtimes

TRIALS = 1000 if FULL else 200
RANGES = [(150, 155), (150, 175), (150, 200), (150, 300), (12, 24), (25, 50), (50, 100)]


@pytest.fixture(scope="module")
def downtimes() -> dict[tuple[int, int], np.ndarray]:
    results = {r: election_downtimes(*r, TRIALS) * 1000.0 for r in RANGES}
    _write_report(results)
    return results


def test_every_crash_gets_a_new_leader(downtimes) -> None:
    for key, values in downtimes.items():
        assert len(values) == TRIALS, key
        assert not np.isnan(values).any(), key


def test_smallest_downtime_is_about_half_the_minimum_timeout(downtimes) -> None:
    for (low, _), values in downtimes.items():
        # Half the minimum timeout at the earliest, less one heartbeat tick of slack.
        assert values.min() >= low / 2 - 1, (low, values.min())


def test_a_little_randomness_helps_significantly(downtimes) -> None:
    """Identical timeouts split the vote for seconds; 5 ms of spread settles it far sooner."""
    none = election_downtimes(150, 150, 5) * 1000.0
    # The paper saw more than 10 s in every trial; here some runs elect nobody at all
    # before the next crash (NaN), the rest take seconds.
    assert np.isnan(none).any() or np.nanmedian(none) > 1000
    assert float(np.median(downtimes[150, 155])) < np.nanmedian(np.append(none, np.inf)) / 2


def test_more_randomness_bounds_the_worst_case(downtimes) -> None:
    assert downtimes[150, 200].max() < downtimes[150, 155].max()
    assert downtimes[150, 300].max() < downtimes[150, 175].max()
    assert downtimes[150, 200].max() < 2 * 513  # the paper: 513 ms over 1,000 trials


def test_downtime_scales_with_the_timeout(downtimes) -> None:
    means = [float(np.median(downtimes[r])) for r in [(12, 24), (25, 50), (50, 100), (150, 300)]]
    assert means == sorted(means), means


def _write_report(results: dict[tuple[int, int], np.ndarray]) -> None:
    from matplotlib.figure import Figure

    # Full size refreshes the committed results; the reduced run leaves them alone.
    out = ROOT / "reports" / "raft_election" if FULL else ROOT / "test-output" / "raft_election"
    out.mkdir(parents=True, exist_ok=True)
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
