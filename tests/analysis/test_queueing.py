"""Tests for the analytic queueing formulas in sim.analysis.queueing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.queueing import (
    MMcResult,
    allen_cunneen_wq,
    erlang_b,
    erlang_c,
    kingman_wq,
    littles_l,
    littles_w,
    min_servers_for,
    mmc,
)


def direct_erlang_b(c: int, a: float) -> float:
    """Erlang B by its defining sum, (a^c/c!) / sum_k a^k/k!; fine for small c."""
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    return terms[-1] / sum(terms)


def direct_erlang_c(c: int, a: float) -> float:
    """Erlang C by its defining sum; independent of the B-based formula under test."""
    rho = a / c
    top = a**c / math.factorial(c) / (1.0 - rho)
    bottom = sum(a**k / math.factorial(k) for k in range(c)) + top
    return top / bottom


# --- known values -------------------------------------------------------------------------


def test_erlang_c_textbook_values() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0, rel=1e-12)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-5)
    assert erlang_c(1, 0.5) == pytest.approx(0.5, rel=1e-12)  # M/M/1: P(wait) = ρ


def test_erlang_b_textbook_values() -> None:
    assert erlang_b(0, 3.0) == 1.0
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang_b(5, 0.0) == 0.0


@pytest.mark.parametrize(
    ("c", "a"),
    [(1, 0.3), (2, 1.5), (3, 2.9), (5, 2.0), (8, 7.5), (12, 6.0), (20, 17.3), (30, 25.0)],
)
def test_against_direct_sums(c: int, a: float) -> None:
    assert erlang_b(c, a) == pytest.approx(direct_erlang_b(c, a), rel=1e-10)
    assert erlang_c(c, a) == pytest.approx(direct_erlang_c(c, a), rel=1e-10)


def test_mm1_closed_form() -> None:
    lam, mu = 3.0, 5.0
    r = mmc(lam, mu, 1)
    rho = lam / mu
    assert r.rho == pytest.approx(rho)
    assert r.p_wait == pytest.approx(rho)
    assert r.w == pytest.approx(1.0 / (mu - lam))
    assert r.wq == pytest.approx(rho / (mu - lam))
    assert r.l == pytest.approx(rho / (1.0 - rho))
    assert r.lq == pytest.approx(rho**2 / (1.0 - rho))


def test_mmc_known_values() -> None:
    # c = 2, λ = 1, μ = 1: C = 1/3, Wq = C/(cμ - λ) = 1/3, W = 4/3, L = 4/3, Lq = 1/3.
    r = mmc(1.0, 1.0, 2)
    assert isinstance(r, MMcResult)
    assert r.rho == pytest.approx(0.5)
    assert r.wq == pytest.approx(1.0 / 3.0)
    assert r.w == pytest.approx(4.0 / 3.0)
    assert r.l == pytest.approx(4.0 / 3.0)
    assert r.lq == pytest.approx(1.0 / 3.0)


def test_wait_quantile() -> None:
    r = mmc(8.0, 1.0, 10)
    # Below the atom at zero the quantile is 0.
    assert r.wait_quantile(0.0) == 0.0
    assert r.wait_quantile(1.0 - r.p_wait) == 0.0
    for q in (0.7, 0.9, 0.99, 0.999):
        t = r.wait_quantile(q)
        assert t > 0.0
        assert r.wait_exceeds(t) == pytest.approx(1.0 - q, rel=1e-12)
        assert t == pytest.approx(math.log(r.p_wait / (1.0 - q)) / (10 * 1.0 - 8.0))
    assert r.wait_exceeds(0.0) == pytest.approx(r.p_wait)
    with pytest.raises(ValueError):
        r.wait_quantile(1.0)
    with pytest.raises(ValueError):
        r.wait_quantile(-0.1)


def test_result_is_frozen() -> None:
    r = mmc(1.0, 1.0, 2)
    with pytest.raises(AttributeError):
        r.wq = 0.0  # type: ignore[misc]


# --- approximations -------------------------------------------------------------------------


def test_allen_cunneen_reduces_to_mmc() -> None:
    exact = mmc(150.0, 1.0, 200).wq
    assert allen_cunneen_wq(150.0, 1.0, 200, 1.0, 1.0) == pytest.approx(exact)
    # Deterministic service halves the M/M/c wait (M/D/c by Allen-Cunneen).
    assert allen_cunneen_wq(150.0, 1.0, 200, 1.0, 0.0) == pytest.approx(exact / 2)


def test_kingman() -> None:
    lam, mu = 0.9, 1.0
    # For M/M/1 Kingman is exact: Wq = ρ/(μ - λ).
    assert kingman_wq(lam, mu, 1.0, 1.0) == pytest.approx(mmc(lam, mu, 1).wq)
    # M/D/1 (Pollaczek-Khinchine): Wq = ρ / (2μ(1 - ρ)).
    assert kingman_wq(lam, mu, 1.0, 0.0) == pytest.approx(0.9 / (2 * 0.1))
    with pytest.raises(ValueError):
        kingman_wq(1.0, 1.0, 1.0, 1.0)


def test_littles_law_helpers() -> None:
    assert littles_l(2.0, 3.0) == pytest.approx(6.0)
    assert littles_w(6.0, 2.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        littles_w(1.0, 0.0)


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "a"), [(2, 2.0), (2, 3.0), (10, 10.0)])
def test_erlang_c_rejects_unstable(c: int, a: float) -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(c, a)


@pytest.mark.parametrize(("c", "a"), [(-1, 1.0), (0, 0.5), (2, -0.1), (2, math.nan)])
def test_erlang_c_rejects_invalid(c: int, a: float) -> None:
    with pytest.raises(ValueError):
        erlang_c(c, a)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        erlang_b(-1, 1.0)
    with pytest.raises(ValueError):
        erlang_b(2.5, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        erlang_b(True, 1.0)
    with pytest.raises(ValueError):
        erlang_b(3, math.inf)
    with pytest.raises(ValueError):
        mmc(1.0, 0.0, 2)
    with pytest.raises(ValueError):
        mmc(2.0, 1.0, 2)
    with pytest.raises(ValueError):
        mmc(-1.0, 1.0, 2)


# --- large fleets -----------------------------------------------------------------------------


def test_large_c_does_not_overflow() -> None:
    c = 10_000
    for a in (9_000.0, 9_900.0, 9_990.0):
        b = erlang_b(c, a)
        p = erlang_c(c, a)
        assert 0.0 < b < p < 1.0
        assert math.isfinite(b)
        assert math.isfinite(p)
    r = mmc(9_900.0, 1.0, c)
    assert all(math.isfinite(x) and x >= 0.0 for x in (r.rho, r.p_wait, r.wq, r.w, r.lq, r.l))
    # Light load on a huge fleet: waiting is vanishingly rare, but no underflow to NaN.
    assert erlang_c(c, 5_000.0) == pytest.approx(0.0, abs=1e-100)
    assert erlang_b(c, 1e6) == pytest.approx(1.0 - c / 1e6, rel=1e-3)


def test_fleet_of_200() -> None:
    # At 90 % utilisation a 200-server pool rarely makes anyone wait (economies of scale).
    r = mmc(180.0, 1.0, 200)
    assert 0.0 < r.p_wait < 0.3
    assert r.wq < 0.05


# --- properties -----------------------------------------------------------------------------

loads = st.floats(min_value=0.01, max_value=500.0, allow_nan=False, allow_infinity=False)
servers = st.integers(min_value=1, max_value=600)


@settings(max_examples=60, deadline=None)
@given(c=servers, a=loads)
def test_b_decreasing_in_c(c: int, a: float) -> None:
    smaller, larger = erlang_b(c + 1, a), erlang_b(c, a)
    assert smaller <= larger
    if larger > 1e-280:  # strict unless both have underflowed towards zero
        assert smaller < larger


@settings(max_examples=60, deadline=None)
@given(c=servers, a=loads, factor=st.floats(min_value=1.001, max_value=3.0))
def test_b_increasing_in_a(c: int, a: float, factor: float) -> None:
    smaller, larger = erlang_b(c, a), erlang_b(c, a * factor)
    assert smaller <= larger
    if smaller > 1e-280:
        assert smaller < larger


@settings(max_examples=60, deadline=None)
@given(c=servers, frac=st.floats(min_value=0.001, max_value=0.999))
def test_c_at_least_b(c: int, frac: float) -> None:
    a = c * frac
    b = erlang_b(c, a)
    p = erlang_c(c, a)
    assert 0.0 <= b <= p <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    c=st.integers(min_value=1, max_value=400),
    frac=st.floats(min_value=0.01, max_value=0.99),
    mu=st.floats(min_value=0.01, max_value=100.0),
)
def test_mmc_littles_law(c: int, frac: float, mu: float) -> None:
    lam = c * mu * frac
    r = mmc(lam, mu, c)
    assert r.l == pytest.approx(littles_l(lam, r.w), rel=1e-9)
    assert r.lq == pytest.approx(littles_l(lam, r.wq), rel=1e-9)
    assert r.w == pytest.approx(littles_w(r.l, lam), rel=1e-9)
    # L - Lq is the mean number in service, a = λ/μ.
    assert r.l - r.lq == pytest.approx(lam / mu, rel=1e-9)
    assert r.w - r.wq == pytest.approx(1.0 / mu, rel=1e-9)


# --- the planner -----------------------------------------------------------------------------


def test_min_servers_no_targets_is_smallest_stable() -> None:
    assert min_servers_for(8.0, 1.0) == 9
    assert min_servers_for(7.5, 1.0) == 8
    assert min_servers_for(0.0, 1.0) == 1


def test_min_servers_p_wait() -> None:
    c = min_servers_for(8.0, 1.0, max_p_wait=0.2)
    assert erlang_c(c, 8.0) <= 0.2
    assert erlang_c(c - 1, 8.0) > 0.2


def test_min_servers_textbook() -> None:
    # c = 10 gives C ≈ 0.409 and c = 11 gives C ≈ 0.2217 at a = 8.
    assert min_servers_for(8.0, 1.0, max_p_wait=0.41) == 10
    assert min_servers_for(8.0, 1.0, max_p_wait=0.40) == 11


@settings(max_examples=40, deadline=None)
@given(
    lam=st.floats(min_value=0.1, max_value=2_000.0),
    mu=st.floats(min_value=0.05, max_value=10.0),
    target=st.floats(min_value=0.001, max_value=0.9),
)
def test_min_servers_is_smallest(lam: float, mu: float, target: float) -> None:
    c = min_servers_for(lam, mu, max_p_wait=target)
    a = lam / mu
    assert c > a
    assert mmc(lam, mu, c).p_wait <= target
    if c - 1 > a:
        assert mmc(lam, mu, c - 1).p_wait > target


def test_min_servers_wq_and_quantile() -> None:
    lam, mu = 150.0, 1.0 / 1.2  # 150 tasks/s of 1.2 s each: a = 180 Erlangs
    c = min_servers_for(lam, mu, max_wq=0.05)
    assert mmc(lam, mu, c).wq <= 0.05 < mmc(lam, mu, c - 1).wq

    c = min_servers_for(lam, mu, max_wait_quantile=(0.99, 0.5))
    assert mmc(lam, mu, c).wait_quantile(0.99) <= 0.5 + 1e-12
    assert mmc(lam, mu, c - 1).wait_quantile(0.99) > 0.5

    both = min_servers_for(lam, mu, max_wq=0.05, max_wait_quantile=(0.99, 0.5), max_p_wait=0.01)
    assert both >= max(c, min_servers_for(lam, mu, max_p_wait=0.01))
    assert both == max(
        min_servers_for(lam, mu, max_wq=0.05),
        c,
        min_servers_for(lam, mu, max_p_wait=0.01),
    )


def test_min_servers_large_fleet_is_fast() -> None:
    c = min_servers_for(9_500.0, 1.0, max_p_wait=0.05)
    assert 9_500 < c < 10_000
    assert erlang_c(c, 9_500.0) <= 0.05 < erlang_c(c - 1, 9_500.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_p_wait": 0.0},
        {"max_p_wait": 1.5},
        {"max_wq": 0.0},
        {"max_wait_quantile": (1.0, 1.0)},
        {"max_wait_quantile": (0.9, -1.0)},
    ],
)
def test_min_servers_rejects_bad_targets(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        min_servers_for(5.0, 1.0, **kwargs)  # type: ignore[arg-type]
