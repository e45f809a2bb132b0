"""From YAML on disk to a validated Scenario, with one-line errors.

Every way a scenario can be wrong ends here as a :class:`ScenarioError` whose
text is ``FILE: field.path: what was expected`` — the CLI prints it and exits
1, no traceback. YAML is read with the safe loader and ``--set`` values are
parsed as YAML scalars, never evaluated.

Loading happens in three steps: resolve ``extends:`` chains (deep merge,
child wins), validate once so every default is materialised, then apply the
``--set`` overrides to that full document and validate again. The second pass
is what lets ``--set topology.zones.0.weight=2`` reach a list the file never
wrote.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.scenario.kubernetes import HpaManifest, ScaledObjectManifest
from sim.scenario.schema import Scenario
from sim.scenario.units import format_duration, parse_duration


class ScenarioError(Exception):
    """A scenario that cannot be used; ``str()`` is the one-line message for the user."""


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, merge, override and validate the scenario at *path*."""
    path = Path(path)
    raw = _read_with_extends(path, chain=())
    scenario = _validate(raw, str(path))
    if overrides:
        document = scenario.model_dump(mode="json", by_alias=True)
        for item in overrides:
            _apply_override(document, item, str(path))
        _fit_warmup(document, overrides, str(path))
        scenario = _validate(document, f"{path} (after --set)")
    return _apply_manifests(_resolve_paths(scenario, path.parent))


#: Share of a shortened run kept as warm-up when the scenario's own does not fit in it.
SHORT_RUN_WARMUP_SHARE = 0.1

_log = logging.getLogger("orchestra")
_said: set[str] = set()


def short_run_warmup(duration_s: float, warmup_s: float, source: str) -> float:
    """The warm-up of a run of *duration_s*: the scenario's, or a tenth of the run if it won't fit.

    A short what-if (``--duration 2m``) should just run: the scenario's hour of
    warm-up was chosen for a day, and cutting a tenth of a short run still
    drops its empty-fleet start from the statistics. A shortened warm-up is
    said once per *source* (a scenario file or name) on the ``orchestra``
    logger: a sweep or a plan loads the same scenario many times.
    """
    if warmup_s < duration_s:
        return warmup_s
    fitted = SHORT_RUN_WARMUP_SHARE * duration_s
    note = (
        f"{source}: warmup shortened from {format_duration(warmup_s)} to "
        f"{format_duration(fitted)} to fit the {format_duration(duration_s)} run"
    )
    if note not in _said:
        _said.add(note)
        _log.warning(note)
    return fitted


def _fit_warmup(document: dict[str, Any], overrides: Sequence[str], source: str) -> None:
    """An override of ``duration`` shorter than the warm-up shortens the warm-up (and says so).

    Only when the duration was overridden and the warm-up was not: a warm-up
    the user set explicitly is theirs, and a file that contradicts itself is
    still an error.
    """
    keys = {item.partition("=")[0].strip() for item in overrides}
    if "duration" not in keys or "warmup" in keys:
        return
    try:
        duration = parse_duration(document["duration"])
        warmup = parse_duration(document["warmup"])
    except (KeyError, TypeError, ValueError):
        return  # validation reports the bad value with its field path
    document["warmup"] = short_run_warmup(duration, warmup, source)


def load_variants(path: str | Path, overrides: Sequence[str] = ()) -> list[tuple[str, Scenario]]:
    """The scenario's variants, each loaded with its own settings on top of *overrides*.

    A scenario without ``variants`` is one unnamed variant. Every variant
    shares the seed, so all of them see the same arrivals and demands.
    """
    base = load_scenario(path, overrides)
    if not base.variants:
        return [("", base)]
    loaded = []
    for name, settings in base.variants.items():
        sets = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
        try:
            scenario = load_scenario(path, [*overrides, *sets])
        except ScenarioError as exc:
            raise ScenarioError(f"{exc} (in variants.{name})") from None
        renamed = scenario.model_copy(update={"name": f"{base.name}-{name}", "variants": {}})
        loaded.append((name, renamed))
    return loaded


