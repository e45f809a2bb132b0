"""What arrives, and how much work each task carries.

Scenario: independent tasks arrive at the chief coordinator as a Poisson
stream (constant, piecewise, diurnal, with bursts on top) or replayed from a
trace; each has a category from the mix, a home zone from the zone mix, an
optional affinity key, and an amount of work drawn from its category's
service-time distribution. DAG jobs arrive as their own Poisson stream, each
a workflow from a generator or a file.

Work is a property of the task, drawn when it arrives from the category's
own stream; an agent serves it in ``work / speed`` seconds. So two runs that
differ only in policy see the same tasks with the same demands (common
random numbers), which keeps A/B comparisons sharp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from sim.scenario.schema import Arrivals, Scenario, ServiceTime
from sim.world.streams import Streams

BLOCK = 4096
#: The first task id, and the first DAG job id: both shells count from it (the simulator's
#: ledger and DAG arrivals, live's arrivals), so a live run's ids are its replay's.
FIRST_ID = 1


class WorkloadError(Exception):
    """A workload input (trace or empirical file) that cannot be used; one line for the user."""


class Arrival(NamedTuple):
    """One independent task as it arrives (a tuple: one is built per task, on the hot path)."""

    time: float
    category: str
    zone: str
    work: float
    affinity_key: int | None
    #: The task's own attempt deadline in seconds (traces may give one; None: its category's).
    deadline: float | None = None


# --------------------------------------------------------------------------- service times


def service_sampler(
    spec: ServiceTime, rng: np.random.Generator, path_label: str = "workload.service"
) -> Callable[[int], np.ndarray]:
    """A function drawing *n* work amounts (seconds on a base agent) from *spec*."""
    mean = spec.mean
    if spec.dist == "exponential":
        return lambda n: rng.exponential(mean, n)
    if spec.dist == "deterministic":
        return lambda n: np.full(n, mean)
    if spec.dist == "lognormal":
        sigma2 = math.log1p(spec.cv**2)
        mu = math.log(mean) - sigma2 / 2
        sigma = math.sqrt(sigma2)
        return lambda n: rng.lognormal(mu, sigma, n)
    if spec.dist == "gamma":
        if spec.cv == 0:
            return lambda n: np.full(n, mean)
        shape = 1.0 / spec.cv**2
        return lambda n: rng.gamma(shape, mean / shape, n)
    assert spec.file is not None
    values = _read_column(spec.file, spec.column, f"{path_label}.file")
    return lambda n: rng.choice(values, n)


def _read_table(path: Path, label: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise WorkloadError(f"{path}: {label}: file not found") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkloadError(f"{path}: {label}: expected a CSV or Parquet table ({first})") from None


def _read_column(path: Path, column: str, label: str) -> np.ndarray:
    frame = _read_table(path, label)
    if column not in frame.columns:
        raise WorkloadError(
            f"{path}: {column}: expected a column of seconds "
            f"(found {', '.join(map(str, frame.columns))})"
        )
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if len(values) == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise WorkloadError(f"{path}: {column}: expected non-negative numbers in every row")
    return values


class ServiceDemand:
    """Work per task, one stream per category (so categories do not disturb each other)."""

    def __init__(self, scenario: Scenario, streams: Streams) -> None:
        self._buffers: dict[str, list[float]] = {}
        self._draws: dict[str, Callable[[int], np.ndarray]] = {}
        workload = scenario.workload
        for category in scenario.topology.categories:
            spec = workload.service_by_category.get(category, workload.service)
            label = (
                f"workload.service_by_category.{category}"
                if category in workload.service_by_category
                else "workload.service"
            )
            self._draws[category] = service_sampler(spec, streams.get(f"service.{category}"), label)
            self._buffers[category] = []
        self.means = {
            c: float(workload.service_by_category.get(c, workload.service).mean)
            for c in scenario.topology.categories
        }

    def draw(self, category: str) -> float:
        buffer = self._buffers[category]
        if not buffer:
            buffer.extend(self._draws[category](BLOCK).tolist()[::-1])
        return buffer.pop()


# --------------------------------------------------------------------------- arrival rates


def rate_function(spec: Arrivals) -> tuple[Callable[[float], float], float]:
    """The arrival rate per second at time t, and an upper bound on it (for thinning)."""
    base = spec.rate_per_min / 60.0
    if spec.process == "piecewise":
        points = sorted(spec.piecewise, key=lambda p: p.at)
        times = [p.at for p in points]
        rates = [p.rate_per_min / 60.0 for p in points]

        def level(t: float) -> float:
            index = int(np.searchsorted(times, t, side="right")) - 1
            return base if index < 0 else rates[index]

        # The base rate bounds nothing when a point starts at t = 0 (it never applies).
        peak = max([base, *rates] if times[0] > 0 else rates)
    elif spec.process == "diurnal":
        d = spec.diurnal

        def level(t: float) -> float:
            return base * (1.0 + d.amplitude * math.cos(2 * math.pi * (t - d.peak_at) / d.period))

        peak = base * (1.0 + d.amplitude)
    else:

        def level(t: float) -> float:
            return base

        peak = base

    bursts = [(b.at, b.at + b.duration, b.factor) for b in spec.bursts]
    if not bursts:
        return level, peak

    def rate(t: float) -> float:
        factor = 1.0
        for start, end, f in bursts:
            if start <= t < end:
                factor *= f
        return level(t) * factor

    return rate, peak * math.prod(max(1.0, f) for _, _, f in bursts)


def arrival_times(spec: Arrivals, horizon: float, rng: np.random.Generator) -> Iterator[float]:
    """Arrival instants of a (non-homogeneous) Poisson process up to *horizon*.

    Non-constant rates use Lewis and Shedler's thinning: candidates at the
    peak rate, each kept with probability rate(t) / peak.
    """
    rate, peak = rate_function(spec)
    if peak <= 0:
        return
    constant = spec.process == "poisson" and not spec.bursts
    t = 0.0
    while True:
        gaps = rng.exponential(1.0 / peak, BLOCK)
        keep = None if constant else rng.random(BLOCK)
        for i, gap in enumerate(gaps.tolist()):
            t += gap
            if t >= horizon:
                return
            if keep is None or keep[i] * peak < rate(t):
                yield t


# --------------------------------------------------------------------------- task streams


class TaskSource:
    """Independent task arrivals, in time order, fully described."""

    def __init__(self, scenario: Scenario, streams: Streams, demand: ServiceDemand) -> None:
        self._scenario = scenario
        self._demand = demand
        workload = scenario.workload
        self.categories = list(scenario.topology.categories)
        mix = workload.mix or dict(scenario.topology.categories)
        self._category_p = _normalise([mix[c] for c in self.categories], "workload.mix")
        self.zones = [z.name for z in scenario.topology.zones]
        zone_mix = workload.zone_mix or {z.name: z.weight for z in scenario.topology.zones}
        self._zone_p = _normalise([zone_mix[z] for z in self.zones], "workload.zone_mix")
        self._keys = workload.affinity_keys
        self._times_rng = streams.get("arrivals")
        self._attr_rng = streams.get("arrivals.attributes")

    def __iter__(self) -> Iterator[Arrival]:
        spec = self._scenario.workload.arrivals
        if spec.process == "trace":
            yield from self._trace(spec)
            return
        horizon = self._scenario.duration
        categories, zones = self.categories, self.zones
        draw = self._demand.draw
        keys = bool(self._keys)
        new = tuple.__new__  # Arrival(...) with every field given, without its __new__ frame
        pending: list[tuple[int, int, int]] = []
        for t in arrival_times(spec, horizon, self._times_rng):
            if not pending:
                pending = self._attributes()
            c, z, k = pending.pop()
            category = categories[c]
            yield new(Arrival, (t, category, zones[z], draw(category), k if keys else None, None))

    def _attributes(self) -> list[tuple[int, int, int]]:
        rng = self._attr_rng
        cats = rng.choice(len(self.categories), BLOCK, p=self._category_p)
        zones = rng.choice(len(self.zones), BLOCK, p=self._zone_p)
        keys = rng.integers(0, max(self._keys, 1), BLOCK)
        return list(zip(cats.tolist(), zones.tolist(), keys.tolist(), strict=True))[::-1]

    def _trace(self, spec: Arrivals) -> Iterator[Arrival]:
        assert spec.trace is not None
        path = spec.trace
        frame = _read_table(path, "workload.arrivals.trace")
        if "arrival_s" not in frame.columns:
            raise WorkloadError(f"{path}: arrival_s: expected a column of arrival times in seconds")
        times = pd.to_numeric(frame["arrival_s"], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise WorkloadError(f"{path}: arrival_s: expected non-negative numbers in every row")
        order = np.argsort(times, kind="stable")
        for name, allowed in (("category", self.categories), ("zone", self.zones)):
            if name in frame.columns:
                bad = sorted(set(frame[name].astype(str)) - set(allowed))
                if bad:
                    raise WorkloadError(
                        f"{path}: {name}: unknown value {bad[0]!r}; "
                        f"expected one of {', '.join(allowed)}"
                    )

        def texts(name: str) -> list[str] | None:
            if name not in frame.columns:
                return None
            return [str(v) for v in frame[name].iloc[order].tolist()]

        def numbers(name: str) -> list[float] | None:
            if name not in frame.columns:
                return None
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)[order]
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise WorkloadError(f"{path}: {name}: expected non-negative numbers in every row")
            return [float(v) for v in values]

        given_category, given_zone = texts("category"), texts("zone")
        given_work, given_key = numbers("work_s"), numbers("affinity_key")
        deadlines: list[float | None] | None = None
        if "deadline_s" in frame.columns:
            raw = pd.to_numeric(frame["deadline_s"], errors="coerce").to_numpy(dtype=float)[order]
            if np.any(raw[~np.isnan(raw)] <= 0) or np.any(np.isinf(raw)):
                raise WorkloadError(
                    f"{path}: deadline_s: expected positive seconds (or empty for none)"
                )
            deadlines = [None if math.isnan(v) else float(v) for v in raw]
        pending: list[tuple[int, int, int]] = []
        for i, t in enumerate(times[order].tolist()):
            if t >= self._scenario.duration:
                break
            if not pending:
                pending = self._attributes()
            c, z, k = pending.pop()
            category = given_category[i] if given_category else self.categories[c]
            zone = given_zone[i] if given_zone else self.zones[z]
            work = given_work[i] if given_work else self._demand.draw(category)
            key: int | None = k if self._keys else None
            if given_key:
                key = int(given_key[i])
            deadline = deadlines[i] if deadlines is not None else None
            yield Arrival(float(t), category, zone, work, key, deadline)


def _normalise(weights: list[float], label: str) -> np.ndarray:
    total = float(sum(weights))
    if total <= 0:
        raise WorkloadError(f"{label}: expected at least one positive weight")
    return np.asarray(weights, dtype=float) / total
