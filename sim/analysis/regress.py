"""CI regression of scaling policies: re-run pinned scenarios, compare with stored baselines.

A *baseline* is one JSON file per pinned scenario (``baselines/NAME.json``):
the scenario path, its ``--set`` overrides, the seed and the number of
replications, and for each watched figure the rule that judges it and the
value each replication produced. ``orchestra check`` re-runs exactly that
(same seed, so the same random streams: an unchanged model reproduces the
baseline bit for bit) and judges every figure:

* ``tolerance`` — for figures that barely move between replications
  (tasks lost, tasks completed, SLO breach windows): worse when the mean
  moved the wrong way by more than ``max(abs, rel * |baseline mean|)``.
* ``welch`` — for noisy figures (p99 wait, cost): a one-sided Welch t-test
  between the baseline's replications and the new ones at level ``alpha``,
  so a change has to stand out of the replication noise to count; a
  practical floor (``abs``/``rel``) keeps a significant but negligible
  shift from failing CI. Welch rather than a paired test because a model
  change elsewhere (a new random stream, a new feature) breaks the pairing
  between replications; rather than Mann-Whitney because with three
  replications a side no rank test can reach a small alpha.

Every rule knows which way is better (lower latency and cost, higher
throughput), so the report separates "better" from "worse" and only worse
fails. Rules are stored in each baseline file, so a team can tighten one
figure of one scenario by editing JSON.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.analysis.executors import Executor, make_executor, unordered
from sim.analysis.sweep import run_job
from sim.metrics.store import write_json
from sim.scenario.load import ScenarioError, load_scenario

Verdict = Literal["same", "better", "worse", "missing"]
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Rule:
    """How one figure is judged; ``better`` says which direction is an improvement."""

    kind: Literal["tolerance", "welch"]
    better: Literal["lower", "higher"]
    abs: float = 0.0
    rel: float = 0.0
    alpha: float = 0.01

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Rule:
        try:
            rule = cls(**raw)
        except TypeError as exc:
            raise ScenarioError(
                f"{where}: expected a rule (kind, better, abs, rel, alpha): {exc}"
            ) from None
        if rule.kind not in ("tolerance", "welch") or rule.better not in ("lower", "higher"):
            raise ScenarioError(
                f"{where}: expected kind tolerance|welch and better lower|higher, got {raw}"
            )
        return rule

    def describe(self) -> str:
        floor = []
        if self.abs:
            floor.append(f"±{self.abs:g}")
        if self.rel:
            floor.append(f"±{self.rel:.1%}")
        tol = "/".join(floor) or "exact"
        if self.kind == "welch":
            return f"welch α={self.alpha:g} ({tol}), {self.better} better"
        return f"{tol}, {self.better} better"


#: What CI watches by default: p99, cost, lost tasks, SLO breaches (DESIGN.md) and throughput;
#: tasks shed (tiers) is pinned too and stays 0 without tiers. Spot's share of the bill is
#: not a rule: moving work onto spot raises it while the total (watched) falls.
DEFAULT_RULES: dict[str, Rule] = {
    "tasks.lost": Rule("tolerance", "lower"),
    "tasks.failed": Rule("welch", "lower", abs=1.0),
    "tasks.completed": Rule("tolerance", "higher", rel=0.01),
    "throughput_per_min": Rule("welch", "higher", rel=0.005),
    "wait_s.p99": Rule("welch", "lower", abs=0.5, rel=0.02),
    "wait_s.mean": Rule("welch", "lower", abs=0.1, rel=0.02),
    "latency_s.p99": Rule("welch", "lower", abs=0.5, rel=0.02),
    "slo.breaches": Rule("tolerance", "lower", abs=1),
    "cost.usd_per_1k_tasks": Rule("welch", "lower", rel=0.005),
    "cost.usd_per_day": Rule("welch", "lower", rel=0.005),
    "elections.downtime_s": Rule("welch", "lower", abs=1.0),
    "dispatch_s.p99": Rule("welch", "lower", abs=0.01, rel=0.05),
    # Tiers: a task shed at admission was turned away, so more of them is worse (0 without tiers).
    "tasks.shed": Rule("welch", "lower", abs=1.0, rel=0.01),
}


@dataclass
class Baseline:
    """One pinned scenario and what it produced when it was pinned."""

    name: str
    scenario: str  # relative to the baseline directory's parent (the project root)
    overrides: list[str]
    seed: int
    replications: int
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    events_sha256: list[str] = field(default_factory=list)

    def scenario_path(self, root: Path) -> Path:
        """The scenario file: relative to the project root (the baseline directory's
        parent), else to the current directory (a baseline copied elsewhere)."""
        path = Path(self.scenario)
        if path.is_absolute() or (root / path).exists():
            return path if path.is_absolute() else root / path
        return path

    def rule(self, figure: str) -> Rule:
        return Rule.from_dict(self.figures[figure]["rule"], f"{self.name}: figures.{figure}.rule")

    def to_json(self) -> dict[str, Any]:
        return {"version": BASELINE_VERSION, **asdict(self)}


@dataclass(frozen=True)
class Judgement:
    """The verdict on one figure of one scenario."""

    scenario: str
    figure: str
    rule: Rule
    baseline: list[float]
    current: list[float]
    verdict: Verdict
    p_value: float | None = None

    @property
    def baseline_mean(self) -> float:
        return _mean(self.baseline)

    @property
    def current_mean(self) -> float:
        return _mean(self.current)

    @property
    def change(self) -> float:
        return self.current_mean - self.baseline_mean

    def message(self) -> str:
        base, now = _mean(self.baseline), _mean(self.current)
        if self.verdict == "missing":
            return f"{self.scenario}: {self.figure} is missing from the new run (was {base:.4g})"
        rel = f" ({self.change / base:+.1%})" if base else ""
        test = f", Welch p={self.p_value:.2g}" if self.p_value is not None else ""
        return (
            f"{self.scenario}: {self.figure} {self.verdict}: baseline mean {base:.4g}, "
            f"now {now:.4g}{rel}; rule {self.rule.describe()}{test}"
        )


# --------------------------------------------------------------------------- judging


def judge(
    scenario: str, figure: str, rule: Rule, base: Sequence[float], cur: Sequence[float]
) -> Judgement:
    """Apply *rule* to the baseline's and the new run's replicate values of one figure."""
    b = np.asarray(base, dtype=float)
    c = np.asarray(cur, dtype=float)
    b_ok, c_ok = b[np.isfinite(b)], c[np.isfinite(c)]

    def verdict(value: Verdict, p: float | None = None) -> Judgement:
        return Judgement(scenario, figure, rule, b.tolist(), c.tolist(), value, p)

    if not len(c_ok) and len(b_ok):
        return verdict("missing")
    if not len(c_ok) or not len(b_ok):
        return verdict("same")  # undefined before and after (no tasks to measure)
    delta = float(c_ok.mean() - b_ok.mean())
    worse_sign = 1.0 if rule.better == "lower" else -1.0
    floor = max(rule.abs, rule.rel * abs(float(b_ok.mean())))
    beyond = abs(delta) > floor
    direction: Verdict = "worse" if delta * worse_sign > 0 else "better"
    if rule.kind == "tolerance":
        return verdict(direction if beyond else "same")
    p = _welch_p(c_ok, b_ok, up=delta > 0)
    if p is None:  # no spread on either side: the difference is exact
        return verdict(direction if beyond else "same")
    return verdict(direction if beyond and p < rule.alpha else "same", p)


def _welch_p(cur: np.ndarray, base: np.ndarray, *, up: bool) -> float | None:
    """One-sided Welch p-value for the direction the means moved; None without spread."""
    if len(cur) < 2 or len(base) < 2:
        return None
    # Spread at rounding level (a static fleet's cost: the same sum in another order) is no
    # spread: the t-test would divide noise by noise, so the difference is judged as exact.
    scale = 1e-12 * max(abs(float(cur.mean())), abs(float(base.mean())))
    if float(cur.std(ddof=1)) <= scale and float(base.std(ddof=1)) <= scale:
        return None
    from scipy.stats import ttest_ind

    alternative = "greater" if up else "less"
    result = ttest_ind(cur, base, equal_var=False, alternative=alternative)
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# --------------------------------------------------------------------------- baselines on disk


def read_baseline(path: Path) -> Baseline:
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: expected a baseline JSON file ({exc})") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a JSON object")
    raw.pop("version", None)
    try:
        baseline = Baseline(**raw)
    except TypeError as exc:
        raise ScenarioError(f"{path}: expected the fields of a baseline: {exc}") from None
    expected = {
        "name": (str, "a string"),
        "scenario": (str, "a path"),
        "overrides": (list, "a list of PATH=VALUE strings"),
        "seed": (int, "an integer"),
        "replications": (int, "an integer"),
        "figures": (dict, "a mapping of figure -> {rule, values}"),
    }
    for key, (kind, what) in expected.items():
        value = getattr(baseline, key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ScenarioError(f"{path}: {key}: expected {what}, got {value!r}")
    if baseline.replications < 1 or not all(isinstance(o, str) for o in baseline.overrides):
        raise ScenarioError(f"{path}: expected replications >= 1 and overrides as strings")
    for figure, entry in baseline.figures.items():
        if not isinstance(entry, dict) or "values" not in entry or "rule" not in entry:
            raise ScenarioError(f"{path}: figures.{figure}: expected {{rule, values}}")
        baseline.rule(figure)
    return baseline


def baseline_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def resolve(
    targets: Sequence[str], directory: Path, *, update: bool, name: str | None
) -> list[tuple[Path, Baseline | None, Path | None]]:
    """Which baselines to check: ``(file, baseline or None if new, scenario for a new one)``.

    A target is a baseline name (``burst``), a baseline file, or a scenario
    YAML; no target means every baseline in *directory*. A scenario with no
    baseline yet is only accepted with ``--update`` (that pins it).
    """
    if not targets:
        files = baseline_files(directory)
        if not files:
            raise ScenarioError(f"{directory}: no baselines (*.json); pin one with --update")
        return [(f, read_baseline(f), None) for f in files]
    root = directory.resolve().parent
    known = {f: read_baseline(f) for f in baseline_files(directory)}
    chosen: list[tuple[Path, Baseline | None, Path | None]] = []
    for target in targets:
        as_path = Path(target)
        by_name = directory / f"{target}.json"
        if by_name in known:
            chosen.append((by_name, known[by_name], None))
        elif as_path.suffix == ".json":
            chosen.append((as_path, read_baseline(as_path), None))
        elif as_path.suffix in (".yaml", ".yml"):
            wanted = as_path.resolve()
            matches = [
                (f, b) for f, b in known.items() if b.scenario_path(root).resolve() == wanted
            ]
            if name is not None:
                matches = [(f, b) for f, b in matches if b.name == name]
            if matches:
                chosen.extend((f, b, None) for f, b in matches)
            elif update:
                pinned = name or as_path.stem
                chosen.append((directory / f"{pinned}.json", None, as_path))
            else:
                raise ScenarioError(f"{target}: no baseline in {directory}/; pin it with --update")
        else:
            raise ScenarioError(
                f"{target}: expected a baseline name, a baseline .json or a scenario .yaml"
            )
    return chosen


# --------------------------------------------------------------------------- running


@dataclass
class CheckResult:
    """Everything one ``check`` found: per-figure judgements, runs that failed, new baselines."""

    judgements: list[Judgement]
    errors: dict[str, str]
    baselines: dict[Path, Baseline]
    identical: dict[str, bool]

    @property
    def regressions(self) -> list[Judgement]:
        return [j for j in self.judgements if j.verdict in ("worse", "missing")]

    @property
    def failed(self) -> bool:
        return bool(self.regressions or self.errors)


def run_check(
    chosen: Sequence[tuple[Path, Baseline | None, Path | None]],
    directory: Path,
    *,
    extra: Sequence[str] = (),
    replications: int | None = None,
    seed: int | None = None,
    executor: Executor | Any | None = None,
    workers: int | None = None,
) -> CheckResult:
    """Re-run every chosen baseline (all replications in one pool) and judge its figures.

    *extra* overrides go on top of each baseline's own (how a policy change
    is tried against the baseline without editing files). The returned
    baselines hold the new values, ready to be written by ``--update``.
    """
    root = directory.resolve().parent
    plans = [_plan(file, old, new, root, extra, replications, seed) for file, old, new in chosen]
    jobs = [(doc, r) for _, fresh, _, doc in plans for r in range(fresh.replications)]
    owner = [i for i, (_, fresh, _, _) in enumerate(plans) for _ in range(fresh.replications)]
    outputs = _run_jobs(jobs, executor, workers)
    result = CheckResult([], {}, {}, {})
    for i, plan in enumerate(plans):
        _judge_plan(plan, [outputs[j] for j in range(len(jobs)) if owner[j] == i], result)
    return result


_Plan = tuple[Path, Baseline, Baseline | None, dict[str, Any]]


def _plan(
    file: Path,
    old: Baseline | None,
    new_scenario: Path | None,
    root: Path,
    extra: Sequence[str],
    replications: int | None,
    seed: int | None,
) -> _Plan:
    """The baseline to fill with new runs (old rules, or the defaults) and its scenario."""
    if old is not None:
        fresh = Baseline(
            name=old.name,
            scenario=old.scenario,
            overrides=[*old.overrides, *extra],
            seed=old.seed if seed is None else seed,
            replications=replications or old.replications,
            figures=_rules_for(old),
        )
        path = old.scenario_path(root)
    else:
        assert new_scenario is not None
        path = new_scenario
        fresh = Baseline(
            name=file.stem,
            scenario=_relative(path, root),
            overrides=list(extra),
            seed=load_scenario(path, list(extra)).seed if seed is None else seed,
            replications=replications or 3,
            figures={f: {"rule": asdict(r), "values": []} for f, r in DEFAULT_RULES.items()},
        )
    scenario = load_scenario(path, [*fresh.overrides, f"seed={fresh.seed}"])
    return file, fresh, old, scenario.model_dump(mode="json", by_alias=True)


def _run_jobs(
    jobs: list[tuple[dict[str, Any], int]], executor: Executor | Any | None, workers: int | None
) -> dict[int, dict[str, Any]]:
    """All replications of all scenarios in one pool; a worker crash becomes that run's error."""
    outputs: dict[int, dict[str, Any]] = {}
    runner, close = make_executor(executor, workers=workers)
    try:
        for index, outcome in unordered(runner, run_job, jobs):
            outputs[index] = (
                {"error": f"worker failed: {outcome}"}
                if isinstance(outcome, BaseException)
                else outcome
            )
    finally:
        if close:
            runner.close()
    return outputs


