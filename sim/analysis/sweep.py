"""Parameter sweeps: one scenario over a grid or a random sample of ``--set`` paths.

A sweep is a list of *points* (each a mapping ``path -> value``, applied as
``--set`` overrides on top of the scenario) times ``R`` replications. Every
point's replication ``r`` uses the same random streams (the scenario seed and
``r``; see :mod:`sim.world.streams`), so points differ only by their settings:
common random numbers, which make the differences between points far less
noisy than independent runs would.

The result is one tidy DataFrame: a row per point × replication, sorted by
point then replication (so it does not depend on which worker finished
first), with

* ``point``, ``replication``;
* ``set.<path>`` — the value of each swept path at that point;
* ``error`` — ``None``, or the message of a run that failed;
* every summary figure as a column with a dotted name (``wait_s.p99``,
  ``tasks.completed``, ``alerts.high_latency``, ...).

Runs stream to disk as they finish (one small JSON file per run under
``<out>.parts/``, written atomically and named by a hash of the scenario
document and the replication), so an interrupted sweep resumes where it
stopped, and changing the grid keeps the runs of the points that remain.
Failed runs are not stored: a rerun tries them again. Stored runs are keyed
by the scenario, not by the simulator's code: after changing the model,
start afresh (delete ``<out>.parts/``, or ``orchestra sweep --fresh``).
Scenario ``variants`` are not expanded; sweep their settings instead.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.executors import Executor, make_executor, unordered
from sim.metrics.store import _json_safe, write_json, write_parquet
from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.load import ScenarioError, load_scenario, parse_override, scenario_from_dict

#: One point of a sweep: dotted scenario paths and the values they take there.
Point = dict[str, Any]

#: Progress callback: runs finished (including resumed ones), total runs, of which failed.
ProgressFn = Callable[[int, int, int], None]

PARAM_PREFIX = "set."

#: Summary sections that list only what happened (alerts that fired, failure reasons
#: seen): their keys differ between runs, a missing one means zero.
COUNT_SECTIONS = ("alerts.", "errors.failed_by_reason.")


# --------------------------------------------------------------------------- designs


def grid(axes: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every combination of the axes' values; the last axis varies fastest."""
    if not axes:
        return [{}]
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def latin_hypercube(
    ranges: Mapping[str, tuple[float, float]], points: int, seed: int = 0
) -> list[Point]:
    """*points* random points, each range cut into *points* strata hit exactly once.

    A Latin hypercube rather than independent uniform draws: with a few dozen
    points every stretch of every range is covered, which plain random
    sampling does not promise. A range whose bounds are both integers gives
    integers (rounded); the sample depends only on *seed*.
    """
    if points < 1:
        raise ValueError("points must be at least 1")
    rng = np.random.default_rng(seed)
    out: list[Point] = [{} for _ in range(points)]
    for name, (lo, hi) in ranges.items():
        strata = (rng.permutation(points) + rng.random(points)) / points
        values = lo + strata * (hi - lo)
        integral = isinstance(lo, int) and isinstance(hi, int)
        for point, value in zip(out, values.tolist(), strict=True):
            point[name] = round(value) if integral else float(value)
    return out


def combine(grid_points: Sequence[Point], sampled: Sequence[Point]) -> list[Point]:
    """Each grid point with each sampled point (either list may be just ``[{}]``)."""
    return [{**g, **s} for g in grid_points for s in sampled]


def parse_grid(spec: str) -> tuple[str, list[Any]]:
    """``PATH=v1,v2,...`` into the path and typed values (typed like ``--set``)."""
    path, _, text = spec.partition("=")
    if not path.strip() or not text.strip():
        raise ValueError(f"expected PATH=v1,v2,..., got {spec!r}")
    values = [_typed(path, item) for item in text.split(",") if item.strip()]
    if not values:
        raise ValueError(f"expected at least one value in {spec!r}")
    return path.strip(), values


def parse_range(spec: str) -> tuple[str, tuple[float, float]]:
    """``PATH=lo..hi`` into the path and a numeric range."""
    path, _, text = spec.partition("=")
    lo_text, sep, hi_text = text.partition("..")
    if not path.strip() or not sep:
        raise ValueError(f"expected PATH=lo..hi, got {spec!r}")
    lo, hi = _typed(path, lo_text), _typed(path, hi_text)
    numeric = (int, float)
    if not all(isinstance(v, numeric) and not isinstance(v, bool) for v in (lo, hi)):
        raise ValueError(f"expected numbers either side of '..', got {text!r}")
    if not lo <= hi:
        raise ValueError(f"expected lo <= hi, got {text!r}")
    return path.strip(), (lo, hi)


