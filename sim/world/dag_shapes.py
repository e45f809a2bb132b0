"""Job shapes: random and published task graphs, and task graphs read from files.

The fleet's jobs are DAGs of tasks (see :mod:`sim.policies.dag`). Scenarios
name a *shape* and a size; this module turns that into a concrete graph with
work and data sizes drawn from the scenario's random stream, or reads a graph
a user wrote by hand.

Synthetic shapes (``layered``, ``fork_join``, ``pipeline``) stress different
things: a pipeline has no parallelism at all, fork-join alternates full
fan-out with barriers, a layered random graph sits in between. The scientific
shapes reproduce the published structure of four Pegasus workflows
(Bharathi et al. 2008, "Characterization of scientific workflows"; Juve et
al. 2013, "Characterizing and profiling scientific workflows") because
scheduling results on them are widely reported and their mix of wide fan-outs
and long serial aggregation steps is hard to invent. Their fan-out width grows
with ``size``; their task types keep fixed relative runtimes, approximately as
measured in those papers.

Determinism: every random draw comes from the ``rng`` passed in, in a fixed
order, so one seed always yields the identical graph. Scientific task types
are mapped to categories by a CRC of the type name, never by Python's salted
``hash``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.policies.dag import Dag, DagCycleError, DagEdge, DagNode, validate_dag

__all__ = [
    "SCIENTIFIC_SHAPES",
    "SHAPES",
    "SYNTHETIC_SHAPES",
    "DagFileError",
    "generate_dag",
    "generate_typed_dag",
    "load_dag_file",
    "parse_dag_document",
    "task_type_category",
]

SYNTHETIC_SHAPES: tuple[str, ...] = ("layered", "fork_join", "pipeline")
SCIENTIFIC_SHAPES: tuple[str, ...] = ("montage", "epigenomics", "cybershake", "ligo")
SHAPES: tuple[str, ...] = SYNTHETIC_SHAPES + SCIENTIFIC_SHAPES

# Mean runtime of each task type relative to the others, rounded from the
# per-type means reported by Juve et al. 2013 (Tables for Montage, Epigenomics,
# CyberShake and LIGO Inspiral). Only the ratios matter: a graph's work is
# rescaled so that its mean task takes ``work_mean_s``.
_RELATIVE_WORK: dict[str, float] = {
    # Montage
    "mProjectPP": 1.73,
    "mDiffFit": 0.66,
    "mConcatFit": 143.0,
    "mBgModel": 384.0,
    "mBackground": 1.72,
    "mImgtbl": 2.78,
    "mAdd": 282.0,
    "mShrink": 66.1,
    "mJPEG": 0.64,
    # Epigenomics
    "fastQSplit": 34.3,
    "filterContams": 2.47,
    "sol2sanger": 0.48,
    "fastq2bfq": 1.40,
    "map": 189.0,
    "mapMerge": 11.0,
    "maqIndex": 43.9,
    "pileup": 56.0,
    # CyberShake
    "ExtractSGT": 111.0,
    "SeismogramSynthesis": 79.5,
    "ZipSeis": 266.0,
    "PeakValCalcOkaya": 0.55,
    "ZipPSA": 196.0,
    # LIGO Inspiral
    "TmpltBank": 18.1,
    "Inspiral": 460.0,
    "Thinca": 5.37,
    "TrigBank": 5.11,
}

# Lognormal with coefficient of variation 1: sigma^2 = ln(1 + cv^2).
_LOGN_SIGMA = math.sqrt(math.log(2.0))


class DagFileError(ValueError):
    """A DAG file that cannot be read; the message names the file and the offending field."""


# --------------------------------------------------------------------------------------
# Structure builders: each returns (task types, edges) with ids 0..n-1 in topological order.
# --------------------------------------------------------------------------------------

_Structure = tuple[list[str], list[tuple[int, int]]]


class _Builder:
    """Collects typed nodes and edges as a structure is laid out."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.edges: list[tuple[int, int]] = []

    def add(self, task_type: str, *preds: int) -> int:
        nid = len(self.types)
        self.types.append(task_type)
        self.edges.extend((p, nid) for p in preds)
        return nid

    def result(self) -> _Structure:
        return self.types, self.edges


