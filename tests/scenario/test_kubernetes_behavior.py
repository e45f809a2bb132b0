"""Kubernetes HPA behaviour as users write it: each rule timed as the documentation states.

Every case is a scenario (YAML with a ``behavior:`` block, or a manifest
file) loaded the normal way and turned into the autoscaler by the one policy
factory; the autoscaler is then driven at the controller's 15 s sync with a
metric that asks for a fixed size, and the replica count it sets is compared
with the timeline the documentation gives for that rule ("Configurable
scaling behavior", kubernetes.io, Horizontal Pod Autoscaling).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.model.engine import run_scenario
from sim.policies.autoscale import Autoscaler, FleetObservation
from sim.scenario.load import ScenarioError, load_scenario
from sim.world.policy_set import fleet_autoscaler

SYNC_S = 15.0


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def hpa(tmp_path: Path, behavior: str, low: int = 1, high: int = 200) -> Autoscaler:
    """An HPA on the queue metric (target 1 per agent) with *behavior* and replica bounds."""
    indented = "\n".join("      " + line for line in behavior.strip().splitlines())
    text = f"""
scaling:
  policy: hpa
  hpa:
    target_cpu_utilization: null
    target_queue_per_agent: 1
    min_replicas: {low}
    max_replicas: {high}
    behavior:
{indented}
"""
    scenario = load_scenario(write(tmp_path, text))
    return fleet_autoscaler(scenario.scaling, scenario.control_agents())


def wanting(agents: int, desired: int) -> FleetObservation:
    """The fleet at *agents*, with a queue that asks for exactly *desired* agents."""
    return FleetObservation(
        agents=agents,
        ready=agents,
        starting=0,
        queue_depth=float(desired),
        avg_response_time_s=0.0,
        cpu_utilization=0.5,
        idle_fraction=0.0,
        in_flight=0.0,
        arrival_rate=1.0,
    )


def timeline(policy: Autoscaler, start: int, desired: int, seconds: float) -> list[int]:
    """Replicas after each sync, every 15 s from t = 0, the decision applied at once."""
    agents, out, t = start, [], 0.0
    while t <= seconds + 1e-9:
        agents = policy.decide(wanting(agents, desired), t).target
        out.append(agents)
        t += SYNC_S
    return out


def test_scale_down_policies_pods_and_percent_per_minute(tmp_path: Path) -> None:
    """At most 4 pods or 10 % a minute, whichever removes more: from 80 towards 10.

    The documentation's walk-through: 80 -> 72 in the first minute (10 % is
    the larger change), 72 -> 64 next (7.2 rounds to a change of 8), and
    below 40 the Pods policy applies, 4 at a time.
    """
    policy = hpa(
        tmp_path,
        """
scaleDown:
  stabilizationWindowSeconds: 0
  policies:
  - {type: Pods, value: 4, periodSeconds: 60}
  - {type: Percent, value: 10, periodSeconds: 60}
""",
    )
    replicas = timeline(policy, 80, 10, 14 * 60)
    per_minute = replicas[::4]  # the state at t = 0, 60, 120, ... s
    assert per_minute[:14] == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]
    # Within a minute nothing more moves: the period's start still counts the last change.
    assert replicas[:4] == [72, 72, 72, 72]


def test_select_policy_min_takes_the_smaller_change(tmp_path: Path) -> None:
    """ "No more than 5 pods removed per minute": 10 % or 5 pods, selectPolicy Min."""
    policy = hpa(
        tmp_path,
        """
scaleDown:
  stabilizationWindowSeconds: 0
  selectPolicy: Min
  policies:
  - {type: Percent, value: 10, periodSeconds: 60}
  - {type: Pods, value: 5, periodSeconds: 60}
