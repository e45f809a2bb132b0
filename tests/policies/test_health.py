"""Tests for the failure detectors in ``sim.policies.health``.

The backbone is agreement between a detector's two faces. For the
consecutive-check detector it is exact: Hypothesis draws intervals, phases,
thresholds, probe timeouts and outage sequences (failures on a check instant,
a float either side of one, or anywhere), feeds every check to the
per-message face and compares its transitions, to the last bit, with what the
analytic face predicts from the up/down changes alone. For φ accrual the
analytic instant is checked against φ itself: not suspected a float before,
suspected at it, and the first crossing of a fine per-message evaluation grid.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.policies.health import (
    Cdf,
    ConsecutiveFailureDetector,
    FailureDetector,
    HealthState,
    HealthTransition,
    PhiAccrualDetector,
    phi_value,
)

PROPS = settings(max_examples=80, deadline=None)
AGENT = "agent-0001"
HEALTHY, UNHEALTHY = HealthState.HEALTHY, HealthState.UNHEALTHY
#: The upper 1e-8 quantile of the standard normal (scipy.stats.norm.isf(1e-8)).
Z_1E8 = 5.612001244174965


# -- consecutive failed checks ----------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """A detector configuration, so each face can get a fresh detector of its own."""

    interval_s: float
    threshold: int
    timeout_s: float
    phase: float
    recovery_threshold: int

    def make(self) -> ConsecutiveFailureDetector:
        return ConsecutiveFailureDetector(
            self.interval_s,
            self.threshold,
            self.timeout_s,
            {AGENT: self.phase},
            recovery_threshold=self.recovery_threshold,
        )


@st.composite
def consecutive_params(draw: st.DrawFn) -> Params:
    interval = draw(st.floats(0.01, 1000.0))
    timeout_share = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.999)))
    phase_share = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.999)))
    return Params(
        interval,
        draw(st.integers(1, 6)),
        timeout_share * interval,
        phase_share * interval,
        draw(st.integers(1, 4)),
    )


def some_time(data: st.DataObject, det: ConsecutiveFailureDetector, after: float) -> float:
    """A time at or after *after*: on a check instant, a float either side of one, or free."""
    scale = data.draw(st.sampled_from([0.3, 1.0, 4.0])) * det.interval_s
    free = after + data.draw(st.floats(0.0, 1.0)) * scale
    how = data.draw(st.sampled_from(["free", "check", "just-before", "just-after"]))
    if how == "free":
        return free
    check = det.next_check(AGENT, free)
    if how == "check":
        return check
    if how == "just-before":
        return max(after, math.nextafter(check, -math.inf))
    return math.nextafter(check, math.inf)


def start_index(det: ConsecutiveFailureDetector, t: float) -> int:
    """A check index safely before *t*, computed without the detector's own search."""
    return math.floor((t - det.phase_of(AGENT)) / det.interval_s) - 3


def per_message_timeline(
    det: ConsecutiveFailureDetector, changes: list[float]
) -> list[tuple[float, HealthState]]:
    """Feed every check around *changes* (down, up, down, ...) to ``observe``."""
    end = start_index(det, changes[-1]) + det.threshold + det.recovery_threshold + 6
    seen = []
    for k in range(start_index(det, changes[0]), end):
        sent = det.check_time(AGENT, k)
        down = bisect.bisect_right(changes, sent) % 2 == 1  # a check at a change sees the new state
        result_at = sent + det.timeout_s if down else sent
        transition = det.observe(AGENT, result_at, ok=not down)
        if transition is not None:
            seen.append((transition.time, transition.to_state))
    return seen


def analytic_timeline(
    det: FailureDetector, changes: list[float]
) -> list[tuple[float, HealthState]]:
    """Replay *changes* through the analytic face the way the module docstring tells a shell."""
    happened: list[HealthTransition] = []
    pending: list[HealthTransition] = []
    for i, now in enumerate(changes):
        happened += [p for p in pending if p.time < now]
        if i % 2 == 0:
            declared = det.detection_time(AGENT, now)
            if declared >= now:
                pending = [HealthTransition(AGENT, declared, HEALTHY, UNHEALTHY, "")]
            else:
                pending = []
        else:
            pending = list(det.recovered(AGENT, now))
    return [(t.time, t.to_state) for t in happened + pending]


