"""Synthetic frames of the simulator's exact shape, shared by the report tests.

Importable as ``report_frames`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_FILES = (
    "queue_depth.png",
    "active_agents.png",
    "latency.png",
    "throughput.png",
    "categories.png",
    "latency_cdf.png",
    "timeline.png",
    "cost.png",
    "zone_health.png",
    "control_traffic.png",
    "coordinators.png",
)
EVIL = "<script>alert('x')</script>"
ZONES = ("A", "B", "C", "D")
CATEGORIES = ("code_review", "testing", "deployment", "research", EVIL)
AGENT_LEVEL_COLUMNS = ("cpu_usage", "memory_usage", "error_count", "avg_task_duration_s")
METRIC_COLUMNS = (
    "total_agents",
    "active_agents",
    "busy_agents",
    "queue_depth",
    "in_flight",
    "tasks_completed",
    "throughput_per_min",
    "error_rate",
    "p50_latency_s",
    "p99_latency_s",
    "utilization",
)


# --- synthetic frames of the simulator's exact shape -----------------------------------------


def make_tasks(n: int = 300, replications: int = 1, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for rep in range(replications):
        for i in range(n):
            arrival = float(rng.uniform(0.0, 3600.0))
            wait = float(rng.exponential(2.0))
            transfer = float(rng.uniform(0.0, 0.2))
            service = float(rng.lognormal(1.0, 0.8))
            start = arrival + wait + transfer
            end = start + service
            outcome = str(rng.choice(["completed", "completed", "completed", "failed", "retried"]))
            zone = ZONES[i % len(ZONES)]
            rows.append(
                {
                    "replication": rep,
                    "task_id": i,
                    "job_id": i // 10 if i % 3 == 0 else -1,
                    "node": i % 10 if i % 3 == 0 else -1,
                    "category": CATEGORIES[i % len(CATEGORIES)],
                    "home_zone": zone,
                    "zone": ZONES[(i + (i % 7 == 0)) % len(ZONES)],
                    "agent": f"spec-{i % 40:03d}",
                    "attempt": 1 + (outcome == "retried"),
                    "critical": bool(i % 9 == 0),
                    "arrival_s": arrival,
                    "dispatch_s": arrival + wait,
                    "start_s": start,
                    "end_s": end,
                    "complete_s": end,
                    "wait_s": wait,
                    "latency_s": end - arrival,
                    "service_s": service,
                    "transfer_s": transfer,
                    "outcome": outcome,
                    "warm": arrival >= 600.0,
                }
            )
    return pd.DataFrame(rows)


def make_metrics(
    hours: float = 1.0,
    step_s: float = 60.0,
    replications: int = 1,
    zones: bool = True,
    cost: bool = False,
) -> pd.DataFrame:
    """Global, zone and agent rows; ``cost`` adds the cumulative ``cost_usd`` column."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    times = np.arange(0.0, hours * 3600.0 + step_s, step_s)
    agents = ("spec-000", "spec-001", "lead-000")
    for rep in range(replications):
        for t in times:
            base = {
                "total_agents": 200.0,
                "active_agents": float(195 - rng.integers(0, 5)),
                "busy_agents": float(rng.integers(100, 180)),
                "queue_depth": float(rng.poisson(12)),
                "in_flight": float(rng.integers(100, 180)),
                "tasks_completed": float(t / 2),
                "throughput_per_min": float(rng.normal(120.0, 10.0)),
                "error_rate": float(rng.uniform(0.0, 0.03)),
                "p50_latency_s": float(rng.uniform(2.0, 3.0)) if t > 0 else np.nan,
                "p99_latency_s": float(rng.uniform(8.0, 12.0)) if t > 0 else np.nan,
                "utilization": float(rng.uniform(0.6, 0.9)),
            }
            extra = dict.fromkeys(AGENT_LEVEL_COLUMNS, np.nan)
            global_row = {
                "replication": rep,
                "time_s": float(t),
                "level": "global",
                "id": "global",
                **base,
                "status": None,
                **extra,
            }
            if cost:
                global_row["cost_usd"] = float(t) * 200 * 0.05 / 3600.0  # $0.05 per agent-hour
            rows.append(global_row)
            if zones:
                for zone in ZONES:
                    zone_row = {k: v / 4 for k, v in base.items()}
                    zone_row["queue_depth"] = float(rng.poisson(3))
                    rows.append(
                        {
                            "replication": rep,
                            "time_s": float(t),
                            "level": "zone",
                            "id": zone,
                            **zone_row,
                            "status": None,
                            **extra,
                        }
                    )
            for agent in agents:
                agent_row = dict.fromkeys(METRIC_COLUMNS, np.nan)
                agent_row["utilization"] = float(rng.uniform(0.0, 1.0))
                rows.append(
                    {
                        "replication": rep,
                        "time_s": float(t),
                        "level": "agent",
                        "id": agent,
                        **agent_row,
                        "status": str(rng.choice(["idle", "busy", "error", "offline"])),
                        "cpu_usage": float(rng.uniform(0, 1)),
                        "memory_usage": float(rng.uniform(0, 1)),
                        "error_count": float(rng.integers(0, 3)),
                        "avg_task_duration_s": float(rng.uniform(1, 10)),
                    }
                )
    return pd.DataFrame(rows)