def _typed(path: str, text: str) -> Any:
    return parse_override(f"{path}={text.strip()}")[1]


def overrides_of(point: Mapping[str, Any]) -> list[str]:
    """The ``--set`` items for *point* (values as JSON, which the YAML parser reads back)."""
    return [f"{path}={json.dumps(value)}" for path, value in point.items()]


# --------------------------------------------------------------------------- one run


def run_job(document: dict[str, Any], replication: int) -> dict[str, Any]:
    """Run one replication of a scenario document; the flat figures, or the error.

    This is what executors ship to workers: a plain dict in, a plain dict
    out. Any failure of the run is returned, not raised, so it travels back
    as a message whatever the executor.
    """
    try:
        scenario = scenario_from_dict(document, f"<{document.get('name', 'scenario')}>")
        summary = summary_of(run_scenario(scenario, replication))
    except Exception as exc:  # reported with the point's parameters, the sweep goes on
        return {"error": _message(exc)}
    return {"figures": flatten(summary)}


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested summary into dotted columns; sparse count sections in name order."""
    flat: dict[str, Any] = {}
    items = sorted(summary.items()) if prefix in COUNT_SECTIONS else summary.items()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(_json_safe(list(value)))
        else:
            flat[name] = value
    return flat


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _normalise(record: dict[str, Any]) -> dict[str, Any]:
    """A record as it reads back from its part file, so fresh and resumed rows are identical."""
    loaded: dict[str, Any] = json.loads(json.dumps(_json_safe(record)))
    return loaded


def job_key(document: Mapping[str, Any], replication: int) -> str:
    """Names a run by what determines it: the full scenario document and the replication."""
    canonical = json.dumps({"scenario": document, "replication": replication}, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class _Job:
    key: str
    document: dict[str, Any]
    replication: int


def sweep(
    scenario: str | Path,
    points: Sequence[Mapping[str, Any]],
    replications: int = 1,
    *,
    overrides: Sequence[str] = (),
    executor: Executor | Any | None = None,
    workers: int | None = None,
    out: Path | None = None,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Run *scenario* at every point, *replications* times each; one row per run.

    *overrides* apply to every point (before the point's own). *executor*
    is ``None`` (local processes, *workers* of them; ``workers=1`` runs in
    this process), a ``distributed.Client`` or a scheduler address string
    (Dask), or any :class:`~sim.analysis.executors.Executor`. With *out*,
    every run is stored under ``<out>.parts/`` as it finishes, runs already
    there are not repeated, and the DataFrame is written to *out* as Parquet.

    A point whose settings the scenario rejects, or whose run raises, gives
    rows with the message in ``error``. Raises :class:`ScenarioError` if the
    scenario itself cannot be loaded or every point is rejected.
    """
    if replications < 1:
        raise ValueError("replications must be at least 1")
    if not points:
        raise ValueError("a sweep needs at least one point")
    documents = _documents(scenario, points, overrides)
    # One key per (point, replication) slot, hashed once; equal points share their runs.
    keys = [
        [job_key(d, r) for r in range(replications)] if isinstance(d, dict) else None
        for d in documents
    ]
    parts = _parts_dir(out)
    records: dict[str, dict[str, Any]] = _load_parts(parts) if parts else {}
    jobs, uses = _pending_jobs(documents, keys, records)
    total = len(points) * replications
    rejected = total - sum(uses.values())  # rejected points count as failed runs
    stored = sum(n for key, n in uses.items() if key in records)
    tally = _Tally(total, finished=rejected + stored, failed=rejected, progress=progress)
    tally.report()
    if jobs:
        _run_jobs(list(jobs.values()), uses, records, parts, tally, executor, workers)
    frame = _frame(points, documents, keys, replications, records)
    if out is not None:
        write_parquet(out, frame)
    return frame


def _documents(
    scenario: str | Path, points: Sequence[Mapping[str, Any]], overrides: Sequence[str]
) -> list[dict[str, Any] | str]:
    """Each point's scenario document, or the message of why the scenario rejects it."""
    load_scenario(scenario, overrides)  # the scenario itself must load: fail early and clearly
    documents: list[dict[str, Any] | str] = []
    for point in points:
        try:
            loaded = load_scenario(scenario, [*overrides, *overrides_of(point)])
            documents.append(loaded.model_dump(mode="json", by_alias=True))
        except ScenarioError as exc:
            documents.append(str(exc))
    if all(isinstance(d, str) for d in documents):
        raise ScenarioError(str(documents[0]))
    return documents


