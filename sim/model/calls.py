"""A function called at a later simulated time, scheduled as cheaply as SimPy allows.

The model moves most records with callbacks rather than processes: an
arrival schedules the next, a message is delivered after its latency, a
report reaches the chief. ``env.timeout(delay, value).callbacks.append(fn)``
does that, but builds a general-purpose ``Timeout`` on the way (a bound-class
lookup, a delay check, fields nobody reads) for one or two of them per task.
:class:`Call` is the same event built directly: triggered, carrying *value*,
with *fn* as its only callback, scheduled at construction exactly as a
``Timeout`` schedules itself — the same time, priority and event id, so the
run is bit for bit the one the ``Timeout`` gave.

This is the one module of the shell that touches SimPy's private fields
(``_ok``, ``_value``, ``_eid``): SimPy has no public hook for an event
built already triggered, for triggering one later, or for the count of
events scheduled. ``tests/model/test_calls.py`` fails if SimPy changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["Call", "Sleep", "events_scheduled", "hand_over"]


class Call(simpy.Event):
    """Call *fn(event)* *delay* seconds from now; the event's value is *value*.

    The receiver reads it as ``event.payload``: a plain attribute, where
    ``event.value`` is a property that checks the event first (once per
    message on the hot path).
    """

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        value: Any,
        fn: Callable[[Call], None],
    ) -> None:
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        # Event.__init__ is skipped on purpose: these are the fields SimPy reads.
        self.env = env
        # SimPy calls each callback with the event, which is this Call.
        self.callbacks = [fn]
        self._ok = True
        self._value = value
        self.payload = value
        env.schedule(self, NORMAL, delay)


class Sleep(simpy.Event):
    """A process's pause of *delay* seconds: what ``yield env.timeout(delay)`` waits on, built lean.

    A slot yields one per service (and per fetch or transfer); scheduled at
    construction with the same time, priority and event id as a ``Timeout``.
    """

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        self.env = env
        self.callbacks = []
        self._ok = True
        self._value = None
        env.schedule(self, NORMAL, delay)


def hand_over(env: simpy.Environment, wake: simpy.Event, value: Any, delay: float) -> None:
    """Trigger the untriggered event *wake* *delay* seconds from now, carrying *value*.

    Handing work straight to a sleeping slot costs one event instead of two (a
    delivery timeout, then a wake-up). This is what ``simpy.Timeout`` does
    when it is built: mark the event triggered with its value and schedule it
    (with no delay, exactly what ``succeed`` does, without its checks: the
    slot's wake-up event is fresh and untriggered by construction).
    """
    wake._ok = True
    wake._value = value
    env.schedule(wake, NORMAL, delay if delay > 0 else 0)


def events_scheduled(env: simpy.Environment) -> int:
    """How many events *env* has scheduled so far (its next event id; it takes that id)."""
    return int(next(env._eid))
