"""Closed-form queueing results: the simulator's validation reference and the planner's first guess.

Everything here is a pure function of floats. The Erlang formulas are evaluated
by recursions whose intermediate values stay inside ``[0, 1]``, so they are
stable for fleets of 200 to 10,000 servers and beyond: no factorial, no power
of the offered load, nothing that can overflow.

Notation follows Kleinrock, *Queueing Systems, Volume 1: Theory* (Wiley,
1975), chapter 3: arrival rate ``λ``, service rate per server ``μ``, ``c``
servers, offered load ``a = λ/μ`` (in Erlangs) and per-server utilisation
``ρ = a/c``. Times are in whatever unit the rates are per (the simulator uses
seconds).

Sources:

* Erlang B and Erlang C, the M/M/c waiting-time distribution and Little's law:
  Kleinrock (1975), chapter 2 (Little's result) and chapter 3 (the M/M/m
  queue and the M/M/m/m loss system).
* The G/G/c approximation: Allen, *Probability, Statistics, and Queueing
  Theory with Computer Science Applications*, 2nd ed. (Academic Press, 1990),
  the Allen-Cunneen formula.
* The G/G/1 heavy-traffic approximation: Kingman, "The single server queue in
  heavy traffic", *Proc. Cambridge Philosophical Society* 57 (1961).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MMcResult",
    "allen_cunneen_wq",
    "erlang_b",
    "erlang_c",
    "kingman_wq",
    "littles_l",
    "littles_w",
    "min_servers_for",
    "mmc",
]

#: The planner gives up past this many servers rather than loop for ever.
MAX_SERVERS = 10_000_000


def _servers(c: int, *, minimum: int) -> int:
    """Validate a server count (any integer-like value, but not a bool or a float)."""
    if isinstance(c, bool):
        raise ValueError(f"server count must be an integer, got {c!r}")
    try:
        value = operator.index(c)
    except TypeError:
        raise ValueError(f"server count must be an integer, got {c!r}") from None
    if value < minimum:
        raise ValueError(f"server count must be >= {minimum}, got {value}")
    return value


def _non_negative(name: str, x: float) -> float:
    value = float(x)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return value


def _positive(name: str, x: float) -> float:
    value = float(x)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return value


def _erlang_b_sequence(a: float) -> Iterator[float]:
    """Yield B(0, a), B(1, a), B(2, a), ... by the forward recursion.

    ``B(k) = a·B(k-1) / (k + a·B(k-1))`` keeps every term in ``[0, 1]``; each
    step costs one multiplication and one division.
    """
    b = 1.0
    k = 0
    yield b
    while True:
        k += 1
        ab = a * b
        b = ab / (k + ab)
        yield b


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of the M/M/c/c loss system (Erlang's B formula).

    ``c`` is the number of servers (``c >= 0``) and ``a`` the offered load in
    Erlangs (``a >= 0``). The value is computed by the recursion
    ``B(0) = 1``, ``B(k) = a·B(k-1) / (k + a·B(k-1))`` (Kleinrock 1975,
    chapter 3), which needs ``c`` steps and never leaves ``[0, 1]``, so
    ``c = 10,000`` is as safe as ``c = 2``.
    """
    n = _servers(c, minimum=0)
    load = _non_negative("offered load", a)
    b = 1.0
    for k in range(1, n + 1):
        ab = load * b
        b = ab / (k + ab)
    return b