def events_frame(records: list[tuple[float, str, str, dict[str, Any]]]) -> pd.DataFrame:
    """An events table from (time_s, kind, subject, detail) tuples, replication 0."""
    return pd.DataFrame(
        {
            "replication": [0] * len(records),
            "time_s": [float(r[0]) for r in records],
            "kind": [r[1] for r in records],
            "subject": [r[2] for r in records],
            "detail": [json.dumps(r[3], sort_keys=True) for r in records],
        }
    )


def alert(
    time_s: float, rule: str, state: str, severity: str = "warning", value: float = 1.0
) -> tuple[float, str, str, dict[str, Any]]:
    detail = {
        "state": state,
        "severity": severity,
        "action": "notify_slack",
        "value": value,
        "metric": "p99_latency",
    }
    return (time_s, "alert", rule, detail)


#: Incident events of every new kind over one simulated hour: 3 scale decisions (2 up, 1 down),
#: 4 alert spans on 3 rules (one still firing at the end), failures, recoveries, elections and
#: fleet changes.
INCIDENT_RECORDS: list[tuple[float, str, str, dict[str, Any]]] = [
    (0.0, "run_start", "baseline_200", {}),
    (600.0, "warmup_end", "baseline_200", {}),
    (700.0, "scale", "hpa", {"delta": 5, "target": 205, "reason": "queue > 20"}),
    (705.0, "agent_requested", "A-CodeGen-201", {"reason": "hpa"}),
    (760.0, "agent_joined", "A-CodeGen-201", {"zone": "A"}),
    (1200.0, "scale", "hpa", {"delta": -3, "target": 202, "reason": "idle"}),
    (1210.0, "agent_draining", "A-CodeGen-201", {"reason": "hpa"}),
    (1290.0, "agent_left", "A-CodeGen-201", {}),
    (2400.0, "scale", "step", {"delta": 10, "target": 212, "reason": "p99 > 10s"}),
    alert(900.0, "high_latency", "firing", "warning", 12.5),
    alert(1500.0, "high_latency", "resolved", "warning", 8.0),
    alert(2000.0, "high_latency", "firing", "warning", 11.0),
    alert(2300.0, "high_latency", "resolved", "warning", 9.0),
    alert(1000.0, "agent_offline_threshold", "firing", "critical", 25.0),
    alert(1400.0, "agent_offline_threshold", "resolved", "critical", 3.0),
    alert(3000.0, "queue_overflow", "firing", "critical", 620.0),
    (1500.0, "agent_failed", "spec-017", {"reason": "crash"}),
    (1530.0, "agent_detected", "spec-017", {}),
    (1560.0, "agent_replaced", "spec-017", {"by": "spec-201"}),
    (1800.0, "zone_outage", "B", {}),
    (1805.0, "election", "B", {"term": 2}),
    (1810.0, "leader_elected", "zc-B-2", {"term": 2}),
    (2100.0, "zone_restored", "B", {}),
    (2500.0, "coordinator_crash", "chief-1", {}),
    (2600.0, "partition", "C|D", {}),
    (2610.0, "message_expired", "zc-D", {"task": 5}),
    (2620.0, "job_failed", "7", {"node": 3}),
    (3600.0, "run_end", "baseline_200", {}),
]


