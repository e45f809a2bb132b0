"""Load balancers: which specialist of a pool gets the next task.

A zone coordinator owns one balancer per fleet and asks it, for every task it
dispatches, which agent of the task's *pool* (the agents that joined with the
task's zone and category) should take it. Five strategies are offered because
the capacity-planning question is often "which one?": ``round_robin``,
``least_connections``, ``weighted``, ``affinity`` and ``power_of_two``.

The balancer never sees a clock, a queue or a network. A *shell* (the SimPy
model or the live adapter) feeds it observations and acts on its answers, and
the contract between the two is:

* ``agent_joined`` makes an agent eligible with nothing in flight;
  ``agent_left`` makes it ineligible until it joins again. Both are
  idempotent-friendly: joining an id that is already present is a leave
  followed by a join, leaving an unknown id does nothing.
* ``load_changed(agent_id, n)`` reports the number of tasks the agent now
  holds. Reports about agents that have left are ignored, because a draining
  agent keeps finishing the tasks it held.
* ``choose`` only *reads* loads. After a successful ``choose`` the shell must
  call ``load_changed(agent, in_flight + 1)`` before the next ``choose``, and
  ``load_changed`` again when the task ends. ``choose`` may advance the
  strategy's own bookkeeping (the round-robin cursor, the stride pass value,
  the random stream), so it must be called only for a task that will really be
  dispatched when an agent is returned.
* ``choose`` returns ``None`` exactly when no agent of the pool is below its
  capacity; the task then stays queued. It never returns an agent that left,
  belongs to another pool, or is at capacity.
* A task with ``critical=True`` (on a DAG's critical path) goes to the fastest
  agent with room, ties broken by join order, whatever the strategy; such a
  choice leaves the strategy's bookkeeping untouched.

Every choice is a deterministic function of the call sequence and, for
``power_of_two``, of the seed of the generator handed in. Nothing iterates a
set of strings and nothing uses the salted built-in ``hash`` of a string, so
two processes with different ``PYTHONHASHSEED`` make the same choices.

No strategy scans the pool in ``choose``: indexes are updated by
``agent_joined``, ``agent_left`` and ``load_changed`` instead, so a pool of
10,000 agents costs about what a pool of 200 does per choice.

Layout: this module holds the contract (:class:`LoadBalancer`), the strategy
names and :func:`make_balancer`; ``indexes`` the per-agent record and the
indexes several strategies share (speed index, load buckets); ``pool`` the
pool and balancer base classes every strategy extends; then one module per
strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from sim.policies.balancing.affinity import AffinityBalancer
from sim.policies.balancing.least_connections import LeastConnectionsBalancer
from sim.policies.balancing.power_of_two import PowerOfTwoBalancer
from sim.policies.balancing.round_robin import RoundRobinBalancer
from sim.policies.balancing.weighted import WeightedBalancer
from sim.policies.types import AgentInfo, TaskInfo

__all__ = [
    "STRATEGIES",
    "AffinityBalancer",
    "LeastConnectionsBalancer",
    "LoadBalancer",
    "PowerOfTwoBalancer",
    "RoundRobinBalancer",
    "WeightedBalancer",
    "make_balancer",
]

#: Strategy names accepted by :func:`make_balancer`, in the order the spec lists them.
STRATEGIES: tuple[str, ...] = (
    "round_robin",
    "least_connections",
    "weighted",
    "affinity",
    "power_of_two",
)


class LoadBalancer(Protocol):
    """What a zone coordinator needs from a load-balancing policy.

    See the module docstring for the contract with the shell; in short,
    ``choose`` reads loads and the shell reports every change of an agent's
    in-flight count through ``load_changed``.
    """

    def agent_joined(self, agent: AgentInfo) -> None:
        """Make *agent* eligible for its (zone, category) pool with nothing in flight."""
        ...

    def agent_left(self, agent_id: str) -> None:
        """Make the agent ineligible (offline, failed or draining) until it joins again."""
        ...

    def load_changed(self, agent_id: str, in_flight: int) -> None:
        """Record that the agent now holds *in_flight* tasks."""
        ...

    def choose(self, task: TaskInfo, now: float) -> str | None:
        """Pick an agent with room for *task*, or ``None`` to keep the task queued."""
        ...

    def choose_excluding(self, task: TaskInfo, now: float, exclude: frozenset[str]) -> str | None:
        """Like ``choose``, never returning an agent in *exclude* (a retry avoids who failed it)."""
        ...

    def has_room(self, zone: str, category: str) -> bool:
        """Whether some agent of the pool is below its capacity, in O(1)."""
        ...

    def restore_order(self, reached: Callable[[str], float]) -> None:
        """After a rebuild, put agents of equal load in the order they reached it."""
        ...

    def size(self, zone: str, category: str) -> int:
        """How many agents the pool holds (joined and not left)."""
        ...


def make_balancer(
    strategy: str, rng: np.random.Generator, *, epsilon: float = 0.25, vnodes: int = 64
) -> LoadBalancer:
    """Build the balancer named by the scenario's ``strategy`` string.

    *rng* is used only by ``power_of_two``; *epsilon* and *vnodes* only by
    ``affinity``. They are accepted for every strategy so a shell can build
    any balancer with one call.
    """
    if strategy == "round_robin":
        return RoundRobinBalancer()
    if strategy == "least_connections":
        return LeastConnectionsBalancer()
    if strategy == "weighted":
        return WeightedBalancer()
    if strategy == "affinity":
        return AffinityBalancer(epsilon=epsilon, vnodes=vnodes)
    if strategy == "power_of_two":
        return PowerOfTwoBalancer(rng)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
