"""Circuit breakers on the coordinators' calls: their transitions logged, their timers kept.

Scenario: a coordinator's call to an agent that died goes unanswered. The
breaker (``sim.policies.resilience``) counts the failures; once it opens,
the agent leaves the dispatch pool, and after ``open_s`` it turns half-open
and lets one probe through — the agent is back in the pool until the next
call tells. The zone breakers are the dispatch core's zone gate's; this
module logs their transitions as it logs the agents'.
"""

from __future__ import annotations

from typing import Any, cast

import simpy

from sim.metrics.records import EventLog
from sim.model.agent import Specialist
from sim.policies.dispatch import DispatchCore
from sim.policies.resilience import BreakerBoard


class CallBreakers:
    """The breakers on calls to agents, and the log of every breaker's transitions."""

    def __init__(
        self,
        env: simpy.Environment,
        events: EventLog,
        core: DispatchCore[Any],
        agents: dict[str, Specialist],
        board: BreakerBoard | None = None,
        open_s: float = 30.0,
    ) -> None:
        self.env = env
        self.events = events
        self.core = core
        self.agents = agents
        #: The breakers (None: calls to dead agents just hang until detection).
        self.board = board
        self.open_s = open_s
        #: Agents that have a breaker at all (a set: the hot path checks it per delivery).
        self.targets: set[str] = set()

    def call_ok(self, agent: Specialist, now: float) -> None:
        """A call to an agent with a breaker went through."""
        assert self.board is not None
        self.board.record_success(agent.id, now)
        self._moved(agent)

    def call_failed(self, agent: Specialist, now: float) -> None:
        """A call to a dead agent failed: counted against it."""
        assert self.board is not None
        self.targets.add(agent.id)
        self.board.record_failure(agent.id, now)
        self._moved(agent)

    def _moved(self, agent: Specialist) -> None:
        """Act on the breaker's transitions: open = out of the pool; half-open = one probe back."""
        if agent.id in self.drain():
            self.core.withdraw(agent.id)
            self.env.timeout(self.open_s, agent).callbacks.append(self._half_open)

    def drain(self) -> set[str]:
        """Log breaker transitions; the targets that just opened."""
        assert self.board is not None
        opened = set()
        for target, transition in self.board.drain_transitions():
            state = transition.to_state.value
            self.events.add(transition.time, "breaker", target, state=state, why=transition.reason)
            if state == "open":
                opened.add(target)
        return opened

    def _half_open(self, event: simpy.Event) -> None:
        agent = cast(Specialist, event.value)
        if self.agents.get(agent.id) is not agent or not agent.crashed:
            return  # detected and removed, or back as a new incarnation: nothing to probe
        assert self.board is not None
        self.board.allow(agent.id, self.env.now)  # open -> half-open: let a probe through
        self._moved(agent)
        self.core.admit(agent.info)