def make_incident_events() -> pd.DataFrame:
    return events_frame(INCIDENT_RECORDS)


def make_events(hours: float = 1.0, extra: int = 0) -> pd.DataFrame:
    end = hours * 3600.0
    records = [
        (0.0, "run_start", "global", {}),
        (600.0, "warmup_end", "global", {}),
        (900.0, "scale_up", "zone A", {"from": 50, "to": 60}),
        (1500.0, "agent_failed", "spec-017", {"reason": "crash"}),
        (1520.0, "election", "zone B", {"winner": "zc-B-2", "downtime_s": 4.2}),
        (2000.0, "alert", "p99_latency", {"rule": "p99_latency > 10s", "note": EVIL}),
        (end, "run_end", "global", {}),
    ]
    records += [(1000.0 + i, "scale_up", f"zone {ZONES[i % 4]}", {"i": i}) for i in range(extra)]
    return pd.DataFrame(
        {
            "replication": [0] * len(records),
            "time_s": [r[0] for r in records],
            "kind": [r[1] for r in records],
            "subject": [r[2] for r in records],
            "detail": [json.dumps(r[3]) for r in records],
        }
    )


def make_summary(ci: bool = False) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "scenario": "baseline_200",
        "seed": 42,
        "sim_seconds": 3600.0,
        "tasks": {
            "submitted": 300,
            "completed": 180,
            "failed": 60,
            "in_flight": 3,
            "lost": 2,
            "retried": 57,
        },
        "latency_s": {"mean": 4.1, "p50": 2.7, "p95": 9.4, "p99": 12.25, "max": 30.0},
        "wait_s": {"mean": 2.0, "p50": 1.3, "p99": 9.1},
        "p_wait": 0.41,
        "throughput_per_min": 121.5,
        "utilization": 0.78,
        "agents": {"min": 195, "max": 200, "mean": 197.5, "final": 196},
        "jobs": {
            "submitted": 30,
            "completed": 28,
            "makespan_s": {"mean": 40.0, "p50": 35.0, "p99": 90.0},
        },
        "elections": {"count": 1, "downtime_s": 4.2},
        "alerts": {},
        "cost": {"usd_total": 12.5, "usd_per_1k_tasks": 0.069},
        "slo": {"met": False, "breaches": 3},
        "events_sha256": "ab" * 32,
    }
    if ci:
        # The shape sim.metrics.summary.combine_replications gives: a CI tree, the per-run
        # summaries and one events hash per run; NumPy scalars must format like Python ones.
        summary["per_replication"] = [dict(summary) for _ in range(5)]
        summary["events_sha256"] = ["ab" * 32, "cd" * 32]
        summary["utilization"] = np.float64(0.78)
        summary["seed"] = np.int64(12345)
        summary["replications"] = 5
        summary["ci95"] = {
            "tasks": {"completed": [170.0, 190.0], "lost": [0.0, 4.0]},
            "latency_s": {"p99": [11.0, 13.5], "mean": [3.9, 4.3]},
            "throughput_per_min": [118.0, 125.0],
        }
    return summary


def read_report(path: Path) -> str:
    return path.read_text(encoding="utf-8")
