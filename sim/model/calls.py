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

The rest of the module is the same bargain for the other per-task steps of
SimPy: a slot's pause (:class:`Sleep`), its wake-up event (:func:`idle_event`)
and the hand-over that triggers it (:func:`hand_over`), and the run loop
itself (:func:`run_until`). This is the one module of the shell that touches
SimPy's private fields (``_queue``, ``_eid``, ``_now``, ``_ok``, ``_value``):
SimPy has no public hook for an event built already triggered, for
triggering one later, for scheduling without the call of ``schedule``, for
a run loop without the call of ``step``, or for the count of events
scheduled. ``tests/model/test_calls.py`` holds each step against the
library's own call, so a SimPy that changes them fails there first.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT, EventPriority

__all__ = ["Call", "Sleep", "events_scheduled", "hand_over", "idle_event", "run_until"]

#: ``simpy.Event`` built without its ``__init__`` frame (see :func:`idle_event`).
_new_event = simpy.Event.__new__


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
        # env.schedule(self, NORMAL, delay), written in: the same queue entry, one call less.
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


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
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


def idle_event(env: simpy.Environment) -> simpy.Event:
    """A fresh untriggered event for an idle slot to sleep on: ``env.event()`` without its calls.

    ``env.event()`` goes through SimPy's bound class and ``Event.__init__``,
    which set exactly these two fields; a slot parks one every time it finds
    no work, so the two Python frames show on the hot path.
    """
    event = _new_event(simpy.Event)
    event.env = env
    event.callbacks = []
    return event


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
    heappush(env._queue, (env._now + (delay if delay > 0 else 0), NORMAL, next(env._eid), wake))


def run_until(env: simpy.Environment, until: float) -> None:
    """``env.run(until=until)`` with ``Environment.step`` written into the loop.

    Every event of a run passes through ``step`` (about three a task), whose
    call and ``try`` cost more than the step itself does. The queue is
    handled exactly as SimPy handles it, so event ids, times and counts are
    the library's: the stop event is scheduled URGENT at *until* from now when
    the run starts, and when it is reached it is put back at priority -1 with
    a fresh id and no callbacks (what ``step`` does with an event whose
    callback raised ``StopSimulation``); a failed event nobody defused
    crashes the run with a copy of its exception, as in ``step``.
    """
    now = env._now
    if until <= now:
        raise ValueError(f"until ({until}) must be greater than the current simulation time")
    queue, eid = env._queue, env._eid
    stop = idle_event(env)
    stop._ok = True
    stop._value = None
    heappush(queue, (now + (until - now), URGENT, next(eid), stop))
    while True:
        env._now, _, _, event = heappop(queue)
        if event is stop:
            stop.callbacks = []
            heappush(queue, (env._now, EventPriority(-1), next(eid), stop))
            return
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            error = event._value
            copy = type(error)(*error.args)
            copy.__cause__ = error
            raise copy


def events_scheduled(env: simpy.Environment) -> int:
    """How many events *env* has scheduled so far (its next event id; it takes that id)."""
    return int(next(env._eid))
