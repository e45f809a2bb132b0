"""`orchestra run` as a user runs it: the real console script, real files on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import SCENARIOS

CONTRACT_KEYS = {
    "scenario": None,
    "seed": None,
    "sim_seconds": None,
    "tasks": {"submitted", "completed", "failed", "in_flight", "lost", "retried"},
    "latency_s": {"mean", "p50", "p95", "p99", "max"},
    "wait_s": {"mean", "p50", "p99"},
    "p_wait": None,
    "throughput_per_min": None,
    "utilization": None,
    "agents": {"min", "max", "mean", "final"},
    "jobs": {"submitted", "completed", "makespan_s"},
    "elections": {"count", "downtime_s"},
    "alerts": None,
    "cost": {"usd_total", "usd_per_1k_tasks"},
    "slo": {"met", "breaches"},
    "events_sha256": None,
}


def orchestra() -> list[str]:
    script = Path(sys.executable).parent / "orchestra"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim"]


def test_run_writes_the_documented_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            *orchestra(),
            "run",
            str(SCENARIOS / "baseline_200.yaml"),
            "--duration",
            "40m",
            "--set",
            "warmup=5m",
            "--set",
            "scaling.scale_up.threshold.queue_depth=150",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tasks completed" in proc.stdout and "latency p99" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for key, inner in CONTRACT_KEYS.items():
        assert key in summary, key
        if inner:
            assert inner <= set(summary[key]), (key, summary[key])
    assert summary["scenario"] == "baseline_200" and summary["seed"] == 42
    assert summary["sim_seconds"] == 2400.0
    assert summary["tasks"]["lost"] == 0
    tasks = pd.read_parquet(out / "tasks.parquet")
    assert len(tasks) == summary["tasks"]["completed"] + (tasks["outcome"] == "in_flight").sum()
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["level"]) == {"global", "zone", "agent", "message", "coordinator"}
    assert len(metrics[metrics["level"] == "global"]) == 40  # one sample a minute
    events = pd.read_parquet(out / "events.parquet")
    assert {"run_start", "warmup_end", "run_end"} <= set(events["kind"])
    html = (out / "report.html").read_text()
    assert "baseline_200" in html and "data:image/png;base64," in html


def test_replications_print_and_store_confidence_intervals(tmp_path: Path) -> None:
    out = tmp_path / "reps"
    proc = subprocess.run(
        [
            *orchestra(),
            "run",
            str(SCENARIOS / "phase_3_1.yaml"),
            "--duration",
            "30m",
            "--set",
            "warmup=5m",
            "--replications",
            "3",
            "--no-report",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "95 % CI" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replications"] == 3
    lo, hi = summary["ci95"]["throughput_per_min"]
    assert lo < summary["throughput_per_min"] < hi
    tasks = pd.read_parquet(out / "tasks.parquet")
    assert sorted(tasks["replication"].unique()) == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "workload.arrivals.rate_per_min=-1"], "rate_per_min: expected greater than"),
        (["--set", "nonsense"], "--set: expected PATH=VALUE"),
        (["--duration", "soon"], "--duration: expected a duration"),
        (["--replications", "0"], "--replications: expected at least 1"),
        (
            ["--set", "topology.specialists=0"],
            "topology.specialists: expected at least one specialist, got 0",
        ),
        (
            # One zone staffed with CodeGen only: the default mix still sends work to Review.
            ["--set", "topology.zones=[{name: A, region: us-east-1, categories: {CodeGen: 5}}]"],
            "workload.mix.Review: the mix sends work to Review but no zone has a Review",
        ),
    ],
)
def test_bad_arguments_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = subprocess.run(
        [*orchestra(), "run", str(SCENARIOS / "baseline_200.yaml"), "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_a_failed_rerun_leaves_the_previous_outputs_intact(tmp_path: Path) -> None:
    """Bad input on a second run must not touch what the first run wrote."""
    out = tmp_path / "keep"
    base = [*orchestra(), "run", str(SCENARIOS / "phase_3_1.yaml"), "--out", str(out)]
    first = subprocess.run(
        [*base, "--duration", "20m", "--set", "warmup=5m", "--no-report"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    second = subprocess.run(
        [*base, "--set", "seed=-4"], capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    shutil.rmtree(out)


def test_variants_run_side_by_side_on_the_same_arrivals(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [
            *orchestra(),
            "run",
            str(SCENARIOS / "scale_policies.yaml"),
            "--duration",
            "70m",
            "--set",
            "warmup=10m",
            "--no-report",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "variants on the same arrivals" in proc.stdout
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison) == ["step", "hpa", "keda"]
    assert {s["scenario"] for s in comparison.values()} == {
        "scale_policies-step",
        "scale_policies-hpa",
        "scale_policies-keda",
    }
    arrivals = []
    for name in comparison:
        tasks = pd.read_parquet(out / name / "tasks.parquet")
        independent = tasks[tasks["job_id"] < 0]
        arrivals.append(sorted(zip(independent["arrival_s"], independent["work_s"], strict=True)))
    assert arrivals[0] == arrivals[1] == arrivals[2]
    events = [pd.read_parquet(out / name / "events.parquet") for name in comparison]
    assert all((e["kind"] == "scale").any() for e in events)


def test_a_bad_variant_names_itself(tmp_path: Path) -> None:
    scenario = tmp_path / "v.yaml"
    scenario.write_text(
        "variants:\n  good: {scaling.policy: hpa}\n  bad: {scaling.policy: magic}\n"
    )
    proc = subprocess.run(
        [*orchestra(), "validate", str(scenario)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "scaling.policy: expected" in proc.stderr
    assert "(in variants.bad)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_dashboard_shows_the_panels_while_running(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *orchestra(),
            "run",
            str(SCENARIOS / "phase_3_1.yaml"),
            "--duration",
            "40m",
            "--set",
            "warmup=5m",
            "--dashboard",
            "--no-report",
            "--out",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "110"},
    )
    assert proc.returncode == 0, proc.stderr
    screen = proc.stderr
    for panel in ("Zone Health", "Task Distribution", "Recent Events"):
        assert panel.lower() in screen.lower(), panel
    assert "phase_3_1" in screen
    assert (tmp_path / "d" / "summary.json").exists()
