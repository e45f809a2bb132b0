"""Provisioners for a fleet this process does not own: shell commands, or recommendations only.

The coordinator decides how many agents and which pools (sim.policies);
something outside carries it out. Two ways, behind the same ``Provisioner``
interface as the local ones (sim.live.provisioner):

* ``CommandProvisioner`` — start and stop shell templates (a ``kubectl
  scale``, a cloud CLI, a script), formatted with the agent's fields, each
  shell-quoted: ``{agent_id}``, ``{zone}``, ``{category}``, ``{speed}``,
  ``{slots}``, ``{url}``. The started agent joins by heartbeating on the
  broker like any other; the stop template runs on ``kill`` and once a
  drained agent has left (``retire``), to hand its resources back.
* ``Recommender`` (``--provisioner none``) — recommendation mode: no process
  is started or stopped. Each autoscaling decision is published as events
  (``scale_recommended``) and POSTed to the configured webhook, for an
  external system (a Kubernetes HPA or KEDA, an operator) to act on; the
  service keeps recording what it would have done.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from sim.live.coordinator.monitoring import post_webhook
from sim.live.provisioner import AgentSpec

#: The fields a template may name (the agent's spec and the broker's URL).
FIELDS = ("agent_id", "zone", "category", "speed", "slots", "url")


def render(template: str, spec: AgentSpec, url: str) -> str:
    """*template* with the agent's fields, each shell-quoted (a zone cannot inject a command)."""
    values = {**{k: str(v) for k, v in asdict(spec).items()}, "url": url}
    try:
        return template.format(**{k: shlex.quote(values[k]) for k in FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"provisioner template {template!r}: expected fields among "
            f"{', '.join('{' + f + '}' for f in FIELDS)} ({exc!r})"
        ) from None


class CommandProvisioner:
    """Agents started and stopped by shell templates (see the module docstring)."""

    def __init__(self, url: str, start: str, stop: str | None = None) -> None:
        dummy = AgentSpec("a", "z", "c")
        render(start, dummy, url)  # a bad template fails at start-up, not at the first scale-up
        if stop is not None:
            render(stop, dummy, url)
        self.url, self.start_template, self.stop_template = url, start, stop
        self.specs: dict[str, AgentSpec] = {}
        self._live: set[str] = set()
        self._children: list[subprocess.Popen[bytes]] = []

    def _run(self, command: str) -> None:
        """Run *command* without waiting (a slow cloud CLI must not stall the coordinator).

        Through a shell: the template is the operator's own; the fields are quoted.
        """
        self._children = [c for c in self._children if c.poll() is None]
        self._children.append(subprocess.Popen(command, shell=True, start_new_session=True))

    def start(self, spec: AgentSpec) -> None:
        self.specs[spec.agent_id] = spec
        self._live.add(spec.agent_id)
        self._run(render(self.start_template, spec, self.url))

    def kill(self, agent_id: str) -> bool:
        """Run the stop template for the agent (if it has one and the agent was started here)."""
        spec = self.specs.get(agent_id)
        if spec is None or agent_id not in self._live:
            return False
        self._live.discard(agent_id)
        if self.stop_template is not None:
            self._run(render(self.stop_template, spec, self.url))
        return True

    def retire(self, agent_id: str) -> None:
        """A drained agent has left: hand its resources back (the stop template)."""
        self.kill(agent_id)

    def running(self) -> list[str]:
        return sorted(self._live)

    def reap(self) -> list[str]:
        return []  # the agents' processes are not ours: their heartbeats say who is there

    def stop_all(self) -> None:
        """Wait for the templates still running (the fleet itself is left to its owner)."""
        for child in self._children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                print(f"provisioner: {child.args!r} still running after 10 s", file=sys.stderr)


class Recommender:
    """Recommendation mode: decisions published, nothing started (see the module docstring)."""

    def __init__(self, webhook_url: str | None = None) -> None:
        self.webhook_url = webhook_url
        self.specs: dict[str, AgentSpec] = {}
        #: Every recommendation made, in order (what the service would have done).
        self.recommendations: list[dict[str, Any]] = []

    async def recommend(self, recommendation: dict[str, Any]) -> None:
        """Keep it and POST it to the webhook (only there)."""
        self.recommendations.append(recommendation)
        if self.webhook_url is not None:
            payload = {"recommendation": "scale", **recommendation}
            await asyncio.to_thread(post_webhook, self.webhook_url, payload)

    def start(self, spec: AgentSpec) -> None:
        raise RuntimeError("recommendation mode starts no agent")  # Scaling never calls it

    def kill(self, agent_id: str) -> bool:
        return False

    def running(self) -> list[str]:
        return []

    def reap(self) -> list[str]:
        return []

    def stop_all(self) -> None:
        return None
