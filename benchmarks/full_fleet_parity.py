"""The central promise at the spec's size: live runs of the full fleet against their replays.

Covers: ``scenarios/baseline_200.yaml`` (173 agent processes) run live on a
real nats-server, as is and under chaos, each followed by ``orchestra
calibrate`` of its directory; printed is every figure of the live run beside
its calibrated replay (the ratio replay / live) and whether the two took the
same scaling decisions.

Scenario: the fleet users run, not a toy. The tests keep reduced copies of
each case (``tests/live``: a 16-agent kill, a two-zone outage, the 32-agent
parity run); this is where the reduced copies are held to the full size. Each
case is a 10-minute scenario at x10 (about 2.5 wall minutes on 2 cores):

- ``baseline``: no chaos (scale-down at the first evaluation, nothing dies);
- ``kill``: five CodeGen agents killed -9 at 3 min (detected, their tasks
  placed anew, each replaced from the reserve pool); ``kill_restart``: the
  same, their hosts back a minute later;
- ``zone_outage``: zone B dark for 3 min from 3 min (its 43 agents declared
  dead and replaced elsewhere, then restarted when B is back);
- ``slow``: a third of zone A serves three times slower for 4 min;
- ``leader_crash``: the primary coordinator crashes at 3 min (the standby
  takes over);
- ``burst``: four times the arrivals for 2 min from 3 min (the autoscaler
  scales up twice);
- ``spot_reclaim``: half the fleet on spot, zone B's spot share taken back
  at 3 min (two minutes' notice: each drains, is replaced, and what it still
  holds at the deadline is placed anew);
- ``error_burst``: 1 % attempt errors and a 10-minute deadline, a quarter of
  all attempts erroring for 3 min from 3 min (retried through the escalation;
  the autoscaler scales up);
- ``follower_crash``: a follower chief crashes at 3 min (nothing moves);
- ``zone_coordinator_crash``: zone B's coordinator crashes at 3 min (calls to
  B fail and its breaker opens, the checks declare it, its standby is promoted);
- ``team_lead_crash``: team A-T01's lead crashes at 3 min (its agents take no
  new work until a member takes over);
- ``random_soak``: ``chaos_random`` with a 2-hour MTBF per agent and 2-minute
  repairs (the simulator's draws: eight kills, seven declared and replaced);
- ``random_soak_all``: ``chaos_random`` for every component (agents 4 h MTBF,
  zones 2 h, chiefs 30 min, short repairs; the draws: three agent kills, a
  follower chief's crash, zone D dark from 560 s);
- ``message_loss``: a fifth of the chief's assignments to zone A lost for
  3 min from 3 min (each sent again, routed afresh, a TTL later);
- ``partition``: the leader and zone B split from the rest for 3 min from
  3 min (a new leader on the majority's side; B cut off, declared,
  redistributed, reconnected at the heal);
- ``one_way_partition``: nobody hears the leader for 1 min from 3 min (its
  outbound links cut: a new leader).

The figures of every run so far, the latest per case first, are in
``docs/full-fleet-parity.md``; add a new run's there.

Run with ``python benchmarks/full_fleet_parity.py [--cases kill zone_outage]``.
Writes the run directories under ``--out`` (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sim, as bench_core does
from sim.analysis.scaling_apart import ScalingApart, describe_apart  # noqa: E402
from sim.analysis.task_pairs import TaskPairs, describe  # noqa: E402

SCENARIO = ROOT / "scenarios" / "baseline_200.yaml"
ORCHESTRA = [sys.executable, "-m", "sim"]

CASES: dict[str, list[str]] = {
    "baseline": [],
    "kill": ['chaos=[{"at": "3m", "kill": {"category": "CodeGen", "count": 5}}]'],
    "zone_outage": ['chaos=[{"at": "3m", "zone_outage": "B", "duration": "3m"}]'],
    "kill_restart": [
        'chaos=[{"at": "3m", "kill": {"category": "CodeGen", "count": 5}, "restart_after": "1m"}]'
    ],
    "slow": [
        'chaos=[{"at": "3m", "slow": {"zone": "A", "fraction": 0.3, "factor": 3}, '
        '"duration": "4m"}]'
    ],
    "leader_crash": ['chaos=[{"at": "3m", "coordinator_crash": "leader"}]'],
    "follower_crash": ['chaos=[{"at": "3m", "coordinator_crash": "follower"}]'],
    "zone_coordinator_crash": ['chaos=[{"at": "3m", "coordinator_crash": "B-coord"}]'],
    "team_lead_crash": ['chaos=[{"at": "3m", "team_lead_crash": "A-T01-lead"}]'],
    "random_soak": [
        'chaos_random={"enabled": true, "agent_mtbf": "2h", "agent_mttr": "2m", "start": "1m"}'
    ],
    "random_soak_all": [
        'chaos_random={"enabled": true, "agent_mtbf": "4h", "agent_mttr": "2m", "zone_mtbf": "2h",'
        ' "zone_mttr": "2m", "chief_mtbf": "30m", "chief_mttr": "1m", "start": "1m"}'
    ],
    "burst": ['workload.arrivals.bursts=[{"at": "3m", "duration": "2m", "factor": 4}]'],
    "error_burst": [
        "errors.probability=0.01",
        "errors.timeout=10m",
        'chaos=[{"at": "3m", "duration": "3m", "error_burst": {"probability": 0.25}}]',
    ],
    "message_loss": [
        'chaos=[{"at": "3m", "duration": "3m", "message_loss": {"rate": 0.2, "zones": ["A"]}}]'
    ],
    "partition": [
        'chaos=[{"at": "3m", "duration": "3m", "partition": {"groups": [["chief-1", "B"]]}}]'
    ],
    "one_way_partition": [
        'chaos=[{"at": "3m", "duration": "1m", '
        '"one_way_partition": {"chief": "leader", "direction": "outbound"}}]'
    ],
    "spot_reclaim": [
        'purchase.spot={"share": 0.5, "discount": 0.7, "notice": "2m", "reclaim_rate": 0}',
        'chaos=[{"at": "3m", "spot_reclaim": {"zone": "B"}}]',
    ],
}


def run_case(
    name: str,
    out: Path,
    time_scale: float,
    duration: str,
    scenario: Path = SCENARIO,
    extra: tuple[str, ...] | list[str] = (),
) -> dict[str, object] | None:
    """The live run and its calibration; the calibration report, None if the run failed."""
    live_dir, calibrated = out / name, out / f"{name}-calibrated"
    overrides = ["warmup=0", *extra, *CASES[name]]
    command = [
        *ORCHESTRA,
        "live",
        "run",
        str(scenario),
        "--time-scale",
        str(time_scale),
        "--duration",
        duration,
        "--out",
        str(live_dir),
        "--no-report",
        "--quiet",
    ]
    for override in overrides:
        command += ["--set", override]
    live = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if live.returncode != 0:
        print(f"  {name}: live run failed: {live.stderr.strip().splitlines()[-1:]}")
        return None
    subprocess.run(
        [*ORCHESTRA, "calibrate", str(live_dir), "--out", str(calibrated)],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    report: dict[str, object] = json.loads((calibrated / "calibration.json").read_text())
    return report


def _number(value: object) -> str:
    """A figure as four significant digits; "-" where there is none (no task completed)."""
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def print_report(name: str, report: dict[str, object]) -> None:
    figures = report["figures"]
    scaling = report["scaling"]
    assert isinstance(figures, list)
    assert isinstance(scaling, dict)
    print(f"{name}:")
    for row in figures:
        ratio = row.get("ratio_after")
        shown = f"{ratio:.3f}" if isinstance(ratio, int | float) else "-"
        live, replay = (_number(row[key]) for key in ("live", "after"))
        print(f"  {row['figure']:<18} live {live:>10}  replay {replay:>10}  {shown}")
    live_deltas = [d["delta"] for d in scaling["live"]]
    replay_deltas = [d["delta"] for d in scaling["after"]]
    same = "same" if live_deltas == replay_deltas else "DIFFERENT"
    print(f"  scaling            live {live_deltas}  replay {replay_deltas}  ({same})")

    def when(decisions: list[dict[str, float]]) -> str:
        return ", ".join(f"{d['delta']:+d} at {d['time_s']:.0f} s" for d in decisions) or "none"

    print(f"    live: {when(scaling['live'])}; replay: {when(scaling['after'])}")
    apart = report.get("scaling_apart")
    if isinstance(apart, dict) and "after" in apart:  # (both recorded every evaluation)
        text = describe_apart(ScalingApart.from_json(apart["after"]), "live", "replay")
        print("    " + text.replace("\n", "\n    "))
    tasks = report.get("tasks")
    if isinstance(tasks, dict):  # (a report written before calibration paired the tasks)
        print(f"  task by task       {describe(TaskPairs(**tasks['after']))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--duration", default="10m")
    parser.add_argument(
        "--scenario",
        type=Path,
        default=SCENARIO,
        help="the scenario the cases vary (default: baseline_200.yaml; any shipped one runs)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="an override for every case (e.g. seed=7), before the case's own",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="full-fleet-parity-"))
    print(f"full-fleet parity: {args.scenario.name} at x{args.time_scale:g}, runs in {out}\n")
    for name in args.cases:
        report = run_case(name, out, args.time_scale, args.duration, args.scenario, args.overrides)
        if report is not None:
            print_report(name, report)


if __name__ == "__main__":
    main()