@PROPS
@given(params=consecutive_params(), data=st.data())
def test_detection_time_equals_per_message_detection(params: Params, data: st.DataObject) -> None:
    """One outage from a clean history: the analytic instant is the per-message one, exactly."""
    probe = params.make()
    failed_at = some_time(data, probe, data.draw(st.floats(-1e4, 1e6)))

    per_message = per_message_timeline(params.make(), [failed_at])
    analytic = params.make().detection_time(AGENT, failed_at)

    assert per_message == [(analytic, UNHEALTHY)]


@PROPS
@given(params=consecutive_params(), data=st.data())
def test_outage_sequences_give_the_same_transitions_in_both_faces(
    params: Params, data: st.DataObject
) -> None:
    """Short, long and back-to-back outages, probes timing out after recovery: same timeline."""
    probe = params.make()
    changes = [data.draw(st.floats(-1e3, 1e5))]
    for _ in range(data.draw(st.integers(0, 9))):
        changes.append(some_time(data, probe, changes[-1]))

    assert analytic_timeline(params.make(), changes) == per_message_timeline(params.make(), changes)


def test_spec_three_consecutive_failures() -> None:
    """SPEC §7.1: the third failed check in a row marks the agent unhealthy."""
    det = ConsecutiveFailureDetector(10.0, threshold=3, timeout_s=2.0)
    assert det.detection_time("a", 5.0) == 30.0 + 2.0  # checks at 10, 20, 30 fail
    # A check at the very instant of the failure fails: 10, 20, 30 again.
    assert det.detection_time("b", 10.0) == 32.0
    assert det.detection_time("c", math.nextafter(10.0, math.inf)) == 42.0


def test_a_short_outage_goes_unnoticed() -> None:
    det = ConsecutiveFailureDetector(10.0, threshold=3)
    assert det.detection_time("a", 5.0) == 30.0
    assert det.recovered("a", 30.0) == ()  # the check at 30 sees it up again


def test_a_probe_sent_before_recovery_still_times_out() -> None:
    det = ConsecutiveFailureDetector(10.0, threshold=2, timeout_s=4.0, recovery_threshold=2)
    assert det.detection_time("a", 5.0) == 24.0
    upcoming = det.recovered("a", 22.0)
    assert [(t.time, t.to_state) for t in upcoming] == [(24.0, UNHEALTHY), (40.0, HEALTHY)]
    assert upcoming[1].reason == "2 consecutive ok checks"


def test_failing_again_before_declared_healthy_is_no_new_declaration() -> None:
    det = ConsecutiveFailureDetector(10.0, threshold=3)
    assert det.detection_time("a", 5.0) == 30.0
    assert [t.time for t in det.recovered("a", 35.0)] == [40.0]
    assert det.detection_time("a", 38.0) == 30.0  # still unhealthy since 30: nothing to schedule
    assert det.detection_time("a", 38.0) == 30.0  # asking again answers the same


def test_back_to_back_outages_count_consecutively() -> None:
    """An outage between two checks adds to the run of the next one."""
    det = ConsecutiveFailureDetector(10.0, threshold=3)
    det.detection_time("a", 9.0)
    assert det.recovered("a", 10.5) == ()  # only the check at 10 failed
    assert det.detection_time("a", 12.0) == 30.0  # 10, 20, 30 in a row


def test_phases_spread_checks_and_are_read_once() -> None:
    rng = np.random.default_rng(7)
    calls: list[str] = []

    def phase(agent_id: str) -> float:
        calls.append(agent_id)
        return float(rng.uniform(0.0, 10.0))

    det = ConsecutiveFailureDetector(10.0, phase=phase)
    ids = [f"a{i}" for i in range(50)]
    firsts = [det.next_check(a, 0.0) for a in ids]
    assert [det.next_check(a, 0.0) for a in ids] == firsts
    assert calls == ids
    assert len(set(firsts)) == len(ids) and all(0.0 <= f < 10.0 for f in firsts)


