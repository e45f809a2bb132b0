"""The DAG file loader: a hand-written task graph from YAML or JSON, with one-line errors.

A scenario author who misspells a field or points an edge at a missing node
gets ``<file>: <field path>: <problem>`` and can fix the file without reading
a traceback. The parser checks the document in reading order — the top
level, then each node, then each edge, then the graph as a whole — so the
first problem in the file is the one reported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sim.policies.dag import Dag, DagCycleError, DagEdge, DagNode, validate_dag

__all__ = ["DagFileError", "load_dag_file", "parse_dag_document"]

_NODE_FIELDS = ("id", "category", "work_s")
_EDGE_FIELDS = ("src", "dst", "data_mb")


class DagFileError(ValueError):
    """A DAG file that cannot be read; the message names the file and the offending field."""


def load_dag_file(path: Path, categories: Sequence[str]) -> Dag:
    """Read a hand-written task graph from YAML or JSON (chosen by suffix; YAML otherwise).

    The document format and the checks are those of :func:`parse_dag_document`;
    ``name`` defaults to the file's stem. Any problem, including an unreadable
    or unparsable file, raises :class:`DagFileError` with one line naming the
    file and the field, e.g. ``dags/x.yaml: edges[3].dst: unknown node 'foo'``,
    so a scenario author can fix it without reading a traceback.
    """
    return parse_dag_document(
        _read_document(path), categories, source=str(path), default_name=path.stem
    )


def parse_dag_document(
    doc: object, categories: Sequence[str], source: str, default_name: str = ""
) -> Dag:
    """Build and validate a Dag from an already-parsed document (a file's or an inline one).

    The document is ``{name, nodes: [{id, category, work_s}], edges: [{src,
    dst, data_mb}]}``; ``data_mb`` defaults to 0 and ``name`` to
    *default_name*. If every id is an integer the ids are kept; otherwise each
    node gets its position in the document (0, 1, ...) and edges refer to nodes
    by their written ids. Errors raise :class:`DagFileError` as
    ``<source>: <field path>: <problem>``; unknown fields are errors too, so a
    misspelt ``edge:`` is not silently an edgeless graph.
    """
    where = source
    name, raw_nodes, raw_edges = _top_level(doc, where, default_name)
    written, parsed = _parse_nodes(raw_nodes, categories, where)
    number = _node_numbers(written)
    nodes = tuple(DagNode(number[w], c, work) for w, (c, work) in zip(written, parsed, strict=True))
    edges = _parse_edges(raw_edges, number, where)
    return _validated(Dag(name=name, nodes=nodes, edges=edges), number, where)


def _read_document(path: Path) -> object:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DagFileError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise DagFileError(f"{where}: invalid {kind}: {first}") from exc


def _top_level(doc: object, where: str, default_name: str) -> tuple[str, list[Any], list[Any]]:
    """The document's name, nodes and edges, each of the right kind; other keys refused."""
    if not isinstance(doc, Mapping):
        raise DagFileError(f"{where}: expected a mapping with 'nodes' and 'edges' at the top")
    known = {"name", "nodes", "edges"}
    for key in doc:
        if key not in known:
            raise DagFileError(f"{where}: {key}: unknown field; expected name, nodes, edges")
    name = doc.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise DagFileError(f"{where}: name: expected a non-empty string, got {name!r}")

    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise DagFileError(f"{where}: nodes: expected a non-empty list")
    raw_edges = doc.get("edges", [])
    if raw_edges is None:
        raw_edges = []
    if not isinstance(raw_edges, list):
        raise DagFileError(f"{where}: edges: expected a list")
    return name, raw_nodes, raw_edges


def _refuse_unknown(item: Mapping[Any, Any], fields: tuple[str, ...], where: str, at: str) -> None:
    """Refuse a key outside *fields*: a misspelt field must not be silently ignored."""
    for key in item:
        if key not in fields:
            raise DagFileError(f"{where}: {at}.{key}: unknown field; expected {', '.join(fields)}")


def _parse_nodes(
    raw_nodes: list[Any], categories: Sequence[str], where: str
) -> tuple[list[object], list[tuple[str, float]]]:
    """Each node's written id, and its (category, work_s), in document order."""
    allowed = list(categories)
    written: list[object] = []
    parsed: list[tuple[str, float]] = []
    for i, item in enumerate(raw_nodes):
        at = f"nodes[{i}]"
        if not isinstance(item, Mapping):
            raise DagFileError(f"{where}: {at}: expected a mapping with id, category, work_s")
        _refuse_unknown(item, _NODE_FIELDS, where, at)
        written.append(_node_id(item, written, where, at))
        category = item.get("category")
        if category not in allowed:
            raise DagFileError(
                f"{where}: {at}.category: expected one of {', '.join(allowed)}, got {category!r}"
            )
        if "work_s" not in item:
            raise DagFileError(f"{where}: {at}.work_s: missing")
        parsed.append((str(category), _non_negative(where, f"{at}.work_s", item["work_s"])))
    return written, parsed


def _node_id(item: Mapping[Any, Any], written: list[object], where: str, at: str) -> int | str:
    """The node's written id: an integer or a string, not used by an earlier node."""
    if "id" not in item:
        raise DagFileError(f"{where}: {at}.id: missing")
    nid = item["id"]
    if isinstance(nid, bool) or not isinstance(nid, int | str):
        raise DagFileError(f"{where}: {at}.id: expected an integer or a string, got {nid!r}")
    if nid in written:
        raise DagFileError(f"{where}: {at}.id: duplicate id {nid!r}")
    return nid


def _node_numbers(written: list[object]) -> dict[object, int]:
    """Written id -> node id: the ids themselves when all are integers, else document positions."""
    int_ids = [w for w in written if isinstance(w, int)]
    if len(int_ids) == len(written):
        return {w: w for w in int_ids}
    return {w: i for i, w in enumerate(written)}


def _parse_edges(
    raw_edges: list[Any], number: Mapping[object, int], where: str
) -> tuple[DagEdge, ...]:
    """The edges between known nodes, refusing self-loops and duplicates."""
    edges: list[DagEdge] = []
    seen: dict[tuple[int, int], int] = {}
    for i, item in enumerate(raw_edges):
        at = f"edges[{i}]"
        if not isinstance(item, Mapping):
            raise DagFileError(f"{where}: {at}: expected a mapping with src, dst, data_mb")
        _refuse_unknown(item, _EDGE_FIELDS, where, at)
        src = _edge_end(item, "src", number, where, at)
        dst = _edge_end(item, "dst", number, where, at)
        if src == dst:
            raise DagFileError(f"{where}: {at}: self-loop on node {item['src']!r}")
        if (src, dst) in seen:
            raise DagFileError(
                f"{where}: {at}: duplicate of edges[{seen[(src, dst)]}] "
                f"({item['src']!r} → {item['dst']!r})"
            )
        seen[(src, dst)] = i
        mb = _non_negative(where, f"{at}.data_mb", item.get("data_mb", 0.0))
        edges.append(DagEdge(src, dst, mb))
    return tuple(edges)


def _edge_end(
    item: Mapping[Any, Any], end: str, number: Mapping[object, int], where: str, at: str
) -> int:
    """The node id an edge's *end* (``src`` or ``dst``) names by its written id."""
    if end not in item:
        raise DagFileError(f"{where}: {at}.{end}: missing")
    ref = item[end]
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref not in number:
        raise DagFileError(f"{where}: {at}.{end}: unknown node {ref!r}")
    return number[ref]


def _validated(dag: Dag, number: Mapping[object, int], where: str) -> Dag:
    """*dag* once it is known to be acyclic; a cycle is reported by the ids as written."""
    label = {v: k for k, v in number.items()}
    try:
        validate_dag(dag)
    except DagCycleError as exc:
        shown = " → ".join(str(label[n]) for n in [*exc.cycle, exc.cycle[0]])
        raise DagFileError(f"{where}: edges: cycle {shown}") from exc
    except ValueError as exc:  # everything else was checked above; kept as a safety net
        raise DagFileError(f"{where}: {exc}") from exc
    return dag


def _non_negative(where: str, field_path: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return number
    raise DagFileError(f"{where}: {field_path}: expected a non-negative number, got {value!r}")
