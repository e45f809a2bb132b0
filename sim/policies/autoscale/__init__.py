"""Autoscalers: how many specialists the fleet should hold next, and what a bigger one costs.

Three horizontal policies answer the same question so that a scenario can
compare them: :class:`StepPolicy` is the spec's scaling block (section 4.1)
exactly, :class:`HpaPolicy` is Kubernetes' Horizontal Pod Autoscaler and
:class:`KedaQueuePolicy` is KEDA's queue-length scaler. :func:`size_options`
lists the vertical alternatives (section 4.2) with their speed and price.

The autoscaler never sees a clock, spawns nothing and averages nothing. A
*shell* (the SimPy model or the live adapter) owns the loop, and the contract
between the two is:

* The shell calls ``decide(obs, now)`` once per *evaluation interval* (its own
  setting: the spec names none; Kubernetes' HPA syncs every 15 s, KEDA polls
  every 30 s). It averages every metric of :class:`FleetObservation` over its
  own *metric window* before handing it in. Both are the shell's business.
* Every decision with ``delta != 0`` is carried out at once: ``+n`` asks for
  *n* agents, which count in ``agents`` (and ``starting``) from the next
  observation on, so a scale-up is not repeated while agents spawn; ``-n``
  drains *n* agents, which leave ``agents`` at once while they finish their
  tasks. The policies remember their own decisions (cooldowns, histories)
  on that assumption.
* Every returned ``target`` lies in ``[min_agents, max_agents]`` and equals
  ``agents + delta``. A decision that would cross a bound is cut at it; at the
  bound it is ``delta == 0`` with the reason. When ``agents`` is outside the
  bounds (failures took agents away, or a start outside them) the decision is
  a *bound correction* straight back to the bound, whatever the cooldowns.
* ``force_scale_up(now, reason)`` is how the alert action
  ``scale_up_immediate`` reaches the autoscaler: the next ``decide`` scales
  up by at least one step (the step policy's increment, ``force_increment``
  for the others), past whatever would delay it (the up-cooldown, the HPA's
  rate limits, KEDA's polling interval). One force is consumed by one
  ``decide``; forces do not accumulate.
* A metric that is NaN or infinite (no task finished in the window, nobody
  ready) counts as missing: it triggers nothing.
* With ``enabled=False`` (``scaling.auto_scale.enabled: false``) a policy
  answers "autoscaling disabled" and changes nothing, bounds included.

Every decision is a deterministic function of the call sequence.

Layout: ``base`` holds the observation, the decision, the protocol and the
helpers every policy shares; ``step``, ``hpa`` and ``keda`` one policy each,
with ``behavior`` the HPA's stabilisation and rate limits that KEDA's created
HPA applies too; ``vertical`` the sizes of one agent. This module adds the
kinds of autoscaler and :func:`configure`, which ``sim.world.policy_set``'s
factories use.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from sim.policies.autoscale.base import Autoscaler, FleetObservation, ScaleDecision
from sim.policies.autoscale.behavior import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    ScalingPolicy,
    ScalingRules,
)
from sim.policies.autoscale.hpa import HpaConfig, HpaPolicy
from sim.policies.autoscale.keda import KedaConfig, KedaQueuePolicy
from sim.policies.autoscale.step import STEP_METRICS, StepConfig, StepPolicy
from sim.policies.autoscale.vertical import SizeOption, size_options

__all__ = [
    "AUTOSCALERS",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "STEP_METRICS",
    "Autoscaler",
    "FleetObservation",
    "HpaConfig",
    "HpaPolicy",
    "KedaConfig",
    "KedaQueuePolicy",
    "ScaleDecision",
    "ScalingPolicy",
    "ScalingRules",
    "SizeOption",
    "StepConfig",
    "StepPolicy",
    "configure",
    "size_options",
]

#: Kinds of autoscaler (``scaling.policy``); sim.world.policy_set builds them.
AUTOSCALERS: tuple[str, ...] = ("step", "hpa", "keda")

_Config = TypeVar("_Config", StepConfig, HpaConfig, KedaConfig)


def configure(config: _Config, overrides: dict[str, Any], kind: str) -> _Config:
    """``dataclasses.replace`` with an error that lists the settings a kind accepts."""
    names = [f.name for f in fields(config)]
    unknown = [key for key in overrides if key not in names]
    if unknown:
        raise ValueError(
            f"unknown {kind} autoscaler setting {unknown[0]!r}; expected one of {', '.join(names)}"
        )
    return replace(config, **overrides)