def test_bad_configuration_and_misuse_raise() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        ConsecutiveFailureDetector(10.0, timeout_s=10.0)
    with pytest.raises(ValueError, match="threshold"):
        ConsecutiveFailureDetector(10.0, threshold=0)
    with pytest.raises(ValueError, match="phase"):
        ConsecutiveFailureDetector(10.0, phase={"a": 10.0}).next_check("a", 0.0)
    det = ConsecutiveFailureDetector(10.0)
    with pytest.raises(ValueError, match="not down"):
        det.recovered("a", 1.0)
    det.detection_time("a", 5.0)
    with pytest.raises(ValueError, match="already down"):
        det.detection_time("a", 6.0)
    with pytest.raises(ValueError, match="before"):
        det.recovered("a", 4.0)


def test_per_message_recovery_needs_consecutive_ok_checks() -> None:
    det = ConsecutiveFailureDetector(1.0, threshold=2, recovery_threshold=2)
    results = [True, False, False, True, False, True, True, True]
    out = [det.observe("a", float(i), ok) for i, ok in enumerate(results)]
    assert [(t.time, t.to_state) for t in out if t] == [(2.0, UNHEALTHY), (6.0, HEALTHY)]
    assert det.state("a") is HEALTHY
    det.forget("a")
    assert det.state("a") is HEALTHY


# -- φ accrual ----------------------------------------------------------------------------------


def fed(det: PhiAccrualDetector, times: list[float] | np.ndarray, agent: str = AGENT) -> None:
    for t in times:
        det.heartbeat(agent, float(t))


def jittered_arrivals(seed: int, n: int = 300, interval: float = 1.0) -> np.ndarray:
    """Heartbeats every *interval* seconds with gamma-distributed jitter (mean 0.1 s)."""
    rng = np.random.default_rng(seed)
    return np.cumsum(interval + rng.gamma(2.0, 0.05, size=n) - 0.1)


def test_regular_heartbeats_suspect_at_the_normal_quantile() -> None:
    """Every 1 s, std floored at min_std: suspected at 1 + 0.1·z(1e-8) after the last beat."""
    det = PhiAccrualDetector(first_interval_s=1.0, window=20, min_std_s=0.1)
    fed(det, [float(k) for k in range(40)])
    assert det.stats(AGENT) == (1.0, 0.1)
    assert det.time_to_suspect(AGENT) == pytest.approx(1.0 + 0.1 * Z_1E8, abs=1e-9)
    assert det.time_to_suspect() == pytest.approx(det.time_to_suspect(AGENT), abs=1e-12)
    at = det.suspect_at(AGENT)
    assert det.suspect(AGENT, at) and not det.suspect(AGENT, math.nextafter(at, -math.inf))
    assert det.phi(AGENT, at) == pytest.approx(8.0, abs=1e-6)


def test_logistic_cdf_is_akkas_and_crosses_at_the_cubic_root() -> None:
    """Akka's approximation: φ = 8 where 1.5976·y + 0.070566·y³ = ln(10^8 − 1) (Cardano)."""
    a, b, target = 0.070566, 1.5976, math.log(1e8 - 1.0)
    p, q = b / a, -target / a
    root = math.sqrt(q * q / 4 + p**3 / 27)
    y = float(np.cbrt(-q / 2 + root) + np.cbrt(-q / 2 - root))
    det = PhiAccrualDetector(first_interval_s=1.0, cdf="logistic")
    assert det.time_to_suspect() == pytest.approx(1.0 + 0.1 * y, abs=1e-9)
    for elapsed in (0.2, 0.9, 1.0, 1.3, 2.0):  # Akka's two branches, written out
        yy = (elapsed - 1.0) / 0.1
        e = math.exp(-yy * (1.5976 + 0.070566 * yy * yy))
        akka = -math.log10(e / (1 + e)) if elapsed > 1.0 else -math.log10(1 - 1 / (1 + e))
        assert phi_value(elapsed, 1.0, 0.1, "logistic") == pytest.approx(akka, rel=1e-9)
    assert phi_value(1e9, 1.0, 0.1, "logistic") > 1e20  # no overflow either way
    assert phi_value(1e300, 1.0, 0.1, "logistic") == math.inf
    assert phi_value(-1e9, 1.0, 0.1, "logistic") == 0.0
    assert phi_value(1e9, 1.0, 0.1) == math.inf


