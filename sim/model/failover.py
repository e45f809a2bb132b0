"""Failures and failover: agents crash, are detected, their work moves, replacements join.

Scenario (spec section 7.1): a specialist crashes. Nobody knows yet — the
load balancer may even send it more work, which piles up unseen. Its health
checks start failing; at the third consecutive failure (the detector's
verdict) the zone coordinator marks it unhealthy: it leaves the routing
table, every task it held (serving, queued, on its way) is counted as a
retried attempt and dispatched again to healthy agents of its category —
or fails for good once its retry budget is spent — and a replacement is
requested from the reserve pool. If the agent restarts before anyone
noticed, it re-registers and the coordinator re-drives what it had lost.

A zone outage takes a whole region down: its agents crash, and its zone
coordinator stops answering. When the chief's checks declare the
coordinator dead, the zone leaves the routing (its tasks go to the nearest
zones, paying cross-region latency) and the tasks waiting in its queue are
sent elsewhere; the autoscaler then grows the remaining zones. When the
region comes back, the zone re-joins with fresh agents and its traffic
returns to it. Outages, partitions' cuts and zone coordinators' crashes
overlap; which zones the chief can reach, and why, is ``sim.model.zone_reach``.

Detection times come from sim.policies.health: by default computed from the
check schedule, without an event per healthy check; with
``health.per_message`` every check is simulated, with the same results.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.metrics.records import EventLog
from sim.model.agent import Specialist
from sim.model.chief import Chief
from sim.model.fleet import Fleet
from sim.model.roster import Roster
from sim.model.slots import SlotBooks
from sim.model.traffic import Traffic
from sim.model.zone_reach import ZoneReach
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.policies.health import ConsecutiveFailureDetector, FailureDetector, HealthState
from sim.policies.routing import ZoneRouter
from sim.scenario.schema import Scenario
from sim.world.network import Network
from sim.world.policy_set import check_phases, coordinator_detector, failure_detector


class Failover:
    """Crash, detection, redistribution and replacement for one simulation."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        rng: np.random.Generator,
        *,
        fleet: Fleet,
        roster: Roster,
        zones: dict[str, ZoneState],
        core: DispatchCore[Any],
        chief: Chief,
        slots: SlotBooks,
        events: EventLog,
        router: ZoneRouter,
        network: Network,
        traffic: Traffic,
        chief_region: str,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.fleet = fleet
        self.roster = roster
        self.zones = zones
        self.core = core
        self.chief = chief
        self.slots = slots
        self.events = events
        self.router = router
        self.network = network
        self.traffic = traffic
        self.chief_region = chief_region
        health = scenario.health
        self.health = health
        phase = check_phases(rng, health.interval, health.phases)
        # Both from the shared factory, as the live coordinator builds its own: the spec's
        # rule judges zone coordinators and team leads; agents, the scenario's detector.
        # Two objects even when both are the spec's rule: their books are keyed by
        # distinct ids and each agent's phase is a pure function of its id, so nothing
        # any verdict reads changes with the split.
        self.detector = coordinator_detector(health, phase)
        #: The detector that judges agents: the spec's rule, or phi accrual on heartbeats.
        self.agent_detector: FailureDetector = failure_detector(health, phase)
        self.budget = scenario.retry.budget
        #: Pending analytic detections by agent id (cancelled by a restart before them).
        self._pending: dict[str, simpy.Event] = {}
        #: Crashed agents not yet detected (per-message monitors look here).
        self.down_since: dict[str, float] = {}
        #: Detection delays measured, for the summary and the tests.
        self.detections: list[dict[str, Any]] = []
        #: Zones out of the chief's reach (outages, cuts, dead coordinators), and why.
        self.reach = ZoneReach(
            env,
            scenario,
            chief,
            core,
            events,
            self.detector,
            self._crash_zone_agents,
            self._restart_zone_agents,
        )

    # ------------------------------------------------------------------ agents

    def crash(self, agent: Specialist, cause: str) -> None:
        """The agent dies now: its slots stop, its work stays stuck until detection."""
        now = self.env.now
        if agent.crashed or agent.draining:
            return
        self.core.unreachable.add(agent.id)  # no team reopening puts it back in the pool
        zone = self.zones[agent.zone]
        zone.local_queued -= agent.crash()
        self.slots.slots_stopped(agent, now, "crash")
        zone.active_agents -= 1
        zone.slots -= agent.slots
        self.fleet.went_offline(agent)
        self.down_since[agent.id] = now
        self.events.add(now, "agent_failed", agent.id, cause=cause, zone=agent.zone)
        if not self.health.per_message:
            when = self.agent_detector.detection_time(agent.id, now)
            if when >= now:
                timer = self.env.timeout(when - now, agent)
                timer.callbacks.append(lambda event: self._detected(event.value))
                self._pending[agent.id] = timer

    def monitor(self, agent_id: str) -> Generator[simpy.Event, Any, None]:
        """Per-message fidelity: every health check of one agent, as events."""
        detector = self.agent_detector
        # The schema allows per-message checks with the spec's rule only (phi is analytic).
        assert isinstance(detector, ConsecutiveFailureDetector)
        env = self.env
        k = detector.first_check_index(agent_id, env.now)
        while True:
            sent = detector.check_time(agent_id, k)
            yield env.timeout(max(0.0, sent - env.now))
            agent = self.fleet.agents.get(agent_id)
            if agent is None:
                return
            ok = not agent.crashed
            if not ok:
                yield env.timeout(self.health.timeout)
            transition = detector.observe(agent_id, env.now, ok)
            unhealthy = transition is not None and transition.to_state is HealthState.UNHEALTHY
            if unhealthy and agent.crashed:
                self._detected(agent)
                return
            k += 1

    def _detected(self, agent: Specialist) -> None:
        """The coordinator declares the agent unhealthy: reroute its work, replace it."""
        now = self.env.now
        self._pending.pop(agent.id, None)
        if not agent.crashed or agent.id not in self.fleet.agents:
            return
        failed_at = self.down_since.pop(agent.id, now)
        moved, failed = self._rescue(agent, "agent_failed")
        self.fleet.remove_failed(agent)
        self.agent_detector.forget(agent.id)
        self.detections.append(
            {"agent": agent.id, "failed_at": failed_at, "detected_at": now, "moved": moved}
        )
        self.events.add(
            now,
            "agent_detected",
            agent.id,
            failed_at=failed_at,
            detect_s=now - failed_at,
            redistributed=moved,
            failed_for_good=failed,
        )
        if self.health.replace_failed:
            dark = [name for name, state in self.zones.items() if state.down]
            zone = self.router.replacement_zone(agent.zone, dark)
            replacement = self.fleet.spawn(
                zone,
                agent.category,
                self.fleet.startup_s(),
                f"replace {agent.id}",
                replaces=agent.id,
            )
            if replacement is not None:
                delays = self.network.broadcast(self.chief_region)
                self.traffic.broadcast(len(delays))
                self.events.add(
                    now,
                    "agent_replaced",
                    agent.id,
                    replacement=replacement,
                    routing_update_s=max(delays.values(), default=0.0),
                )

    def _rescue(self, agent: Specialist, reason: str, *, counted: bool = True) -> tuple[int, int]:
        """Take every task the dead agent held and dispatch it again (or fail it for good).

        Not *counted*: the agent was taken away (a spot reclaim), so re-dispatching
        its work is not charged to the tasks' retry budgets.
        """
        # Serving, queued at the agent, on its way: the core's books hold every one of them.
        agent.forget_work()
        held = self.core.gone(agent.id)
        self.roster.wake_reopened()
        moved = failed = 0
        for task in held:
            self.zones[agent.zone].in_flight -= 1
            if self.chief.retry(task, agent.id, reason, counted=counted):
                moved += 1
            else:
                failed += 1
        return moved, failed

    # ------------------------------------------------------------------ spot reclaims

    def reclaim(self, agent: Specialist) -> bool:
        """The provider wants the spot agent back: notice now, gone at the deadline.

        From the notice the agent takes no new work and finishes what it
        holds (a drain), and a replacement is asked of the reserve pool (with
        ``health.replace_failed``, as for a failure). If the agent is still
        there when the notice runs out, its slots stop and everything it
        holds — serving, queued, on its way — is dispatched again, like a
        failed agent's work but known at once. False when the agent is
        already crashed or draining (nothing to reclaim).
        """
        now = self.env.now
        spot = self.scenario.purchase.spot
        if agent.crashed or agent.draining or spot is None:
            return False
        self.fleet.drain(agent.id, "spot_reclaim")
        self.events.add(now, "spot_notice", agent.id, zone=agent.zone, deadline_s=now + spot.notice)
        if self.health.replace_failed:
            # Lost capacity is replaced as a failed agent's is (an ECS service keeps its
            # desired count); the newcomer joins on spot if its pool is below its share.
            self.fleet.spawn(
                agent.zone,
                agent.category,
                self.fleet.startup_s(),
                f"replace reclaimed {agent.id}",
            )
        self.env.timeout(spot.notice, agent).callbacks.append(
            lambda event: self._reclaimed(event.value)
        )
        return True

    def _reclaimed(self, agent: Specialist) -> None:
        """The notice ran out: stop the agent if it has not drained, and re-queue what it held."""
        now = self.env.now
        if self.fleet.agents.get(agent.id) is not agent:
            return  # it finished draining in time and left
        self.slots.slots_stopped(agent, now, "spot reclaim")
        self.zones[agent.zone].local_queued -= agent.drop_local()
        moved, failed = self._rescue(agent, "spot_reclaim", counted=False)
        self.fleet.stopped(agent)
        self.events.add(
            now, "agent_reclaimed", agent.id, redistributed=moved, failed_for_good=failed
        )

    def host_back(self, agent_id: str) -> None:
        """The agent's host is back: its process starts, and serves one start-up later.

        A restart is a process start like a new agent's (``scaling.spawn_delay``
        and its spread), as live restarts a killed agent's process; before,
        the simulator had it serving the instant its host was back, and after
        a zone outage the spec's fleet had its 43 agents back at once where
        live's rejoined over 90 s. If its region has gone dark again by then, it
        stays down: the region's return restarts it.
        """
        delay = self.fleet.startup_s() + self.fleet.turns.wait(self.env.now)  # (a start's turn)
        if delay <= 0:
            self.restart(agent_id)
            return

        def started(_: simpy.Event) -> None:
            spec = self.fleet.failed.get(agent_id)
            agent = self.fleet.agents.get(agent_id)
            zone = spec.zone if spec is not None else agent.zone if agent is not None else None
            if zone is not None and not self.reach.region_dark(zone):
                self.restart(agent_id)

        self.env.timeout(delay).callbacks.append(started)

    def restart(self, agent_id: str) -> None:
        """A crashed agent comes back; if it was never detected, its lost work is re-driven now."""
        agent = self.fleet.agents.get(agent_id)
        now = self.env.now
        if agent is not None and agent.crashed:
            # Back before the detector noticed: the agent re-registers and the
            # coordinator reconciles what it believed the agent held.
            timer = self._pending.pop(agent.id, None)
            if timer is not None:
                timer.callbacks.clear()
            self.down_since.pop(agent.id, None)
            moved, _ = self._rescue(agent, "agent_restarted")
            self.fleet.remove_failed(agent)
            self.agent_detector.forget(agent.id)
            self.events.add(now, "agent_reconciled", agent.id, redistributed=moved)
            self.fleet.rejoin(agent.spec)
            self.events.add(now, "agent_restarted", agent_id)
        elif agent is None and agent_id in self.fleet.failed:
            self.fleet.rejoin(self.fleet.failed[agent_id])
            self.events.add(now, "agent_restarted", agent_id)

    # ------------------------------------------------------------------ zones

    def _crash_zone_agents(self, zone_name: str) -> None:
        """The region went dark: every agent in it crashes."""
        for agent in [a for a in self.fleet.agents.values() if a.zone == zone_name]:
            self.crash(agent, f"zone {zone_name} outage")

    def _restart_zone_agents(self, zone_name: str) -> None:
        """The region is back: its agents restart, each serving one start-up later."""
        for agent_id in sorted(
            a.id for a in self.fleet.agents.values() if a.zone == zone_name and a.crashed
        ):
            self.host_back(agent_id)
        for agent_id, spec in sorted(self.fleet.failed.items()):
            if spec.zone == zone_name:
                self.host_back(agent_id)

    def team_lead_down(self, lead: str) -> None:
        """A team lead dies: the zone coordinator can no longer reach its team.

        Its specialists keep serving what they hold (the agents are fine) but
        take no new work — neither routed nor pulled — until the zone
        coordinator's checks declare the lead dead and, ``health.zone_promotion``
        later, a member of the team takes over as lead (the same promotion a
        zone coordinator's standby goes through).
        """
        now = self.env.now
        team = lead.removesuffix("-lead")
        roster = self.roster
        if team in roster.headless_teams:
            return
        roster.headless_teams.add(team)
        for member in roster.team_members.get(team, []):
            if not member.draining and not member.crashed:
                self.core.withdraw(member.id)
        self.events.add(now, "team_lead_crash", lead)
        when = self.detector.detection_time(lead, now)

        def detected(_: simpy.Event) -> None:
            self.events.add(self.env.now, "team_lead_detected", lead, detect_s=self.env.now - now)
            self.detector.forget(lead)
            self.env.timeout(self.health.zone_promotion).callbacks.append(replaced)

        def replaced(_: simpy.Event) -> None:
            roster.headless_teams.discard(team)
            closed = team in self.core.closed_teams  # its bulkhead may hold it out still
            for member in roster.team_members.get(team, []):
                if member.draining or member.crashed or closed:
                    continue
                self.core.admit(member.info, report_load=True)
                member.wake_all()  # a sleeping slot may pull queued work now
            self.events.add(self.env.now, "team_lead_replaced", lead, downtime_s=self.env.now - now)

        self.env.timeout(max(0.0, when - now)).callbacks.append(detected)
