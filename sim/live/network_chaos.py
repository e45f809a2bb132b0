"""The network's chaos a live run can act out: message loss, and partitions (one-way too).

Scenario: live's coordinators and agents talk through one broker on one
machine's network, so nothing here cuts a real link. What a partition or a
loss does to the orchestration is played where it lands instead: a primary
off the chiefs' majority is fenced and a standby takes the lease, zones off
that side are announced cut off (``sim.live.coordinator.unreachable_zones``), and
the primary itself loses assignments on their way to a zone
(``sim.live.coordinator.message_loss``); a one-way partition of the
leader's outbound links fences it as the majority elects another. The
primary plays ``chief-1``, the simulator's bootstrapped leader, until the
run's first takeover; after one, a partition by chief names fences no
primary (which chief the scenario's Raft would have elected is its own to
say), and the replay, which plays the partition as logged, may move its
leader where live did not. Latency spikes, WAL stalls and the leader's
inbound cut act on the simulator's network and Raft alone: live's chiefs
share a lease, not Raft over links of their own, and its latency is the
machine's.

Why a module of its own: the base of ``ChaosTimeline``, which keeps the
timeline's other actions; the helpers every action logs and announces
through are here.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from sim.live.announcements import announcement
from sim.live.broker import event_document
from sim.live.clock import Clock
from sim.live.transport import LEASE_BUCKET, ZONES_CUT_OFF_KEY, publish
from sim.scenario.chaos import CHAOS_ACTIONS
from sim.scenario.schema import ChaosEvent, Scenario
from sim.world.partition import partition_sides

__all__ = ["NetworkChaos", "Replicas"]


class Replicas(Protocol):
    """The run's coordinator replicas, as far as chaos touches them."""

    def crash(self, target: str) -> str:
        """Crash the replica *target* names (``leader``, ``follower``, ``chief-k``); the role
        it had: ``leader`` or ``follower``."""
        ...

    def start(self) -> object:
        """Start one more replica (it waits as a standby)."""
        ...

    def primary_chief(self) -> str | None:
        """The scenario chief the primary plays (``chief-k``, as ``crash`` names them)."""
        ...