@PROPS
@given(
    interval=st.floats(0.1, 10.0),
    phase_share=st.floats(0.0, 0.999),
    threshold=st.floats(0.5, 16.0),
    min_std_share=st.floats(0.01, 0.5),
    window=st.integers(2, 30),
    failed_share=st.floats(0.0, 1.0),
    slot=st.integers(40, 5000),
)
def test_analytic_detection_matches_phi_of_regular_heartbeats(
    interval: float,
    phase_share: float,
    threshold: float,
    min_std_share: float,
    window: int,
    failed_share: float,
    slot: int,
) -> None:
    """The grid assumption: feeding the grid's heartbeats gives the same suspicion instant."""
    phase = phase_share * interval

    def make() -> PhiAccrualDetector:
        return PhiAccrualDetector(
            first_interval_s=interval,
            threshold=threshold,
            window=window,
            min_std_s=min_std_share * interval,
            phase={AGENT: phase},
        )

    analytic, per_message = make(), make()
    failed_at = phase + slot * interval + failed_share * interval
    beats = [phase + k * interval for k in range(slot - window - 5, slot + 2)]
    fed(per_message, [t for t in beats if t < failed_at])

    declared = analytic.detection_time(AGENT, failed_at)

    tol = 1e-9 * max(1.0, declared)
    assert declared == pytest.approx(per_message.suspect_at(AGENT), abs=tol)
    assert per_message.suspect(AGENT, declared + tol)
    assert not per_message.suspect(AGENT, declared - tol)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jittered_heartbeats_first_crossing_of_a_fine_grid(seed: int) -> None:
    det = PhiAccrualDetector(first_interval_s=1.0, window=50, threshold=5.0)
    arrivals = jittered_arrivals(seed)
    for t in arrivals:  # φ is evaluated after the heartbeat is recorded: never suspected
        assert det.observe(AGENT, float(t), ok=True) is None
    at = det.suspect_at(AGENT)
    assert det.suspect(AGENT, at) and not det.suspect(AGENT, math.nextafter(at, -math.inf))

    step, last = 1e-3, float(arrivals[-1])
    grid = last + step * np.arange(1, 10_000)
    crossing = next(t for t in map(float, grid) if det.observe(AGENT, t, ok=False) is not None)
    assert crossing - step < at <= crossing
    assert det.detection_time(AGENT, last + 0.5) == at


def false_suspicions(threshold: float, arrivals: np.ndarray, window: int = 30) -> int:
    """Heartbeats that arrived after the detector had already suspected their sender."""
    det = PhiAccrualDetector(first_interval_s=1.0, window=window, threshold=threshold)
    late = 0
    for i, t in enumerate(map(float, arrivals)):
        late += i > window and det.suspect(AGENT, t)
        det.heartbeat(AGENT, t)
    return late


@PROPS
@given(
    seed=st.integers(0, 2**32 - 1),
    thresholds=st.lists(st.floats(0.2, 16.0), min_size=2, max_size=4, unique=True).map(sorted),
    cdf=st.sampled_from(["normal", "logistic"]),
)
def test_a_higher_threshold_suspects_later_and_less_often(
    seed: int, thresholds: list[float], cdf: Cdf
) -> None:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0, size=120) * 0.5 + 0.5)
    delays, late = [], []
    for threshold in thresholds:
        det = PhiAccrualDetector(first_interval_s=1.0, threshold=threshold, cdf=cdf)
        fed(det, arrivals)
        delays.append(det.time_to_suspect(AGENT))
        late.append(false_suspicions(threshold, arrivals))
    assert delays == sorted(delays)
    assert late == sorted(late, reverse=True)


