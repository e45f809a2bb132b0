"""DAG jobs: they arrive, release their ready nodes as tasks, and finish or fail downstream.

Scenario: a DAG job reaches the chief, which plans it (upward ranks, the
critical path) and submits its entry nodes as tasks. When a node's
completion report reaches the chief, the successors whose inputs are all
in are released — each, with data locality on, carrying a hint of the agent
that holds its largest input. When every node is done the job's makespan is
recorded; when a node fails for good, everything downstream of it can never
run and fails with it.

The order, the ranks and the largest input are ``sim.policies.dag``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.metrics.records import EventLog
from sim.model.ledger import JobRecord, Ledger
from sim.model.staging import StagedDags
from sim.model.task import Task
from sim.policies.dag_locality import largest_input
from sim.scenario.schema import Scenario
from sim.world.dag_job import DagJob
from sim.world.dag_source import DagSource
from sim.world.llm_task_plans import TaskPlans
from sim.world.network import Network
from sim.world.workload import FIRST_ID


class DagFlow:
    """The DAG jobs of one run, from arrival to their last node."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        dags: DagSource,
        ledger: Ledger,
        submit: Callable[[Task, float], None],
        network: Network,
        events: EventLog,
    ) -> None:
        self.env = env
        self.policy = scenario.policies.dag
        self.dags = dags
        self.ledger = ledger
        #: Hands a released node to the chief (``Chief.submit``).
        self.submit = submit
        self.network = network
        self.events = events
        self._open_jobs: dict[int, DagJob] = {}
        self._job_ids = FIRST_ID - 1  # (incremented before use)
        #: Planned DAG dispatch (None: every node is released and placed dynamically).
        self.staging: StagedDags | None = None
        #: Each LLM node's calls, drawn as its job arrives (None: no llm section).
        self.llm_plans: TaskPlans | None = None

    def arrivals(self) -> Generator[simpy.Event, Any, None]:
        """DAG jobs reach the chief, which plans them and releases their entry nodes."""
        env = self.env
        for when, job_dag, shape, zone in self.dags:
            delay = when - env.now
            if delay > 0:
                yield env.timeout(delay)
            self._job_ids += 1
            job = self.dags.start_job(self._job_ids, job_dag, shape, zone, env.now)
            self._open_jobs[job.job_id] = job
            if self.llm_plans is not None:
                drawn = self.llm_plans.for_job([node.category for node in job_dag.nodes])
                job.llm_plans = {n.node_id: p for n, p in zip(job_dag.nodes, drawn, strict=True)}
            count = len(job_dag.nodes)
            self.ledger.submitted += count
            self.ledger.blocked += count
            if self.staging is not None and self.staging.stage(job):
                continue  # planned: every node is on its way to its agent
            for node in job.progress.ready():
                self._release(job, node)

    def _release(self, job: DagJob, node: int) -> None:
        self.ledger.blocked -= 1
        task = self.node_task(job, node)
        self.submit(task, task.arrival)

    def node_task(self, job: DagJob, node: int) -> Task:
        """The task that runs one node of *job*, ordered and flagged as the DAG policy says."""
        now = self.env.now
        policy = self.policy
        critical = policy.critical_to_fastest and node in job.plan.critical
        priority = job.plan.rank[node] if policy.order == "upward_rank" else 0.0
        task = Task(
            self.ledger.new_task_id(),
            now,
            job.dag_node(node).category,
            job.home_zone,
            job.work[node],
            job=job,
            node=node,
            priority=priority,
            critical=critical,
        )
        if policy.data_locality:
            task.near = self._near(job, node)
        if job.llm_plans:
            task.plan = job.llm_plans[node]
        return task

    def _near(self, job: DagJob, node: int) -> tuple[str, float] | None:
        """The agent holding the node's largest input, and the expected time to move it."""
        placement = job.placement

        def ran_on(pred: int) -> str | None:
            where = placement.get(pred)
            return where[0] if where is not None else None

        largest = largest_input(job.progress.predecessors(node), ran_on)
        if largest is None:
            return None
        return largest[0], self.network.mean_transfer(largest[1])

    def node_done(self, job: DagJob, node: int) -> None:
        """A node's completion reached the chief: release what it unblocked."""
        released = job.progress.complete(node)
        if self.staging is not None:
            released = self.staging.released(job, released)  # planned ones are there already
        for successor in released:
            self._release(job, successor)
        if job.progress.done:
            del self._open_jobs[job.job_id]
            self.ledger.jobs.append(
                JobRecord(
                    job_id=job.job_id,
                    shape=job.shape,
                    nodes=len(job.dag.nodes),
                    arrival_s=job.arrival,
                    complete_s=self.env.now,
                    cp_bound_s=job.cp_bound_s,
                    work_s=job.plan.total_work_s,
                )
            )

    def node_failed(self, job: DagJob, node: int) -> None:
        """A DAG node failed for good: everything downstream of it can never run, so fails too."""
        ledger = self.ledger
        now = self.env.now
        pending = [succ for succ, _ in job.progress.successors(node)]
        seen: set[int] = set()
        while pending:
            successor = pending.pop()
            if successor in seen or successor in job.doomed:
                continue  # met already, or failed with an earlier failure upstream
            seen.add(successor)
            pending.extend(s for s, _ in job.progress.successors(successor))
        job.doomed |= seen
        if self.staging is not None:
            self.staging.cancel(job, seen)  # planned ones come off their agents, as blocked
        for successor in sorted(seen):
            ledger.blocked -= 1
            ledger.failed += 1
            orphan = Task(
                ledger.new_task_id(),
                now,
                job.dag_node(successor).category,
                job.home_zone,
                job.work[successor],
                job=job,
                node=successor,
                critical=successor in job.plan.critical,
            )
            orphan.attempt = 0
            orphan.zone = ""
            ledger.task_log.record(orphan, "failed", now, now, 0.0, "upstream_failed")
        self._open_jobs.pop(job.job_id, None)
        self.events.add(now, "job_failed", str(job.job_id), node=node, downstream=len(seen))
