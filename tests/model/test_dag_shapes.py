"""DAG shapes: validity, size, determinism, published structure, and the file loader."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.policies.dag import Dag, DagEdge, DagNode, parallel_groups, validate_dag
from sim.world.dag_shapes import (
    SCIENTIFIC_SHAPES,
    SHAPES,
    SYNTHETIC_SHAPES,
    DagFileError,
    generate_dag,
    generate_typed_dag,
    load_dag_file,
    parse_dag_document,
    task_type_category,
)

CATS = ("CodeGen", "Review", "Test", "Docs")
WEIGHTS = (0.4, 0.3, 0.2, 0.1)
PROPS = settings(max_examples=100, deadline=None)
# Smallest graph each scientific shape can make (one image, chunk, synthesis, segment).
MIN_SIZE = {"montage": 8, "epigenomics": 8, "cybershake": 5, "ligo": 6}


def make(shape: str, size: int, seed: int = 0, **kw: float) -> tuple[Dag, tuple[str, ...]]:
    work = kw.get("work_mean_s", 10.0)
    data = kw.get("data_mb_mean", 5.0)
    return generate_typed_dag(shape, size, np.random.default_rng(seed), CATS, WEIGHTS, work, data)


def preds_of(dag: Dag) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {n.node_id: set() for n in dag.nodes}
    for e in dag.edges:
        out[e.dst].add(e.src)
    return out


def succs_of(dag: Dag) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {n.node_id: set() for n in dag.nodes}
    for e in dag.edges:
        out[e.src].add(e.dst)
    return out


def of_type(types: tuple[str, ...], name: str) -> list[int]:
    return [i for i, t in enumerate(types) if t == name]


def ancestors(dag: Dag, nid: int) -> set[int]:
    preds = preds_of(dag)
    seen: set[int] = set()
    stack = [nid]
    while stack:
        for p in preds[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


# ------------------------------------------------------------------------------ all shapes


@PROPS
@given(st.sampled_from(SHAPES), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_every_shape_is_a_valid_dag_of_about_the_requested_size(
    shape: str, size: int, seed: int
) -> None:
    dag, types = make(shape, size, seed)
    validate_dag(dag)
    n = len(dag.nodes)
    assert [node.node_id for node in dag.nodes] == list(range(n))
    assert all(e.src < e.dst for e in dag.edges), "ids are a topological order"
    assert len(types) == n
    assert {node.category for node in dag.nodes} <= set(CATS)
    assert all(node.work_s >= 0 and math.isfinite(node.work_s) for node in dag.nodes)
    assert all(e.data_mb >= 0 for e in dag.edges)
    if shape in SYNTHETIC_SHAPES:
        assert n == size
    else:
        assert abs(n - max(size, MIN_SIZE[shape])) <= 3
    again, _ = make(shape, size, seed)
    assert again == dag


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_same_dag_other_seed_other_draws(shape: str) -> None:
    a = generate_dag(shape, 60, np.random.default_rng(42), CATS, WEIGHTS, 10.0, 5.0, name="j")
    b = generate_dag(shape, 60, np.random.default_rng(42), CATS, WEIGHTS, 10.0, 5.0, name="j")
    c = generate_dag(shape, 60, np.random.default_rng(43), CATS, WEIGHTS, 10.0, 5.0, name="j")
    assert a == b
    assert a.name == "j"
    assert [n.work_s for n in a.nodes] != [n.work_s for n in c.nodes]


@pytest.mark.parametrize("shape", SHAPES)
def test_mean_work_and_data_follow_the_parameters(shape: str) -> None:
    dag, _ = make(shape, 2000, seed=3, work_mean_s=10.0, data_mb_mean=5.0)
    work = np.array([n.work_s for n in dag.nodes])
    data = np.array([e.data_mb for e in dag.edges])
    # Lognormal with cv 1 around per-type means that average to 10 s; exponential data.
    assert 8.0 < work.mean() < 12.0
    assert 4.5 < data.mean() < 5.5
    if shape in SYNTHETIC_SHAPES:
        assert 0.8 < work.std() / work.mean() < 1.2


@pytest.mark.parametrize("shape", SHAPES)
def test_zero_means_give_zero_work_and_data(shape: str) -> None:
    dag, _ = make(shape, 30, work_mean_s=0.0, data_mb_mean=0.0)
    assert all(n.work_s == 0.0 for n in dag.nodes)
    assert all(e.data_mb == 0.0 for e in dag.edges)


def test_synthetic_categories_follow_the_weights() -> None:
    dag, _ = make("layered", 4000, seed=9)
    counts = Counter(n.category for n in dag.nodes)
    for cat, w in zip(CATS, WEIGHTS, strict=True):
        assert abs(counts[cat] / 4000 - w) < 0.03


@pytest.mark.parametrize("shape", SCIENTIFIC_SHAPES)
def test_scientific_task_types_have_one_fixed_category(shape: str) -> None:
    dag, types = make(shape, 150)
    by_type: dict[str, set[str]] = {}
    for node, t in zip(dag.nodes, types, strict=True):
        by_type.setdefault(t, set()).add(node.category)
    for t, cats in by_type.items():
        assert cats == {task_type_category(t, CATS)}
    # The mapping is a pure function of the name, not of the seed or process.
    other, types2 = make(shape, 150, seed=77)
    assert [n.category for n in other.nodes] == [n.category for n in dag.nodes]
    assert types2 == types


def test_scientific_work_is_weighted_by_task_type() -> None:
    # mBgModel is hundreds of times longer than mDiffFit in the published runs.
    dag, types = make("montage", 2000, seed=5)
    work = [n.work_s for n in dag.nodes]
    diff = np.mean([work[i] for i in of_type(types, "mDiffFit")])
    proj = np.mean([work[i] for i in of_type(types, "mProjectPP")])
    assert 1.5 < proj / diff < 4.5
    assert work[of_type(types, "mBgModel")[0]] > 0  # drawn, not fixed


def test_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown DAG shape 'spiral'"):
        generate_dag("spiral", 10, rng, CATS, WEIGHTS, 1.0, 1.0)
    with pytest.raises(ValueError, match="at least 1"):
        generate_dag("layered", 0, rng, CATS, WEIGHTS, 1.0, 1.0)
    with pytest.raises(ValueError, match="weights"):
        generate_dag("layered", 10, rng, CATS, (1.0,), 1.0, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        generate_dag("layered", 10, rng, CATS, (1.0, -1.0, 1.0, 1.0), 1.0, 1.0)
    with pytest.raises(ValueError, match="work_mean_s"):
        generate_dag("layered", 10, rng, CATS, WEIGHTS, -1.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        generate_dag("montage", 10, rng, (), (), 1.0, 1.0)


# ------------------------------------------------------------------------------ synthetic


@PROPS
@given(st.integers(2, 400), st.integers(0, 2**32 - 1))
def test_layered_has_sqrt_layers_and_one_to_three_parents(size: int, seed: int) -> None:
    dag, _ = make("layered", size, seed)
    preds = preds_of(dag)
    groups = parallel_groups(dag)
    assert len(groups) == max(1, min(size, round(math.sqrt(size))))
    for nid in groups[0]:
        assert not preds[nid]
    for g in groups[1:]:
        for nid in g:
            assert 1 <= len(preds[nid]) <= 3


def test_pipeline_is_a_chain() -> None:
    dag, _ = make("pipeline", 12)
    assert [(e.src, e.dst) for e in dag.edges] == [(i, i + 1) for i in range(11)]


@pytest.mark.parametrize("size", [3, 4, 10, 50, 100, 333])
def test_fork_join_alternates_fan_out_and_barriers(size: int) -> None:
    dag, types = make("fork_join", size)
    preds, succs = preds_of(dag), succs_of(dag)
    assert [n for n in preds if not preds[n]] == [0]
    assert [n for n in succs if not succs[n]] == [size - 1]
    for b in of_type(types, "branch"):
        assert len(preds[b]) == 1
        assert len(succs[b]) == 1
    joins = of_type(types, "join")
    assert len(joins) == max(1, round(math.sqrt(size) / 2))
    widths = [len(preds[j]) for j in joins]
    assert max(widths) - min(widths) <= 1


# ------------------------------------------------------------------------------ scientific


@pytest.mark.parametrize("size", [8, 25, 50, 100, 300, 1000])
def test_montage_structure(size: int) -> None:
    dag, types = make("montage", size)
    preds, succs = preds_of(dag), succs_of(dag)
    count = Counter(types)
    proj, diffs, backs = (of_type(types, t) for t in ("mProjectPP", "mDiffFit", "mBackground"))
    (concat,) = of_type(types, "mConcatFit")
    (model,) = of_type(types, "mBgModel")
    (tbl,) = of_type(types, "mImgtbl")
    (add,) = of_type(types, "mAdd")
    (shrink,) = of_type(types, "mShrink")
    (jpeg,) = of_type(types, "mJPEG")
    assert count["mBackground"] == count["mProjectPP"]
    # Entries are the projections (plus mConcatFit when a single image has nothing to compare).
    assert [n for n in preds if not preds[n]] == proj + ([] if diffs else [concat])
    # mDiffFit compares two projected images; every pair is distinct.
    pairs = {frozenset(preds[d]) for d in diffs}
    assert len(pairs) == len(diffs)
    assert all(len(preds[d]) == 2 and preds[d] <= set(proj) for d in diffs)
    assert preds[concat] == set(diffs)
    assert preds[model] == {concat}
    # mBackground corrects one projected image with the global model.
    assert sorted(next(iter(preds[b] - {model})) for b in backs) == proj
    assert all(len(preds[b]) == 2 and model in preds[b] for b in backs)
    assert preds[tbl] == set(backs)
    assert preds[add] == {tbl}
    assert preds[shrink] == {add}
    assert preds[jpeg] == {shrink}
    assert [n for n in succs if not succs[n]] == [jpeg]
    if size >= 100:
        assert len(diffs) >= 2 * len(proj)


@pytest.mark.parametrize("size", [8, 24, 60, 100, 250, 1000])
def test_epigenomics_structure(size: int) -> None:
    dag, types = make("epigenomics", size)
    preds, succs = preds_of(dag), succs_of(dag)
    maps = of_type(types, "map")
    splits = of_type(types, "fastQSplit")
    (index,) = of_type(types, "maqIndex")
    (pileup,) = of_type(types, "pileup")
    # Lanes: each map ends a chain filterContams -> sol2sanger -> fastq2bfq -> map from a split.
    for m in maps:
        chain = [m]
        for _ in range(4):
            (p,) = preds[chain[-1]]
            chain.append(p)
        assert [types[i] for i in reversed(chain)] == [
            "fastQSplit",
            "filterContams",
            "sol2sanger",
            "fastq2bfq",
            "map",
        ]
    assert [n for n in preds if not preds[n]] == splits
    # ...all merging into one mapMerge -> maqIndex -> pileup chain.
    (final,) = preds[index]
    assert types[final] == "mapMerge"
    assert set(maps) <= ancestors(dag, final)
    assert preds[pileup] == {index}
    assert [n for n in succs if not succs[n]] == [pileup]
    assert max(len(g) for g in parallel_groups(dag)) >= len(maps)
    if size == 24:  # Epigenomics_24: one lane of five chains
        assert len(splits) == 1
        assert len(maps) == 5


def test_epigenomics_lanes_grow_with_size() -> None:
    lanes = {s: len(of_type(make("epigenomics", s)[1], "map")) for s in (100, 200, 400, 800)}
    for s in (200, 400, 800):
        assert 1.8 < lanes[s] / lanes[s // 2] < 2.2
    assert abs(lanes[800] - 800 / 4) < 0.1 * 800 / 4


@pytest.mark.parametrize("size", [5, 30, 100, 1000])
def test_cybershake_structure(size: int) -> None:
    dag, types = make("cybershake", size)
    preds, succs = preds_of(dag), succs_of(dag)
    sgt = of_type(types, "ExtractSGT")
    seis = of_type(types, "SeismogramSynthesis")
    peaks = of_type(types, "PeakValCalcOkaya")
    (zip_seis,) = of_type(types, "ZipSeis")
    (zip_psa,) = of_type(types, "ZipPSA")
    assert [n for n in preds if not preds[n]] == sgt
    assert all(len(preds[s]) == 1 and preds[s] <= set(sgt) for s in seis)
    assert sorted(next(iter(preds[p])) for p in peaks) == seis
    assert preds[zip_seis] == set(seis)
    assert preds[zip_psa] == set(peaks)
    assert sorted(n for n in succs if not succs[n]) == [zip_seis, zip_psa]
    if size == 30:
        assert len(sgt) == 2


@pytest.mark.parametrize("size", [6, 30, 100, 1000])
def test_ligo_structure(size: int) -> None:
    dag, types = make("ligo", size)
    preds, succs = preds_of(dag), succs_of(dag)
    thincas = of_type(types, "Thinca")
    assert len(thincas) % 2 == 0
    for i in of_type(types, "Inspiral"):
        (p,) = preds[i]
        assert types[p] in ("TmpltBank", "TrigBank")
        (t,) = succs[i]
        assert types[t] == "Thinca"
    for tb in of_type(types, "TrigBank"):
        (p,) = preds[tb]
        assert types[p] == "Thinca"
    assert {types[n] for n in preds if not preds[n]} == {"TmpltBank"}
    assert {types[n] for n in succs if not succs[n]} == {"Thinca"}
    assert len([n for n in succs if not succs[n]]) == len(thincas) // 2


# ------------------------------------------------------------------------------ files


def write(path: Path, doc: object) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def as_document(dag: Dag) -> dict[str, object]:
    return {
        "name": dag.name,
        "nodes": [{"id": n.node_id, "category": n.category, "work_s": n.work_s} for n in dag.nodes],
        "edges": [{"src": e.src, "dst": e.dst, "data_mb": e.data_mb} for e in dag.edges],
    }


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".yml"])
def test_load_round_trip(tmp_path: Path, suffix: str) -> None:
    dag, _ = make("montage", 40, seed=11)
    path = write(tmp_path / f"m{suffix}", as_document(dag))
    assert load_dag_file(path, CATS) == dag


def test_string_ids_are_numbered_in_file_order(tmp_path: Path) -> None:
    doc = {
        "nodes": [
            {"id": "plan", "category": "CodeGen", "work_s": 3},
            {"id": "code", "category": "CodeGen", "work_s": 30.5},
            {"id": 7, "category": "Review", "work_s": 5},
        ],
        "edges": [{"src": "plan", "dst": "code", "data_mb": 2}, {"src": "code", "dst": 7}],
    }
    dag = load_dag_file(write(tmp_path / "feature.yaml", doc), CATS)
    assert dag.name == "feature"
    assert dag.nodes == (
        DagNode(0, "CodeGen", 3.0),
        DagNode(1, "CodeGen", 30.5),
        DagNode(2, "Review", 5.0),
    )
    assert dag.edges == (DagEdge(0, 1, 2.0), DagEdge(1, 2, 0.0))


def test_parse_dag_document_for_inline_dags() -> None:
    doc = {"name": "x", "nodes": [{"id": 1, "category": "Test", "work_s": 1}], "edges": []}
    assert parse_dag_document(doc, CATS, source="scenario.yaml: dags.inline[0]") == Dag(
        "x", (DagNode(1, "Test", 1.0),), ()
    )


GOOD_NODES = [
    {"id": 1, "category": "CodeGen", "work_s": 1},
    {"id": 2, "category": "Review", "work_s": 1},
    {"id": 4, "category": "Test", "work_s": 1},
    {"id": 5, "category": "Test", "work_s": 1},
]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "nodes": [*GOOD_NODES, {"id": "foo2", "category": "Test", "work_s": 1}],
                "edges": [
                    {"src": 1, "dst": 2},
                    {"src": 2, "dst": 4},
                    {"src": 1, "dst": 4},
                    {"src": 4, "dst": "foo"},
                ],
            },
            "edges[3].dst: unknown node 'foo'",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 9, "dst": 1}]},
            "edges[0].src: unknown node 9",
        ),
        (
            {
                "nodes": [*GOOD_NODES[:2], {"id": 4, "category": "Ops", "work_s": 1}],
                "edges": [],
            },
            "nodes[2].category: expected one of CodeGen, Review, Test, Docs, got 'Ops'",
        ),
        (
            {
                "nodes": GOOD_NODES,
                "edges": [
                    {"src": 5, "dst": 1},
                    {"src": 1, "dst": 4},
                    {"src": 4, "dst": 2},
                    {"src": 2, "dst": 1},
                ],
            },
            "edges: cycle 1 → 4 → 2 → 1",
        ),
        (
            {
                "nodes": [
                    {"id": "a", "category": "Test", "work_s": 1},
                    {"id": "b", "category": "Test", "work_s": 1},
                ],
                "edges": [{"src": "b", "dst": "a"}, {"src": "a", "dst": "b"}],
            },
            "edges: cycle a → b → a",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 2, "dst": 2}]},
            "edges[0]: self-loop on node 2",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 1, "dst": 2}, {"src": 1, "dst": 2}]},
            "edges[1]: duplicate of edges[0] (1 → 2)",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 1, "dst": 2, "data_mb": -3}]},
            "edges[0].data_mb: expected a non-negative number, got -3",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 1}]},
            "edges[0].dst: missing",
        ),
        (
            {"nodes": GOOD_NODES, "edges": [{"src": 1, "dst": 2, "mb": 3}]},
            "edges[0].mb: unknown field; expected src, dst, data_mb",
        ),
        (
            {"nodes": [*GOOD_NODES, {"id": 2, "category": "Test", "work_s": 1}]},
            "nodes[4].id: duplicate id 2",
        ),
        (
            {"nodes": [{"id": 1, "category": "Test"}]},
            "nodes[0].work_s: missing",
        ),
        (
            {"nodes": [{"id": 1, "category": "Test", "work_s": "fast"}]},
            "nodes[0].work_s: expected a non-negative number, got 'fast'",
        ),
        (
            {"nodes": [{"id": True, "category": "Test", "work_s": 1}]},
            "nodes[0].id: expected an integer or a string, got True",
        ),
        (
            {"nodes": [{"category": "Test", "work_s": 1}]},
            "nodes[0].id: missing",
        ),
        ({"nodes": []}, "nodes: expected a non-empty list"),
        ({"nodes": GOOD_NODES, "edges": {"src": 1}}, "edges: expected a list"),
        ({"nodes": GOOD_NODES, "edge": []}, "edge: unknown field; expected name, nodes, edges"),
        ({"name": 3, "nodes": GOOD_NODES}, "name: expected a non-empty string, got 3"),
        (["not", "a", "mapping"], "expected a mapping with 'nodes' and 'edges' at the top"),
    ],
)
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_load_errors_name_file_and_field(
    tmp_path: Path, doc: object, message: str, suffix: str
) -> None:
    path = write(tmp_path / f"x{suffix}", doc)
    with pytest.raises(DagFileError) as info:
        load_dag_file(path, CATS)
    assert str(info.value) == f"{path}: {message}"
    assert isinstance(info.value, ValueError)


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("nodes: [\n", encoding="utf-8")
    with pytest.raises(DagFileError, match=r"bad\.yaml: invalid YAML: ") as info:
        load_dag_file(bad_yaml, CATS)
    assert "\n" not in str(info.value)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nodes", encoding="utf-8")
    with pytest.raises(DagFileError, match=r"bad\.json: invalid JSON: "):
        load_dag_file(bad_json, CATS)
    with pytest.raises(DagFileError, match=r"absent\.yaml: cannot read"):
        load_dag_file(tmp_path / "absent.yaml", CATS)
