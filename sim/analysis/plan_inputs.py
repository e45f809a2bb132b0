"""What a plan starts from: the workloads to plan for, and the reserve pool's rule.

The workloads: the scenario itself, the roadmap's phases, or explicit
arrival rates (:func:`growth_scenarios`). The reserve pool is sized by a
rule rather than simulated: enough agents to replace every specialist down
at once with probability 0.999 under the scenario's random-failure rates
(``chaos_random``: MTBF and MTTR per agent; plus the largest zone when zones
fail too), capped by the schema's 50 and by the room left under
``scaling.max_agents``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from sim.scenario.load import load_scenario, scenario_from_dict
from sim.scenario.schema import Scenario

__all__ = ["PHASE_GLOB", "Fleet", "at_rate", "fleet_total", "growth_scenarios", "reserve_for"]

#: Roadmap phases, in the order the growth plan lists them.
PHASE_GLOB = "phase_3_*.yaml"

Fleet = dict[str, dict[str, int]]  # zone -> category -> specialists


def fleet_total(fleet: Fleet) -> int:
    """Specialists in *fleet*, all zones and categories."""
    return sum(sum(cats.values()) for cats in fleet.values())


def growth_scenarios(
    path: Path, overrides: Sequence[str], growth: str | None
) -> list[tuple[str, Scenario]]:
    """The workloads to plan for: the scenario itself, the roadmap phases, or explicit rates.

    ``phases`` reads the roadmap's ``phase_3_*.yaml`` files beside the
    scenario (50, 100, 150, 200 and 250 agents' worth of work), each with the
    same ``--set`` overrides. ``rate=a,b,c`` plans the scenario at each
    independent-task arrival rate (per minute), scaling DAG-job arrivals and
    any piecewise rates by the same factor so the mix stays as written.
    """
    base = load_scenario(path, overrides)
    if growth is None:
        return [(base.name, base)]
    if growth == "phases":
        files = sorted(path.parent.glob(PHASE_GLOB))
        if not files:
            raise ValueError(f"--growth phases: expected {PHASE_GLOB} files beside {path}")
        return [(load_scenario(f, overrides).name, load_scenario(f, overrides)) for f in files]
    key, sep, values = growth.partition("=")
    if key.strip() != "rate" or not sep:
        raise ValueError(f"--growth: expected 'phases' or 'rate=a,b,c', got {growth!r}")
    try:
        rates = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--growth: expected numbers per minute, got {values!r}") from None
    if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
        raise ValueError(f"--growth: expected positive arrival rates per minute, got {values!r}")
    return [(f"{base.name}@{r:g}/min", at_rate(base, r)) for r in rates]


def at_rate(scenario: Scenario, rate_per_min: float) -> Scenario:
    """*scenario* with independent tasks arriving at *rate_per_min* and everything else scaled."""
    arrivals = scenario.workload.arrivals
    if arrivals.process == "trace":
        raise ValueError("--growth rate: a trace has no rate to scale")
    factor = rate_per_min / arrivals.rate_per_min if arrivals.rate_per_min > 0 else 1.0
    document = scenario.model_dump(mode="json", by_alias=True)
    workload = document["workload"]
    workload["arrivals"]["rate_per_min"] = rate_per_min
    for point in workload["arrivals"]["piecewise"]:
        point["rate_per_min"] *= factor
    workload["dags"]["rate_per_min"] *= factor
    document["name"] = f"{scenario.name}@{rate_per_min:g}"
    return scenario_from_dict(document, scenario.name)


def reserve_for(scenario: Scenario, fleet: Fleet, room: int) -> tuple[int, str]:
    """Reserve agents by the failure rule of the module docstring, and why that many."""
    chaos = scenario.chaos_random
    n = fleet_total(fleet)
    down = n * chaos.agent_mttr / (chaos.agent_mtbf + chaos.agent_mttr)
    size = _poisson_quantile(down, 0.999)
    note = f"replaces agents down at once (p=0.999, MTBF {chaos.agent_mtbf / 86400:g} d)"
    if chaos.zone_mtbf is not None:
        size += max(sum(cats.values()) for cats in fleet.values())
        note += " + the largest zone"
    cap = min(50, max(room, 0))
    if size > cap:
        note += f"; capped at {cap} ({'the schema limit' if cap == 50 else 'max_agents'})"
        size = cap
    return size, note


def _poisson_quantile(mean: float, q: float) -> int:
    k, term = 0, math.exp(-mean)
    cumulative = term
    while cumulative < q:
        k += 1
        term *= mean / k
        cumulative += term
    return k
