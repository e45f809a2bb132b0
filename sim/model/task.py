"""A task in the model: a plain record that moves between queues, not a process.

Tasks are records on purpose. A SimPy process per task would cost a
generator and several events each; the agents are the long-lived processes,
and tasks are what they pass around (the agent-loop form the design's
measurements favour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.policies.escalation import History
    from sim.policies.types import TaskInfo
    from sim.world.dag_job import DagJob
    from sim.world.llm_plan import AttemptPlan


class Task:
    """One unit of work, from arrival at the chief to completion.

    Times are simulation seconds; -1.0 means "not yet". ``work`` is seconds
    on a base (speed 1.0) agent. ``attempt`` counts from 1; a retried task
    keeps its id.
    """

    __slots__ = (
        "affinity_key",
        "agent",
        "arrival",
        "attempt",
        "avoid",
        "category",
        "critical",
        "deadline",
        "dispatch",
        "enqueued",
        "history",
        "home_zone",
        "id",
        "info",
        "job",
        "job_id",
        "near",
        "node",
        "plan",
        "planned",
        "priority",
        "queued",
        "spread",
        "start",
        "transfer",
        "waiting",
        "work",
        "zone",
    )

    def __init__(
        self,
        task_id: int,
        arrival: float,
        category: str,
        home_zone: str,
        work: float,
        affinity_key: int | None = None,
        job: DagJob | None = None,
        node: int = -1,
        priority: float = 0.0,
        critical: bool = False,
    ) -> None:
        self.id = task_id
        self.arrival = arrival
        self.category = category
        self.home_zone = home_zone
        self.zone = home_zone
        self.work = work
        self.affinity_key = affinity_key
        self.job = job
        #: The DAG job's id (-1: an independent task); a field, not a property: read per record.
        self.job_id = job.job_id if job is not None else -1
        self.node = node
        self.priority = priority
        self.critical = critical
        self.dispatch = -1.0
        #: When it last entered a queue, and the seconds spent in queues so far.
        self.enqueued = -1.0
        self.queued = 0.0
        #: Its draw of ``coordination.dispatch_overhead``, charged on its way from the zone's
        #: placement to its agent (``Chief.submit``, ``ZoneDispatch.receive``); 0: none.
        self.spread = 0.0
        self.start = -1.0
        self.transfer = 0.0
        self.attempt = 1
        self.agent = ""
        #: The balancer's view of the task for its current zone, built once and reused.
        self.info: TaskInfo | None = None
        #: Its own attempt deadline in seconds (None: its category's, if any).
        self.deadline: float | None = None
        #: After a failed attempt: what escalation has done so far, and the agents to avoid.
        self.history: History | None = None
        self.avoid: frozenset[str] | None = None
        #: A DAG node's data locality: the agent with its largest input, the transfer saved.
        self.near: tuple[str, float] | None = None
        #: Planned dispatch (sim.model.staging): the (agent, slot) the plan put it on, until
        #: it starts; and how many of its assignment and inputs have not reached that agent.
        self.planned: tuple[str, int] | None = None
        self.waiting = 0
        #: Its model calls, drawn as it was submitted (sim.world.llm_task_plans; None: none).
        self.plan: AttemptPlan | None = None
