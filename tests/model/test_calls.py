"""Call and Sleep schedule exactly as ``env.timeout`` did (a callback; a process's pause)."""

from __future__ import annotations

import pytest
import simpy

from sim.model.calls import Call, Sleep, events_scheduled, hand_over, idle_event, run_until


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


def test_idle_event_is_what_env_event_builds() -> None:
    """idle_event skips SimPy's constructor: it must set every field that constructor sets."""
    env = simpy.Environment()
    lean, plain = idle_event(env), env.event()
    assert type(lean) is type(plain)
    assert vars(lean) == vars(plain)
    assert not lean.triggered


def _wake_trace(lean: bool) -> list[tuple[float, str, object]]:
    """Two slots parked on wake-up events, woken with work at equal and later times."""
    env = simpy.Environment()
    seen: list[tuple[float, str, object]] = []
    parked: list[simpy.Event] = []

    def slot(name: str) -> simpy.events.ProcessGenerator:
        for _ in range(2):
            wake = idle_event(env) if lean else env.event()
            parked.append(wake)
            task = yield wake
            seen.append((env.now, name, task))

    def deliver(event: simpy.Event) -> None:
        wake = parked.pop(0)
        delay = 0.0 if event.value % 2 == 0 else 1.5
        if lean:
            hand_over(env, wake, event.value, delay)
        else:
            wake._ok, wake._value = True, event.value
            env.schedule(wake, simpy.events.NORMAL, delay)

    env.process(slot("a"))
    env.process(slot("b"))
    for value, delay in enumerate((1.0, 1.0, 3.0, 4.0)):
        env.timeout(delay, value).callbacks.append(deliver)
    Call(env, 1.0, "tie", lambda event: seen.append((env.now, "call", event.value)))
    env.run()
    return seen


def test_hand_over_schedules_as_env_schedule() -> None:
    """hand_over writes SimPy's schedule in: the same order as the library's own call."""
    expected = _wake_trace(lean=False)
    assert len(expected) == 5
    assert [name for _, name, _ in expected] == ["call", "a", "b", "a", "b"]
    assert _wake_trace(lean=True) == expected


def _run_trace(lean: bool) -> tuple[list[tuple[float, str, object]], int, float, list[object]]:
    """A process and callbacks, some exactly at the stop times, run to 2.0 then 5.0."""
    env = simpy.Environment()
    seen: list[tuple[float, str, object]] = []

    def worker() -> simpy.events.ProcessGenerator:
        for step in range(6):
            yield env.timeout(1.0)
            seen.append((env.now, "worker", step))

    env.process(worker())
    for value, (delay, urgent) in enumerate(((2.0, True), (2.0, False), (3.5, False), (5.0, True))):
        event = env.event()
        event._ok, event._value = True, value
        event.callbacks.append(lambda e: seen.append((env.now, "call", e.value)))
        env.schedule(event, simpy.events.URGENT if urgent else simpy.events.NORMAL, delay)
    for until in (2.0, 5.0):
        if lean:
            run_until(env, until)
        else:
            env.run(until=until)
    queue = [entry[:3] for entry in sorted(env._queue)]
    return seen, int(next(env._eid)), env.now, queue


def test_run_until_steps_as_env_run() -> None:
    """Same events processed, same clock, same ids and leftovers in the queue as env.run."""
    expected = _run_trace(lean=False)
    assert expected[2] == 5.0 and len(expected[0]) == 8
    assert _run_trace(lean=True) == expected


def test_run_until_crashes_on_an_undefused_failure() -> None:
    env = simpy.Environment()
    env.timeout(1.0).callbacks.append(lambda _: env.event().fail(KeyError("lost")))
    with pytest.raises(KeyError, match="lost"):
        run_until(env, 3.0)
    with pytest.raises(ValueError, match="greater than the current"):
        run_until(env, 0.5)
