"""Plain-text formatting of report values: numbers, identifiers, intervals, times.

Every function returns text that the caller still HTML-escapes with :func:`esc`; the
figures' formatting lives here once so the run report and the comparison report agree.
"""

from __future__ import annotations

import html
import json
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def as_number(value: object) -> int | float | None:
    """Python or NumPy int/float as a Python number; None for anything else (booleans too)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def is_number(value: object) -> bool:
    return as_number(value) is not None


def fmt_number(value: int | float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.1f}"
    if magnitude >= 0.01:
        return f"{value:.4g}"
    return f"{value:.3g}"


def fmt_value(value: object) -> str:
    """Plain-text rendering of a summary leaf (escaped by the caller)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = as_number(value)
    if number is not None:
        return fmt_number(number)
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        if any(isinstance(v, Mapping | list | tuple) for v in value):
            return f"{len(value)} items"
        return ", ".join(fmt_value(v) for v in value)
    if isinstance(value, Mapping):
        return "none" if not value else json.dumps(value, default=str, sort_keys=True)
    return str(value)


def fmt_id(value: object) -> str:
    """An identifier such as a seed: digits only, even if averaging made it a float."""
    number = as_number(value)
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    if number is not None:
        return str(number)
    return "—" if value is None else str(value)


def fmt_ci(pair: object) -> str:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        lo, hi = as_number(pair[0]), as_number(pair[1])
        if lo is not None and hi is not None:
            return f"[{fmt_number(lo)}, {fmt_number(hi)}]"
    return ""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, object]]:
    """Yield ``(dotted.key, leaf)`` pairs; an empty mapping is itself a leaf."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, name + ".")
        else:
            yield name, value


def flatten_ci(tree: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    """Dotted key -> ``[lo, hi]`` for a ``ci95`` tree mirroring the summary."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_ci(value, name + "."))
        else:
            out[name] = value
    return out


def get_path(tree: Mapping[str, Any], *path: str) -> object:
    node: object = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def num(value: object) -> float | None:
    """A finite number as float, else None."""
    number = as_number(value)
    if number is None or not math.isfinite(number):
        return None
    return float(number)
