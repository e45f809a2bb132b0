"""Call and Sleep schedule exactly as ``env.timeout`` did (a callback; a process's pause)."""

from __future__ import annotations

import pytest
import simpy

from sim.model.calls import Call, Sleep, events_scheduled, hand_over


def _trace(use_call: bool) -> list[tuple[float, str, object]]:
    """Callbacks and processes interleaved at equal times: the order is the event ids'."""
    env = simpy.Environment()
    seen: list[tuple[float, str, object]] = []

    def note(event: simpy.Event) -> None:
        seen.append((env.now, "call", event.value))

    def worker() -> simpy.events.ProcessGenerator:
        for step in range(3):
            yield Sleep(env, 1.0) if use_call else env.timeout(1.0)
            seen.append((env.now, "worker", step))

    env.process(worker())
    for value, delay in enumerate((1.0, 0.0, 2.0, 1.0, 3.0)):
        if use_call:
            Call(env, delay, value, note)
        else:
            env.timeout(delay, value).callbacks.append(note)
    env.run()
    return seen


def test_same_order_as_a_timeout() -> None:
    expected = _trace(use_call=False)
    assert len(expected) == 8
    assert _trace(use_call=True) == expected


def test_negative_delay_is_refused() -> None:
    env = simpy.Environment()
    with pytest.raises(ValueError, match="negative delay"):
        Call(env, -1.0, None, lambda event: None)
    with pytest.raises(ValueError, match="negative delay"):
        Sleep(env, -0.5)


def test_hand_over_wakes_a_sleeping_process_with_the_value() -> None:
    """The one wrapper of SimPy's private fields: fails if SimPy changes how events trigger."""
    env = simpy.Environment()
    got: list[tuple[float, object]] = []

    def sleeper(wake: simpy.Event) -> simpy.events.ProcessGenerator:
        value = yield wake
        got.append((env.now, value))

    wake = env.event()
    env.process(sleeper(wake))
    env.run()  # the process starts and sleeps on its untriggered wake-up
    hand_over(env, wake, "task", 2.5)
    assert wake.triggered and wake.value == "task"
    env.run()
    assert got == [(2.5, "task")]


def test_events_scheduled_counts_the_environments_events() -> None:
    env = simpy.Environment()
    first = events_scheduled(env)
    for _ in range(3):
        env.timeout(1.0)
    Call(env, 0.0, "x", lambda event: None)
    # Four scheduled, plus the id the first count itself took.
    assert events_scheduled(env) == first + 5


def test_a_call_carries_its_value_as_payload() -> None:
    env = simpy.Environment()
    seen: list[object] = []
    Call(env, 1.0, ("a", 1), lambda event: seen.append((event.payload, event.value)))
    env.run()
    assert seen == [(("a", 1), ("a", 1))]
