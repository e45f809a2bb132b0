"""The broker's names: streams, subjects, consumers and keys, and the order of the records.

Everything the live shell keeps durable lives in the broker, so a coordinator
that takes over (or a broker that restarts on the same store) resumes from
the broker's state rather than from anyone's memory:

* ``ORCH_SUBMIT`` and ``ORCH_SUBMIT_<zone>`` — every arrival as it was submitted (the record
  of demand): a client that names no stream publishes on ``orch.submit``; the live run's
  workload driver (and the benchmark) publish each arrival on its home zone's
  ``orch.submit.<zone>``, so the zones' submissions fsync side by side — one stream stores
  its writes one after another, a few hundred to a thousand a second with ``sync_interval:
  always``, which capped the dispatch rate. A service (``live serve``) has only
  ``ORCH_SUBMIT``: its compaction knows that one;
* ``ORCH_TASKS_<n>_<zone>`` — a zone's work-queue streams, ``TASK_SHARDS`` of them
  (subjects ``orch.task.<zone>.<n>.<agent>``, *n* a hash of the agent's id,
  ``task_shard``): one subject and one durable pull consumer per agent of the zone,
  carrying the tasks the coordinator assigned to it (the load balancer's choices and the
  queued work its free slots take). A message not acked within the ack wait is
  redelivered on the same consumer — to the agent's next incarnation when it restarts
  under its id; an agent declared dead has its subject purged and consumer deleted, and
  the coordinator assigns its tasks anew. Streams per zone, not for the fleet, for
  isolation and placement: in a real deployment a zone's stream is placed on servers in
  that zone's region (next to its agents), so a zone outage takes down only its own
  queue, and a purge or a consumer delete in one zone never touches another zone's
  queue. A task moved to another zone (spill, a dead agent's tasks, an evacuated pool)
  is a new message on the other zone's stream; the coordinator's books, not the streams,
  say who holds it, and a completion counts once by task id. The message id
  ``t.<task>.<number>.<agent>`` names the agent, hence the one stream it can go to, so
  JetStream's dedupe (per stream) still makes a re-dispatch idempotent;
* ``ORCH_RESULTS_<zone>`` — attempt starts and ends as the zone's agents report them
  (subject ``orch.result.<zone>``: the record of work);
* ``ORCH_DISPATCH_<zone>`` — the coordinator's own records: where each task was routed
  and each assignment (attempt, agent), on the stream of the zone it went to (subject
  ``orch.dispatch.<zone>``). Streams of their own, and one per zone: a JetStream stream
  stores and fsyncs its writes one after another, so with ``sync_interval: always`` one
  stream takes a few hundred to a thousand writes a second on this disk whatever the
  load, while separate streams fsync side by side (four streams ~3-5 times one). With a
  task's four record writes on two fleet-wide streams, those two capped dispatch near
  300-700 a second. The coordinator does not read its own records back while it follows
  the results (it needs them only at a takeover). Readers take every zone's streams and
  merge them into one order (``merge_records``: by the time each record states, then by
  stream, then by position), so the contents, not the stream layout, fix the order;
* ``ORCH_EVENTS`` / ``ORCH_METRICS`` — events and metrics samples, in the shared format;
* key-value ``orch_agents`` — heartbeats and status (the role etcd plays in the spec);
* key-value ``orch_lease`` — the coordinator lease, taken by compare-and-set on revision;
  also the run's epoch and the zones that are down.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Any

from sim.live.broker import unbundle

SUBMIT, EVENTS = "ORCH_SUBMIT", "ORCH_EVENTS"
#: The fleet-wide record streams of earlier layouts, (stream, subject): no zone's subject
#: overlaps theirs. Nothing writes them; a takeover reads them when a store still has them
#: (a service upgraded in place), so what they record is not done again.
LEGACY_RECORDS = (("ORCH_DISPATCH", "orch.dispatch"), ("ORCH_RESULTS", "orch.result"))
#: Prefix of the per-zone submission streams (``ORCH_SUBMIT_<zone>``, ``orch.submit.<zone>``).
SUBMIT_PREFIX = "ORCH_SUBMIT_"
#: Prefix of the per-zone results streams (``ORCH_RESULTS_<zone>``, ``orch.result.<zone>``).
RESULTS_PREFIX = "ORCH_RESULTS_"
#: Prefix of the per-zone streams of the coordinator's routing and assignment records
#: (``ORCH_DISPATCH_<zone>``, ``orch.dispatch.<zone>``).
DISPATCH_PREFIX = "ORCH_DISPATCH_"
#: Prefix of the per-zone work-queue streams (``ORCH_TASKS_<zone>``).
TASKS_PREFIX = "ORCH_TASKS_"
#: The single fleet-wide work queue of earlier layouts; its ``orch.task.>`` would
#: overlap every zone's subjects, so a broker that still has it is migrated.
LEGACY_TASKS = "ORCH_TASKS"
METRICS = "ORCH_METRICS"
#: Each task's outcome for the client that submitted it (``orch.reply.>``; the last reply
#: per subject is kept, so a resubmitted finished task is answered from here).
REPLIES = "ORCH_REPLIES"
AGENTS_BUCKET, LEASE_BUCKET = "orch_agents", "orch_lease"
BROADCAST = "orch.broadcast"
#: Key of ``orch_lease`` listing the zones that are dark (chaos ``zone_outage``): what a
#: coordinator would learn from a zone's silence, told at once since live zones have no
#: coordinator process of their own to fall silent.
ZONES_DOWN_KEY = "zones_down"
#: The ``orch_lease`` key naming the zones whose coordinator crashed (chaos ``X-coord``): the
#: zone's agents live on, its coordinator is silent until its standby is promoted (or, with
#: none, until it restarts). The same document as ``zones_down``: zones, and since when.
ZONE_COORDINATORS_DOWN_KEY = "zone_coordinators_down"
#: The ``orch_lease`` key naming the team leads that crashed (chaos ``team_lead_crash``), by
#: the second each did: the same document, leads for zones.
TEAM_LEADS_DOWN_KEY = "team_leads_down"
#: The ``orch_lease`` key naming the zones a partition cuts off from the chiefs (chaos
#: ``partition``): alive, out of the chief's reach. The same document as ``zones_down``.
ZONES_CUT_OFF_KEY = "zones_cut_off"
#: Every announcement key chaos writes: a run clears them all before it starts.
ANNOUNCEMENT_KEYS = (
    ZONES_DOWN_KEY,
    ZONE_COORDINATORS_DOWN_KEY,
    TEAM_LEADS_DOWN_KEY,
    ZONES_CUT_OFF_KEY,
)
#: Consumers a zone's work-queue stream allows: one per agent of the zone. Stated on the
#: stream because nats-server 2.15 limits a stream to 1,000 consumers unless it says
#: otherwise (and reads 0 or -1 as "the default", not "unlimited").
MAX_AGENTS_PER_ZONE = 100_000
#: Work-queue streams per zone, an agent's subject in one by a hash of its id. Why not one:
#: nats-server (2.15) scans every consumer of a work-queue stream on each ack
#: (``stream.ackMsg`` → ``checkForInterest``), one consumer per agent; with 2,500 agents to
#: a zone's stream that scan took 62 % of the broker's CPU in a 10,000-agent burst
#: (``benchmarks/bench_live.py``). Eight streams hold an eighth each, and fsync side by side.
TASK_SHARDS = 8


def _token(name: str) -> str:
    """*name* as one subject token / consumer name (no dots, wildcards or spaces)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def task_shard(agent_id: str) -> int:
    """Which of its zone's work-queue streams holds *agent_id*'s subject (a hash of its id)."""
    return zlib.crc32(_token(agent_id).encode()) % TASK_SHARDS