def scenario_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Scenario:
    """Validate an in-memory document (notebooks, tests, sweeps)."""
    return _validate(dict(raw), source)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a path and a YAML-typed value."""
    if "=" not in item:
        raise ValueError(f"expected PATH=VALUE, got {item!r}")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    if not key.strip() or any(not part for part in parts):
        raise ValueError(f"expected a dotted path like scaling.scale_up.increment, got {key!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse value {text!r}: {_first_line(exc)}") from None
    return parts, value


# --------------------------------------------------------------------------- internals


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: expected a file, got a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {_first_line(exc)}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise ScenarioError(f"{path}: {where}expected valid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{path}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


def _read_with_extends(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved))
        raise ScenarioError(f"{path}: extends: expected no cycle, got {cycle}")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"{path}: extends: expected a file name, got {parent!r}")
    base = _read_with_extends(path.parent / parent, (*chain, resolved))
    return _deep_merge(base, data)


def _deep_merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Child wins; mappings merge key by key, lists and scalars are replaced whole."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(document: dict[str, Any], item: str, source: str) -> None:
    try:
        parts, value = parse_override(item)
    except ValueError as exc:
        raise ScenarioError(f"{source}: --set: {exc}") from None
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[: depth + 1], source, create=True)
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, parts, source)
        node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{source}: {'.'.join(parts)}: expected a section, found a value")


def _child(node: Any, part: str, path: list[str], source: str, *, create: bool) -> Any:
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            if not create:
                raise ScenarioError(f"{source}: {'.'.join(path)}: no such field")
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, path, source)]
    raise ScenarioError(f"{source}: {'.'.join(path)}: expected a section, found a value")


def _index(node: list[Any], part: str, path: list[str], source: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise ScenarioError(f"{source}: {'.'.join(path)}: expected a list index") from None
    if not -len(node) <= index < len(node):
        raise ScenarioError(
            f"{source}: {'.'.join(path)}: expected an index below {len(node)}, got {index}"
        )
    return index


def _validate(raw: dict[str, Any], source: str) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source)) from None


def format_validation_error(
    exc: ValidationError, source: str, model: type[BaseModel] = Scenario
) -> str:
    """The first error of *exc* as ``SOURCE: field.path: expected ...``."""
    error = exc.errors(include_url=False)[0]
    loc = _dotted(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        hint = f"; expected one of {', '.join(allowed)}" if allowed else ""
        return f"{source}: {loc}: unknown key{hint}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind != "value_error" or not message.startswith("expected"):
        message = _expected(message, error.get("input"))
    return f"{source}: {loc}: {message}" if loc else f"{source}: {message}"


def _expected(message: str, value: Any) -> str:
    text = message[0].lower() + message[1:] if message else message
    text = text.removeprefix("input should be ").removeprefix("value should be ")
    if text.startswith(("expected", "unknown")) or ":" in text.split(" ")[0]:
        return text
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"expected {text}, got {shown}"


def _dotted(loc: Iterable[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith(("function-after", "function-before", "literal[")):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the model reached by following *loc* from the Scenario."""
    current: Any = model
    for item in loc:
        if isinstance(item, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            current = _unwrap(current)
            if isinstance(item, int):
                continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            current = _unwrap(current)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(item))
        if field is None:  # Kubernetes-shaped sections are addressed by their aliases
            field = next((f for f in current.model_fields.values() if f.alias == item), None)
        if field is None:
            return []
        current = field.annotation
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """The model class inside list[...], X | None and dict[str, X] annotations."""
    for _ in range(4):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        if not args:
            return annotation
        annotation = args[-1]
    return annotation


def _resolve_paths(scenario: Scenario, base: Path) -> Scenario:
    """Make the file paths a scenario names relative to the scenario's own folder.

    Absolute: a run keeps its scenario beside its records (``scenario.yaml``),
    which ``replay`` and ``calibrate`` load from the run's folder; a path left
    relative to the working directory (``scenarios/k8s/specialists-hpa.yaml``)
    was then looked for under the run's folder, and the replay of a live run of
    ``hpa_as_deployed.yaml`` failed to load.
    """

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).absolute()

    workload = scenario.workload
    arrivals = workload.arrivals.model_copy(update={"trace": fix(workload.arrivals.trace)})
    service = workload.service.model_copy(update={"file": fix(workload.service.file)})
    by_category = {
        name: dist.model_copy(update={"file": fix(dist.file)})
        for name, dist in workload.service_by_category.items()
    }
    scaling = scenario.scaling
    scaling = scaling.model_copy(
        update={
            "hpa": scaling.hpa.model_copy(update={"manifest": fix(scaling.hpa.manifest)}),
            "keda": scaling.keda.model_copy(update={"manifest": fix(scaling.keda.manifest)}),
        }
    )
    jobs = [job.model_copy(update={"file": fix(job.file)}) for job in workload.dags.jobs]
    dags = workload.dags.model_copy(
        update={"files": [fix(p) for p in workload.dags.files], "jobs": jobs}
    )
    workload = workload.model_copy(
        update={
            "arrivals": arrivals,
            "service": service,
            "service_by_category": by_category,
            "dags": dags,
        }
    )
    update: dict[str, object] = {"workload": workload, "scaling": scaling}
    if scenario.llm is not None and scenario.llm.trace is not None:
        update["llm"] = scenario.llm.model_copy(update={"trace": fix(scenario.llm.trace)})
    return scenario.model_copy(update=update)


def _apply_manifests(scenario: Scenario) -> Scenario:
    """Read the HPA / ScaledObject manifests a scenario names into its scaling settings.

    A manifest is read and checked when the scenario loads, so a wrong key
    in it is the usual one-line error (the manifest's file and the key's
    path inside it), not a failure half-way through a run.
    """
    scaling = scenario.scaling
    update: dict[str, Any] = {}
    for name, kind in (("hpa", HpaManifest), ("keda", ScaledObjectManifest)):
        settings = getattr(scaling, name)
        if settings.manifest is None:
            continue
        raw = _read_yaml(settings.manifest)
        try:
            manifest = kind.model_validate(raw)
            values = manifest.settings()
        except ValidationError as exc:
            raise ScenarioError(
                format_validation_error(exc, str(settings.manifest), kind)
            ) from None
        except ValueError as exc:
            raise ScenarioError(f"{settings.manifest}: {exc}") from None
        update[name] = settings.model_copy(update=values)
    if not update:
        return scenario
    merged = scaling.model_copy(update=update)
    try:  # the settings are checked as if written in the scenario (bounds, ordering)
        checked = type(scaling).model_validate(merged.model_dump(by_alias=True))
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, "scaling (from manifest)")) from None
    return scenario.model_copy(update={"scaling": checked})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def scenario_yaml(scenario: Scenario) -> str:
    """*scenario* as YAML that :func:`load_scenario` reads back (kept beside runs, for replay)."""
    document = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(document, sort_keys=False)