def test_acceptable_pause_shifts_the_suspicion() -> None:
    plain = PhiAccrualDetector(first_interval_s=1.0)
    paused = PhiAccrualDetector(first_interval_s=1.0, acceptable_pause_s=3.0)
    assert paused.time_to_suspect() == pytest.approx(plain.time_to_suspect() + 3.0, abs=1e-9)


def test_first_heartbeat_seeds_akkas_bootstrap_window() -> None:
    det = PhiAccrualDetector(first_interval_s=2.0, min_std_s=0.01)
    assert det.phi(AGENT, 100.0) == 0.0 and not det.suspect(AGENT, 100.0)
    det.heartbeat(AGENT, 0.0)
    assert det.stats(AGENT) == (2.0, 0.5)  # intervals 1.5 and 2.5
    assert det.last_heartbeat(AGENT) == 0.0


def test_phi_outages_on_the_grid() -> None:
    """Grid every 1 s from 0, suspected 1.5612 s after the last beat."""
    tts = PhiAccrualDetector(first_interval_s=1.0).time_to_suspect()

    short = PhiAccrualDetector(first_interval_s=1.0)
    assert short.detection_time("a", 10.3) == pytest.approx(10.0 + tts)
    assert short.recovered("a", 10.9) == ()  # the beat at 11 comes first

    straddle = PhiAccrualDetector(first_interval_s=1.0)
    declared = straddle.detection_time("a", 10.3)
    upcoming = straddle.recovered("a", 11.2)  # up, but silent until its slot at 12
    assert [(t.time, t.to_state) for t in upcoming] == [(declared, UNHEALTHY), (12.0, HEALTHY)]
    assert straddle.detection_time("a", 11.8) == declared  # no beat since: same suspicion
    straddle.recovered("a", 11.9)
    assert straddle.detection_time("a", 12.5) == pytest.approx(12.0 + tts)

    long = PhiAccrualDetector(first_interval_s=1.0)
    long.detection_time("a", 10.3)
    assert [(t.time, t.to_state) for t in long.recovered("a", 13.5)] == [(14.0, HEALTHY)]


def test_reported_heartbeats_drive_the_analytic_face() -> None:
    det = PhiAccrualDetector(first_interval_s=1.0, window=10)
    fed(det, [0.0, 1.0, 2.2, 3.1, 4.0])
    assert det.detection_time(AGENT, 4.5) == det.suspect_at(AGENT)
    back = det.recovered(AGENT, 20.0)
    assert [(t.time, t.to_state) for t in back] == [(20.0, HEALTHY)]
    assert det.last_heartbeat(AGENT) == 20.0
    fed(det, [0.0, 1.0], agent="b")
    with pytest.raises(ValueError, match="after its failure"):
        det.detection_time("b", 0.5)


def test_per_message_phi_transitions() -> None:
    det = PhiAccrualDetector(first_interval_s=1.0, window=10)
    out = [det.observe("a", float(t), ok=True) for t in range(20)]
    assert out == [None] * 20
    down = det.observe("a", 25.0, ok=False)
    assert down is not None and down.to_state is UNHEALTHY and down.time == 25.0
    assert det.observe("a", 26.0, ok=False) is None
    up = det.observe("a", 27.0, ok=True)
    assert up is not None and up.to_state is HEALTHY
    det.forget("a")
    assert det.last_heartbeat("a") is None


def test_both_detectors_are_failure_detectors() -> None:
    detectors: list[FailureDetector] = [
        ConsecutiveFailureDetector(10.0),
        PhiAccrualDetector(first_interval_s=10.0),
    ]
    for det in detectors:
        failed = det.detection_time("a", 100.0)
        assert failed > 100.0
        assert det.recovered("a", failed + 60.0)[-1].to_state is HEALTHY
