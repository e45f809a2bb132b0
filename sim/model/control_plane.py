"""The control plane: chief coordinators replicating the dispatch log with Raft.

Scenario (spec section 7.1, "Coordinator failure"): three chief
coordinators form a Raft group. The leader is the primary: every task it
dispatches is first appended to its log (the write-ahead log) and committed
by a quorum. When the leader's heartbeats stop, a follower's randomised
election timeout runs out, it asks for votes, and the winner resumes from
the committed log; while there is no leader, dispatch waits, and work the
old leader had not committed is re-driven by the new one.

Two speeds. While the group is healthy — a leader with every live follower
caught up — nothing about Raft needs an event: a commit costs one quorum
round trip plus an fsync, added to the task's dispatch. When a chief crashes
or the chiefs are partitioned, the nodes (pure state machines from
sim.policies.raft) are ticked and every message is delivered with its
latency, until a leader is stable again. This is what keeps a simulated day
cheap without losing a single election's detail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import simpy

from sim.metrics.records import EventLog
from sim.model.chief_disks import ChiefDisks
from sim.model.chief_network import ChiefNetwork
from sim.model.task import Task
from sim.policies.raft import MemoryStorage, Message, MessageKind, RaftNode, Role
from sim.scenario.schema import Scenario


class ControlPlane:
    """The chiefs' Raft group, fast-forwarded while healthy, simulated tick by tick when not."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        events: EventLog,
        rng: np.random.Generator,
        net_rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.events = events
        #: A held task's assignment is committed by a leader: dispatch it (the chief's send).
        self.on_commit: Callable[[Task, float], None] | None = None
        #: A new leader took over (after a leaderless spell, or from another chief).
        self.on_new_leader: Callable[[], None] | None = None
        spec = scenario.topology.control_plane
        self.spec = spec
        self.ids = list(range(1, spec.chiefs + 1))
        self.tick_s = spec.tick
        low, high = spec.election_timeout
        self._timeout_ticks = (max(2, round(low / spec.tick)), max(2, round(high / spec.tick)))
        self._heartbeat_ticks = max(1, round(spec.heartbeat / spec.tick))
        self._rng = rng
        self.storage = {i: MemoryStorage() for i in self.ids}
        self.nodes: dict[int, RaftNode] = {}
        self.up: set[int] = set(self.ids)
        network = scenario.network
        #: Who reaches whom and how long a Raft message takes (partitions, one-way cuts).
        self.links = ChiefNetwork(network, net_rng)
        #: Each chief's write-ahead log (fsync queue, WAL stalls); free with latency off.
        self.disks = ChiefDisks(self.ids, spec.fsync if network.enabled else 0.0)
        #: What a WAL append costs while the group is healthy: a quorum round trip and an
        #: fsync. Fixed for the run (a stall slows one chief's disk, never the healthy path),
        #: so a plain attribute: every dispatched task reads it.
        self.steady_commit_s = 2 * self.links.one_way_s + self.disks.fsync_s
        #: Each chief's life (it changes at a crash) and when each past life ended:
        #: what a chief had not yet sent when it crashed is never sent.
        self._life = dict.fromkeys(self.ids, 0)
        self._ended_at: dict[tuple[int, int], float] = {}
        #: Tasks waiting for a leader to commit their assignment, by task id.
        self.held: dict[int, Task] = {}
        self._proposed: dict[int, int] = {}  # task id -> node it was proposed to
        self.detailed = False
        #: The tick grid of the current detailed spell: tick k falls at origin + k * tick.
        #: Nodes are ticked lazily: only when a timer is due (the wake-up) or right
        #: before a message is stepped in, each node catching up to the grid at once.
        self._origin = 0.0
        self._ticked: dict[int, int] = {}
        self._wake_at: float | None = None
        self.leader: int | None = None
        self._leaderless_since: float | None = None
        self.downtime_s = 0.0
        self.elections = 0
        self.last_election_s: float | None = None
        #: (time, node, term) of every campaign (pre-vote included): when a follower's
        #: timer declared the leader gone — the detection a failure matrix reports.
        #: Kept off the event log, whose hash pins the pinned scenarios.
        self.campaigns: list[tuple[float, int, int]] = []
        #: Fidelity mode: never fast-forward; every assignment goes through the log.
        self.every_message = spec.every_message
        self._start()

    # ------------------------------------------------------------------ building

    def _start(self) -> None:
        """Build the nodes, elect chief-1; in fidelity mode, tick from time zero on."""
        for node_id in self.ids:
            self.nodes[node_id] = self._new_node(node_id)
        # The group starts with chief-1 elected (term 1): a cluster that has been running.
        self._bootstrap()
        if self.every_message:
            self._enter_detailed()

    def _draw_timeout(self) -> int:
        low, high = self._timeout_ticks
        return int(self._rng.integers(low, high + 1))

    def _new_node(self, node_id: int) -> RaftNode:
        return RaftNode(
            node_id,
            self.ids,
            self.storage[node_id],
            self._draw_timeout,
            election_ticks=self._timeout_ticks[0],
            heartbeat_ticks=min(self._heartbeat_ticks, self._timeout_ticks[0] - 1),
            pre_vote=self.spec.pre_vote,
            check_quorum=True,
        )

    def _bootstrap(self) -> None:
        """Elect chief-1 synchronously at time zero, so runs start with a working leader."""
        first = self.nodes[self.ids[0]]
        for _ in range(10 * self._timeout_ticks[1]):
            first.tick()
            self._exchange_instantly()
            if first.state is Role.LEADER:
                break
        for _ in range(3):
            for node in self.nodes.values():
                node.tick()
            self._exchange_instantly()
        for node in self.nodes.values():
            node.drain_trace()
        self.leader = first.id if first.state is Role.LEADER else None

    def _exchange_instantly(self) -> None:
        """Deliver every pending message at once (bootstrap only)."""
        pending = True
        while pending:
            pending = False
            for node in self.nodes.values():
                if not node.has_ready():
                    continue
                ready = node.ready()
                self.storage[node.id].save(ready.hard_state, ready.entries)
                node.advance(ready)
                for message in ready.messages:
                    pending = True
                    self.nodes[message.dst].step(message)

    # ------------------------------------------------------------------ dispatch

    def _commit(self, task: Task) -> None:
        assert self.on_commit is not None  # wired by the engine before the run
        self.on_commit(task, self.env.now)

    def hold(self, task: Task) -> None:
        """No healthy leader: the task waits to be committed by one."""
        self.held[task.id] = task
        leader = self._current_leader()
        if leader is not None and self.nodes[leader].propose(task.id):
            self._proposed[task.id] = leader
            self._pump(leader)

    def _current_leader(self) -> int | None:
        leaders = [
            i for i in sorted(self.up) if self.nodes[i].state is Role.LEADER and self._has_quorum(i)
        ]
        return max(leaders, key=lambda i: self.nodes[i].term) if leaders else None

    def _has_quorum(self, node_id: int) -> bool:
        """A majority it can both reach and hear (a one-way link commits nothing)."""
        connected = self.links.connected
        reachable = [i for i in self.up if connected(node_id, i) and connected(i, node_id)]
        return len(reachable) >= len(self.ids) // 2 + 1

    # ------------------------------------------------------------------ faults

    def resolve(self, name: str) -> int | None:
        """A chaos target ('leader', 'follower', 'chief-2') as a node id."""
        if name == "leader":
            return self._current_leader() or self.leader
        if name == "follower":
            leader = self._current_leader() or self.leader
            followers = [i for i in sorted(self.up) if i != leader]
            return followers[0] if followers else None
        if name.startswith("chief-"):
            return int(name.removeprefix("chief-"))
        return None

    def crash(self, node_id: int) -> None:
        if node_id not in self.up:
            return
        was_leader = self.nodes[node_id].state is Role.LEADER
        last_beat = self._last_beat(node_id)
        self.up.discard(node_id)
        self._ended_at[node_id, self._life[node_id]] = self.env.now
        self._life[node_id] += 1
        self._replay_last_beat(last_beat)
        self.events.add(self.env.now, "coordinator_crash", f"chief-{node_id}", leader=was_leader)
        self._enter_detailed()

    def _last_beat(self, node_id: int) -> list[tuple[float, Message]]:
        """A fast-forwarded leader's last heartbeat: when it reached each follower, relative to now.

        While fast-forwarded nobody's clock moved. The leader's last heartbeat
        left `since` seconds before the fault, uniformly within its heartbeat
        interval, as in the Raft paper's experiment (§9.3): each follower's
        election timer runs from the moment *it* received that heartbeat.
        """
        if self.nodes[node_id].state is not Role.LEADER or self.detailed:
            return []
        leader = self.nodes[node_id]
        leader.step(Message(MessageKind.BEAT, node_id, node_id))
        ready = leader.ready()
        self.storage[node_id].save(ready.hard_state, ready.entries)
        leader.advance(ready)
        since = float(self._rng.uniform(0.0, self._heartbeat_ticks * self.tick_s))
        return [(self.links.delay() - since, m) for m in ready.messages]

    def _replay_last_beat(self, last_beat: list[tuple[float, Message]]) -> None:
        """Deliver the last heartbeat (or put it on the wire), then age each receiver's timer."""
        for arrival, message in last_beat:
            if arrival > 0:  # still on the wire at the crash
                self._wire(message, self.env.now + arrival)
                continue
            follower = self.nodes[message.dst]
            follower.step(message)
            self._pump(message.dst)
            # The timer has run since the receipt: the ticks that passed, whole.
            for _ in range(int(-arrival / self.tick_s)):
                follower.tick()

    def cut_one_way(self, node_id: int, direction: str) -> set[tuple[int, int]]:
        """An asymmetric partition: *node_id* hears nobody (inbound) or nobody hears it.

        Returns the links cut, for :meth:`heal_one_way`. An outbound cut of a
        fast-forwarded leader replays its last heartbeat first, as a crash does:
        the followers' timers run from when they last heard it.
        """
        others = [i for i in self.ids if i != node_id]
        if direction == "outbound":
            links = {(node_id, other) for other in others}
            last_beat = self._last_beat(node_id)
        else:
            links = {(other, node_id) for other in others}
            last_beat = []
        self.links.cut(links)
        self._replay_last_beat(last_beat)
        self.events.add(self.env.now, "one_way_partition", f"chief-{node_id}", direction=direction)
        self._enter_detailed()
        return links

    def heal_one_way(self, links: set[tuple[int, int]]) -> None:
        self.links.restore(links)
        self.events.add(self.env.now, "one_way_healed", "chiefs")
        self._enter_detailed()

    def stall_disk(self, node_id: int, fsync_s: float) -> None:
        """The chief's WAL writes take *fsync_s* each until :meth:`unstall_disk`."""
        self.disks.stall(node_id, fsync_s)
        self.events.add(self.env.now, "wal_stall", f"chief-{node_id}", fsync_s=fsync_s)
        self._enter_detailed()

    def unstall_disk(self, node_id: int) -> None:
        """Writes are fast again; the ones queued behind the stall still finish first."""
        now = self.env.now
        self.disks.unstall(node_id, now)
        self.events.add(now, "wal_stall_end", f"chief-{node_id}")
        self._enter_detailed()

    def restart(self, node_id: int) -> None:
        """A chief comes back: a fresh node from its persisted term, vote and log."""
        if node_id in self.up:
            return
        self.nodes[node_id] = self._new_node(node_id)
        self.nodes[node_id].drain_trace()
        self.up.add(node_id)
        self._ticked.pop(node_id, None)  # a fresh node joins the grid where it stands
        self.events.add(self.env.now, "coordinator_restart", f"chief-{node_id}")
        self._enter_detailed()

    def partition(self, groups: list[list[str]]) -> None:
        named = [{int(n.removeprefix("chief-")) for n in group} for group in groups]
        rest = set(self.ids) - set().union(*named)
        if rest:
            named.append(rest)
        self.links.partition(named)
        text = " | ".join(",".join(group) for group in groups)
        self.events.add(self.env.now, "partition", text)
        self._enter_detailed()

    def heal(self) -> None:
        self.links.heal()
        self.events.add(self.env.now, "partition_healed", "chiefs")
        self._enter_detailed()

    # ------------------------------------------------------------------ detailed mode

    def _enter_detailed(self) -> None:
        if not self.detailed:
            self.detailed = True
            self._origin = self.env.now
            self._ticked = {}
        grid = self._grid()
        for node_id in self.up:
            self._ticked.setdefault(node_id, grid)
        self._check_leader()
        self._arm()

    def _grid(self) -> int:
        """The last tick of the grid at or before now."""
        return int((self.env.now - self._origin) / self.tick_s + 1e-6)

    def _catch_up(self, node_id: int) -> None:
        """Tick a node up to the grid (the ticks since it was last ticked, at once)."""
        if not self.detailed:
            return  # fast-forwarded: nobody's clock moves
        grid = self._grid()
        behind = grid - self._ticked.get(node_id, grid)
        self._ticked[node_id] = grid
        if behind > 0:
            self.nodes[node_id].tick(behind)
            self._pump(node_id)

    def _arm(self) -> None:
        """Wake at the earliest tick on which some live node's timer fires."""
        if not self.detailed or not self.up:
            return
        due = min(self._ticked[i] + self.nodes[i].ticks_to_timeout() for i in self.up)
        at = self._origin + due * self.tick_s
        if self._wake_at is not None and self._wake_at <= at:
            return
        self._wake_at = at
        env = self.env
        env.timeout(max(0.0, at - env.now), at).callbacks.append(self._wake)

    def _wake(self, event: simpy.Event) -> None:
        """A timer is due: tick every live node to this tick, in id order, as a ticker would."""
        if not self.detailed or event.value != self._wake_at:
            return  # superseded by an earlier wake-up, or back to fast-forward
        self._wake_at = None
        for node_id in sorted(self.up):
            self._catch_up(node_id)
        self._check_leader()
        self._settle()

    def _settle(self) -> None:
        """Back to fast-forward once stable; otherwise keep the next wake-up armed."""
        if not self.every_message and self._stable():
            self.detailed = False
            self._wake_at = None
            self._release_all()
        else:
            self._arm()

    def _pump(self, node_id: int) -> None:
        """Carry out a node's Ready: persist, send (with latency and the partition), apply."""
        node = self.nodes[node_id]
        if not node.has_ready():
            return
        ready = node.ready()
        self.storage[node_id].save(ready.hard_state, ready.entries)
        node.advance(ready)
        now = self.env.now
        # Persist before send, for what promises durable state: a response leaves
        # once every write issued so far is done; a request leaves at once, in
        # parallel with the write (see Ready). A node whose disk stalls is stuck
        # in its loop (etcd's Ready loop is serial): everything waits for the disk.
        written = self.disks.write(node_id, now, must_sync=ready.must_sync)
        serial = self.disks.serial(node_id, now)
        for message in ready.messages:
            leave = written if message.is_response or serial else now
            self._wire(message, leave + self.links.delay(), leave)
        if ready.committed and node.state is Role.LEADER:
            if serial and written > now:
                data = [entry.data for entry in ready.committed]
                later = (node_id, self._life[node_id], data)
                self.env.timeout(written - now, later).callbacks.append(self._apply_later)
                return
            for entry in ready.committed:
                self._committed(entry.data)

    def _apply_later(self, event: simpy.Event) -> None:
        """Apply what a stalled leader committed, once its disk has written it.

        Not if it crashed meanwhile: the entries are on a quorum, and the next
        leader re-drives the tasks still held.
        """
        node_id, life, entries = cast(tuple[int, int, list[object]], event.value)
        if life != self._life[node_id]:
            return
        for data in entries:
            self._committed(data)

    def _wire(self, message: Message, arrival: float, leave: float | None = None) -> None:
        """Send *message*, leaving its sender at *leave* (default: now), to arrive at *arrival*."""
        if message.dst not in self.up or not self.links.connected(message.src, message.dst):
            return  # crashed or cut off: the message is lost
        env = self.env
        sent = (message, env.now if leave is None else leave, self._life[message.src])
        env.timeout(arrival - env.now, sent).callbacks.append(self._deliver)

    def _deliver(self, event: simpy.Event) -> None:
        message, leave, life = cast(tuple[Message, float, int], event.value)
        if message.dst not in self.up or not self.links.connected(message.src, message.dst):
            return
        if life != self._life[message.src] and leave > self._ended_at[message.src, life]:
            return  # it was to leave after its sender crashed (waiting for the disk)
        self._catch_up(message.dst)
        self.nodes[message.dst].step(message)
        self._pump(message.dst)
        self._check_leader()
        if self.detailed:
            self._settle()

    def _committed(self, data: object) -> None:
        if not isinstance(data, int):
            return  # the empty entry a new leader appends
        task = self.held.pop(data, None)
        self._proposed.pop(data, None)
        if task is not None:
            self._commit(task)

    @property
    def leaderless(self) -> bool:
        """No chief leads now (the autoscaler, which the leader runs, waits for one)."""
        return self._leaderless_since is not None

    def _check_leader(self) -> None:
        """Track who leads; a new leader re-drives the work nobody committed."""
        now = self.env.now
        for node in self.nodes.values():
            for change in node.drain_trace():
                if change.role in (Role.PRE_CANDIDATE, Role.CANDIDATE):
                    self.campaigns.append((now, change.node, change.term))
                if change.role is Role.LEADER:
                    self.elections += 1
                    self.events.add(now, "election", f"chief-{change.node}", term=change.term)
        leader = self._current_leader()
        if leader is None:
            if self._leaderless_since is None:
                self._leaderless_since = now
            return
        if self._leaderless_since is not None:
            self.downtime_s += now - self._leaderless_since
            self.last_election_s = now - self._leaderless_since
            self.events.add(
                now, "leader_elected", f"chief-{leader}", downtime_s=self.last_election_s
            )
            self._leaderless_since = None
            if self.on_new_leader is not None:
                self.on_new_leader()
        elif leader != self.leader and self.on_new_leader is not None:
            self.on_new_leader()  # (handed over without a leaderless spell)
        self.leader = leader
        # Re-drive: everything held and not proposed to this leader goes to it now.
        for task_id in sorted(self.held):
            if self._proposed.get(task_id) != leader and self.nodes[leader].propose(task_id):
                self._proposed[task_id] = leader
        self._pump(leader)

    def _stable(self) -> bool:
        """A leader whose live, reachable followers hold its whole log and know its commit."""
        leader = self._current_leader()
        if leader is None or not self.links.intact or self.disks.any_stalled:
            return False
        if any(self.disks.serial(i, self.env.now) for i in self.up):
            return False
        node = self.nodes[leader]
        last = node.log.last_index
        if node.commit_index < last:
            return False
        return all(
            self.nodes[i].log.last_index == last and self.nodes[i].commit_index == last
            for i in self.up
        )

    def _release_all(self) -> None:
        """Back to fast-forward: anything still held is committed by the stable leader now."""
        for task_id in sorted(self.held):
            task = self.held.pop(task_id)
            self._proposed.pop(task_id, None)
            self._commit(task)

    def finish(self, now: float) -> None:
        """Close the books at the end of the run (an election still going counts as downtime)."""
        if self._leaderless_since is not None:
            self.downtime_s += now - self._leaderless_since
            self.events.add(
                now, "leaderless_at_end", "chiefs", downtime_s=now - self._leaderless_since
            )
            self._leaderless_since = None
