"""Call and Sleep schedule exactly as ``env.timeout`` did (a callback; a process's pause)."""

from __future__ import annotations

import pytest
import simpy

from sim.model.calls import Call, Sleep


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
