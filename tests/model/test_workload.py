"""What arrives: arrival processes, service demands, trace replay, common random numbers.

Statistical tests run with fixed seeds, and their tolerances come from the sample
size, never from a hand-tuned fudge factor. Each bound is four standard deviations
of the estimator under the model the code claims to implement:

* a Poisson count N over a window has sd sqrt(E[N]);
* a count of successes among n independent draws with probability p has the
  binomial sd sqrt(n p (1 - p));
* a sample mean of n draws has sd sigma / sqrt(n);
* a sample coefficient of variation has the delta-method sd computed from the
  distribution's first four raw moments (see ``_cv_sd``).

A correct implementation falls outside four sd with probability about 6e-5 per
check; with the seeds fixed, the outcome is the same on every run anyway.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.scenario.load import scenario_from_dict
from sim.scenario.schema import Scenario
from sim.world.streams import Streams
from sim.world.workload import Arrival, ServiceDemand, TaskSource, WorkloadError

Z = 4.0  # every statistical bound below is Z standard deviations wide

CATEGORIES = {"CodeGen": 40, "Review": 20, "Test": 25, "Support": 15}
ZONES = [
    {"name": "A", "region": "us-east-1", "team_leads": 1},
    {"name": "B", "region": "us-west-2", "team_leads": 1},
    {"name": "C", "region": "eu-west-1", "team_leads": 1},
    {"name": "D", "region": "ap-northeast-1", "team_leads": 1},
]


def scenario(workload: dict[str, Any], duration: str = "6h", seed: int = 7) -> Scenario:
    """A small four-zone, four-category scenario around *workload*."""
    return scenario_from_dict(
        {
            "seed": seed,
            "duration": duration,
            "warmup": 0,
            "topology": {"zones": ZONES, "categories": CATEGORIES, "specialists": 40},
            "workload": {"dags": {"rate_per_min": 0}, **workload},
        }
    )


def components(sc: Scenario, seed: int | None = None) -> tuple[ServiceDemand, TaskSource]:
    """Demand and task source sharing one set of streams, as the engine builds them."""
    streams = Streams(sc.seed if seed is None else seed)
    demand = ServiceDemand(sc, streams)
    return demand, TaskSource(sc, streams, demand)


def arrivals(sc: Scenario, seed: int | None = None) -> list[Arrival]:
    return list(components(sc, seed)[1])


def times_of(items: list[Arrival]) -> np.ndarray:
    return np.fromiter((a.time for a in items), dtype=float, count=len(items))


def count_between(times: np.ndarray, start: float, end: float) -> int:
    return int(np.count_nonzero((times >= start) & (times < end)))


def assert_poisson_count(observed: int, expected: float, what: str) -> None:
    """A Poisson count is within Z sd = Z sqrt(E[N]) of its mean."""
    bound = Z * math.sqrt(expected)
    assert abs(observed - expected) <= bound, (
        f"{what}: {observed} arrivals, expected {expected:.0f} ± {bound:.0f}"
    )


def assert_shares(observed: Counter[str], weights: Mapping[str, float], what: str) -> None:
    """Each label's count is within Z binomial sd of n * its normalised weight."""
    n = sum(observed.values())
    total = sum(weights.values())
    assert set(observed) <= set(weights)
    for label, weight in weights.items():
        p = weight / total
        bound = Z * math.sqrt(n * p * (1 - p))
        assert abs(observed[label] - n * p) <= bound, (
            f"{what} {label}: {observed[label]} of {n}, expected {n * p:.0f} ± {bound:.0f}"
        )


def _cv_sd(m1: float, m2: float, m3: float, m4: float, n: int) -> float:
    """Delta-method sd of the sample CV of n draws with raw moments m1..m4.

    CV = sqrt(m2 - m1^2) / m1 as a function of the sample moments (mean of X,
    mean of X^2), whose covariance matrix is [[Var X, Cov(X, X^2)], [., Var X^2]] / n.
    """
    s = math.sqrt(m2 - m1**2)
    grad = np.array([-1.0 / s - s / m1**2, 1.0 / (2.0 * s * m1)])
    cov = np.array([[m2 - m1**2, m3 - m1 * m2], [m3 - m1 * m2, m4 - m2**2]])
    return math.sqrt(float(grad @ cov @ grad) / n)


