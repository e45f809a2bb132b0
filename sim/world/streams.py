"""Random streams: one per component, derived from the scenario seed by name.

Each component asks for its stream by a stable name (``"arrivals"``,
``"service.CodeGen"``, ``"network"``). The stream's SeedSequence is the
scenario seed plus the replication number plus a CRC of the name, so adding,
removing or reordering components never reshuffles the others: two runs that
differ only in a policy see the very same arrivals and service demands
(common random numbers).
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    """A factory of independent, reproducible generators for one replication."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = seed
        self.replication = replication
        self._made: set[str] = set()

    def get(self, name: str) -> np.random.Generator:
        """The generator for component *name*; each name may be taken once."""
        if name in self._made:
            raise ValueError(f"random stream {name!r} requested twice; streams are per component")
        self._made.add(name)
        key = (self.replication, zlib.crc32(name.encode("utf-8")))
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key))
        )


class Batched:
    """Draws from a generator in blocks, so the hot path pays one list pop per value.

    numpy's per-call overhead (about a microsecond) dwarfs the cost of one
    draw; a simulated day draws hundreds of thousands of values, so they are
    drawn 4,096 at a time and handed out in order — the sequence is the same
    as one long draw, whatever the block size.
    """

    __slots__ = ("_draw", "_size", "buffer")

    def __init__(self, draw: object, size: int = 4096) -> None:
        self._draw = draw
        self._size = size
        #: The values not yet handed out, the next one last. Always this list (refilled in
        #: place), so a hot caller may pop from it directly and call only when it is empty.
        self.buffer: list[float] = []

    def __call__(self) -> float:
        buffer = self.buffer
        if not buffer:
            block = self._draw(self._size)  # type: ignore[operator]
            buffer.extend(block.tolist()[::-1])
        return buffer.pop()
