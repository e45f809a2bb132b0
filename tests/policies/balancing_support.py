"""What the balancing tests share: a task, a filled pool, the Hypothesis profile."""

from __future__ import annotations

from hypothesis import settings

from sim.policies.balancing import LoadBalancer
from sim.policies.types import AgentInfo, TaskInfo

settings.register_profile("balancing", max_examples=60, deadline=None, stateful_step_count=60)
FAST = settings.get_profile("balancing")

#: The affinity balancer's default load slack: a pool's loads stay under (1 + EPSILON) x mean.
EPSILON = 0.25


def make_task(
    zone: str = "z1",
    category: str = "code",
    *,
    task_id: int = 0,
    affinity_key: int | None = None,
    critical: bool = False,
) -> TaskInfo:
    return TaskInfo(task_id, category, zone, affinity_key=affinity_key, critical=critical)


def fill(balancer: LoadBalancer, count: int, *, capacity: int = 1) -> list[str]:
    """Join *count* speed-1 agents to pool (z1, code); returns their ids in join order."""
    ids = [f"agent-{i:04d}" for i in range(count)]
    for agent_id in ids:
        balancer.agent_joined(AgentInfo(agent_id, "code", "z1", capacity=capacity))
    return ids