def _pending_jobs(
    documents: list[dict[str, Any] | str],
    keys: list[list[str] | None],
    records: dict[str, dict[str, Any]],
) -> tuple[dict[str, _Job], Counter[str]]:
    """The runs not stored yet (one per distinct key) and how many slots use each key."""
    jobs: dict[str, _Job] = {}
    uses: Counter[str] = Counter()
    for document, slots in zip(documents, keys, strict=True):
        if isinstance(document, dict) and slots is not None:
            for r, key in enumerate(slots):
                uses[key] += 1
                if key not in records:
                    jobs.setdefault(key, _Job(key, document, r))
    return jobs, uses


@dataclass
class _Tally:
    """Runs finished and failed so far, passed on to the caller's progress callback."""

    total: int
    finished: int
    failed: int
    progress: ProgressFn | None

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.finished, self.total, self.failed)


def _run_jobs(
    todo: list[_Job],
    uses: Counter[str],
    records: dict[str, dict[str, Any]],
    parts: Path | None,
    tally: _Tally,
    executor: Executor | Any | None,
    workers: int | None,
) -> None:
    """Run the pending jobs, storing each record (and its part file) as it arrives."""
    runner, close = make_executor(executor, workers=workers)
    try:
        arguments = [(job.document, job.replication) for job in todo]
        for index, outcome in unordered(runner, run_job, arguments):
            job = todo[index]
            if isinstance(outcome, BaseException):
                outcome = {"error": f"worker failed: {_message(outcome)}"}
            record = _normalise(outcome)
            records[job.key] = record
            if parts is not None and "error" not in record:
                write_json(parts / f"{job.key}.json", record)
            tally.finished += uses[job.key]
            tally.failed += uses[job.key] if "error" in record else 0
            tally.report()
    finally:
        if close:
            runner.close()


def _parts_dir(out: Path | None) -> Path | None:
    return None if out is None else out.with_name(out.name + ".parts")


def _load_parts(parts: Path) -> dict[str, dict[str, Any]]:
    """Runs stored by an earlier (perhaps interrupted) sweep; unreadable files are ignored."""
    found: dict[str, dict[str, Any]] = {}
    if not parts.is_dir():
        return found
    for path in parts.glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file from elsewhere: the run is simply done again
        if isinstance(record, dict) and isinstance(record.get("figures"), dict):
            found[path.stem] = record
    return found


def _frame(
    points: Sequence[Mapping[str, Any]],
    documents: Sequence[dict[str, Any] | str],
    keys: Sequence[list[str] | None],
    replications: int,
    records: Mapping[str, dict[str, Any]],
) -> pd.DataFrame:
    params = list(dict.fromkeys(path for point in points for path in point))
    rows: list[dict[str, Any]] = []
    for index, (point, document, slots) in enumerate(zip(points, documents, keys, strict=True)):
        for r in range(replications):
            row: dict[str, Any] = {"point": index, "replication": r}
            row.update({f"{PARAM_PREFIX}{p}": point.get(p) for p in params})
            if isinstance(document, str) or slots is None:
                row["error"] = str(document)
            else:
                record = records.get(slots[r], {"error": "not run"})
                row["error"] = record.get("error")
                row.update(record.get("figures", {}))
            rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    for column in frame.columns:
        if column.startswith(PARAM_PREFIX):
            frame[column] = _uniform(frame[column])
    ok = frame["error"].isna()
    for column in [c for c in frame.columns if c.startswith(COUNT_SECTIONS)]:
        frame.loc[ok, column] = frame.loc[ok, column].fillna(0)  # e.g. an alert that never fired
        if ok.all():
            frame[column] = frame[column].astype("int64")
    frame["error"] = frame["error"].astype(object).where(~ok, None)
    return frame


def _uniform(column: pd.Series) -> pd.Series:
    """A parameter column of one type (Parquet needs it): mixed values become text."""
    kinds = {type(v) for v in column if v is not None and not _is_nan(v)}
    if len(kinds) <= 1 or kinds <= {int, float}:
        return column
    return column.map(lambda v: None if v is None else str(v))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def failures(frame: pd.DataFrame) -> pd.DataFrame:
    """The failed rows of a sweep: point, replication, parameters and the message."""
    columns = ["point", "replication", *params_of(frame), "error"]
    failed: pd.DataFrame = frame.loc[frame["error"].notna(), columns]
    return failed


def params_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(PARAM_PREFIX)]


def iter_specs(specs: Iterable[str], parse: Callable[[str], tuple[str, Any]]) -> dict[str, Any]:
    """Parse repeated CLI specs into an ordered mapping; a path given twice is an error."""
    axes: dict[str, Any] = {}
    for spec in specs:
        path, values = parse(spec)
        if path in axes:
            raise ValueError(f"{path} is swept twice")
        axes[path] = values
    return axes