def _judge_plan(plan: _Plan, runs: list[dict[str, Any]], result: CheckResult) -> None:
    """Store one scenario's new values in its baseline and judge them against the old ones."""
    file, fresh, old, _ = plan
    failed = [r["error"] for r in runs if "error" in r]
    if failed:
        result.errors[fresh.name] = failed[0]
        return
    figures = [r["figures"] for r in runs]
    for figure, entry in fresh.figures.items():
        entry["values"] = [_number(f.get(figure)) for f in figures]
    fresh.events_sha256 = [str(f.get("events_sha256")) for f in figures]
    result.baselines[file] = fresh
    if old is None:
        return
    result.identical[fresh.name] = old.events_sha256 == fresh.events_sha256
    for figure, entry in old.figures.items():
        result.judgements.append(
            judge(
                fresh.name,
                figure,
                old.rule(figure),
                [_number(v) for v in entry["values"]],
                fresh.figures[figure]["values"],
            )
        )


def _rules_for(old: Baseline) -> dict[str, dict[str, Any]]:
    """The baseline's own rules, plus a default rule for any figure watched since it was pinned."""
    names = dict.fromkeys([*DEFAULT_RULES, *old.figures])
    return {
        f: {
            "rule": old.figures[f]["rule"] if f in old.figures else asdict(DEFAULT_RULES[f]),
            "values": [],
        }
        for f in names
    }


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return math.nan


def _relative(path: Path, root: Path) -> str:
    absolute = path.resolve()
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return os.path.relpath(absolute, root) if absolute.anchor == root.anchor else str(absolute)


def write_baselines(result: CheckResult) -> list[Path]:
    """Store the new runs as the baselines, one file each, each written atomically."""
    for file, baseline in result.baselines.items():
        write_json(file, baseline.to_json())
    return list(result.baselines)
