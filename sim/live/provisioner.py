"""Provisioners: where autoscaling decisions and chaos become real agents.

The coordinator decides *how many* agents and *which pools* (sim.policies);
a provisioner only carries that out. ``LocalProcessProvisioner`` runs each
agent as a local OS process (``python -m sim.live.agent``, i.e. ``orchestra
live agent``, forked from a warm zygote where the OS allows: ``sim.live.agent_forks``);
``SimulatedFleet`` (``--agents-mode simulated``) hosts every
agent as asyncio tasks of this process, so thousands fit on one machine; a
Kubernetes provisioner would create and delete pods behind the same small
interface. Scale-down drains: the agent is told to stop pulling, finishes
what it holds and exits on its own; ``kill`` is chaos (SIGKILL, or the
agent's tasks cancelled: nothing finished, nothing said).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nats.aio.msg import Msg

from sim.live.agent import LiveAgent
from sim.live.agent_config import AgentConfig
from sim.live.agent_forks import AgentForks, ForkedAgent
from sim.live.agent_link import AgentLink, EpochWatch, while_swamped
from sim.live.cancel import close_bounded, wait_bounded
from sim.live.fleet_beats import FleetBeats
from sim.live.fleet_reports import FleetReports
from sim.live.paced_starts import PacedStarts
from sim.live.transport import BROADCAST, CALL, CALL_ANSWERED, CALL_GONE, ensure_zone_stream


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    zone: str
    category: str
    speed: float = 1.0
    slots: int = 1
    team: str = ""  # "": in no team (the team bulkhead does not count it)
    spot: bool = False  # runs on spot capacity (the provider may reclaim it)


class Provisioner(Protocol):
    #: Every agent started so far, by id (a restarted agent starts from its spec).
    specs: dict[str, AgentSpec]

    def start(self, spec: AgentSpec) -> None: ...
    def kill(self, agent_id: str) -> bool: ...
    def running(self) -> list[str]: ...
    def reap(self) -> list[str]: ...
    def stop_all(self) -> None: ...


class AgentProcess(Protocol):
    """An agent's OS process as the provisioner sees it (``Popen``, or a zygote's fork)."""

    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


#: Wall seconds between two agent processes started during a run (``pace``): a start from
#: its command costs about 0.3 CPU-seconds (0.02 forked from the zygote, and the agent's
#: joining the broker comes on top), so a burst takes under a core of a small machine. A
#: scenario's ``scaling.spawn_gap`` longer than this paces them at its own rate.
RUN_SPAWN_GAP_S = 0.2


class LocalProcessProvisioner:
    """Agents as processes of their own, their output in *log_dir*: forked from a warm
    zygote where the OS has pidfds (``sim.live.agent_forks``), else each from its
    ``command`` line."""

    #: Whether agents are forked from the zygote (False: each runs ``command``).
    use_forks = AgentForks.available

    def __init__(
        self,
        url: str,
        token: str | None,
        time_scale: float,
        *,
        handler: str = "sleep",
        heartbeat_s: float = 0.1,
        ack_wait_s: float = 1.0,
        log_dir: Path | None = None,
    ) -> None:
        self.url, self.token, self.time_scale = url, token, time_scale
        self.handler, self.heartbeat_s, self.ack_wait_s = handler, heartbeat_s, ack_wait_s
        self.log_dir = log_dir
        self.processes: dict[str, AgentProcess] = {}
        self.specs: dict[str, AgentSpec] = {}
        #: Paced starts (:meth:`pace`): the agents waiting for their turns.
        self.paced = PacedStarts()
        #: The warm process agents are forked from (``sim.live.agent_forks``), once needed.
        self._forks: AgentForks | None = None

    def command(self, spec: AgentSpec) -> list[str]:
        """The agent's process as a command line (what a zygote's fork runs in-process)."""
        return [sys.executable, "-m", "sim.live.agent", *self.arguments(spec)]

    def arguments(self, spec: AgentSpec) -> list[str]:
        return [
            "--zone",
            spec.zone,
            "--category",
            spec.category,
            "--team",
            spec.team,
            "--id",
            spec.agent_id,
            "--nats",
            self.url,
            "--handler",
            self.handler,
            "--time-scale",
            repr(self.time_scale),
            "--speed",
            repr(spec.speed),
            "--slots",
            str(spec.slots),
            "--heartbeat",
            repr(self.heartbeat_s),
            "--ack-wait",
            repr(self.ack_wait_s),
            *(["--spot"] if spec.spot else []),
        ]

    def pace(self, gap_s: float) -> None:
        """From now on, start agents at least *gap_s* wall seconds apart (0: at once).

        An agent process run from its command spends about 0.3 CPU-seconds
        starting (the interpreter and its imports; 0.02 forked from the zygote,
        ``sim.live.agent_forks``). The fleet starts all at once before scenario second 0;
        during the run a burst (a zone outage's 43 replacements, then its 43
        restarts) started at once held both cores of a small machine for
        seconds, and the coordinator beside them fell behind its lag budget.
        Paced, the same starts take a fraction of a core; each agent's spawn
        delay runs from its turn (``orchestra calibrate`` takes the wait out).
        """
        self.paced.pace(gap_s)

    def start(self, spec: AgentSpec) -> None:
        """Start the agent's process: now, or at its turn when starts are paced."""
        self.specs[spec.agent_id] = spec
        self.paced.start(spec.agent_id, lambda: self._launch(spec))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.token:
            env["ORCHESTRA_NATS_TOKEN"] = self.token  # not on the command line: ps shows that
        return env

    def _launch(self, spec: AgentSpec) -> None:
        log = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = self.log_dir / f"{spec.agent_id}.log"
        if self.use_forks:
            self.processes[spec.agent_id] = self._fork(spec, log)
            return
        out: int | None = subprocess.DEVNULL
        handle = None
        if log is not None:
            handle = open(log, "ab")  # noqa: SIM115
            out = handle.fileno()
        self.processes[spec.agent_id] = subprocess.Popen(
            self.command(spec), env=self._env(), stdout=out, stderr=out, start_new_session=True
        )
        if handle is not None:
            handle.close()

    def _fork(self, spec: AgentSpec, log: Path | None) -> ForkedAgent:
        """The agent forked from the zygote; a zygote that died is started again, once."""
        try:
            return self._zygote().spawn(self.arguments(spec), log)
        except (OSError, RuntimeError):
            self._close_forks()
            return self._zygote().spawn(self.arguments(spec), log)

    def _zygote(self) -> AgentForks:
        if self._forks is None:
            self._forks = AgentForks(self._env())
        return self._forks

    def _close_forks(self) -> None:
        if self._forks is not None:
            self._forks.close()
            self._forks = None

    def kill(self, agent_id: str) -> bool:
        """kill -9: the chaos of a crashed host (an agent still waiting to start never does)."""
        if self.paced.cancel(agent_id):
            return False
        process = self.processes.get(agent_id)
        if process is None or process.poll() is not None:
            return False
        process.kill()
        process.wait()
        return True

    def running(self) -> list[str]:
        return sorted(a for a, p in self.processes.items() if p.poll() is None)

    def reap(self) -> list[str]:
        """Agents whose process has exited since the last call (drained or killed)."""
        gone = [a for a, p in self.processes.items() if p.poll() is not None]
        for agent_id in gone:
            del self.processes[agent_id]
        return gone

    def stop_all(self) -> None:
        self.paced.cancel_all()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            wait_bounded(process)
        self._close_forks()