def _moments(dist: str, mean: float, cv: float) -> tuple[float, float, float, float]:
    """Raw moments E[X^k], k = 1..4, of the distributions the schema offers."""
    if dist == "exponential":
        m = [math.factorial(k) * mean**k for k in range(1, 5)]
    elif dist == "lognormal":
        sigma2 = math.log1p(cv**2)
        mu = math.log(mean) - sigma2 / 2
        m = [math.exp(k * mu + k * k * sigma2 / 2) for k in range(1, 5)]
    elif dist == "gamma":
        shape = 1.0 / cv**2
        scale = mean / shape
        m = [scale**k * math.exp(math.lgamma(shape + k) - math.lgamma(shape)) for k in range(1, 5)]
    else:
        raise AssertionError(dist)
    return m[0], m[1], m[2], m[3]


def consume_with_deadline(source: TaskSource, seconds: float = 10.0) -> list[Arrival]:
    """Drain *source* in a daemon thread; fail (instead of hanging the suite) if it never ends."""
    out: list[Arrival] = []
    worker = threading.Thread(target=lambda: out.extend(source), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"arrival stream still running after {seconds} s"
    return out


# --------------------------------------------------------------------------- Poisson


@pytest.fixture(scope="module")
def poisson_day() -> list[Arrival]:
    """A day at 140/min (about 200,000 arrivals) with a skewed zone mix."""
    return arrivals(
        scenario(
            {
                "arrivals": {"process": "poisson", "rate_per_min": 140},
                "zone_mix": {"A": 4, "B": 3, "C": 2, "D": 1},
            },
            duration="24h",
        )
    )


def test_poisson_count_matches_rate_times_horizon(poisson_day: list[Arrival]) -> None:
    times = times_of(poisson_day)
    assert_poisson_count(len(times), 140 / 60 * 86400, "whole day")
    # Every hour on its own, too: a constant rate is constant throughout.
    for hour in range(24):
        observed = count_between(times, hour * 3600.0, (hour + 1) * 3600.0)
        assert_poisson_count(observed, 140 * 60, f"hour {hour}")
    assert np.all(np.diff(times) > 0) and times[0] > 0 and times[-1] < 86400


def test_poisson_inter_arrivals_are_exponential(poisson_day: list[Arrival]) -> None:
    gaps = np.diff(np.concatenate([[0.0], times_of(poisson_day)]))
    n = len(gaps)
    mean_gap = 60 / 140
    # Sample mean of exponential gaps: sd = mean / sqrt(n).
    assert abs(gaps.mean() - mean_gap) <= Z * mean_gap / math.sqrt(n)
    # Sample CV of exponential gaps: the delta-method sd is exactly 1 / sqrt(n).
    cv = gaps.std() / gaps.mean()
    sd = _cv_sd(*_moments("exponential", mean_gap, 1.0), n)
    assert sd == pytest.approx(1 / math.sqrt(n))
    assert abs(cv - 1.0) <= Z * sd, cv


def test_category_and_zone_mix_follow_the_weights(poisson_day: list[Arrival]) -> None:
    # No workload.mix given: categories follow the topology's shares.
    assert_shares(Counter(a.category for a in poisson_day), CATEGORIES, "category")
    assert_shares(Counter(a.zone for a in poisson_day), {"A": 4, "B": 3, "C": 2, "D": 1}, "zone")
    assert all(a.affinity_key is None for a in poisson_day)  # affinity_keys = 0


def test_an_explicit_mix_overrides_the_topology_shares() -> None:
    mix = {"CodeGen": 1, "Review": 0, "Test": 3, "Support": 6}
    items = arrivals(scenario({"arrivals": {"rate_per_min": 200}, "mix": mix}, duration="3h"))
    counts = Counter(a.category for a in items)
    assert counts["Review"] == 0  # weight 0 means never, not rarely
    assert_shares(counts, mix, "category")


def test_affinity_keys_are_drawn_uniformly_from_the_key_space() -> None:
    items = arrivals(scenario({"arrivals": {"rate_per_min": 200}, "affinity_keys": 8}, "3h"))
    keys = Counter(str(a.affinity_key) for a in items)
    assert_shares(keys, {str(k): 1.0 for k in range(8)}, "affinity key")


# --------------------------------------------------------------------------- piecewise


def test_piecewise_steps_and_the_base_rate_before_the_first_point() -> None:
    """rate_function: before the first point the base rate_per_min applies; each point holds
    from its ``at`` until the next one. Points are written out of order on purpose."""
    sc = scenario(
        {
            "arrivals": {
                "process": "piecewise",
                "rate_per_min": 30,
                "piecewise": [
                    {"at": "4h", "rate_per_min": 60},
                    {"at": "1h", "rate_per_min": 120},
                    {"at": "3h", "rate_per_min": 0},
                ],
            }
        },
        duration="6h",
    )
    times = times_of(arrivals(sc))
    windows = [(0, 1, 30), (1, 3, 120), (4, 6, 60)]
    for start, end, per_min in windows:
        observed = count_between(times, start * 3600.0, end * 3600.0)
        assert_poisson_count(observed, per_min * 60 * (end - start), f"{start}h-{end}h")
    assert count_between(times, 3 * 3600.0, 4 * 3600.0) == 0  # rate 0 means none at all


def test_piecewise_point_at_zero_replaces_the_base_rate() -> None:
    sc = scenario(
        {
            "arrivals": {
                "process": "piecewise",
                "rate_per_min": 600,
                "piecewise": [{"at": 0, "rate_per_min": 20}],
            }
        },
        duration="4h",
    )
    assert_poisson_count(len(arrivals(sc)), 20 * 60 * 4, "whole run")


# --------------------------------------------------------------------------- diurnal


def _diurnal_integral(
    base: float, amp: float, peak: float, period: float, a: float, b: float
) -> float:
    """Expected arrivals in [a, b) for rate(t) = base (1 + amp cos(2 pi (t - peak) / period))."""
    w = 2 * math.pi / period
    return base * (b - a) + base * amp / w * (math.sin(w * (b - peak)) - math.sin(w * (a - peak)))


def test_diurnal_windows_match_the_integral_of_the_rate() -> None:
    base = 120 / 60
    sc = scenario(
        {
            "arrivals": {
                "process": "diurnal",
                "rate_per_min": 120,
                "diurnal": {"peak_at": "14h", "amplitude": 0.6, "period": "24h"},
            }
        },
        duration="24h",
    )
    times = times_of(arrivals(sc))
    windows = {"peak": (13 * 3600.0, 15 * 3600.0), "trough": (1 * 3600.0, 3 * 3600.0)}
    for what, (a, b) in windows.items():
        expected = _diurnal_integral(base, 0.6, 14 * 3600.0, 86400.0, a, b)
        assert_poisson_count(count_between(times, a, b), expected, what)
    # The full cycle integrates to base * period: the cosine averages out.
    assert_poisson_count(len(times), base * 86400, "whole day")
    # And the shape is really there: the peak window carries about 4x the trough's.
    peak = count_between(times, *windows["peak"])
    trough = count_between(times, *windows["trough"])
    assert 3.5 < peak / trough < 4.5


# --------------------------------------------------------------------------- bursts


def test_bursts_multiply_the_rate_and_overlaps_multiply_each_other() -> None:
    sc = scenario(
        {
            "arrivals": {
                "rate_per_min": 60,
                "bursts": [
                    {"at": "1h", "duration": "30m", "factor": 5},
                    {"at": "2h", "duration": "1h", "factor": 2},
                    {"at": "150m", "duration": "1h", "factor": 3},
                ],
            }
        },
        duration="4h",
    )
    times = times_of(arrivals(sc))
    half_hour = 1800.0  # at 1/s, 1,800 expected arrivals per half hour unburst
    factors = [1, 1, 5, 1, 2, 6, 3, 1]  # [2h30, 3h) is in both bursts: 2 x 3
    for index, factor in enumerate(factors):
        start = index * half_hour
        observed = count_between(times, start, start + half_hour)
        assert_poisson_count(observed, factor * half_hour, f"half hour {index} (x{factor})")


# --------------------------------------------------------------------------- empty streams


@pytest.mark.parametrize(
    "arrivals_spec",
    [
        {"process": "poisson", "rate_per_min": 0},
        {
            "process": "poisson",
            "rate_per_min": 0,
            "bursts": [{"at": 0, "duration": "1h", "factor": 9}],
        },
        {"process": "piecewise", "rate_per_min": 0, "piecewise": [{"at": "1h", "rate_per_min": 0}]},
        # An all-zero piecewise from t = 0 makes the (default, positive) base rate irrelevant.
        {"process": "piecewise", "piecewise": [{"at": 0, "rate_per_min": 0}]},
        {"process": "diurnal", "rate_per_min": 0},
    ],
    ids=["poisson", "poisson-burst", "piecewise", "piecewise-default-base", "diurnal"],
)
def test_zero_rates_give_no_arrivals_and_end_promptly(arrivals_spec: dict[str, Any]) -> None:
    sc = scenario({"arrivals": arrivals_spec}, duration="365d")
    assert consume_with_deadline(components(sc)[1], seconds=10.0) == []


# --------------------------------------------------------------------------- service times

N_SERVICE = 200_000


@pytest.mark.parametrize(
    ("dist", "mean", "cv"),
    [
        ("exponential", 40.0, 1.0),
        ("lognormal", 30.0, 0.8),
        ("lognormal", 90.0, 0.25),
        ("gamma", 50.0, 0.5),
        ("gamma", 20.0, 1.5),
    ],
)
def test_service_time_mean_and_cv(dist: str, mean: float, cv: float) -> None:
    spec = {"dist": dist, "mean": mean, "cv": cv}
    sc = scenario({"service": spec, "arrivals": {"rate_per_min": 0}})
    demand = ServiceDemand(sc, Streams(3))
    draws = np.array([demand.draw("Test") for _ in range(N_SERVICE)])
    assert np.all(draws >= 0)
    m1, m2, m3, m4 = _moments(dist, mean, cv)
    sd_mean = math.sqrt(m2 - m1**2) / math.sqrt(N_SERVICE)
    assert abs(draws.mean() - mean) <= Z * sd_mean, (draws.mean(), mean, sd_mean)
    sample_cv = draws.std() / draws.mean()
    assert abs(sample_cv - cv) <= Z * _cv_sd(m1, m2, m3, m4, N_SERVICE), (sample_cv, cv)
    assert demand.means["Test"] == mean


def test_deterministic_service_and_gamma_with_cv_zero_are_constant() -> None:
    sc = scenario(
        {
            "service": {"dist": "deterministic", "mean": "12s"},
            "service_by_category": {"Review": {"dist": "gamma", "mean": 7, "cv": 0}},
            "arrivals": {"rate_per_min": 0},
        }
    )
    demand = ServiceDemand(sc, Streams(3))
    assert {demand.draw("CodeGen") for _ in range(5000)} == {12.0}
    assert {demand.draw("Review") for _ in range(5000)} == {7.0}


def test_service_by_category_applies_only_to_its_category() -> None:
    sc = scenario(
        {
            "arrivals": {"rate_per_min": 300},
            "service": {"dist": "exponential", "mean": 40},
            "service_by_category": {"Review": {"dist": "deterministic", "mean": "7s"}},
        },
        duration="4h",
    )
    demand, source = components(sc)
    assert demand.means == {"CodeGen": 40.0, "Review": 7.0, "Test": 40.0, "Support": 40.0}
    items = list(source)
    review = np.array([a.work for a in items if a.category == "Review"])
    others = np.array([a.work for a in items if a.category != "Review"])
    assert len(review) > 10_000 and np.all(review == 7.0)
    assert np.count_nonzero(others == 7.0) == 0
    # Exponential(40) for the rest: sample mean within Z sd = Z * 40 / sqrt(n).
    assert abs(others.mean() - 40.0) <= Z * 40.0 / math.sqrt(len(others))


def _empirical_values() -> np.ndarray:
    return np.array([2.0, 3.5, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0, 3.5, 5.0])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_empirical_service_draws_only_values_from_the_file(tmp_path: Path, kind: str) -> None:
    values = _empirical_values()
    frame = pd.DataFrame({"task": np.arange(len(values)), "seconds": values})
    path = tmp_path / f"service.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    sc = scenario(
        {
            "arrivals": {"rate_per_min": 0},
            "service_by_category": {
                "Support": {"dist": "empirical", "file": str(path), "column": "seconds"}
            },
        }
    )
    demand = ServiceDemand(sc, Streams(11))
    n = 50_000
    draws = np.array([demand.draw("Support") for _ in range(n)])
    assert set(draws.tolist()) == set(values.tolist())  # every value, and nothing else
    # Resampling the file: mean within Z sd = Z * (population sd of the file) / sqrt(n).
    assert abs(draws.mean() - values.mean()) <= Z * values.std() / math.sqrt(n)
    # Repeated values in the file keep their weight (3.5 and 5.0 appear twice).
    share = np.count_nonzero(draws == 3.5) / n
    assert abs(share - 2 / 12) <= Z * math.sqrt((2 / 12) * (10 / 12) / n)


