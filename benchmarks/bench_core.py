"""Speed of the core engine, as ratios against references measured in the same run.

Covers: the baseline day, textbook M/M/c against a lean SimPy model, a
minimal SimPy model and Ciw, SimPy events per task, scaling with fleet size,
peak memory, the 48 h chaos soak and the 20,000-agent saturation row.

Scenario: the machine is shared and noisy, so every figure that matters is
a ratio against a reference measured moments before on the same machine.
The reference is the *lean* SimPy M/M/c (c = 200, rho = 0.9): one
long-lived loop process per server taking customers from a deque, a plain
event as the wake-up of an idle server (no Store), the arrivals a chain of
timeouts — the agent-loop form the engine itself uses, with no model around
it (about 3 SimPy events per customer). Against it:
- baseline_200.yaml over 24 simulated hours, everything on (hierarchy, DAGs,
  autoscaler, alerts, health, coordinator capacity, metrics), in simulated
  tasks per wall second over the same number of arrivals (goal: at least 1/3);
- mmc_validation.yaml, the textbook mode (goal: at least 1/2);
- the minimal per-customer SimPy model (``simpy.Resource``, a process per
  customer) and Ciw, for orientation;
- SimPy events scheduled per completed task (the engine's and the lean
  model's), the figure that cannot be noisy;
- wall time per simulated task at 50, 200, 1,000 and 10,000 specialists with
  the load per specialist held constant (goal: 10,000 within 1.3x of 200),
  each beside the lean model with as many servers: the kernel alone pays for
  size (a longer heap, more live generators, more cache misses — measured
  here 3.8 us a customer at 200 servers, 8.1-8.7 at 10,000), so the engine's
  growth is read against the lean model's own;
- peak resident memory of the 24 h baseline, measured in a fresh process
  (goal: under 500 MB);
- the 48 h chaos soak and the 20,000-agent hierarchy row of
  coordinator_saturation.yaml, timed once each (full mode only).

Each rate is the best of three runs (the machine's noise only ever slows a
run down, so the fastest is the closest to the code's own cost); the
baseline day, run once in a fresh process for its memory figure, is compared
with the best of three minimal-SimPy runs of the same size.

Run with ``make bench`` (or ``python benchmarks/bench_core.py --quick`` for a
shorter pass). Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parents[1]
# Measure this checkout's engine: run as a script, the interpreter's path starts at
# benchmarks/, and ``import sim`` would fall through to the venv's editable install,
# which names the main checkout (a worktree's bench timed main's code, not its own).
sys.path.insert(0, str(ROOT))
SCENARIOS = ROOT / "scenarios"
C = 200
MEAN_SERVICE_S = 60.0
RHO = 0.9


def lean_simpy_mmc(customers: int, seed: int = 1, servers: int = C) -> tuple[float, float]:
    """(customers per wall second, SimPy events per customer) of the lean M/M/c.

    One loop process per server; a server with nothing to do parks a plain
    event in ``idle`` and the arrival that finds it hands the customer over
    by succeeding it. The same arrivals and services as the minimal model.
    *servers* other than c = 200 (same rho) is the kernel's own cost of a
    bigger fleet: a longer event heap, more live generators, more cache misses.
    """
    rng = np.random.default_rng(seed)
    lam = RHO * servers / MEAN_SERVICE_S
    gaps = rng.exponential(1 / lam, customers).tolist()
    services = rng.exponential(MEAN_SERVICE_S, customers).tolist()
    env = simpy.Environment()
    queue: deque[float] = deque()
    idle: list[simpy.Event] = []
    arrivals = iter(zip(gaps, services, strict=True))

    def server():  # type: ignore[no-untyped-def]
        while True:
            if queue:
                service = queue.popleft()
            else:
                wake = env.event()
                idle.append(wake)
                service = yield wake
            yield env.timeout(service)

    def arrive(event: simpy.Event | None) -> None:
        if event is not None:
            if idle:
                idle.pop().succeed(event.value)
            else:
                queue.append(event.value)
        following = next(arrivals, None)
        if following is not None:
            env.timeout(following[0], following[1]).callbacks.append(arrive)

    for _ in range(servers):
        env.process(server())
    arrive(None)
    started = time.perf_counter()
    env.run()
    wall = time.perf_counter() - started
    return customers / wall, int(next(env._eid)) / customers


def minimal_simpy_mmc(customers: int, seed: int = 1) -> float:
    """Customers per wall second of the textbook SimPy M/M/c: a process per customer."""
    rng = np.random.default_rng(seed)
    lam = RHO * C / MEAN_SERVICE_S
    gaps = rng.exponential(1 / lam, customers).tolist()
    services = rng.exponential(MEAN_SERVICE_S, customers).tolist()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=C)

    def customer(service: float):
        with servers.request() as request:
            yield request
            yield env.timeout(service)

    def source():
        for gap, service in zip(gaps, services, strict=True):
            yield env.timeout(gap)
            env.process(customer(service))

    env.process(source())
    started = time.perf_counter()
    env.run()
    return customers / (time.perf_counter() - started)


def ciw_mmc(customers: int, seed: int = 1) -> float:
    """Customers per wall second of Ciw on the same M/M/c queue."""
    import ciw

    lam = RHO * C / MEAN_SERVICE_S
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)],
        service_distributions=[ciw.dists.Exponential(rate=1 / MEAN_SERVICE_S)],
        number_of_servers=[C],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    started = time.perf_counter()
    sim.simulate_until_max_time(customers / lam)
    wall = time.perf_counter() - started
    return len(sim.get_all_records()) / wall


def best_of(runs: int, measure, *args):  # type: ignore[no-untyped-def]
    """The highest rate of *runs* repetitions (for tuples, the one with the highest first item)."""
    results = [measure(*args) for _ in range(runs)]
    return max(results, key=lambda r: r[0] if isinstance(r, tuple) else r)


def orchestra_run(path: Path, overrides: list[str]) -> tuple[float, int, float, float]:
    """(tasks per wall second, tasks submitted, wall seconds, events per completed task)."""
    from sim.model.engine import run_scenario
    from sim.scenario.load import load_scenario

    scenario = load_scenario(path, overrides)
    started = time.perf_counter()
    result = run_scenario(scenario)
    wall = time.perf_counter() - started
    submitted = result.counts["submitted"]
    per_task = result.sim_events / max(result.counts["completed"], 1)
    return submitted / wall, submitted, wall, per_task


def child_baseline(hours: float) -> None:
    """Run in a fresh process: the baseline day, reporting rate and peak memory as JSON."""
    rate, submitted, wall, events = orchestra_run(
        SCENARIOS / "baseline_200.yaml", [f"duration={hours}h"]
    )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rate": rate,
                "submitted": submitted,
                "wall": wall,
                "events": events,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def scaled(specialists: int, tasks: int) -> list[str]:
    """Overrides for a fleet of *specialists* with the baseline's load per specialist.

    The autoscaler's bounds (50 / 200 / 250 agents) scale with the fleet:
    left at the baseline's, it drains a 10,000-agent fleet to 250 within
    minutes and the row times a collapsed system (a queue of 150,000, a
    fifteenth of the tasks completed) instead of the same load per agent.
    """
    factor = specialists / 173
    rate = 140 * factor
    dag_rate = 1.0 * factor
    per_min = rate + dag_rate * 16
    minutes = max(tasks / per_min, 10.0)
    low, high = max(1, math.floor(50 * factor)), math.ceil(250 * factor)
    default = min(max(round(200 * factor), low), high)
    return [
        f"topology.specialists={specialists}",
        f"workload.arrivals.rate_per_min={rate}",
        f"workload.dags.rate_per_min={dag_rate}",
        f"scaling.min_agents={low}",
        f"scaling.max_agents={high}",
        f"scaling.default_agents={default}",
        f"duration={minutes + 10}m",
        "warmup=10m",
    ]


def saturation_20000() -> list[str]:
    """Overrides for the 20,000-agent hierarchy row of coordinator_saturation.yaml."""
    return ["topology.specialists=19973", "workload.arrivals.rate_per_min=18009.4"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="6 h baseline, smaller sweeps")
    parser.add_argument("--child-baseline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_baseline is not None:
        child_baseline(args.child_baseline)
        return
    hours = 6.0 if args.quick else 24.0
    scale_tasks = 20_000 if args.quick else 60_000

    print(f"orchestra-sim core benchmark ({'quick' if args.quick else 'full'})\n")
    proc = subprocess.run(
        [sys.executable, __file__, "--child-baseline", str(hours)],
        capture_output=True,
        text=True,
        check=True,
    )
    base = json.loads(proc.stdout.strip().splitlines()[-1])
    # Two more runs in this process; the fastest of the three is the engine's figure.
    again = best_of(2, orchestra_run, SCENARIOS / "baseline_200.yaml", [f"duration={hours}h"])
    if again[0] > base["rate"]:
        base["rate"], base["wall"] = again[0], again[2]
    lean, lean_events = best_of(3, lean_simpy_mmc, base["submitted"])
    minimal = best_of(3, minimal_simpy_mmc, base["submitted"])
    print(f"lean SimPy M/M/{C} (rho {RHO}, a loop per server): {base['submitted']:,} customers")
    print(f"  lean reference {lean:>10,.0f} customers/s  {lean_events:.2f} events/customer")
    print(f"  minimal SimPy  {minimal:>10,.0f} customers/s  {minimal / lean:.2f}x lean")
    print(f"baseline_200 {hours:g} h: {base['submitted']:,} tasks in {base['wall']:.1f} s")
    print(f"  engine         {base['rate']:>10,.0f} tasks/s  {base['events']:.2f} events/task")
    print(f"  vs lean        {base['rate'] / lean:>10.3f}   (goal >= 0.333)")
    print(f"  peak memory    {base['peak_mb']:>10,.0f} MB  (goal < 500)\n")

    mmc_rate, mmc_n, _, mmc_events = best_of(
        3, orchestra_run, SCENARIOS / "mmc_validation.yaml", []
    )
    mmc_lean, _ = best_of(3, lean_simpy_mmc, mmc_n)
    ciw_rate = best_of(3, ciw_mmc, mmc_n)
    print(f"mmc_validation: {mmc_n:,} customers")
    print(f"  engine         {mmc_rate:>10,.0f} customers/s  {mmc_events:.2f} events/task")
    print(f"  lean reference {mmc_lean:>10,.0f} customers/s")
    print(f"  vs lean        {mmc_rate / mmc_lean:>10.3f}   (goal >= 0.5)")
    print(f"  Ciw            {ciw_rate:>10,.0f} customers/s  ({mmc_rate / ciw_rate:.2f}x Ciw)\n")

    print(f"scaling, load per specialist constant (~{scale_tasks:,} tasks each):")
    per_task: dict[int, float] = {}
    lean_per_task: dict[int, float] = {}
    for n in (50, 200, 1_000, 10_000):
        _, submitted, wall, events = best_of(
            2, orchestra_run, SCENARIOS / "baseline_200.yaml", scaled(n, scale_tasks)
        )
        per_task[n] = wall / submitted
        # The lean model at the same fleet size and the same count: what the kernel itself
        # pays for the size, so the engine's own growth can be told from SimPy's.
        lean_n, _ = best_of(2, lean_simpy_mmc, submitted, 1, n)
        lean_per_task[n] = 1 / lean_n
        us, lean_us = per_task[n] * 1e6, lean_per_task[n] * 1e6
        print(
            f"  {n:>6,} specialists  {us:>8.1f} us/task  (lean, same size: {lean_us:>5.2f} us)"
            f"  {us / lean_us:>5.1f}x lean  {events:.2f} events/task  ({submitted:,} tasks)"
        )
    growth, lean_growth = (
        per_task[10_000] / per_task[200],
        lean_per_task[10_000] / lean_per_task[200],
    )
    print(f"  10,000 vs 200    {growth:>8.2f}x   (goal <= 1.3)")
    print(f"  lean, same sizes {lean_growth:>8.2f}x   (the kernel's own growth)")
    if args.quick:
        return

    print("\nlong runs (once each):")
    rows = [
        ("chaos_soak 48 h", SCENARIOS / "chaos_soak.yaml", []),
        ("saturation 20,000", SCENARIOS / "coordinator_saturation.yaml", saturation_20000()),
    ]
    for label, path, overrides in rows:
        rate, submitted, wall, events = orchestra_run(path, overrides)
        print(
            f"  {label:<18} {wall:>6.1f} s  {rate:>9,.0f} tasks/s  {rate / lean:.3f}x lean"
            f"  {events:.2f} events/task  ({submitted:,} tasks)"
        )


if __name__ == "__main__":
    main()