def _pipeline(size: int) -> _Structure:
    b = _Builder()
    prev = b.add("stage")
    for _ in range(size - 1):
        prev = b.add("stage", prev)
    return b.result()


def _split_evenly(total: int, parts: int) -> list[int]:
    """*total* items in *parts* nearly equal parts, larger parts first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _fork_join(size: int) -> _Structure:
    """Source, then stages of parallel branches each closed by a join (the next stage's source).

    About sqrt(size)/2 stages, so a 100-task job has 5 barriers of ~19
    branches. A job too small for one fork and join degenerates to a chain.
    """
    stages = max(1, round(math.sqrt(size) / 2))
    branch_total = size - 1 - stages
    if branch_total < stages:
        stages = max(1, (size - 1) // 2)
        branch_total = size - 1 - stages
    if branch_total < 1:
        return _pipeline(size)
    b = _Builder()
    src = b.add("fork")
    for width in _split_evenly(branch_total, stages):
        branches = [b.add("branch", src) for _ in range(width)]
        src = b.add("join", *branches)
    return b.result()


def _layered(size: int, rng: np.random.Generator) -> _Structure:
    """About sqrt(size) layers; each later node has 1-3 parents, one in the layer just above.

    Requiring a parent in the previous layer keeps the depth equal to the
    number of layers; the other parents come from any earlier layer, which
    gives the long edges real build graphs have.
    """
    n_layers = max(1, min(size, round(math.sqrt(size))))
    counts = np.ones(n_layers, dtype=np.int64)
    if size > n_layers:
        extra = rng.integers(0, n_layers, size=size - n_layers)
        counts += np.bincount(extra, minlength=n_layers)
    b = _Builder()
    bounds: list[tuple[int, int]] = []  # [start, end) of each layer
    for layer, count in enumerate(counts.tolist()):
        start = len(b.types)
        for _ in range(count):
            if layer == 0:
                b.add("layer0")
                continue
            prev_lo, prev_hi = bounds[-1]
            parents = {int(rng.integers(prev_lo, prev_hi))}
            want = min(int(rng.integers(1, 4)), start)
            while len(parents) < want:
                parents.add(int(rng.integers(0, start)))
            b.add(f"layer{layer}", *sorted(parents))
        bounds.append((start, len(b.types)))
    return b.result()


def _fit(size: int, total_for: Callable[[int], int], lo: int = 1) -> int:
    """The smallest width parameter k >= lo whose structure size is closest to *size*.

    ``total_for(k)`` must grow with k; the search stops once it passes *size*.
    """
    best_k, best_err = lo, abs(total_for(lo) - size)
    k = lo
    while total_for(k) < size:
        k += 1
        err = abs(total_for(k) - size)
        if err < best_err:
            best_k, best_err = k, err
    return best_k


def _grid_pairs(n: int) -> list[tuple[int, int]]:
    """Overlapping neighbours among n images tiled row by row in a near-square grid.

    Each image overlaps its right, lower, lower-right and lower-left
    neighbours, which gives the ~2-4 mDiffFit jobs per image seen in real
    Montage runs (Montage_25: 5 images, 9 differences).
    """
    cols = max(1, math.ceil(math.sqrt(n)))
    pairs: list[tuple[int, int]] = []
    for i in range(n):
        r, c = divmod(i, cols)
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= cc < cols:
                j = rr * cols + cc
                if j < n:
                    pairs.append((i, j))
    return pairs


def _montage(size: int) -> _Structure:
    """Montage mosaic: project, difference overlaps, fit a background model, correct, co-add.

    mProjectPP per image; mDiffFit per overlapping pair of projected images;
    mConcatFit gathers the fits; mBgModel solves the background model;
    mBackground per image, reading the model and its projected image; then
    mImgtbl → mAdd → mShrink → mJPEG.
    """
    n = _fit(size, lambda k: 2 * k + len(_grid_pairs(k)) + 6)
    b = _Builder()
    proj = [b.add("mProjectPP") for _ in range(n)]
    diffs = [b.add("mDiffFit", proj[i], proj[j]) for i, j in _grid_pairs(n)]
    concat = b.add("mConcatFit", *diffs)
    model = b.add("mBgModel", concat)
    backs = [b.add("mBackground", model, proj[i]) for i in range(n)]
    tbl = b.add("mImgtbl", *backs)
    add = b.add("mAdd", tbl)
    shrink = b.add("mShrink", add)
    b.add("mJPEG", shrink)
    return b.result()


def _epigenomics_lanes(chains: int) -> int:
    """Sequencing lanes (fastQSplit jobs) for a run with *chains* read chunks: one per ~16."""
    return max(1, round(chains / 16))


def _epigenomics_total(chains: int) -> int:
    lanes = _epigenomics_lanes(chains)
    merges = 1 if lanes == 1 else lanes + 1
    return lanes + 4 * chains + merges + 2


def _epigenomics(size: int) -> _Structure:
    """Epigenomics (USC genome mapping): split reads, filter and map chunks, merge, index, pileup.

    Each lane's fastQSplit fans out into chunks, each a chain
    filterContams → sol2sanger → fastq2bfq → map. With one lane the maps
    merge straight into the single mapMerge; with several, each lane has its
    own mapMerge and a final mapMerge joins them. Then maqIndex → pileup.
    The number of chains grows linearly with size (Epigenomics_24: one lane
    of five chains).
    """
    chains = _fit(size, _epigenomics_total)
    lanes = _epigenomics_lanes(chains)
    b = _Builder()
    lane_merges: list[int] = []
    lane_maps: list[list[int]] = []
    for width in _split_evenly(chains, lanes):
        split = b.add("fastQSplit")
        maps = []
        for _ in range(width):
            node = b.add("filterContams", split)
            node = b.add("sol2sanger", node)
            node = b.add("fastq2bfq", node)
            maps.append(b.add("map", node))
        lane_maps.append(maps)
    if lanes == 1:
        final = b.add("mapMerge", *lane_maps[0])
    else:
        lane_merges = [b.add("mapMerge", *maps) for maps in lane_maps]
        final = b.add("mapMerge", *lane_merges)
    index = b.add("maqIndex", final)
    b.add("pileup", index)
    return b.result()


def _cybershake_sources(synth: int) -> int:
    return 1 if synth < 2 else max(2, round(synth / 25))


def _cybershake(size: int) -> _Structure:
    """CyberShake hazard curve: extract strain Green tensors, synthesise seismograms, peak values.

    A few ExtractSGT jobs each feed a share of the SeismogramSynthesis jobs;
    each synthesis feeds one PeakValCalcOkaya. ZipSeis gathers every
    seismogram and ZipPSA every peak value — two exits (CyberShake_30: two
    ExtractSGT, 13 syntheses).
    """
    synth = _fit(size, lambda k: _cybershake_sources(k) + 2 * k + 2)
    b = _Builder()
    sources = [b.add("ExtractSGT") for _ in range(_cybershake_sources(synth))]
    seis: list[int] = []
    for src, width in zip(sources, _split_evenly(synth, len(sources)), strict=True):
        seis.extend(b.add("SeismogramSynthesis", src) for _ in range(width))
    peaks = [b.add("PeakValCalcOkaya", s) for s in seis]
    b.add("ZipSeis", *seis)
    b.add("ZipPSA", *peaks)
    return b.result()


def _ligo_groups(pairs: int) -> int:
    return max(1, round(pairs / 6))


def _ligo(size: int) -> _Structure:
    """LIGO Inspiral: independent blocks of two filtering passes joined by coincidence tests.

    In each block, TmpltBank → Inspiral per data segment, a Thinca over the
    block's inspirals, then TrigBank → Inspiral per segment again and a
    second Thinca. Blocks (about six segments each) share nothing, so the
    graph has several entries and exits, as the published workflow does.
    """
    pairs = _fit(size, lambda k: 4 * k + 2 * _ligo_groups(k))
    b = _Builder()
    for width in _split_evenly(pairs, _ligo_groups(pairs)):
        first = [b.add("Inspiral", b.add("TmpltBank")) for _ in range(width)]
        thinca = b.add("Thinca", *first)
        second = [b.add("Inspiral", b.add("TrigBank", thinca)) for _ in range(width)]
        b.add("Thinca", *second)
    return b.result()


def _structure(shape: str, size: int, rng: np.random.Generator) -> _Structure:
    if shape == "layered":
        return _layered(size, rng)
    if shape == "fork_join":
        return _fork_join(size)
    if shape == "pipeline":
        return _pipeline(size)
    if shape == "montage":
        return _montage(size)
    if shape == "epigenomics":
        return _epigenomics(size)
    if shape == "cybershake":
        return _cybershake(size)
    if shape == "ligo":
        return _ligo(size)
    raise ValueError(f"unknown DAG shape {shape!r}; expected one of {', '.join(SHAPES)}")


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


def task_type_category(task_type: str, categories: Sequence[str]) -> str:
    """The category every task of *task_type* gets: a CRC-32 of the name, modulo the list.

    A stable hash (unlike Python's per-process salted ``hash``) keeps every
    mProjectPP on one category across runs and machines.
    """
    if not categories:
        raise ValueError("categories must not be empty")
    return categories[zlib.crc32(task_type.encode("utf-8")) % len(categories)]


def _probabilities(categories: Sequence[str], weights: Sequence[float]) -> np.ndarray[Any, Any]:
    if not categories:
        raise ValueError("categories must not be empty")
    if len(weights) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(weights)} weights")
    w = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"category weights must be non-negative with a positive sum: {weights}")
    probs: np.ndarray[Any, Any] = w / w.sum()
    return probs


def generate_typed_dag(
    shape: str,
    size: int,
    rng: np.random.Generator,
    categories: Sequence[str],
    weights: Sequence[float],
    work_mean_s: float,
    data_mb_mean: float,
    name: str = "",
) -> tuple[Dag, tuple[str, ...]]:
    """:func:`generate_dag`, also returning each node's task type (indexed by node id).

    Types are the Pegasus job names for the scientific shapes and
    descriptive labels (``stage``, ``fork``, ``branch``, ``join``,
    ``layerK``) for the synthetic ones. Reports and tests use them; the
    simulator needs only the Dag.
    """
    if size < 1:
        raise ValueError(f"DAG size must be at least 1, got {size}")
    if not (work_mean_s >= 0 and math.isfinite(work_mean_s)):
        raise ValueError(f"work_mean_s must be a non-negative number, got {work_mean_s!r}")
    if not (data_mb_mean >= 0 and math.isfinite(data_mb_mean)):
        raise ValueError(f"data_mb_mean must be a non-negative number, got {data_mb_mean!r}")
    probs = _probabilities(categories, weights)
    types, edges = _structure(shape, size, rng)
    n = len(types)

    # Expected work per task: flat for synthetic shapes, by task type for the
    # scientific ones, rescaled so the graph's mean task takes work_mean_s.
    if shape in SCIENTIFIC_SHAPES:
        rel = np.array([_RELATIVE_WORK[t] for t in types])
        cats = [task_type_category(t, categories) for t in types]
    else:
        rel = np.ones(n)
        picks = rng.choice(len(categories), size=n, p=probs)
        cats = [categories[i] for i in picks.tolist()]
    means = rel * (work_mean_s / rel.mean())
    noise = np.exp(_LOGN_SIGMA * rng.standard_normal(n) - _LOGN_SIGMA**2 / 2)
    work = (means * noise).tolist()

    if data_mb_mean > 0 and edges:
        data = rng.exponential(data_mb_mean, size=len(edges)).tolist()
    else:
        data = [0.0] * len(edges)

    dag = Dag(
        name=name or f"{shape}-{size}",
        nodes=tuple(DagNode(i, cats[i], float(work[i])) for i in range(n)),
        edges=tuple(DagEdge(s, d, float(mb)) for (s, d), mb in zip(edges, data, strict=True)),
    )
    return dag, tuple(types)


def generate_dag(
    shape: str,
    size: int,
    rng: np.random.Generator,
    categories: Sequence[str],
    weights: Sequence[float],
    work_mean_s: float,
    data_mb_mean: float,
    name: str = "",
) -> Dag:
    """A task graph of the named *shape* with about *size* tasks.

    ``pipeline``, ``fork_join`` and ``layered`` hit *size* exactly (a
    fork-join needs at least three tasks); the scientific shapes grow their
    fan-out in whole units (an image, a read chunk, a segment) and land on
    the nearest size they can make. Work per task is lognormal with
    coefficient of variation 1 around its type's mean (the graph-wide mean
    being *work_mean_s*); data per edge is exponential with mean
    *data_mb_mean* (0 gives no data). Synthetic shapes draw each task's
    category from *categories* with *weights*; scientific ones give each task
    type one fixed category (:func:`task_type_category`). Node ids are
    0..n-1 in a topological order.
    """
    dag, _types = generate_typed_dag(
        shape, size, rng, categories, weights, work_mean_s, data_mb_mean, name
    )
    return dag


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def _non_negative(where: str, field_path: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return number
    raise DagFileError(f"{where}: {field_path}: expected a non-negative number, got {value!r}")


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

    allowed = list(categories)
    written: list[object] = []
    parsed: list[tuple[str, float]] = []
    for i, item in enumerate(raw_nodes):
        at = f"nodes[{i}]"
        if not isinstance(item, Mapping):
            raise DagFileError(f"{where}: {at}: expected a mapping with id, category, work_s")
        for key in item:
            if key not in ("id", "category", "work_s"):
                raise DagFileError(
                    f"{where}: {at}.{key}: unknown field; expected id, category, work_s"
                )
        if "id" not in item:
            raise DagFileError(f"{where}: {at}.id: missing")
        nid = item["id"]
        if isinstance(nid, bool) or not isinstance(nid, int | str):
            raise DagFileError(f"{where}: {at}.id: expected an integer or a string, got {nid!r}")
        if nid in written:
            raise DagFileError(f"{where}: {at}.id: duplicate id {nid!r}")
        written.append(nid)
        category = item.get("category")
        if category not in allowed:
            raise DagFileError(
                f"{where}: {at}.category: expected one of {', '.join(allowed)}, got {category!r}"
            )
        if "work_s" not in item:
            raise DagFileError(f"{where}: {at}.work_s: missing")
        parsed.append((str(category), _non_negative(where, f"{at}.work_s", item["work_s"])))

    int_ids = [w for w in written if isinstance(w, int)]
    number: dict[object, int]
    if len(int_ids) == len(written):
        number = {w: w for w in int_ids}
    else:
        number = {w: i for i, w in enumerate(written)}
    label = {v: k for k, v in number.items()}

    nodes = tuple(DagNode(number[w], c, work) for w, (c, work) in zip(written, parsed, strict=True))
    edges: list[DagEdge] = []
    seen: dict[tuple[int, int], int] = {}
    for i, item in enumerate(raw_edges):
        at = f"edges[{i}]"
        if not isinstance(item, Mapping):
            raise DagFileError(f"{where}: {at}: expected a mapping with src, dst, data_mb")
        for key in item:
            if key not in ("src", "dst", "data_mb"):
                raise DagFileError(
                    f"{where}: {at}.{key}: unknown field; expected src, dst, data_mb"
                )
        ends: list[int] = []
        for end in ("src", "dst"):
            if end not in item:
                raise DagFileError(f"{where}: {at}.{end}: missing")
            ref = item[end]
            if isinstance(ref, bool) or not isinstance(ref, int | str) or ref not in number:
                raise DagFileError(f"{where}: {at}.{end}: unknown node {ref!r}")
            ends.append(number[ref])
        src, dst = ends
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

    dag = Dag(name=name, nodes=nodes, edges=tuple(edges))
    try:
        validate_dag(dag)
    except DagCycleError as exc:
        shown = " → ".join(str(label[n]) for n in [*exc.cycle, exc.cycle[0]])
        raise DagFileError(f"{where}: edges: cycle {shown}") from exc
    except ValueError as exc:  # everything else was checked above; kept as a safety net
        raise DagFileError(f"{where}: {exc}") from exc
    return dag
