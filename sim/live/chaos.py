"""A live run's chaos timeline: the scenario's failures, acted out on the wall clock.

Scenario: at each chaos event's scenario time the run does to the real
fleet what the simulator does to its model — kills agents (restarted
``restart_after`` later), crashes the primary coordinator (it comes back as
a standby), slows agents down, takes a zone dark (its agents die and the
coordinators are told through the lease bucket's ``zones_down`` key; after
the duration the zone is back and the same agents start again) — and stops
or kills the embedded broker when the options ask — and plays the cloud
provider for spot capacity: the scenario's ``spot_reclaim`` entries, the
random reclaims of every spot agent (the starting fleet's, then each one
started later, a draw per join in join order), and the correlated reclaims
of whole zones, drawn as the simulator draws them, each a notice and, at its end, the machine
taken back. Each action is logged on ``orch.event`` at its own time, as the
simulator logs it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client

from sim.live.clock import Clock
from sim.live.network_chaos import NetworkChaos, Replicas
from sim.live.provisioner import AgentSpec, Provisioner
from sim.live.spot_notices import SPOT_NOTICES_KEY, reclaim_victims
from sim.live.transport import (
    LEASE_BUCKET,
    TEAM_LEADS_DOWN_KEY,
    ZONE_COORDINATORS_DOWN_KEY,
    ZONES_DOWN_KEY,
    EmbeddedServer,
    LiveError,
    control_subject,
    encode,
)
from sim.policies.placement import team_for
from sim.scenario.chaos import CHAOS_ACTIONS
from sim.scenario.schema import AgentSelector, ChaosEvent, Scenario, Slow
from sim.scenario.spot import SpotReclaim
from sim.world.spot_books import ReclaimDraws, initial_reclaims, zone_reclaims
from sim.world.topology import zone_teams

__all__ = ["ChaosTimeline", "Replicas"]


async def _in_order(actions: list[Callable[[], Awaitable[None]]]) -> None:
    for action in actions:
        await action()


class ChaosTimeline(NetworkChaos):
    """The chaos events and broker stops of one live run (see the module docstring).

    *broker_restarts* and *broker_kills* are scenario times; *server* is the
    embedded broker (None: an external one, which chaos cannot stop).
    """

    def __init__(
        self,
        scenario: Scenario,
        provisioner: Provisioner,
        nc: Client,
        server: EmbeddedServer | None,
        coordinators: Replicas,
        broker_restarts: list[float],
        broker_kills: list[float],
        *,
        spot_agents: list[str] | None = None,
        zones: list[str] | None = None,
        random_failures: list[ChaosEvent] | None = None,
    ) -> None:
        self.scenario, self.provisioner, self.nc, self.server = scenario, provisioner, nc, server
        self.coordinators = coordinators
        self.broker_restarts, self.broker_kills = broker_restarts, broker_kills
        #: Chaos joins so far, numbered as the simulator's fleet numbers them (their teams).
        self._joins = itertools.count(1)
        #: Zones dark now, by the scenario second each went dark (the ``zones_down`` key).
        self.zones_down: dict[str, float] = {}
        #: Zones whose coordinator crashed, by the second it did (``zone_coordinators_down``).
        self.coordinators_down: dict[str, float] = {}
        #: Team leads that crashed, by the second each did (``team_leads_down``).
        self.leads_down: dict[str, float] = {}
        self.zones_cut = {}
        #: Recoveries waiting for their time (the run cancels them with the timeline).
        self.background: list[asyncio.Task[None]] = []
        #: The starting fleet's spot agents in join order, and the zones (for mass reclaims).
        self.spot_agents, self.zones = spot_agents or [], zones or []
        #: Spot reclaim notices given so far: agent id -> deadline (scenario s).
        self.spot_notices: dict[str, float] = {}
        #: Random reclaim times, drawn per spot join as the simulator's market draws them.
        self.reclaim_draws = ReclaimDraws(scenario)
        #: The soak's random failures (``chaos_random``), drawn as the simulator draws them.
        self.random_failures = random_failures or []
        #: Agents the provisioner had started when last looked at (later ones may be on spot).
        self._seen_specs = 0

    async def run(self, js: Any, clock: Clock) -> None:
        """The scenario's chaos timeline on the wall clock, logged as the simulator logs it."""
        actions: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        # The scenario's timeline and the spot reclaims drawn as the simulator draws them: the
        # starting fleet's random ones, and the correlated mass reclaims of whole zones.
        scenario = self.scenario
        plan = [
            *scenario.chaos,
            *self.random_failures,
            *initial_reclaims(scenario, self.spot_agents, self.reclaim_draws),
            *zone_reclaims(scenario, self.zones),
        ]
        self._seen_specs = len(self.provisioner.specs)  # the starting fleet: drawn above
        if self.reclaim_draws.mean_s is not None:
            self.background.append(asyncio.create_task(self._watch_spot_starts(js, clock)))
        for index, event in enumerate(plan):
            actions.append((event.at, index, self._chaos_action(js, clock, event)))
        for index, at in enumerate(self.broker_restarts):
            actions.append((at, 10_000 + index, self._broker_restart(js, clock)))
        for index, at in enumerate(self.broker_kills):
            actions.append((at, 20_000 + index, self._broker_restart(js, clock, kill=True)))
        # Each instant's actions start on time, in the timeline's order, whether or not an
        # earlier instant's are still at work (a kill waiting on its event writes to a busy
        # broker had held the next kill back 12 scenario seconds at x40).
        by_time: dict[float, list[Callable[[], Awaitable[None]]]] = {}
        for at, _, action in sorted(actions, key=lambda a: (a[0], a[1])):
            by_time.setdefault(at, []).append(action)
        for at, group in by_time.items():
            await asyncio.sleep(clock.until(at))
            self.background.append(asyncio.create_task(_in_order(group)))
        await asyncio.Event().wait()

    def _broker_restart(
        self, js: Any, clock: Clock, *, kill: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """Stop the embedded broker (gracefully, or SIGKILL) and start it on the same store."""

        async def restart() -> None:
            server = self.server
            if server is None:
                raise LiveError("broker restarts need the embedded broker (no --nats)")
            at = clock.now()
            if kill:
                await asyncio.to_thread(server.kill)
                await asyncio.to_thread(server.start)
            else:
                await asyncio.to_thread(server.restart)
            how = "kill" if kill else "stop"
            await self._event(js, clock, "broker_restart", "nats", at, how=how)

        return restart

    def _chaos_action(
        self, js: Any, clock: Clock, event: ChaosEvent
    ) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            now = clock.now()
            crash = event.coordinator_crash
            if event.kill is not None:
                await self._kill(js, clock, event, now)
            elif crash is not None and crash.endswith("-coord"):
                await self._zone_coordinator_crash(js, clock, event, now)
            elif crash is not None:
                # Logged as the role it hit, so the replay crashes the same role: which of the
                # scenario's chiefs leads there is the simulator's Raft's to say, not live's.
                role = self.coordinators.crash(crash)
                await self._log_chaos(js, clock, event, now, coordinator_crash=role)
                self.coordinators.start()  # the crashed replica comes back as a standby
            elif event.slow is not None:
                await self._slow(js, clock, event, now)
            elif event.zone_outage is not None:
                await self._zone_outage(js, clock, event, now)
            elif event.spot_reclaim is not None:
                await self._spot_reclaim(js, clock, event, now)
            elif event.error_burst is not None:
                await self._error_burst(js, clock, event, now)
            elif event.team_lead_crash is not None:
                await self._team_lead_crash(js, clock, event, now)
            elif event.message_loss is not None:
                await self._message_loss(js, clock, event, now)
            elif event.partition is not None:
                await self._partition(js, clock, event, now)
            elif event.one_way_partition is not None:
                await self._one_way_partition(js, clock, event, now)
            elif event.join is not None:
                await self._join(js, clock, event, now)
            else:
                action = next(a for a in CHAOS_ACTIONS if getattr(event, a) is not None)
                print(
                    f"live run: chaos {action} at {event.at:g} s is the simulator's alone, skipped"
                )

        return act

    async def _kill(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """kill -9 of the selected agents; their hosts back ``restart_after`` later."""
        assert event.kill is not None
        victims = self._select(event.kill)
        for agent_id in victims:
            self.provisioner.kill(agent_id)
        await self._log_chaos(js, clock, event, now, kill=AgentSelector(agents=victims))
        for agent_id in victims:
            await self._event(js, clock, "agent_failed", agent_id, now, cause="chaos")
        if event.restart_after is not None:
            asyncio.get_running_loop().call_later(
                clock.wall(event.restart_after), self._restart_agents, victims
            )

    async def _join(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """A specialist starts itself (chaos ``join``): started now, with no reserve pool
        asked; it serves once its process is up and has said so, as any joining agent."""
        join = event.join
        assert join is not None
        agent_id = join.agent or f"{join.zone}-{join.category}-j{secrets.token_hex(3)}"
        # Its team as the simulator's fleet deals a join's: the zone's teams in turn.
        team = team_for(next(self._joins), zone_teams(self.scenario)[join.zone])
        self.provisioner.start(AgentSpec(agent_id, join.zone, join.category, team=team))
        named = join.model_copy(update={"agent": agent_id})
        await self._log_chaos(js, clock, event, now, join=named)

    async def _slow(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """Gray agents: their tasks take *factor* times as long for the duration."""
        assert event.slow is not None
        assert event.duration is not None  # the schema requires one
        factor, duration = event.slow.factor, event.duration
        victims = self._select(event.slow)
        for agent_id in victims:
            await self.nc.publish(control_subject(agent_id), f"slow {factor!r}".encode())
        await self._log_chaos(js, clock, event, now, slow=Slow(agents=victims, factor=factor))
        await self._event(js, clock, "agents_slow", ",".join(victims), now, factor=factor)

        async def recover() -> None:
            await asyncio.sleep(clock.until(now + duration))
            for agent_id in victims:
                await self.nc.publish(control_subject(agent_id), b"slow 1")

        self.background.append(asyncio.create_task(recover()))

    async def _error_burst(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """Attempts error more often for a while: logged as the simulator logs it. The
        coordinator raises the error probability it sends with each assignment from the
        scenario's timeline (``sim.live.coordinator.attempt_faults``); this is the record."""
        burst, duration = event.error_burst, event.duration
        assert burst is not None
        assert duration is not None  # the schema requires one
        await self._log_chaos(js, clock, event, now)
        hit = ",".join(burst.categories) or "all"
        zones = ",".join(burst.zones) or "all"
        await self._event(
            js, clock, "error_burst", hit, now, probability=burst.probability, zones=zones
        )

        async def end() -> None:
            await asyncio.sleep(clock.until(now + duration))
            await self._event(js, clock, "error_burst_end", hit)

        self.background.append(asyncio.create_task(end()))

    async def _zone_coordinator_crash(
        self, js: Any, clock: Clock, event: ChaosEvent, now: float
    ) -> None:
        """A zone's coordinator dies, its agents do not: the coordinator is told, as it would
        learn from the silence (``sim.live.coordinator.unreachable_zones`` plays the failover).

        With no standby, ``restart_after`` restarts it: the key is cleared then.
        """
        name = event.coordinator_crash
        assert name is not None
        zone = name.removesuffix("-coord")
        if zone not in self.zones:
            print(f"live run: chaos crash of {name} at {event.at:g} s: no zone {zone}, skipped")
            return
        self.coordinators_down[zone] = now
        await self._announce(js, ZONE_COORDINATORS_DOWN_KEY, self.coordinators_down)
        await self._log_chaos(js, clock, event, now)
        await self._event(js, clock, "coordinator_crash", name, now)
        standby = next(z.standby for z in self.scenario.topology.zones if z.name == zone)
        if event.restart_after is None or standby:
            return  # (a standby takes over: the simulator restarts no one either)
        restart_after = event.restart_after

        async def restart() -> None:
            await asyncio.sleep(clock.until(now + restart_after))
            self.coordinators_down.pop(zone, None)
            await self._announce(js, ZONE_COORDINATORS_DOWN_KEY, self.coordinators_down)

        self.background.append(asyncio.create_task(restart()))

    async def _team_lead_crash(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """A team lead dies: the coordinator is told, as it would learn from the silence
        (``sim.live.coordinator.team_failover`` plays the replacement)."""
        lead = event.team_lead_crash
        assert lead is not None
        self.leads_down[lead] = now
        await self._announce(js, TEAM_LEADS_DOWN_KEY, self.leads_down)
        await self._log_chaos(js, clock, event, now)
        await self._event(js, clock, "team_lead_crash", lead, now)

    async def _zone_outage(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """A zone goes dark: its agents die, and the coordinator is told to route around it.

        After the duration the zone is back: the key is cleared and the same
        agents start again under their ids (they rejoin their pools).
        """
        zone = event.zone_outage
        assert zone is not None
        assert event.duration is not None  # the schema requires one
        duration = event.duration
        victims = self._select(AgentSelector(zone=zone))
        for agent_id in victims:
            self.provisioner.kill(agent_id)
        self.zones_down[zone] = now
        await self._announce(js, ZONES_DOWN_KEY, self.zones_down)
        await self._log_chaos(js, clock, event, now)
        for agent_id in victims:
            await self._event(js, clock, "agent_failed", agent_id, now, cause="zone_outage")

        async def recover() -> None:
            await asyncio.sleep(clock.until(now + duration))
            self.zones_down.pop(zone, None)
            await self._announce(js, ZONES_DOWN_KEY, self.zones_down)
            self._restart_agents(victims)

        self.background.append(asyncio.create_task(recover()))

    async def _spot_reclaim(self, js: Any, clock: Clock, event: ChaosEvent, now: float) -> None:
        """The provider takes spot agents back: a notice now, the machine at its end.

        The notices go under one key the primary reads (``sim.live.spot_notices``);
        the event log has the chaos entry (its agents named, for a replay) and a
        ``spot_notice`` per agent, as the simulator logs them. At the deadline
        whatever still runs is killed: the coordinator has re-queued its work.
        """
        spot, reclaim = self.scenario.purchase.spot, event.spot_reclaim
        assert reclaim is not None
        if spot is None:
            print(f"live run: chaos at {event.at} s: spot_reclaim with no purchase.spot, skipped")
            return
        running, specs = self.provisioner.running(), self.provisioner.specs
        victims = reclaim_victims(reclaim, running, specs, self.spot_notices)
        deadline = now + spot.notice
        for agent_id in victims:
            self.spot_notices[agent_id] = deadline
        lease = await js.key_value(LEASE_BUCKET)
        await lease.put(SPOT_NOTICES_KEY, encode({"notices": self.spot_notices}))
        named = SpotReclaim(agents=victims, fraction=None)
        await self._log_chaos(js, clock, event, now, spot_reclaim=named)
        for agent_id in victims:
            zone = specs[agent_id].zone
            await self._event(
                js, clock, "spot_notice", agent_id, now, zone=zone, deadline_s=deadline
            )

        async def take_back() -> None:
            await asyncio.sleep(clock.until(deadline))
            still = set(self.provisioner.running())
            for agent_id in victims:
                if agent_id in still:
                    self.provisioner.kill(agent_id)

        self.background.append(asyncio.create_task(take_back()))

    async def _watch_spot_starts(self, js: Any, clock: Clock, every_s: float = 1.0) -> None:
        """Draw a random reclaim for each spot agent started after the starting fleet.

        A replacement or an autoscaler's start joins the provisioner's specs (in
        start order); each on spot draws the next time of the reclaim stream
        from the moment it is seen (at most *every_s* scenario seconds late), as
        the simulator's market draws at its join, and is reclaimed then.
        """
        while True:
            await asyncio.sleep(clock.wall(every_s))
            specs = self.provisioner.specs  # (in start order; a spec is never removed)
            started = list(itertools.islice(specs.values(), self._seen_specs, None))
            self._seen_specs = len(specs)
            now = clock.now()
            for spec in started:
                if not spec.spot:
                    continue
                event = self.reclaim_draws.joined(spec.agent_id, now)
                if event is not None:
                    self.background.append(asyncio.create_task(self._reclaim_at(js, clock, event)))

    async def _reclaim_at(self, js: Any, clock: Clock, event: ChaosEvent) -> None:
        await asyncio.sleep(clock.until(event.at))
        await self._chaos_action(js, clock, event)()

    def _restart_agents(self, agent_ids: list[str]) -> None:
        for agent_id in agent_ids:
            spec = self.provisioner.specs.get(agent_id)
            if spec is not None:
                self.provisioner.start(spec)

    def _select(self, selector: AgentSelector) -> list[str]:
        running = self.provisioner.running()
        if selector.agents is not None:
            return [a for a in selector.agents if a in running]
        specs = self.provisioner.specs
        matching = [
            a
            for a in running
            if (selector.category is None or specs[a].category == selector.category)
            and (selector.zone is None or specs[a].zone == selector.zone)
        ]
        if selector.count is not None:
            return matching[: selector.count]
        if selector.fraction is not None:
            return matching[: max(1, round(selector.fraction * len(matching)))]
        return matching