""",
    )
    per_minute = timeline(policy, 100, 10, 4 * 60)[::4]
    assert per_minute == [95, 90, 85, 80, 75]  # 10 % would remove more (8 of 80): 5 pods


def test_disabled_scale_down_never_shrinks_but_still_grows(tmp_path: Path) -> None:
    behavior = "scaleDown:\n  selectPolicy: Disabled\n"
    assert set(timeline(hpa(tmp_path, behavior), 50, 10, 20 * 60)) == {50}
    assert timeline(hpa(tmp_path, behavior), 50, 120, 30) == [100, 120, 120]


def test_default_scale_up_doubles_or_adds_4_every_15_s(tmp_path: Path) -> None:
    """No behaviour for scaleUp: +100 % or +4 pods per 15 s, whichever is more, no window."""
    policy = hpa(tmp_path, "scaleDown:\n  stabilizationWindowSeconds: 300\n")
    assert timeline(policy, 1, 100, 90) == [5, 10, 20, 40, 80, 100, 100]


def test_scale_up_window_waits_for_the_lowest_recommendation_of_the_window(
    tmp_path: Path,
) -> None:
    """A 60 s scale-up window: the fleet grows only once 60 s of recommendations ask for it."""
    policy = hpa(tmp_path, "scaleUp:\n  stabilizationWindowSeconds: 60\n")
    replicas = timeline(policy, 10, 40, 120)
    assert replicas[:4] == [10, 10, 10, 10]  # t = 0 .. 45 s: the 10 seen at t = 0 is in the window
    assert replicas[4] == 20  # t = 60 s: the window holds only 40s; doubling is the limit
    assert replicas[5] == 40


def test_default_scale_down_window_holds_the_highest_recommendation_for_300_s(
    tmp_path: Path,
) -> None:
    policy = hpa(tmp_path, "scaleUp:\n  selectPolicy: Max\n")
    replicas = timeline(policy, 40, 10, 330)
    assert replicas[: 300 // 15] == [40] * 20  # t = 0 .. 285 s
    assert replicas[20] == 10  # t = 300 s: the seed has left the window; -100 % per 15 s allows it


def test_a_whole_hpa_manifest_is_read(tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: specialists, namespace: orchestra}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: specialists}
  minReplicas: 20
  maxReplicas: 90
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
  - type: External
    external: {metric: {name: queue_depth}, target: {type: AverageValue, averageValue: 1500m}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 120
      policies: [{type: Pods, value: 2, periodSeconds: 30}]
""",
        "hpa.yaml",
    )
    scenario = load_scenario(
        write(tmp_path, f"scaling: {{policy: hpa, hpa: {{manifest: {manifest.name}}}}}\n")
    )
    settings = scenario.scaling.hpa
    assert settings.target_cpu_utilization == pytest.approx(0.6)
    assert settings.target_queue_per_agent == pytest.approx(1.5)
    assert (settings.min_replicas, settings.max_replicas) == (20, 90)
    policy = fleet_autoscaler(scenario.scaling, scenario.control_agents())
    config = policy.config  # type: ignore[attr-defined]
    assert (config.min_agents, config.max_agents) == (20, 90)
    assert config.scale_down.stabilization_window_s == 120.0
    assert config.scale_down.policies[0].kind == "pods"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "behavior: {scaleUp: {policies: [{type: Pod, value: 4, periodSeconds: 15}]}}",
            "spec.behavior.scaleUp.policies[0].type",
        ),
        (
            "behavior: {scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 3600}]}}",
            "periodSeconds",
        ),
        ("behavior: {scaleUp: {stabilisationWindowSeconds: 60}}", "unknown key"),
        (
            "metrics: [{type: Resource, resource: {name: memory, "
            "target: {type: Utilization, averageUtilization: 50}}}]",
            "expected a Resource metric on cpu",
        ),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_manifest(
    tmp_path: Path, body: str, message: str
) -> None:
    write(
        tmp_path,
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
        f"spec:\n  maxReplicas: 10\n  {body}\n",
        "hpa.yaml",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, "scaling: {policy: hpa, hpa: {manifest: hpa.yaml}}\n"))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "hpa.yaml"))
    assert message in text


def test_a_keda_scaled_object_with_hpa_behavior(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: specialists}
spec:
  scaleTargetRef: {name: specialists}
  pollingInterval: 15
  cooldownPeriod: 120
  minReplicaCount: 5
  maxReplicaCount: 60
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          policies: [{type: Pods, value: 2, periodSeconds: 60}]
  triggers:
  - type: rabbitmq
    metadata: {queueName: tasks, mode: QueueLength, value: "4", activationValue: "1"}
