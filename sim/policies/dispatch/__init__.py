"""Dispatch, written once: the books and decisions both shells drive (see ``core``).

``books`` keeps the pool queues, who holds which task and the balancer's
view of load; ``core`` makes the decisions — route, place, spill, queue,
pull, evacuate, retry within the budget, which agent to drain; ``types``
holds the task protocol and the assignment record; ``zones`` whether a zone
takes work (declared dead, or its breaker open).
"""

from sim.policies.dispatch.books import AgentBooks, DispatchBooks
from sim.policies.dispatch.core import RETRIES_EXHAUSTED, DispatchCore
from sim.policies.dispatch.types import Assignment, Dispatchable
from sim.policies.dispatch.zones import ZoneCall, ZoneGate

__all__ = [
    "RETRIES_EXHAUSTED",
    "AgentBooks",
    "Assignment",
    "DispatchBooks",
    "DispatchCore",
    "Dispatchable",
    "ZoneCall",
    "ZoneGate",
]
