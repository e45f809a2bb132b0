"""Spot reclaims at the primary: a notice drains the agent; at its end, its work goes back.

Scenario: the provider (the live run, ``sim.live.spot_notices``) writes a
notice for a spot agent: the deadline by which it takes the machine back. On
reading it the primary does what the simulator's failover does
(``Failover.reclaim``): the agent leaves its pool and is told to drain — it
takes no new work and finishes what it holds. If it drains in time it leaves
as any drained agent (``agent_left``); what it still held (tasks queued on
its subject) goes back to the queues. If it is still there at the deadline,
it is taken back (``agent_reclaimed``): everything it holds is dispatched
again. Either way the work is re-queued through the dispatch core's
``requeue`` — numbered as any new attempt, avoiding the agent, and not
charged to the retry budget (the provider's doing, not the task's): nothing
is lost, and no task fails for it. With ``health.replace_failed`` a
replacement is started at the notice, as the simulator asks its reserve
pool for one.

Whether an agent the autoscaler starts runs on spot is the pure spot rule's
(``sim.policies.spot``), on the pool as the books see it; this module reads
the notices and acts on the books.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sim.live.broker import Broker, encode
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import AgentView, Books, EventLog, ScenarioTime
from sim.live.spot_notices import SPOT_HANDLED_KEY, SPOT_NOTICES_KEY, notices_from
from sim.live.transport import LEASE_BUCKET, control_subject
from sim.metrics.level_rows import purchase_rows
from sim.policies.spot import joins_as_spot
from sim.scenario.spot import Spot

__all__ = ["SpotReclaims"]


class SpotReclaims:
    """The primary's side of spot reclaims (see the module docstring)."""

    def __init__(
        self,
        spot: Spot,
        books: Books,
        intake: Intake,
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        replace: Callable[[str, str, str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.spot, self.books, self.intake, self.broker = spot, books, intake, broker
        self.time, self.event = time, event
        #: Starts a replacement (zone, category, reason) at each notice (None: none is).
        self.replace = replace
        #: Notices acted on, by this primary or one before it (None: not read yet).
        self.handled: set[str] | None = None

    async def check(self) -> None:
        """Read the notices; drain the newly noticed agents, take back those past their end."""
        entry = await self.broker.kv_get(LEASE_BUCKET, SPOT_NOTICES_KEY)
        notices = notices_from(entry.document()) if entry is not None else {}
        if notices and self.handled is None:
            done = await self.broker.kv_get(LEASE_BUCKET, SPOT_HANDLED_KEY)
            self.handled = set(done.document().get("agents", [])) if done is not None else set()
        books = self.books
        for agent_id in sorted(notices):
            view = books.agents.get(agent_id)
            if agent_id in books.reclaiming or agent_id in books.reclaimed:
                continue
            if view is None:
                continue  # started, not yet joined: its notice is acted on when it has
            if not view.healthy:
                books.reclaimed.add(agent_id)  # gone already: nothing of it to drain
                continue
            await self.notice(view, notices[agent_id])
        now = self.time.now()
        for agent_id, deadline in sorted(books.reclaiming.items()):
            if now >= deadline:
                await self.take_back(books.agents[agent_id])

    async def notice(self, view: AgentView, deadline: float) -> None:
        """The agent's notice: out of its pool, told to drain; gone by *deadline*."""
        self.books.reclaiming[view.agent_id] = deadline
        if not view.draining:
            view.draining = True
            self.intake.withdraw(view.agent_id)
        await self.broker.notify(control_subject(view.agent_id), b"drain")
        handled = self.handled if self.handled is not None else set()
        if view.agent_id in handled:
            return  # acted on by the primary before this one (a takeover): drained again only
        await self.event("agent_draining", view.agent_id, reason="spot_reclaim")
        if self.replace is not None:
            # Lost capacity is replaced as the simulator replaces it (health.replace_failed).
            await self.replace(view.zone, view.category, f"replace reclaimed {view.agent_id}")
        handled.add(view.agent_id)
        self.handled = handled
        document = encode({"agents": sorted(handled)})
        await self.broker.kv_put(LEASE_BUCKET, SPOT_HANDLED_KEY, document)

    async def take_back(self, view: AgentView) -> None:
        """The notice ran out with the agent still there: everything it holds goes back."""
        self.books.end_notice(view.agent_id)
        view.healthy = False
        held = self.intake.held(view.agent_id)
        await self.event("agent_reclaimed", view.agent_id, redistributed=held, failed_for_good=0)
        await self.intake.gone(view, requeue=True)

    def rows(self, now: float) -> list[dict[str, Any]]:
        """``metrics.parquet`` rows (level ``purchase``): specialists on spot and on demand.

        As the simulator counts them: in the fleet (and on the bill) now, a
        draining one until it has left.
        """
        present = [a for a in self.books.agents.values() if a.healthy]
        spot = sum(a.spot for a in present)
        return purchase_rows(now, spot, len(present) - spot)

    def spawns_on_spot(self, zone: str, category: str) -> bool:
        """Whether an agent started now in (zone, category) runs on spot: the pool's share.

        The pool is its serving agents and those asked for, as the simulator's
        books count the agents in the fleet when one joins.
        """
        books = self.books
        members = [
            a
            for a in books.agents.values()
            if a.healthy and (a.zone, a.category) == (zone, category)
        ]
        starting = [s for s in books.requested.values() if (s.zone, s.category) == (zone, category)]
        spot_now = sum(a.spot for a in members) + sum(s.spot for s in starting)
        size_after = len(members) + len(starting) + 1
        return joins_as_spot(self.spot.share_of(zone, category), spot_now, size_after)
