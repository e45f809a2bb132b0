"""The zone coordinator's calls to agents, and the circuit breakers on them.

Scenario: the spec's zone coordinator calls a specialist over gRPC. A call
to an agent whose host died fails at once; the task goes back to be placed
anew (no attempt ran, so its retry budget is untouched) and the failure
counts against the agent's breaker (``policies.circuit_breaker``). Three
failures in a row open it: the agent leaves its pool until ``open`` has
passed, then one probe may go (half-open). This is what the simulator's
zone dispatch and ``CallBreakers`` do.

Live work goes on the agent's JetStream subject, which takes a message
whether or not anyone will read it: without a call, a task sent to a killed
agent waited there until the health checks declared it dead (about 30 s),
where the simulator's call had failed at once and the task gone elsewhere.
So before work goes out, the coordinator calls the agent: a core request on
its control subject (``CALL``). A live agent answers; a dead process has no
subscription left and the broker answers "no responders" at once (a host of
many simulated agents answers ``CALL_GONE`` for one that died).

The breakers are the simulator's (``sim.policies.resilience``); this module
only carries the calls and acts on the transitions, as ``sim.model.breakers``
does in the simulator. With ``circuit_breaker.enabled: false`` there is no
call: as in the simulator, work to a dead agent waits for the detector.
"""

from __future__ import annotations

from sim.live.broker import Broker
from sim.live.coordinator.state import Books, EventLog, ScenarioTime
from sim.live.task import LiveTask
from sim.live.transport import CALL, CALL_ANSWERED, control_subject
from sim.policies.dispatch import DispatchCore
from sim.policies.resilience import BreakerBoard

#: Wall seconds a live agent has to answer a call. A dead process is answered for at once
#: ("no responders"); this bounds only an agent too swamped to answer, which fails the call.
CALL_TIMEOUT_WALL_S = 2.0


async def log_transitions(board: BreakerBoard, event: EventLog) -> set[str]:
    """Log *board*'s transitions since the last look, as the simulator logs them (``breaker``
    events); the targets that just opened. The zone breakers' and the agents' alike."""
    opened = set()
    for target, transition in board.drain_transitions():
        state = transition.to_state.value
        await event("breaker", target, state=state, why=transition.reason)
        if state == "open":
            opened.add(target)
    return opened


class AgentCalls:
    """Calls to agents before work goes out, and the breakers on them (see the module)."""

    def __init__(
        self,
        board: BreakerBoard | None,
        open_s: float,
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        books: Books,
        dispatcher: DispatchCore[LiveTask],
    ) -> None:
        self.board, self.open_s = board, open_s
        self.broker, self.time, self.event = broker, time, event
        self.books, self.dispatcher = books, dispatcher
        #: Agents with a breaker at all: those a call has failed for (the simulator's targets).
        self.targets: set[str] = set()
        #: Agents whose breaker opened, by the scenario second it may turn half-open.
        self.open_until: dict[str, float] = {}
        #: Calls that failed (the simulator's ``failed_calls``).
        self.failed = 0

    async def reach(self, agent_id: str) -> bool:
        """Call the agent; True if it answered (or there are no breakers, hence no call).

        An agent whose heartbeats do not say it answers calls (an earlier version,
        during a rolling upgrade) is not called: its silence would read as death.
        """
        if self.board is None:
            return True
        view = self.books.agents.get(agent_id)
        if view is None or not view.answers_calls:
            return True
        try:
            answer = await self.broker.request(control_subject(agent_id), CALL, CALL_TIMEOUT_WALL_S)
        except (ConnectionError, TimeoutError):
            answer = b""
        now = self.time.now()
        if answer == CALL_ANSWERED:
            if agent_id in self.targets:
                self.board.record_success(agent_id, now)
                await self._moved(agent_id, now)
            return True
        self.failed += 1
        self.targets.add(agent_id)
        self.board.record_failure(agent_id, now)
        await self._moved(agent_id, now)
        return False

    async def _moved(self, agent_id: str, now: float) -> None:
        """Log the transitions; an agent whose breaker opened leaves its pool for ``open_s``."""
        assert self.board is not None
        if agent_id in await log_transitions(self.board, self.event):
            self.dispatcher.withdraw(agent_id)
            self.open_until[agent_id] = now + self.open_s

    async def half_open(self) -> None:
        """Agents whose breaker has been open ``open_s``: back in their pool for one probe.

        Not one declared dead (or gone) since: the detector's verdict stands, and a
        restarted agent rejoins through its heartbeats, as in the simulator.
        """
        if not self.open_until:
            return
        now = self.time.now()
        for agent_id, until in sorted(self.open_until.items()):
            if until > now:
                continue
            del self.open_until[agent_id]
            view = self.books.agents.get(agent_id)
            if view is None or not view.healthy or agent_id not in self.dispatcher.agents:
                continue
            assert self.board is not None
            self.board.allow(agent_id, now)  # open -> half-open: let a probe through
            await self._moved(agent_id, now)
            self.dispatcher.admit(self.dispatcher.agents[agent_id])
