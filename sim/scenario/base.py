"""What every scenario section is built from: the strict base model and the duration type.

Kept apart from the sections so that each group of sections can live in its
own module without importing the whole schema.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from sim.scenario.units import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts ``90``, ``'90s'``, ``'15m'``, ``'6h'``, ``'2d'``."""


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