def _erlang_c_from_b(b: float, rho: float) -> float:
    # C = B / (1 - ρ(1 - B)); the denominator is >= 1 - ρ > 0 for a stable queue.
    return b / (1.0 - rho * (1.0 - b))


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival has to wait in the M/M/c queue (Erlang's C formula).

    It is obtained from Erlang B as ``C = B / (1 - ρ(1 - B))`` with
    ``ρ = a/c`` (Kleinrock 1975, chapter 3), which inherits the stability of
    the B recursion. The queue must be stable: ``c >= 1`` and ``0 <= a < c``;
    otherwise ``ValueError`` is raised.
    """
    n = _servers(c, minimum=1)
    load = _non_negative("offered load", a)
    if load >= n:
        raise ValueError(f"unstable queue: offered load {load} >= {n} servers")
    return _erlang_c_from_b(erlang_b(n, load), load / n)


@dataclass(frozen=True)
class MMcResult:
    """Steady-state measures of an M/M/c queue.

    ``rho`` is the per-server utilisation, ``p_wait`` the Erlang C probability
    of waiting, ``wq`` and ``w`` the mean time in queue and in the system,
    ``lq`` and ``l`` the mean number waiting and in the system. The inputs are
    kept so that the waiting-time distribution can be queried.
    """

    arrival_rate: float
    service_rate: float
    c: int
    rho: float
    p_wait: float
    wq: float
    w: float
    lq: float
    l: float  # noqa: E741 - the textbook name for the mean number in system

    @property
    def decay_rate(self) -> float:
        """Rate ``cμ - λ`` of the exponential tail of the waiting time."""
        return self.c * self.service_rate - self.arrival_rate

    def wait_exceeds(self, t: float) -> float:
        """``P(Wq > t) = C·exp(-(cμ - λ)t)`` for ``t >= 0`` (Kleinrock 1975, chapter 3)."""
        t = _non_negative("time", t)
        return self.p_wait * math.exp(-self.decay_rate * t)

    def wait_quantile(self, q: float) -> float:
        """The ``q``-quantile of the waiting time in queue, for ``0 <= q < 1``.

        The waiting time has an atom of mass ``1 - C`` at zero and an
        exponential tail ``P(Wq > t) = C·exp(-(cμ - λ)t)``. The quantile is
        therefore zero when ``q <= 1 - C`` and ``ln(C / (1 - q)) / (cμ - λ)``
        otherwise.
        """
        q = float(q)
        if not 0.0 <= q < 1.0:
            raise ValueError(f"quantile must be in [0, 1), got {q!r}")
        tail = 1.0 - q
        if self.p_wait <= tail:
            return 0.0
        return math.log(self.p_wait / tail) / self.decay_rate


def mmc(arrival_rate: float, service_rate: float, c: int) -> MMcResult:
    """Solve the M/M/c queue with Poisson arrivals at ``arrival_rate`` and exponential service.

    ``service_rate`` is per server. With ``C`` the Erlang C probability,
    ``Wq = C / (cμ - λ)``, ``W = Wq + 1/μ``, and the mean numbers follow from
    Little's law, ``Lq = λ·Wq`` and ``L = λ·W`` (Kleinrock 1975, chapters 2-3).
    Raises ``ValueError`` unless ``λ >= 0``, ``μ > 0``, ``c >= 1`` and
    ``λ < cμ``.
    """
    lam = _non_negative("arrival rate", arrival_rate)
    mu = _positive("service rate", service_rate)
    n = _servers(c, minimum=1)
    a = lam / mu
    if a >= n:
        raise ValueError(f"unstable queue: offered load {a} >= {n} servers")
    rho = a / n
    p_wait = _erlang_c_from_b(erlang_b(n, a), rho)
    wq = p_wait / (n * mu - lam)
    w = wq + 1.0 / mu
    return MMcResult(
        arrival_rate=lam,
        service_rate=mu,
        c=n,
        rho=rho,
        p_wait=p_wait,
        wq=wq,
        w=w,
        lq=lam * wq,
        l=lam * w,
    )


def _scv(name: str, x: float) -> float:
    return _non_negative(f"squared coefficient of variation {name}", x)


def allen_cunneen_wq(
    arrival_rate: float, service_rate: float, c: int, ca2: float, cs2: float
) -> float:
    """Mean wait in a G/G/c queue by the Allen-Cunneen approximation.

    ``Wq ≈ Wq(M/M/c) · (ca² + cs²) / 2`` where ``ca²`` and ``cs²`` are the
    squared coefficients of variation of the inter-arrival and service times
    (Allen 1990). It is exact for M/M/c (``ca² = cs² = 1``) and for M/G/1
    (where it is the Pollaczek-Khinchine formula), and an approximation otherwise.
    """
    scale = (_scv("ca2", ca2) + _scv("cs2", cs2)) / 2.0
    return mmc(arrival_rate, service_rate, c).wq * scale


def kingman_wq(arrival_rate: float, service_rate: float, ca2: float, cs2: float) -> float:
    """Mean wait in a G/G/1 queue by Kingman's heavy-traffic formula.

    ``Wq ≈ ρ/(1 - ρ) · (ca² + cs²)/2 · (1/μ)`` with ``ρ = λ/μ`` (Kingman 1961).
    It becomes exact as ``ρ → 1``; requires ``ρ < 1``.
    """
    lam = _non_negative("arrival rate", arrival_rate)
    mu = _positive("service rate", service_rate)
    rho = lam / mu
    if rho >= 1.0:
        raise ValueError(f"unstable queue: utilisation {rho} >= 1")
    scale = (_scv("ca2", ca2) + _scv("cs2", cs2)) / 2.0
    return rho / (1.0 - rho) * scale / mu


def littles_l(arrival_rate: float, w: float) -> float:
    """Little's law ``L = λ·W``: mean number in a system from its mean sojourn time."""
    return _non_negative("arrival rate", arrival_rate) * _non_negative("sojourn time", w)


def littles_w(l: float, arrival_rate: float) -> float:  # noqa: E741
    """Little's law ``W = L/λ``: mean sojourn time from the mean number in the system."""
    return _non_negative("mean number in system", l) / _positive("arrival rate", arrival_rate)


def min_servers_for(
    arrival_rate: float,
    service_rate: float,
    *,
    max_p_wait: float | None = None,
    max_wq: float | None = None,
    max_wait_quantile: tuple[float, float] | None = None,
) -> int:
    """Smallest number of M/M/c servers that is stable and meets every target given.

    Targets, all optional (with none, the answer is the smallest stable ``c``):

    * ``max_p_wait``: the Erlang C probability of waiting must not exceed it
      (a fraction in ``(0, 1]``);
    * ``max_wq``: the mean wait in queue must not exceed it (``> 0``, in the
      rates' time unit);
    * ``max_wait_quantile``: a pair ``(q, t)`` meaning the ``q``-quantile of
      the wait in queue must not exceed ``t``, e.g. ``(0.99, 5.0)`` for
      "99 % of tasks wait at most 5 s" (``0 < q < 1``, ``t >= 0``).

    Every measure decreases with ``c``, so the first ``c`` that meets all
    targets is the smallest. The scan updates Erlang B by one recursion step
    per server, so the cost is linear in the answer. At least one server is
    always returned, even for zero traffic.
    """
    lam = _non_negative("arrival rate", arrival_rate)
    mu = _positive("service rate", service_rate)
    if max_p_wait is not None and not 0.0 < float(max_p_wait) <= 1.0:
        raise ValueError(f"max_p_wait must be in (0, 1], got {max_p_wait!r}")
    if max_wq is not None:
        _positive("max_wq", max_wq)
    q_target = 0.0
    t_target = 0.0
    if max_wait_quantile is not None:
        q_target, t_target = (float(v) for v in max_wait_quantile)
        if not 0.0 < q_target < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {q_target!r}")
        _non_negative("quantile time", t_target)

    a = lam / mu
    for c, b in enumerate(_erlang_b_sequence(a)):
        if c > MAX_SERVERS:
            break
        if c < 1 or a >= c:
            continue
        p_wait = _erlang_c_from_b(b, a / c)
        decay = c * mu - lam
        if max_p_wait is not None and p_wait > max_p_wait:
            continue
        if max_wq is not None and p_wait / decay > max_wq:
            continue
        if max_wait_quantile is not None and p_wait * math.exp(-decay * t_target) > (
            1.0 - q_target
        ):
            continue
        return c
    raise ValueError(f"no server count up to {MAX_SERVERS} meets the targets")