class NetworkChaos:
    """Message loss and partitions (see the module docstring), and the helpers every
    chaos action logs and announces through."""

    scenario: Scenario
    coordinators: Replicas
    zones: list[str]
    #: Zones a partition cuts off from the chiefs, by the second it did (``zones_cut_off``).
    zones_cut: dict[str, float]
    background: list[asyncio.Task[None]]

    async def _event(
        self,
        js: Any,
        clock: Clock,
        kind: str,
        subject: str,
        at: float | None = None,
        **detail: Any,
    ) -> None:
        """Log an event at *at* (default now): a chaos action is logged at its own time."""
        time_s = clock.now() if at is None else at
        await publish(js, "orch.event", event_document(time_s, kind, subject, detail))

    async def _log_chaos(
        self, js: Any, clock: Clock, event: ChaosEvent, now: float, **resolved: Any
    ) -> None:
        """The ``chaos`` record a replay plays again: the event as it happened, at *now*, with
        what it *resolved* to (the agents a selector hit, the role a crash hit)."""
        done = event.model_copy(update={"at": now, **resolved})
        action = next(a for a in CHAOS_ACTIONS if getattr(done, a) is not None)
        document = done.model_dump(mode="json", exclude_none=True)
        await self._event(js, clock, "chaos", action, now, event=document)

    async def _announce(self, js: Any, key: str, since: dict[str, float]) -> None:
        """Tell the coordinator what is down now (``sim.live.announcements``)."""
        lease = await js.key_value(LEASE_BUCKET)
        await lease.put(key, announcement(since))

    async def _message_loss(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """The chief's assignments to some zones are lost for a while: logged as the simulator
        logs it. The primary draws the losses and sends again after the TTL, from the
        scenario's timeline (``sim.live.coordinator.message_loss``); this is the record."""
        loss = event.message_loss
        assert loss is not None
        await self._log_chaos(js, clock, event, now)
        await self._event(
            js, clock, "message_loss", ",".join(loss.zones or ()), now, rate=loss.rate
        )

    async def _partition(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """Chiefs and zones split for a while (``sim.world.partition``): a primary off the
        majority's side is fenced — it can no longer renew its lease, so a standby takes it
        (at once where a majority side exists; at the heal where none does, as no Raft side
        can elect a leader then) — and the zones off that side are announced cut off
        (``sim.live.coordinator.unreachable_zones``). Logged as the simulator logs it."""
        spec, duration = event.partition, event.duration
        assert spec is not None
        assert duration is not None  # the schema requires one
        chiefs = [f"chief-{k + 1}" for k in range(self.scenario.topology.control_plane.chiefs)]
        sides = partition_sides(spec.groups, chiefs, self.zones)
        await self._log_chaos(js, clock, event, now)
        split = len(sides.chief_sides) >= 2
        if split:
            text = " | ".join(",".join(side) for side in sides.chief_sides)  # as Raft splits
            await self._event(js, clock, "partition", text, now)
        # The cut first, so that whichever primary leads next reads it before it places.
        self.zones_cut.update(dict.fromkeys(sides.cut_zones, now))
        if sides.cut_zones:
            await self._announce(js, ZONES_CUT_OFF_KEY, self.zones_cut)
        # The primary plays chief-1 until the run's first takeover; after one, which chief the
        # scenario's Raft would have elected is not live's to know: it stays on.
        chief = self.coordinators.primary_chief()
        fenced = chief is not None and chief not in sides.connected
        if fenced:
            self.coordinators.crash("leader")
            if sides.connected:
                self.coordinators.start()

        async def heal() -> None:
            await asyncio.sleep(clock.until(now + duration))
            if fenced and not sides.connected:
                self.coordinators.start()
            for zone in sides.cut_zones:
                self.zones_cut.pop(zone, None)
            if sides.cut_zones:
                await self._announce(js, ZONES_CUT_OFF_KEY, self.zones_cut)
            if split:
                await self._event(js, clock, "partition_healed", "chiefs")

        self.background.append(asyncio.create_task(heal()))

    async def _one_way_partition(
        self, js: Any, clock: Clock, event: ChaosEvent, now: float
    ) -> None:
        """A chief's links work one way only for a while. On a follower nothing moves
        (pre-vote keeps it from disrupting the leader), live or simulated. On the leader
        with its outbound links cut nobody hears its heartbeats and the followers elect
        another: live fences the primary and a standby takes the lease. Logged as the role
        it hit, as a crash is, so the replay cuts the same role.

        The leader's *inbound* cut is the simulator's alone: that leader goes on
        heartbeating, unable to commit, until check-quorum makes it step down an
        election timeout later, and only then do the followers elect — about twice
        the leaderless time of a crash, with a leader that still holds its place.
        A lease-holding primary has no such state to play (fenced at once, the replay
        calibrated on it stayed leaderless 3.4 times live's wait p99), so it is
        skipped with a message, and the replay has none of it either."""
        spec, duration = event.one_way_partition, event.duration
        assert spec is not None
        assert duration is not None  # the schema requires one
        primary = self.coordinators.primary_chief()
        hit_leader = spec.chief == "leader" or (primary is not None and spec.chief == primary)
        role = "leader" if hit_leader else "follower"
        if hit_leader and spec.direction == "inbound":
            print(
                f"live run: chaos one_way_partition (inbound) of the leader at {now:g} s "
                "is the simulator's alone, skipped"
            )
            return
        if hit_leader:
            self.coordinators.crash("leader")
            self.coordinators.start()  # the fenced chief rejoins as a follower at the heal
        resolved = spec.model_copy(update={"chief": role})
        await self._log_chaos(js, clock, event, now, one_way_partition=resolved)
        await self._event(js, clock, "one_way_partition", role, now, direction=spec.direction)

        async def heal() -> None:
            await asyncio.sleep(clock.until(now + duration))
            await self._event(js, clock, "one_way_healed", "chiefs")

        self.background.append(asyncio.create_task(heal()))
