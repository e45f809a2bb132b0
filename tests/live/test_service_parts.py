"""The service's parts without a server: the task message, replies, provisioners, credentials,
record windows. The whole service against a real nats-server is in test_serve.py."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from conftest import HERE, agents_answer_calls
from test_coordinator_logic import EPOCH, Fleet, busy_burst_primary

from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.credentials import Auth, CredentialError, require
from sim.live.memory_broker import MemoryBroker
from sim.live.provisioner import AgentSpec
from sim.live.remote_provisioner import CommandProvisioner, Recommender, render
from sim.live.segment_fleet import roster_after
from sim.live.segments import Window, next_edge, window_docs
from sim.live.task_message import InvalidMessage, Pools, submission_batch, validate
from sim.live.transport import AGENTS_BUCKET, EVENTS, REPLIES
from sim.scenario.load import load_scenario

SCHEMA = json.loads((HERE.parents[1] / "docs" / "task-message.schema.json").read_text())
POOLS = Pools(frozenset({"A", "B"}), frozenset({"CodeGen", "Review"}))


def task(**fields: Any) -> dict[str, Any]:
    doc = {"kind": "task", "task_id": 1, "category": "CodeGen", "zone": "A", "work_s": 2.0}
    return {**doc, "arrival_s": 0.0, **fields}


def job(**fields: Any) -> dict[str, Any]:
    nodes = [
        {"node": 0, "task_id": 10, "category": "CodeGen", "work_s": 1.0},
        {"node": 1, "task_id": 11, "category": "Review", "work_s": 1.0},
    ]
    doc = {"kind": "job", "job_id": 3, "zone": "B", "arrival_s": 5.0, "nodes": nodes}
    return {**doc, "edges": [[0, 1, 0.5]], **fields}


INVALID = [
    (task(kind="batch"), "kind: expected 'task' or 'job'"),
    (task(task_id=-1), "task_id: expected an integer"),
    (task(task_id=True), "task_id: expected an integer"),
    (task(task_id=2**53), "task_id: expected an integer"),
    (task(category="a\nb"), "category: expected a name"),
    (task(zone=""), "zone: expected a name"),
    (task(work_s=-1), "work_s: expected seconds"),
    (task(work_s="3"), "work_s: expected seconds"),
    (job(nodes=[]), "nodes: expected a list of 1"),
    (job(edges=[[0, 7, 0.0]]), "edges[0]: expected [src, dst, data_mb]"),
    (job(edges=[[0, 1, 0.0], [1, 0, 0.0]]), "edges: expected an acyclic graph"),
]


@pytest.mark.parametrize(("doc", "message"), INVALID)
def test_an_invalid_submission_names_its_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMessage, match=re.escape(message)):
        validate(doc)


def test_the_documented_schema_and_the_check_agree() -> None:
    """Every example the check accepts the JSON Schema accepts; the shape errors it rejects too.

    (Acyclicity, the pools and unique node ids are beyond a JSON Schema: the check alone.)
    """
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for doc in (task(), job(), task(task_id=2**53 - 1, work_s=0)):
        validate(doc)
        assert not list(validator.iter_errors(doc)), doc
    for doc, _ in INVALID[:9]:
        assert list(validator.iter_errors(doc)), doc
    batch, _ = submission_batch([task(), job(), task(task_id=3)])  # what submit_many sends
    assert not list(validator.iter_errors(batch)), batch
    assert list(validator.iter_errors({"kind": "records", "records": [task(), INVALID[0][0]]}))


def test_the_pools_of_the_deployment_are_checked_by_the_coordinator() -> None:
    validate(task(), POOLS)
    with pytest.raises(InvalidMessage, match="zone: unknown 'C'; expected one of A, B"):
        validate(task(zone="C"), POOLS)


def test_each_task_gets_one_reply_even_across_a_takeover_and_a_resubmission() -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1")
        first = replying(fleet, "c1")
        await first.take_over()
        await fleet.submit(0)
        await fleet.broker.publish("orch.submit", task(task_id=0, arrival_s=1.0), "again")
        await fleet.broker.publish("orch.submit", {"kind": "task", "task_id": 9}, "bad")
        await fleet.broker.publish("orch.submit", task(task_id=8, zone="Z"), "unknown zone")
        await first.pump()
        assert await fleet.take("a1") == [(0, 1)]
        for kind in ("start", "end"):
            await fleet.result(kind, 0, "a1")
        await first.pump()
        second = replying(fleet, "c2")  # reads it all again, replies again: the id dedupes
        await second.take_over()
        replies = await fleet.broker.read_all(REPLIES, "orch.reply.>")
        by_task = sorted((r["task_id"], r["outcome"]) for r in replies)
        assert by_task == [(0, "completed"), (8, "rejected"), (9, "rejected")]
        assert first.counters.submitted == 1 and second.counters.completed == 1
        rejected = [
            e
            for e in await fleet.broker.read_all(EVENTS, "orch.event")
            if e["kind"] == "submission_rejected"
        ]
        assert len(rejected) == 4 and "category: expected a name" in rejected[0]["detail"]
        assert "zone: unknown 'Z'; expected one of A, B" in rejected[1]["detail"]

    asyncio.run(body(Fleet()))


def replying(fleet: Fleet, name: str) -> Coordinator:
    scenario = load_scenario(HERE / "small.yaml", [])
    config = CoordinatorConfig(
        "memory://", None, Clock(EPOCH, 1.0), wall=fleet.wall, autoscale=False, replies=True
    )
    return Coordinator(
        name,
        scenario,
        config,
        Recommender(),
        ("A", "B"),
        ("CodeGen", "Review"),
        broker=fleet.broker,
    )


class Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hooks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_recommendation_mode_publishes_a_burst_s_scale_up_and_starts_nothing() -> None:
    """A queue past the step threshold: events and a webhook say how many where; none starts."""
    server = HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hooks.received = []
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    asked = [0]

    async def body() -> None:
        scenario = load_scenario(HERE / "burst.yaml", [])
        recommender = Recommender(url)  # start() raises: nothing may be started
        c, broker = await busy_burst_primary(scenario, recommender, busy=5, queued=20)
        await c.evaluate(60.0)
        events = await broker.read_all(EVENTS, "orch.event")
        kinds = [e["kind"] for e in events]
        scale = [json.loads(e["detail"]) for e in events if e["kind"] == "scale"]
        assert len(scale) == 1 and scale[0]["recommended"] and scale[0]["delta"] == 0
        asked[0] = scale[0]["asked"]
        assert asked[0] > 0 and kinds.count("scale_recommended") == asked[0]
        assert "agent_requested" not in kinds and not c.requested
        assert len(recommender.recommendations) == 1

    try:
        asyncio.run(body())
    finally:
        server.shutdown()
        server.server_close()
    assert len(Hooks.received) == 1
    hook = Hooks.received[0]
    assert hook["recommendation"] == "scale" and hook["delta"] == asked[0]
    assert hook["pools"] == [{"zone": "A", "category": "Generic"}] * asked[0]


def test_command_templates_run_with_the_agent_s_fields_shell_quoted(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "record.py"
    script.write_text(
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f: f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    run = f"python3 {script}"
    provisioner = CommandProvisioner(
        "nats://h:4222",
        f"{run} start {{agent_id}} {{zone}} {{category}} {{url}}",
        f"{run} stop {{agent_id}}",
    )
    hostile = AgentSpec("a1", "A; touch pwned", "Code$(id)Gen")
    provisioner.start(hostile)
    provisioner.start(AgentSpec("a2", "B", "Review"))
    assert provisioner.running() == ["a1", "a2"]
    assert provisioner.kill("a1") and not provisioner.kill("a1")
    provisioner.retire("a2")
    provisioner.stop_all()  # waits for the templates
    calls = sorted(json.loads(line) for line in log.read_text().splitlines())
    assert calls == [
        ["start", "a1", "A; touch pwned", "Code$(id)Gen", "nats://h:4222"],
        ["start", "a2", "B", "Review", "nats://h:4222"],
        ["stop", "a1"],
        ["stop", "a2"],
    ]
    assert not (tmp_path / "pwned").exists() and provisioner.running() == []
    with pytest.raises(ValueError, match="expected fields among"):
        render("kubectl scale {replicas}", hostile, "u")


def test_credentials_come_from_the_environment_and_anonymous_stays_home(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    creds.write_text("x")
    auth = Auth.from_env(
        {
            "ORCHESTRA_NATS_CREDS": str(creds),
            "ORCHESTRA_NATS_USER": "u",
            "ORCHESTRA_NATS_PASSWORD": "p",
        }
    )
    options = auth.connect_options("tls://broker.example:4222")
    assert options["user_credentials"] == str(creds)
    assert (options["user"], options["password"]) == ("u", "p")
    assert options["tls"].verify_mode.name == "CERT_REQUIRED"
    assert "tls" not in Auth(token="t").connect_options("nats://127.0.0.1:4222")
    with pytest.raises(CredentialError, match="no credentials"):
        require("nats://broker.example:4222", Auth())
    assert require("nats://127.0.0.1:4222", Auth()) is None
    assert require("nats://broker.example:4222", Auth(), allow_anonymous=True) is None
    assert "without TLS" in str(require("nats://broker.example:4222", Auth(token="t")))
    with pytest.raises(CredentialError, match=r"ORCHESTRA_NATS_CA: .*: file not found"):
        Auth(ca_file=tmp_path / "none.pem").connect_options("tls://b:4222")
    with pytest.raises(CredentialError, match="expected a nats:// or tls://"):
        require("http://b", Auth(token="t"))


def test_windows_partition_the_arrivals_and_carry_the_fleet() -> None:
    submits = [task(task_id=n, arrival_s=float(n)) for n in range(30)]
    submits.append(task(task_id=99, zone="nowhere", arrival_s=3.0))  # rejected: not recorded
    results = [{"kind": "end", "task_id": n, "end_s": n + 0.5} for n in range(30)]
    windows = [Window(0, 10), Window(10, 20), Window(20, 30)]
    seen: list[int] = []
    for window in windows:
        mine, theirs, _, _ = window_docs(window, submits, results, [], [], POOLS)
        seen += [d["task_id"] for d in mine]
        assert all(0 <= d["arrival_s"] < 10 for d in mine)  # shifted to the window's start
        assert {r["task_id"] for r in theirs} == {d["task_id"] for d in mine}
    assert seen == list(range(30))
    events = [
        {
            "time_s": 1.0,
            "kind": "agent_joined",
            "subject": "a",
            "detail": '{"zone":"A","category":"C"}',
        },
        {
            "time_s": 2.0,
            "kind": "agent_joined",
            "subject": "b",
            "detail": '{"zone":"B","category":"C"}',
        },
        {"time_s": 3.0, "kind": "agent_left", "subject": "a", "detail": "{}"},
        {"time_s": 4.0, "kind": "zone_down", "subject": "B", "detail": "{}"},
    ]
    assert roster_after({"z": ("A", "C")}, events[:2]) == {
        "z": ("A", "C"),
        "a": ("A", "C"),
        "b": ("B", "C"),
    }
    assert roster_after({"z": ("A", "C")}, events) == {"z": ("A", "C")}


def test_the_commands_refuse_bad_input_in_one_line_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli import main

    for name in ("TOKEN", "USER", "PASSWORD", "CREDS", "NKEY", "CA"):
        monkeypatch.delenv(f"ORCHESTRA_NATS_{name}", raising=False)
    small = str(HERE / "small.yaml")
    remote = ["--nats", "nats://broker.example:4222"]
    work = tmp_path / "work.jsonl"
    work.write_text(json.dumps(task()) + "\n" + '{"kind": "task", "task_id": 2}\n')
    cases = [
        (["live", "serve", small, *remote], "no credentials"),
        (["live", "agent", "--zone", "A", "--category", "CodeGen", *remote], "no credentials"),
        (["live", "status", "--nats", "http://x"], "expected a nats:// or tls:// URL"),
        (
            ["live", "serve", small, "--nats", "nats://127.0.0.1:1", "--provisioner", "command"],
            "--start-command: expected a template",
        ),
        (
            ["live", "serve", small, "--nats", "nats://127.0.0.1:1", "--segment", "soon"],
            "--segment:",
        ),
        (
            ["live", "submit", str(work), "--nats", "nats://127.0.0.1:1"],
            f"{work}:2: category: expected a name",
        ),
        (
            ["live", "submit", str(tmp_path / "none.jsonl"), "--nats", "nats://127.0.0.1:1"],
            "none.jsonl: file not found",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, (argv, err)


class Retiring:
    """A provisioner that hands drained agents back (as CommandProvisioner's stop template)."""

    def __init__(self) -> None:
        self.specs: dict[str, AgentSpec] = {}
        self.retired: list[str] = []

    def start(self, spec: AgentSpec) -> None:
        raise AssertionError("a scale-down starts nothing")

    def kill(self, agent_id: str) -> bool:
        return False

    def retire(self, agent_id: str) -> None:
        self.retired.append(agent_id)

    def running(self) -> list[str]:
        return []

    def reap(self) -> list[str]:
        return []

    def stop_all(self) -> None:
        return None


def test_a_drained_agent_that_has_left_is_handed_back_to_its_provisioner() -> None:
    """Scale-down drains the idlest agents; once each has said offline, ``retire`` is called."""

    async def body() -> None:
        wall = [EPOCH]
        broker = MemoryBroker.orchestra(("A",), wall=lambda: wall[0])
        agents_answer_calls(broker)
        scenario = load_scenario(HERE / "burst.yaml", ["scaling.min_agents=3"])
        config = CoordinatorConfig("memory://", None, Clock(EPOCH, 1.0), wall=lambda: wall[0])
        provisioner = Retiring()
        c = Coordinator("c1", scenario, config, provisioner, ("A",), ("Generic",), broker=broker)

        async def beat(agent: str, status: str = "idle") -> None:
            doc = {"agent": agent, "zone": "A", "category": "Generic", "status": status}
            doc.update(in_flight=0, slots=1, speed=1.0, wall=wall[0])
            await broker.kv_put(AGENTS_BUCKET, agent, json.dumps(doc).encode())

        fleet = [f"g{n}" for n in range(8)]
        for agent in fleet:
            await beat(agent)
        await c.take_over()
        wall[0] = EPOCH + 60
        for agent in fleet:
            await beat(agent)
        await c.evaluate(60.0)
        drained = sorted(a for a, v in c.agents.items() if v.draining)
        assert drained and [s for s, d in broker.notified if d == b"drain"]
        assert provisioner.retired == []  # still finishing what it holds
        wall[0] = EPOCH + 70
        for agent in fleet:
            await beat(agent, "offline" if agent in drained else "idle")
        await c.check_health()
        await c.evaluate(180.0)
        assert sorted(provisioner.retired) == drained

    asyncio.run(body())


def test_windows_stay_on_the_segment_grid_after_a_drain_s_partial_window() -> None:
    assert next_edge(0.0, 3600.0) == 3600.0
    assert next_edge(3600.0, 3600.0) == 7200.0
    assert next_edge(4000.5, 3600.0) == 7200.0  # after a drain at 4000.5 s: back on the hour