def test_empirical_file_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "service.csv"
    pd.DataFrame({"secs": [1.0, 2.0]}).to_csv(path, index=False)
    sc = scenario({"service": {"dist": "empirical", "file": str(path)}})  # column service_s
    with pytest.raises(WorkloadError) as info:
        ServiceDemand(sc, Streams(0))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "service_s" in message


# --------------------------------------------------------------------------- trace replay


def test_trace_is_replayed_in_time_order_with_its_own_values(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    pd.DataFrame(
        {
            "arrival_s": [50.0, 10.0, 3600.0, 30.5, 9000.0, 20.0, 3599.0],
            "category": ["Test", "Review", "CodeGen", "Support", "Test", "CodeGen", "Review"],
            "zone": ["B", "A", "A", "D", "C", "C", "B"],
            "work_s": [5.0, 1.5, 9.0, 0.0, 2.0, 42.0, 3.25],
            "affinity_key": [7, 3, 1, 0, 2, 11, 5],
        }
    ).to_csv(path, index=False)
    sc = scenario({"arrivals": {"process": "trace", "trace": str(path)}}, duration="1h")
    got = arrivals(sc)
    # Rows at (3600) or after (9000) the one-hour duration are dropped; the rest sorted.
    assert got == [
        Arrival(10.0, "Review", "A", 1.5, 3),
        Arrival(20.0, "CodeGen", "C", 42.0, 11),
        Arrival(30.5, "Support", "D", 0.0, 0),
        Arrival(50.0, "Test", "B", 5.0, 7),
        Arrival(3599.0, "Review", "B", 3.25, 5),
    ]


def test_trace_columns_left_out_are_drawn(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    times = rng.uniform(0, 7200, n)
    only_times = tmp_path / "times.parquet"
    pd.DataFrame({"arrival_s": times}).to_parquet(only_times, index=False)
    per_category = {"CodeGen": 1.0, "Review": 2.0, "Test": 3.0, "Support": 4.0}
    workload = {
        "arrivals": {"process": "trace", "trace": str(only_times)},
        "zone_mix": {"A": 1, "B": 1, "C": 2, "D": 4},
        "affinity_keys": 6,
        "service_by_category": {
            c: {"dist": "deterministic", "mean": w} for c, w in per_category.items()
        },
    }
    got = arrivals(scenario(workload, duration="2h"))
    assert len(got) == n
    np.testing.assert_array_equal(times_of(got), np.sort(times))
    assert_shares(Counter(a.category for a in got), CATEGORIES, "category")
    assert_shares(Counter(a.zone for a in got), {"A": 1, "B": 1, "C": 2, "D": 4}, "zone")
    assert {a.affinity_key for a in got} == set(range(6))
    # Work comes from the category's own distribution.
    assert all(a.work == per_category[a.category] for a in got)

    # With a category column but no work_s, the work follows the given category.
    with_category = tmp_path / "categories.csv"
    written = ["Support", "Review", "Test"] * 100
    pd.DataFrame({"arrival_s": np.arange(300.0), "category": written}).to_csv(
        with_category, index=False
    )
    workload["arrivals"] = {"process": "trace", "trace": str(with_category)}
    got = arrivals(scenario(workload, duration="2h"))
    assert [a.category for a in got] == written
    assert [a.work for a in got] == [per_category[c] for c in written]


def _bad_traces(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Broken traces and the word the error must name (a column, or the field)."""
    missing = tmp_path / "missing.csv"
    pd.DataFrame({"time_s": [1.0, 2.0]}).to_csv(missing, index=False)
    negative = tmp_path / "negative.csv"
    pd.DataFrame({"arrival_s": [1.0, -2.0]}).to_csv(negative, index=False)
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"arrival_s": [1.0, 2.0], "category": ["Test", "Marketing"]}).to_csv(
        unknown, index=False
    )
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not a parquet file\x00\x01\x02")
    return {
        "missing-arrival_s": (missing, "arrival_s"),
        "negative-time": (negative, "arrival_s"),
        "unknown-category": (unknown, "category"),
        "unparseable": (garbage, "workload.arrivals.trace"),
    }


BAD_TRACES = ["missing-arrival_s", "negative-time", "unknown-category", "unparseable"]


@pytest.mark.parametrize("case", BAD_TRACES)
def test_bad_traces_raise_one_line_errors(tmp_path: Path, case: str) -> None:
    path, column = _bad_traces(tmp_path)[case]
    sc = scenario({"arrivals": {"process": "trace", "trace": str(path)}}, duration="1h")
    with pytest.raises(WorkloadError) as info:
        arrivals(sc)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {column}: ")
    if case == "unknown-category":
        assert "'Marketing'" in message


@pytest.mark.parametrize("case", BAD_TRACES)
def test_orchestra_run_on_a_bad_trace_exits_1_with_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, column = _bad_traces(tmp_path)[case]
    scenario_file = tmp_path / "scenario.yaml"
    # The trace is named relative to the scenario file, as users write it.
    scenario_file.write_text(
        f"name: bad_trace\nduration: 1h\nwarmup: 0\n"
        f"workload:\n  arrivals: {{process: trace, trace: {path.name}}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    status = main(["run", str(scenario_file), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert f"{path}: {column}: " in lines[0]
    assert "Traceback" not in captured.err and not out.exists()


# --------------------------------------------------------------------------- common random numbers


def test_changing_one_categorys_service_leaves_everything_else_alone() -> None:
    """Streams are per component: Review's service stream is Review's alone."""
    workload: dict[str, Any] = {
        "arrivals": {"rate_per_min": 140, "bursts": [{"at": "1h", "duration": "10m", "factor": 3}]},
        "service": {"dist": "lognormal", "mean": 40, "cv": 1.0},
        "affinity_keys": 20,
    }
    before = arrivals(scenario(workload, duration="2h"))
    workload["service_by_category"] = {"Review": {"dist": "gamma", "mean": 100, "cv": 0.3}}
    after = arrivals(scenario(workload, duration="2h"))
    assert len(before) == len(after) > 15_000
    for a, b in zip(before, after, strict=True):
        assert (a.time, a.category, a.zone, a.affinity_key) == (
            b.time,
            b.category,
            b.zone,
            b.affinity_key,
        )
        if a.category != "Review":
            assert a.work == b.work
    review_before = np.array([a.work for a in before if a.category == "Review"])
    review_after = np.array([a.work for a in after if a.category == "Review"])
    assert np.count_nonzero(review_before == review_after) == 0  # Review's own work did change


def test_changing_the_arrival_rate_keeps_the_service_demands() -> None:
    """The k-th task of a category carries the same work, whatever the arrival process."""
    slow = arrivals(scenario({"arrivals": {"rate_per_min": 50}}, duration="2h"))
    fast = arrivals(scenario({"arrivals": {"rate_per_min": 150}}, duration="2h"))
    for category in CATEGORIES:
        a = [x.work for x in slow if x.category == category]
        b = [x.work for x in fast if x.category == category]
        assert a == b[: len(a)] and len(a) > 500


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("process", ["poisson", "diurnal", "piecewise"])
def test_same_seed_same_arrivals_different_seed_different(process: str) -> None:
    workload = {
        "arrivals": {
            "process": process,
            "rate_per_min": 100,
            "piecewise": [{"at": "20m", "rate_per_min": 200}],
            "bursts": [{"at": "30m", "duration": "5m", "factor": 4}],
        },
        "affinity_keys": 5,
    }
    sc = scenario(workload, duration="1h", seed=21)
    first, second = arrivals(sc), arrivals(sc)
    assert len(first) > 3000
    assert first == second
    other = arrivals(scenario(workload, duration="1h", seed=22))
    assert other != first
    assert times_of(other)[:100].tolist() != times_of(first)[:100].tolist()
