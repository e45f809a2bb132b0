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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["Call", "Sleep"]


class Call(simpy.Event):
    """Call *fn(event)* *delay* seconds from now; the event's value is *value*."""

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        value: Any,
        fn: Callable[[simpy.Event], None],
    ) -> None:
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        # Event.__init__ is skipped on purpose: these are the fields SimPy reads.
        self.env = env
        self.callbacks = [fn]
        self._ok = True
        self._value = value
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
