"""The functional core: every decision the orchestra makes, free of clocks and I/O.

A policy receives ``now`` (float seconds) and plain observations, and returns
a decision. Nothing here imports SimPy, asyncio or NATS — a test checks it —
which is what lets the simulator and the live adapter run the very same
objects, and what makes the policies property-testable.
"""

from sim.policies.alerts import AlertEvaluator, AlertEvent, Condition, parse_condition
from sim.policies.autoscale import Autoscaler, FleetObservation, ScaleDecision
from sim.policies.balancing import STRATEGIES, LoadBalancer, make_balancer
from sim.policies.dag import (
    Dag,
    DagCycleError,
    DagEdge,
    DagNode,
    DagPlan,
    DagProgress,
    critical_path,
    makespan_lower_bound,
    parallel_groups,
    plan_dag,
    topological_order,
    upward_rank,
    validate_dag,
)
from sim.policies.dag_schedule import (
    AgentSlot,
    ControlPath,
    Schedule,
    greedy_schedule,
    heft_schedule,
)
from sim.policies.dag_staging import StagedPlan, plan_staged
from sim.policies.dispatch import RETRIES_EXHAUSTED, Assignment, DispatchCore
from sim.policies.health import ConsecutiveFailureDetector, FailureDetector, PhiAccrualDetector
from sim.policies.llm import ProviderBucket, ProviderLimits, RetryRule
from sim.policies.placement import (
    PoolLoad,
    ReservePool,
    pick_drains,
    place_agents,
    team_for,
)
from sim.policies.raft import RaftNode, Ready
from sim.policies.resilience import BreakerBoard, Bulkhead, CircuitBreaker, TeamBulkhead
from sim.policies.routing import ZoneRouter
from sim.policies.types import AgentInfo, TaskInfo

__all__ = [
    "RETRIES_EXHAUSTED",
    "STRATEGIES",
    "AgentInfo",
    "AgentSlot",
    "AlertEvaluator",
    "AlertEvent",
    "Assignment",
    "Autoscaler",
    "BreakerBoard",
    "Bulkhead",
    "CircuitBreaker",
    "Condition",
    "ConsecutiveFailureDetector",
    "ControlPath",
    "Dag",
    "DagCycleError",
    "DagEdge",
    "DagNode",
    "DagPlan",
    "DagProgress",
    "DispatchCore",
    "FailureDetector",
    "FleetObservation",
    "LoadBalancer",
    "PhiAccrualDetector",
    "PoolLoad",
    "ProviderBucket",
    "ProviderLimits",
    "RaftNode",
    "Ready",
    "ReservePool",
    "RetryRule",
    "ScaleDecision",
    "Schedule",
    "StagedPlan",
    "TaskInfo",
    "TeamBulkhead",
    "ZoneRouter",
    "critical_path",
    "greedy_schedule",
    "heft_schedule",
    "make_balancer",
    "makespan_lower_bound",
    "parallel_groups",
    "parse_condition",
    "pick_drains",
    "place_agents",
    "plan_dag",
    "plan_staged",
    "team_for",
    "topological_order",
    "upward_rank",
    "validate_dag",
]