def shard_stream(zone: str, shard: int) -> str:
    """Work-queue stream *shard* of *zone* (``ORCH_TASKS_<shard>_<zone>``)."""
    return f"{TASKS_PREFIX}{shard}_{_token(zone)}"


def tasks_stream(zone: str, agent_id: str) -> str:
    """The work-queue stream that holds *agent_id*'s subject (one of its zone's)."""
    return shard_stream(zone, task_shard(agent_id))


def zone_tasks_streams(zone: str) -> list[tuple[str, str]]:
    """(stream, subjects) of each of *zone*'s work-queue streams, shard by shard."""
    return [(shard_stream(zone, n), f"orch.task.{_token(zone)}.{n}.>") for n in range(TASK_SHARDS)]


def zone_task_subjects(zone: str) -> str:
    """Every task subject of *zone*'s agents (what the one stream of the earlier layout took)."""
    return f"orch.task.{_token(zone)}.>"


def retired_task_subjects(zone: str) -> str:
    """The subjects *zone*'s earlier-layout stream takes while its tasks move to the shards."""
    return f"orch.retired.task.{_token(zone)}.>"


def legacy_tasks_stream(zone: str) -> str:
    """*zone*'s single work-queue stream of the earlier layout (``ORCH_TASKS_<zone>``)."""
    return f"{TASKS_PREFIX}{_token(zone)}"


