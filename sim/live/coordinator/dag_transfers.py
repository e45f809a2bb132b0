"""A DAG node's input transfer, drawn as the simulator draws it and sent with the assignment.

Scenario: a node's inputs sit on the agents that ran its predecessors. In
the simulator its slot first waits for the slowest of them to arrive — none
from its own agent, direct TCP inside a zone, NATS across zones, with the
network's jitter (``Network.transfer``) — and only then starts its work.
Live, synthetic work has no data to move, so the coordinator, which knows
where each predecessor ran and each edge's size, draws that transfer with
the simulator's network and sends it with the assignment; a synthetic agent
waits it out before it starts (``sim.live.attempt_fate``). Live had moved
nothing: at the full fleet of ``dag_heavy.yaml`` (200 MB edges) a node's
median wait was 0.09 s live against 0.43 s replayed.

The jitter is the simulator's for the same input (``keyed_draws.transfer_jitter``,
keyed by the node, its attempt and the predecessor). Each shell had drawn it
from a stream of its own, in its own order, and the same input moved up to
3 s slower in one than in the other.
"""

from __future__ import annotations

from sim.live.coordinator.state import Books
from sim.live.task import LiveTask
from sim.policies.keyed_draws import task_key
from sim.scenario.schema import Scenario
from sim.world.network import rules_network


class DagTransfers:
    """The transfer a DAG node's attempt waits for on its agent (module docstring)."""

    def __init__(self, scenario: Scenario, books: Books, seed: int) -> None:
        self.network = rules_network(scenario)
        self.books = books
        #: The run's key for the draws keyed by task (``policy_set.fault_seed``).
        self.seed = seed

    def seconds(self, task: LiveTask, agent_id: str, zone: str, attempt: int) -> float:
        """The slowest input's transfer to *agent_id* in *zone* for attempt *attempt*
        (0: none to move)."""
        if task.job_id < 0 or not self.network.enabled:
            return 0.0
        job = self.books.jobs.get(task.job_id)
        if job is None:
            return 0.0
        slowest = 0.0
        key = task_key(self.seed, task.arrival_s, task.job_id, task.node)
        for pred, data_mb in job.progress.predecessors(task.node):
            where = job.ran_on.get(pred)
            if where is None or where == agent_id:
                continue
            view = self.books.agents.get(where)
            source = view.zone if view is not None else zone
            move = self.network.transfer(data_mb, source, zone, key, attempt, pred)
            slowest = max(slowest, move)
        return slowest
