"""Running a scenario end to end: replications, summary, files on disk.

The CLI, notebooks and (later) sweeps all come through here. Replications
run in worker processes when there are several (each replication is
independent and CPU-bound); each gets its own random streams spawned from
the scenario seed, so replication 0 of an R-replication run is exactly the
single run of the same scenario and seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.metrics.replications import combine_replications
from sim.metrics.result import RunResult
from sim.metrics.store import write_json, write_parquet
from sim.metrics.summary import summarize
from sim.model.engine import Simulation, run_scenario
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class Outcome:
    """A finished run: the combined summary and each replication's records."""

    summary: dict[str, Any]
    results: list[RunResult]

    def frame(self, name: str) -> pd.DataFrame:
        """One of tasks, metrics, events, agents, jobs — all replications stacked."""
        frames: list[pd.DataFrame] = [getattr(r, name) for r in self.results]
        return pd.concat(frames, ignore_index=True)

    def optional_frame(self, name: str) -> pd.DataFrame | None:
        """An opt-in table (llm, tiers, scaling), all replications stacked; None if off."""
        return self.frame(name) if getattr(self.results[0], name) is not None else None

    def compared(self, name: str) -> Any:
        """This run as one side of a comparison report (``sim.report.compare.ComparedRun``)."""
        from sim.report.compare import ComparedRun

        return ComparedRun(
            name,
            self.summary,
            self.frame("metrics"),
            self.frame("events"),
            self.optional_frame("scaling"),
        )


def summary_of(result: RunResult) -> dict[str, Any]:
    return summarize(
        result.scenario,
        result.tasks,
        result.metrics,
        result.events,
        result.agents,
        result.jobs,
        result.counts,
        result.events_sha256,
        llm=result.llm,
        tiers=result.tiers,
    )


def run(
    scenario: Scenario,
    replications: int = 1,
    *,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
    watch: Callable[[Simulation], None] | None = None,
) -> Outcome:
    """Run *replications* independent replications; progress gets a 0..1 fraction.

    *watch* (single replication only) is called with the live simulation a
    thousand times over the run — what a live dashboard reads.
    """
    if replications < 1:
        raise ValueError("replications must be at least 1")
    if replications == 1:
        sim = Simulation(scenario, 0)
        sim.ledger.count_categories = watch is not None

        def hook(now: float) -> None:
            if progress is not None:
                progress(now / scenario.duration)
            if watch is not None:
                watch(sim)

        steps = 1000 if watch is not None else 100
        results = [sim.run(hook if (progress or watch) else None, steps=steps)]
    else:
        workers = workers or min(replications, os.cpu_count() or 1)
        by_rep: dict[int, RunResult] = {}
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_scenario, scenario, r): r for r in range(replications)}
            for future in as_completed(futures):
                by_rep[futures[future]] = future.result()
                if progress is not None:
                    progress(len(by_rep) / replications)
        results = [by_rep[r] for r in range(replications)]
    summaries = [summary_of(r) for r in results]
    return Outcome(summary=combine_replications(summaries), results=results)


def write_outputs(outcome: Outcome, out_dir: Path, *, report: bool = True) -> None:
    """Write summary.json, the Parquet tables and report.html into *out_dir*."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        name: outcome.frame(name) for name in ("tasks", "metrics", "events", "agents", "jobs")
    }
    for name, frame in tables.items():
        write_parquet(out_dir / f"{name}.parquet", frame)
    for name in ("llm", "tiers", "scaling"):  # opt-in tables, when the run has them
        table = outcome.optional_frame(name)
        if table is not None:
            write_parquet(out_dir / f"{name}.parquet", table)
    write_json(out_dir / "summary.json", outcome.summary)
    if report:
        from sim.report.html import write_report

        write_report(
            out_dir,
            outcome.summary,
            tables["tasks"],
            tables["metrics"],
            tables["events"],
            outcome.optional_frame("scaling"),
        )
