"""KEDA's queue scaler, in ``sim.policies.autoscale.keda``: formula, polling, cooldown, bounds."""

from __future__ import annotations

from autoscale_support import obs

from sim.policies.autoscale import KedaConfig, KedaQueuePolicy


def keda(**config: object) -> KedaQueuePolicy:
    base: dict[str, object] = {"min_agents": 1, "max_agents": 100, "target_per_agent": 5.0}
    return KedaQueuePolicy(KedaConfig(**{**base, **config}))  # type: ignore[arg-type]


def test_keda_asks_for_ceil_queue_over_target() -> None:
    decision = keda(include_in_flight=False).decide(obs(10, queue=123.0), 0.0)
    assert (decision.target, decision.policy) == (25, "keda")
    with_held = keda().decide(obs(10, queue=123.0, in_flight=10.0), 0.0)
    assert with_held.target == 27  # ceil(133 / 5)


def test_keda_acts_only_at_its_polling_interval() -> None:
    policy = keda()
    assert policy.decide(obs(10, queue=100.0), 0.0).target == 20
    skipped = policy.decide(obs(20, queue=300.0), 29.0)
    assert skipped.delta == 0 and "not polled" in skipped.reason
    assert policy.decide(obs(20, queue=300.0), 30.0).target == 60


def test_keda_waits_its_cooldown_after_the_last_active_poll_before_going_to_min() -> None:
    policy = keda(min_agents=2)
    assert policy.decide(obs(10, queue=200.0), 0.0).target == 40
    for t in range(30, 300, 30):
        held = policy.decide(obs(40, queue=0.0), float(t))
        assert held.delta == 0 and "cooldown until 300" in held.reason
    assert policy.decide(obs(40, queue=0.0), 300.0).target == 2


def test_keda_scales_in_while_active_only_to_the_window_max() -> None:
    policy = keda(stabilization_window_s=120.0)
    assert policy.decide(obs(10, queue=200.0), 0.0).target == 40
    assert policy.decide(obs(40, queue=50.0), 30.0).delta == 0  # 10 wanted, 40 in the window
    assert policy.decide(obs(40, queue=50.0), 120.0).target == 10


def test_keda_tolerance_and_bounds() -> None:
    assert keda().decide(obs(20, queue=104.0), 0.0).delta == 0  # 1.04 of target
    assert keda().decide(obs(20, queue=10_000.0), 0.0).target == 100
    from_zero = keda(min_agents=0).decide(obs(0, queue=1.0), 0.0)
    assert from_zero.target == 1 and "activated" in from_zero.reason
    idle_zero = keda(min_agents=0).decide(obs(0, queue=0.0), 0.0)
    assert idle_zero.delta == 0


def test_keda_activation_threshold() -> None:
    policy = keda(min_agents=0, activation_threshold=3.0)
    assert policy.decide(obs(0, queue=3.0), 0.0).delta == 0
    assert policy.decide(obs(0, queue=4.0), 30.0).target == 1


def test_keda_force_polls_at_once() -> None:
    policy = keda()
    policy.decide(obs(10, queue=50.0), 0.0)
    policy.force_scale_up(5.0, "queue_overflow")
    forced = policy.decide(obs(10, queue=500.0), 6.0)
    assert forced.target == 100 and "queue_overflow" in forced.reason
