"""Random draws both shells take alike: keyed by the task, not taken from a stream in order.

Why: the simulator and a live coordinator meet the same tasks in different
orders (the coordinator assigns, the simulator's agents start; a DAG node is
released when its predecessor's report reaches each shell, a different
instant in each). Drawn from a stream in its own order, each shell gave the
same task different numbers, and a live run and its replay parted on chance
alone: at the spec's full fleet under an error burst 14 % of the tasks made
a different number of attempts in the two. A draw here is a pure function of
what both know of the task alike (``task_key``) and of which draw it is
(attempt, message, call and refusal, input), so both draw the same number,
in any order.

Each is splitmix64's finaliser over the key mixed with what the draw is of,
salted apart so that two kinds of draw for one task never coincide.
"""

from __future__ import annotations

import math
import struct
from statistics import NormalDist

__all__ = [
    "attempt_draws",
    "backoff_draw",
    "loss_draw",
    "task_key",
    "transfer_jitter",
]

_MASK64 = (1 << 64) - 1
_UNIT = 2.0**-53
_FLOAT_BITS = struct.Struct("<d")


def _mix(x: int) -> int:
    """splitmix64's finaliser: a 64-bit integer to a well-spread 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def task_key(seed: int, arrival_s: float, job_id: int, node: int) -> int:
    """A task's key for its attempts' fault draws: what both shells know of it alike.

    An independent task's arrival (the same float in both: the same stream
    drew it); a DAG node's job and node, and not its arrival, which is its
    release — when a predecessor's completion reached each shell's
    coordinator, a different float in each (keyed by it, live's and its
    replay's DAG nodes had erred on different attempts). Not its id: ids part between a live run and
    its replay at the first DAG release, and not the order draws are taken
    in, which differs between the coordinator's assignments and the
    simulator's starts (the two had drawn from one stream each in their own
    order, so live and its replay erred on different attempts: at the full
    fleet under an error burst, 14 % of the tasks made a different number of
    attempts in the two).
    """
    (bits,) = struct.unpack("<Q", _FLOAT_BITS.pack(arrival_s)) if job_id < 0 else (0,)
    return _mix(
        _mix(seed & _MASK64) ^ bits ^ _mix(((job_id & 0xFFFFFFFF) << 32) | (node & 0xFFFFFFFF))
    )


def attempt_draws(key: int, attempt: int) -> tuple[float, float]:
    """The two uniform draws of attempt number *attempt* of the task *key*: whether it errs
    and when (``attempt_fate``); the same numbers in both shells, in any order."""
    first = _mix(key ^ attempt)
    return (first >> 11) * _UNIT, (_mix(first) >> 11) * _UNIT


#: Sets a throttled call's backoff draws apart from the same task's other draws.
_BACKOFF_SALT = 0x2545F4914F6CDD1D
#: Sets a message's loss draws apart from the same task's fault draws.
_LOSS_SALT = 0x5DEECE66DA5A5A5A


def loss_draw(key: int, number: int) -> float:
    """The uniform draw deciding whether the *number*-th assignment of the task *key* sent
    in a loss window is lost (chaos ``message_loss``): the same in both shells, in any
    order. Live's coordinator and the simulator's chief had drawn from streams of their
    own, so different tasks waited a TTL in live and in its replay."""
    return (_mix(key ^ _LOSS_SALT ^ _mix(number)) >> 11) * _UNIT


def backoff_draw(key: int, attempt: int, call: int, retry: int) -> float:
    """The uniform draw of the backoff after the *retry*-th refusal of call *call* (0-based)
    of attempt *attempt* of the task *key* (``RetryRule.next``'s jitter): the same in both
    shells. Live's agents drew from a generator seeded by the wall clock and the simulator
    from one stream in its own order, so under a binding provider limit the same refusal
    backed off differently in live and in its replay (at the spec's fleet, the replay's
    p99 wait moved 108-132 s with the stream's seed alone, live's 126 s)."""
    mixed = _mix(key ^ _BACKOFF_SALT ^ _mix((attempt << 40) ^ (call << 20) ^ retry))
    return (mixed >> 11) * _UNIT


#: Sets a DAG input's transfer draws apart from the same task's other draws.
_TRANSFER_SALT = 0x6A09E667F3BCC909
_STANDARD_NORMAL = NormalDist()


def transfer_jitter(key: int, attempt: int, predecessor: int, sigma: float) -> float:
    """The network's lognormal jitter (mean 1, log-sd *sigma*) on the transfer of
    *predecessor*'s output to attempt *attempt* of the DAG node *key*: the same factor in
    both shells. The simulator had drawn it from the network's one stream, in its order,
    and the live coordinator from a network of its own, so the same input moved in a
    different time live and in its replay (at the full fleet, up to 3 s apart)."""
    if sigma <= 0:
        return 1.0
    mixed = _mix(key ^ _TRANSFER_SALT ^ _mix((attempt << 32) ^ (predecessor & 0xFFFFFFFF)))
    u = ((mixed >> 11) + 0.5) * _UNIT  # in (0, 1): the normal's inverse is finite
    return math.exp(sigma * _STANDARD_NORMAL.inv_cdf(u) - sigma * sigma / 2)
