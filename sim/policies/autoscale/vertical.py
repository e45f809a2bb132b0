"""Vertical sizing (section 4.2): the sizes of one agent, with their speed and price."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from sim.policies.autoscale.base import EPS

__all__ = ["SizeOption", "size_options"]


@dataclass(frozen=True, slots=True)
class SizeOption:
    """One vertical size of an agent (section 4.2) with its speed and price.

    ``speed`` is work per second relative to the base size, by Amdahl's law;
    ``usd_per_hour`` is what the size costs running; ``usd_per_work_hour`` is
    ``usd_per_hour / speed``: the price of the work a base agent does in an hour.
    """

    vcpu: float
    mem_gb: float
    speed: float
    usd_per_hour: float
    usd_per_work_hour: float


def _amdahl_speed(vcpu: float, base_vcpu: float, parallel_fraction: float) -> float:
    # The same law as sim.world.topology.amdahl_speed (a test checks they agree). Not imported:
    # world imports the scenario schema, which imports this package, so the import would be
    # circular as soon as sim.policies re-exports this module.
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction * base_vcpu / vcpu)


def size_options(
    base: tuple[float, float],
    max: tuple[float, float],  # the spec's column name; builtins.max is used below
    parallel_fraction: float,
    price_vcpu_h: float,
    price_gb_h: float,
) -> list[SizeOption]:
    """Sizes from *base* to *max* ``(vcpu, mem_gb)`` in steps of *base*, smallest first.

    Step *k* is ``k x base`` with each resource capped at its max; the last
    option is *max* itself, on the grid or not. Prices are US dollars per vCPU
    hour and per GB hour.
    """
    base_vcpu, base_mem = float(base[0]), float(base[1])
    max_vcpu, max_mem = float(max[0]), float(max[1])
    if base_vcpu <= 0 or base_mem <= 0 or max_vcpu < base_vcpu or max_mem < base_mem:
        raise ValueError(f"expected 0 < base <= max per resource, got {base} and {max}")
    if not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError(f"expected a parallel fraction in [0, 1], got {parallel_fraction}")
    options: list[SizeOption] = []
    k = 1
    while True:
        vcpu = builtins.min(k * base_vcpu, max_vcpu)
        mem = builtins.min(k * base_mem, max_mem)
        if vcpu >= max_vcpu * (1 - EPS) and mem >= max_mem * (1 - EPS):
            vcpu, mem = max_vcpu, max_mem
        speed = _amdahl_speed(vcpu, base_vcpu, parallel_fraction)
        usd = vcpu * price_vcpu_h + mem * price_gb_h
        options.append(SizeOption(vcpu, mem, speed, usd, usd / speed))
        if (vcpu, mem) == (max_vcpu, max_mem):
            return options
        k += 1
