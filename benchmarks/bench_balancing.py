"""How much one ``choose()`` costs as a pool grows, for each balancing strategy.

Run with ``.venv/bin/python benchmarks/bench_balancing.py``. For every strategy
and pool size (50, 200, 1,000 and 10,000 agents in one zone/category pool) it
drives the balancer the way the simulator's shell does: choose an agent, report
``in_flight + 1``, and complete a random in-flight task whenever the pool holds
more than half its capacity, so the indexes see a realistic mix of room
changes. Only the ``choose()`` calls are timed, each on its own, and the
measured cost of the timer itself is subtracted. The figure printed is the
best of a few repetitions, in microseconds per call, followed by the ratio of
the 10,000-agent figure to the 200-agent one (the design target is <= ~1.5).

The row ``critical`` times critical-path tasks, which every strategy sends to
the fastest agent with room through the same speed index.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sim.policies.balancing import STRATEGIES, LoadBalancer, make_balancer
from sim.policies.types import AgentInfo, TaskInfo

SIZES = (50, 200, 1_000, 10_000)
CAPACITY = 4
SPEEDS = (0.5, 1.0, 1.0, 2.0)


def _timer_overhead_ns(samples: int = 200_000) -> float:
    """The cost of one ``perf_counter_ns`` pair around nothing, in ns (median of batches)."""
    clock = time.perf_counter_ns
    batches = []
    for _ in range(5):
        total = 0
        for _ in range(samples // 5):
            start = clock()
            total += clock() - start
        batches.append(total / (samples // 5))
    return float(np.median(batches))


def _run(strategy: str, agents: int, calls: int, seed: int, critical: bool) -> float:
    """Mean ns per ``choose()`` over *calls* timed calls, after a warm-up."""
    rng = np.random.default_rng(seed)
    balancer: LoadBalancer = make_balancer(strategy, np.random.default_rng(seed + 1))
    ids = [f"agent-{i:05d}" for i in range(agents)]
    for i, agent_id in enumerate(ids):
        balancer.agent_joined(
            AgentInfo(
                agent_id,
                category="code",
                zone="z1",
                speed=SPEEDS[i % len(SPEEDS)],
                slots=2,
                capacity=CAPACITY,
            )
        )
    load = dict.fromkeys(ids, 0)
    in_flight: list[str] = []
    target = agents * CAPACITY // 2
    warmup = 2 * target + 2 * agents
    total = warmup + calls
    keys = rng.integers(0, 10 * agents, size=total).tolist()
    completions = rng.random(total).tolist()
    clock = time.perf_counter_ns
    elapsed = 0
    for n in range(total):
        task = TaskInfo(n, category="code", zone="z1", affinity_key=keys[n], critical=critical)
        start = clock()
        chosen = balancer.choose(task, 0.0)
        stop = clock()
        if n >= warmup:
            elapsed += stop - start
        if chosen is not None:
            load[chosen] += 1
            balancer.load_changed(chosen, load[chosen])
            in_flight.append(chosen)
        if len(in_flight) > target or chosen is None:
            # Complete a random in-flight task (swap-remove keeps this O(1)).
            index = int(completions[n] * len(in_flight))
            done = in_flight[index]
            in_flight[index] = in_flight[-1]
            in_flight.pop()
            load[done] -= 1
            balancer.load_changed(done, load[done])
    return elapsed / calls


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="timed choose() calls per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the best is kept")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    overhead = _timer_overhead_ns()
    print(f"timer overhead subtracted: {overhead:.0f} ns per call")
    header = "".join(f"{size:>10,}" for size in SIZES)
    print(f"{'strategy':<20}{header}   10,000/200   (µs per choose)")
    rows = [(strategy, strategy, False) for strategy in STRATEGIES]
    rows.append(("critical", "least_connections", True))
    for label, strategy, critical in rows:
        figures: dict[int, float] = {}
        for size in SIZES:
            best = min(
                _run(strategy, size, args.calls, args.seed + r, critical)
                for r in range(args.repeat)
            )
            figures[size] = max(best - overhead, 0.0) / 1_000.0
        cells = "".join(f"{figures[size]:>10.2f}" for size in SIZES)
        ratio = figures[10_000] / figures[200] if figures[200] > 0 else float("nan")
        print(f"{label:<20}{cells}   {ratio:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