#: How many agents share one connection of a simulated fleet. One nats-py
#: client reads its socket in one task; a few connections spread the parsing.
AGENTS_PER_LINK = 500
#: How many simulated agents register (create their consumer, first heartbeat) at once.
JOINING = 32


class SimulatedFleet:
    """Agents as asyncio tasks of this process: the same ``LiveAgent``, many to a process.

    Each agent keeps its own durable consumer, its own heartbeat key and its
    own result documents, exactly as an agent process does, but its periodic
    beats go out bundled with its neighbours' (``fleet_beats``: one registry
    write per few hundred agents per period, its own key written at its join
    and its ``offline``), and the ends it reports while another is being
    stored go with it (``fleet_reports``); what the agents share is the process, the
    connections (*links*, agents dealt to them in turn), the run's epoch (one
    watch) and the control subscriptions (one wildcard for ``orch.ctl.*``
    and one for the broadcast, routed by id). An idle slot's pull waits
    *fetch_s* on the broker (longer than a process agent's: a thousand idle
    agents would otherwise ask twice a second each); a drain, and a
    reconnect that lost the waiting pulls, cut the wait short.

    ``kill`` cancels the agent's tasks: no offline heartbeat, its task in
    hand neither reported nor acked (its consumer redelivers it), its beats
    gone from its bundle and its key left to expire — what a SIGKILL leaves
    of a process. Call ``open`` before the first ``start`` and ``close`` at
    the end.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        time_scale: float,
        *,
        handler: str = "sleep",
        heartbeat_s: float = 0.1,
        ack_wait_s: float = 1.0,
        fetch_s: float = 30.0,
        links: int = 1,
    ) -> None:
        self.url, self.token, self.time_scale = url, token, time_scale
        self.handler, self.heartbeat_s, self.ack_wait_s = handler, heartbeat_s, ack_wait_s
        self.fetch_s = fetch_s
        self.link_count = max(1, links)
        self.links: list[AgentLink] = []
        self.specs: dict[str, AgentSpec] = {}
        self.agents: dict[str, LiveAgent] = {}
        #: The agents on each link (woken when that link reconnects).
        self._members: list[set[str]] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._gone: list[str] = []  # killed or exited, not yet reaped
        self._killed: list[asyncio.Task[None]] = []
        self._turn = itertools.count()
        self._zones_ready: set[str] = set()
        #: Agents that have written their first heartbeat (restarts count again).
        self.registered = 0
        #: Agents registering at once (see ``_register``).
        self._joining = asyncio.Semaphore(JOINING)
        #: Their heartbeats, bundled (written by ``_beating`` once ``open``).
        self.beats = FleetBeats(heartbeat_s)
        #: Their end reports, gathered per results subject while one is in flight.
        self.reports = FleetReports()
        self._beating: asyncio.Task[None] | None = None
        #: Paced starts (``scaling.spawn_gap``): the agents waiting for their turns.
        self.paced = PacedStarts()

    def pace(self, gap_s: float) -> None:
        """From now on, start agents at least *gap_s* wall seconds apart (0: at once)."""
        self.paced.pace(gap_s)

    async def open(self) -> None:
        """Connect the shared links and route the control subjects to the agents."""
        watch: EpochWatch | None = None
        for index in range(self.link_count):
            members: set[str] = set()

            async def reconnected(members: set[str] = members) -> None:
                for agent_id in list(members):
                    agent = self.agents.get(agent_id)
                    if agent is not None:
                        agent.wake()  # their waiting pulls died with the old connection

            link = await AgentLink.open(
                self.url,
                self.token,
                f"simulated-fleet-{index}",
                self.time_scale,
                watch=watch,
                reconnected=reconnected,
            )
            watch = link.epoch
            self.links.append(link)
            self._members.append(members)
        control = self.links[0].nc
        await control.subscribe("orch.ctl.*", cb=self._on_control)
        await control.subscribe(BROADCAST, cb=self._on_broadcast)
        self._beating = asyncio.get_running_loop().create_task(self.beats.run(self.links))

    async def _on_control(self, msg: Msg) -> None:
        agent = self.agents.get(msg.subject.removeprefix("orch.ctl."))
        if msg.data == CALL:
            # The fleet's one subscription answers for all its agents: for one that died,
            # what a dead process's missing subscription makes the broker say.
            if msg.reply:
                await msg.respond(CALL_GONE if agent is None else CALL_ANSWERED)
            return
        if agent is not None:
            agent.control(msg.data)

    async def _on_broadcast(self, msg: Msg) -> None:
        for agent in list(self.agents.values()):
            agent.control(msg.data)

    def start(self, spec: AgentSpec) -> None:
        """Start the agent's tasks: now, or at its turn when starts are paced."""
        if not self.links:
            raise RuntimeError("SimulatedFleet.start before open")
        old = self._tasks.get(spec.agent_id)
        if old is not None and not old.done():
            raise ValueError(f"{spec.agent_id}: already running")
        self.specs[spec.agent_id] = spec
        self.paced.start(spec.agent_id, lambda: self._launch(spec))

    def _launch(self, spec: AgentSpec) -> None:
        index = next(self._turn) % len(self.links)
        config = AgentConfig(
            agent_id=spec.agent_id,
            zone=spec.zone,
            category=spec.category,
            team=spec.team,
            spot=spec.spot,
            url=self.url,
            token=self.token,
            time_scale=self.time_scale,
            handler=self.handler,
            speed=spec.speed,
            slots=spec.slots,
            heartbeat_s=self.heartbeat_s,
            ack_wait_s=self.ack_wait_s,
            fetch_s=self.fetch_s,
        )
        agent = LiveAgent(config)
        agent.report = self.reports.publish
        self.specs[spec.agent_id] = spec
        self.agents[spec.agent_id] = agent
        self._members[index].add(spec.agent_id)
        self.beats.add(agent)
        self._tasks[spec.agent_id] = asyncio.get_running_loop().create_task(
            self._live(agent, self.links[index], index), name=f"agent {spec.agent_id}"
        )

    async def _live(self, agent: LiveAgent, link: AgentLink, index: int) -> None:
        agent_id = agent.config.agent_id
        try:
            await self._register(agent, link)
            await agent.serve(link, beats=False)  # (its beats are the fleet's bundles)
        except asyncio.CancelledError:
            raise
        except Exception:
            print(f"{agent_id}: agent failed", file=sys.stderr)  # as an agent process's log
            traceback.print_exc()
        finally:
            self.beats.remove(agent)
            self._members[index].discard(agent_id)
            if self.agents.get(agent_id) is agent:
                del self.agents[agent_id]
                self._gone.append(agent_id)

    async def _register(self, agent: LiveAgent, link: AgentLink) -> None:
        """Join, a few agents at a time, trying again while the broker is swamped.

        Thousands of agents started at once would put thousands of JetStream
        API requests in flight (consumer creation, first heartbeat) and time
        them out. A few at a time here; each step tried again while swamped
        (``while_swamped``, which agent processes use for their own start-up).
        """
        zone = agent.config.zone

        async def join() -> None:
            async with self._joining:
                if zone not in self._zones_ready:  # once per zone, not per agent
                    await ensure_zone_stream(link.js, zone)
                    self._zones_ready.add(zone)
                await agent.register(link)

        await while_swamped(join)
        self.registered += 1

    def kill(self, agent_id: str) -> bool:
        """The agent dies at once (see the class docstring); one waiting to start never does."""
        if self.paced.cancel(agent_id):
            return False
        task = self._tasks.get(agent_id)
        if task is None or task.done():
            return False
        task.cancel()
        del self._tasks[agent_id]
        self._killed.append(task)
        # Gone from now on, though its cancellation completes at the loop's next turn: a
        # restart under the same id may start at once, as a new process would.
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            self.beats.remove(agent)  # its beats stop with it
        self._gone.append(agent_id)
        return True

    def running(self) -> list[str]:
        return sorted(a for a, t in self._tasks.items() if not t.done())

    def reap(self) -> list[str]:
        """Agents that have exited since the last call (drained or killed)."""
        gone, self._gone = sorted(set(self._gone)), []
        for agent_id in gone:
            task = self._tasks.get(agent_id)
            if task is not None and task.done():
                del self._tasks[agent_id]
        return gone

    def stop_all(self) -> None:
        """Cancel every agent (``close`` waits for them and closes the connections)."""
        self.paced.cancel_all()
        for task in self._tasks.values():
            task.cancel()

    async def close(self) -> None:
        self.stop_all()
        if self._beating is not None:
            self._beating.cancel()
        pending = [*self._tasks.values(), *self._killed, *filter(None, [self._beating])]
        await asyncio.gather(*pending, return_exceptions=True)
        await self.reports.close()
        for link in self.links:
            await close_bounded(link.nc)
        self.links.clear()
