"""The live coordinator, split along its jobs (see ``replica`` for how they fit together).

``leadership`` (the lease), ``catch_up`` (rebuild from the streams, then follow
them), ``intake`` (submissions, dispatch, results: every dispatcher call; its
parts in ``outbound``, ``placement``, ``submissions`` and ``results``),
``health`` (heartbeats and the scenario's failure detector, lag-aware),
``scaling`` (the autoscaler and the provisioner), ``monitoring`` (metrics,
alerts, webhooks), ``exposition`` (/metrics for Prometheus); ``state`` holds the
books they share.
"""

from sim.live.coordinator.monitoring import post_webhook
from sim.live.coordinator.replica import Coordinator
from sim.live.coordinator.state import AgentView, CoordinatorConfig, LeaseLost, LiveJob

__all__ = ["AgentView", "Coordinator", "CoordinatorConfig", "LeaseLost", "LiveJob", "post_webhook"]
