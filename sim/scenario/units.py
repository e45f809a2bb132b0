"""Parsing of the human units scenarios are written in: durations and percentages.

Scenario authors write ``15m``, ``6h``, ``2d`` or a plain number of seconds; the
spec's own YAML writes ``5%`` and ``10s``. Everything becomes float seconds
or a fraction at the schema boundary, so the model never sees a string.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h|d)?\s*$")
_COMPOUND = re.compile(r"^(?:\s*(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|s|min|m|h|d))+\s*$")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h|d)")
_UNIT_SECONDS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``90.5``, ``"90s"``, ``"15m"``, ``"6h"``, ``"2d"`` or ``"250ms"``.

    Negative and non-finite values are rejected here rather than deep inside
    the model, where they would surface as a hung or empty run.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '15m', '6h' or '2d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None and _COMPOUND.match(value):
            parts = _PART.findall(value)  # "1h30m", "2d 6h"
            seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
            return _checked(seconds, value)
        if match is None:
            raise ValueError(
                f"expected a duration such as 90, '90s', '15m', '6h' or '2d', got {value!r}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration such as 90, '90s', '15m', '6h' or '2d'")
    return _checked(seconds, value)


def _checked(seconds: float, value: object) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative finite duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of *seconds*, for reports and docs."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
