"""Monitoring: every metrics interval, a sample, the alert rules and their actions.

Scenario: at each multiple of ``metrics.interval`` the primary writes a
global and a per-zone sample (the simulator's ``MetricsCollector``, fed the
coordinator's view of the zones) to ``orch.metric`` and evaluates the
scenario's alert rules on it. A firing ``scale_up_immediate`` forces the
autoscaler up at once; ``page_oncall`` and ``notify_slack`` POST to the
configured webhook (and only there). The opt-in levels follow the sample:
tasks shed per tier (``tiers``) and specialists on spot and on demand
(``purchase.spot``), as the simulator samples them. A takeover goes on
from the predecessor's samples (:meth:`Monitoring.resume`), as the
simulator's one monitor does across a change of leader: before, a new
primary's first interval ran from second 0 and its count from zero, and
live alone fired ``low_throughput`` after a full-fleet partition (22 tasks a
minute, its replay 132).
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.request
from collections.abc import Callable
from typing import Any

from sim.live.broker import Broker
from sim.live.coordinator.scaling import Scaling
from sim.live.coordinator.state import Books, EventLog, ScenarioTime
from sim.metrics.collector import MetricsCollector, ZoneSnapshot
from sim.policies.alerts import AlertEvaluator, alert_sample
from sim.policies.scaling_loop import alert_fields, react_to_alert


class Monitoring:
    """Samples, alerts, webhooks (see the module docstring)."""

    def __init__(
        self,
        books: Books,
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        collector: MetricsCollector,
        alerts: AlertEvaluator,
        scaling: Scaling,
        zones: tuple[str, ...],
        control_agents: int,
        *,
        autoscale: bool,
        webhook_url: str | None,
    ) -> None:
        self.books, self.broker, self.time, self.event = books, broker, time, event
        self.collector, self.alerts, self.scaling = collector, alerts, scaling
        self.zones, self.control_agents = zones, control_agents
        self.autoscale, self.webhook_url = autoscale, webhook_url
        self.webhooks_sent: list[dict[str, Any]] = []
        #: The opt-in levels' rows at a sample time (``tier``, ``purchase``), in this order.
        self.level_rows: list[Callable[[float], list[dict[str, Any]]]] = []

    def snapshots(self) -> list[ZoneSnapshot]:
        books = self.books
        counts = self.scaling.intake.counts.by_zone(self.zones)
        out = []
        for zone in self.zones:
            members = [a for a in books.agents.values() if a.zone == zone]
            serving = [a for a in members if a.healthy]
            now = counts[zone]
            out.append(
                ZoneSnapshot(
                    zone=zone,
                    total_agents=len(serving),
                    active_agents=len(serving),
                    busy_agents=now.busy_agents,
                    queue_depth=now.waiting,
                    in_flight=now.held,
                    in_system=now.held + now.queued,
                    slots=sum(a.slots for a in serving),
                    busy_slots=now.busy_slots,
                    offline_agents=sum(1 for a in members if not a.healthy),
                )
            )
        return out

    def resume(self, rows: list[dict[str, Any]]) -> None:
        """A takeover goes on from the predecessor's samples (*rows*: ``orch.metric``, oldest
        first): its alert rules replay them, so what was firing or pending stays so, and
        the next sample's interval and cumulative count start at its last one."""
        samples = [r for r in rows if r.get("level") == "global"]
        for row in samples:
            self.alerts.evaluate(float(row["time_s"]), alert_sample(row, self.control_agents))
        if samples:
            last = samples[-1]
            self.collector.resume(float(last["time_s"]), int(last["tasks_completed"] or 0))

    async def sample(self, at: float | None = None) -> None:
        now = self.time.now() if at is None else at
        self.time.advance(now)
        row = self.collector.sample(now, self.snapshots())
        rows = list(self.collector.recent(1 + len(self.zones), "zone"))
        levels = [r for rows_at in self.level_rows for r in rows_at(now)]
        for r in [row, *rows[-len(self.zones) :], *levels]:
            await self.broker.publish("orch.metric", {k: _plain(v) for k, v in r.items()})
        for event in self.alerts.evaluate(now, alert_sample(row, self.control_agents)):
            # (stamped at the evaluation, as the simulator and the webhook stamp it: a loaded
            # loop once logged an alert of the window's last evaluation after its end)
            await self.event.at(now, "alert", event.name, **alert_fields(event))
            reaction = react_to_alert(event, self.autoscale)
            if reaction.force_scale_up is not None:
                self.scaling.loop.force(now, reaction.force_scale_up)
                await self.scaling.evaluate(now)
            elif reaction.notify and self.webhook_url:
                payload = {
                    "alert": event.name,
                    "action": event.action,
                    "severity": event.severity,
                    "metric": event.metric,
                    "value": event.value,
                    "time_s": now,
                }
                await asyncio.to_thread(post_webhook, self.webhook_url, payload)
                self.webhooks_sent.append(payload)


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST *payload* as JSON to the configured URL (never anywhere else)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except OSError as exc:
        print(f"webhook {url}: {exc}")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