""",
        "keda.yaml",
    )
    scenario = load_scenario(
        write(tmp_path, "scaling: {policy: keda, keda: {manifest: keda.yaml}}\n")
    )
    keda = scenario.scaling.keda
    assert (keda.target_per_agent, keda.activation_threshold) == (4.0, 1.0)
    assert (keda.polling_interval, keda.cooldown) == (15.0, 120.0)
    policy = fleet_autoscaler(scenario.scaling, scenario.control_agents())
    # 200 tasks at 4 per agent ask for 50 agents; the created HPA allows +2 pods a minute.
    agents, seen = 10, []
    for t in range(0, 181, 15):
        agents = policy.decide(wanting(agents, 200), float(t)).target
        seen.append(agents)
    assert seen[0] == 12
    assert seen[:4] == [12, 12, 12, 12]
    assert seen[4] == 14  # a minute later, two more
    assert max(seen) <= 10 + 2 * (1 + 180 // 60)


def test_the_sync_period_sets_how_often_the_simulated_hpa_decides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
duration: 30m
warmup: 0
scaling: {policy: hpa, hpa: {sync_period: 15s}}
""",
    )
    result = run_scenario(load_scenario(path))
    scale = result.events[result.events["kind"] == "scale"]
    assert len(scale) > 0
    assert all(float(t) % 15.0 == pytest.approx(0.0, abs=1e-9) for t in scale["time_s"])
    assert any(float(t) % 60.0 != 0.0 for t in scale["time_s"])  # not the 60 s evaluation grid


def first_scale_up_after(path: Path, after_s: float, *overrides: str) -> tuple[float, float]:
    """(time of the first scale-up after *after_s*, time its first agent joined)."""
    result = run_scenario(load_scenario(path, list(overrides)))
    events = result.events
    ups = events[(events["kind"] == "scale") & (events["time_s"] > after_s)]
    ups = ups[[json.loads(d)["delta"] > 0 for d in ups["detail"]]]
    decided = float(ups["time_s"].iloc[0])
    joined = events[(events["kind"] == "agent_joined") & (events["time_s"] > decided)]
    return decided, float(joined["time_s"].iloc[0])


def test_a_stale_metric_pipeline_delays_the_reaction_by_its_delay(tmp_path: Path) -> None:
    """metrics-server's 15 s resolution plus a 60 s adapter delay: the HPA reacts that much later.

    A burst quadruples arrivals at 20 min. The ideal pipeline scales up at the
    first sync that sees the queue; a pipeline whose scrapes arrive 60 s late
    (on a 15 s grid) reacts at least 60 s and at most 60 + 15 + 15 s later.
    Scale-down is disabled so that both fleets meet the burst at the same size. An
    actuation delay of 30 s then puts the first new agent 30 s later than the
    spawn delay alone.
    """
    path = write(
        tmp_path,
        """
duration: 40m
warmup: 0
workload: {arrivals: {bursts: [{at: 20m, duration: 10m, factor: 4}]}}
scaling:
  policy: hpa
  spawn_delay: 60s
  hpa:
    sync_period: 15s
    target_cpu_utilization: null
    target_queue_per_agent: 1
    behavior: {scaleDown: {selectPolicy: Disabled}}
""",
    )
    ideal, ideal_joined = first_scale_up_after(path, 1200.0)
    late, _ = first_scale_up_after(
        path,
        1200.0,
        "scaling.pipeline.metric_resolution=15s",
        "scaling.pipeline.metric_delay=60s",
    )
    assert 60.0 <= late - ideal <= 60.0 + 15.0 + 15.0
    acted, acted_joined = first_scale_up_after(path, 1200.0, "scaling.pipeline.actuation_delay=30s")
    assert acted == ideal  # the decision is not later, only its effect
    assert acted_joined - acted == pytest.approx(ideal_joined - ideal + 30.0)