def agent_subject(zone: str, agent_id: str) -> str:
    """The work-queue subject of the tasks assigned to one agent of *zone*."""
    return f"orch.task.{_token(zone)}.{task_shard(agent_id)}.{_token(agent_id)}"


def results_stream(zone: str) -> str:
    """The stream of the starts and ends *zone*'s agents report."""
    return f"{RESULTS_PREFIX}{_token(zone)}"


def result_subject(zone: str) -> str:
    """The subject an agent of *zone* reports its starts and ends on."""
    return f"orch.result.{_token(zone)}"


def dispatch_stream(zone: str) -> str:
    """The stream of the coordinator's routings to and assignments in *zone*."""
    return f"{DISPATCH_PREFIX}{_token(zone)}"


def dispatch_subject(zone: str) -> str:
    """The subject of the coordinator's routing and assignment records for *zone*."""
    return f"orch.dispatch.{_token(zone)}"


def submit_stream(zone: str) -> str:
    """The stream of the arrivals submitted to *zone*."""
    return f"{SUBMIT_PREFIX}{_token(zone)}"


def submit_subject(zone: str) -> str:
    """The subject of arrivals homed in *zone* (``orch.submit`` takes them too)."""
    return f"orch.submit.{_token(zone)}"


def submit_streams(zones: Iterable[str]) -> list[tuple[str, str]]:
    """(stream, subject) of every submission stream: ``ORCH_SUBMIT``, then the zones' in order."""
    return [(SUBMIT, "orch.submit")] + [(submit_stream(z), submit_subject(z)) for z in zones]


def record_streams(zones: Iterable[str]) -> list[tuple[str, str]]:
    """(stream, subject) of every record stream, in one fixed order.

    Every zone's dispatch records first, then every zone's results, zones in
    the order given (the scenario's): the order ``merge_records`` breaks ties in.
    """
    zones = tuple(zones)
    return [(dispatch_stream(z), dispatch_subject(z)) for z in zones] + [
        (results_stream(z), result_subject(z)) for z in zones
    ]


#: Set (true) on an agent's end record whose attempt never reported its start (it ended
#: within ``sim.live.start_report.START_GRACE_S``): the record stands for the start too.
START_UNREPORTED = "start_unreported"

#: The time field each record kind states (when it was written, in scenario seconds).
RECORD_TIME = {"dispatch": "dispatch_s", "assign": "assign_s", "start": "start_s", "end": "end_s"}


def merge_records(parts: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records of several streams as one list, in an order fixed by their contents.

    Bundles (several records in one message) are opened. Sorted by the time
    each record states; equal times keep the order of
    *parts* (``record_streams``), then each stream's own order. Why: the
    streams are written side by side, so how their messages interleave on
    the wire is an accident; readers (the run's records, a standby's
    catch-up) must not depend on it.
    """
    keyed = [
        (float(doc.get(RECORD_TIME.get(str(doc.get("kind")), ""), 0.0)), part, position, doc)
        for part, docs in enumerate(parts)
        for position, doc in enumerate(unbundle(docs))
    ]
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def agent_consumer(agent_id: str) -> str:
    return f"agent_{_token(agent_id)}"


def control_subject(agent_id: str) -> str:
    return f"orch.ctl.{agent_id}"


#: A zone coordinator's call to an agent before it sends it work (``policies.circuit_breaker``):
#: a core request on the agent's control subject. A live agent answers CALL_ANSWERED; a dead
#: process has no subscription left, and the broker answers "no responders" at once, as a
#: call to a dead host fails at once. A host of many agents answers CALL_GONE for one of its
#: agents that died (its subscription serves the others).
CALL = b"call"
CALL_ANSWERED = b"ok"
CALL_GONE = b"gone"
