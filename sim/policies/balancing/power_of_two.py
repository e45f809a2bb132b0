"""Power of two choices: the less loaded of two agents sampled among those with room."""

from __future__ import annotations

import numpy as np

from sim.policies.balancing.indexes import Member
from sim.policies.balancing.pool import Pool, PoolBalancer
from sim.policies.types import TaskInfo

__all__ = ["PowerOfTwoBalancer"]


class _Uniforms:
    """Uniform floats in [0, 1) from a numpy generator, drawn in batches.

    One ``Generator.random`` call per choice would cost more than the rest of
    ``choose``; batching keeps the draw O(1) and cheap while the sequence
    stays a pure function of the seed and the number of draws.
    """

    __slots__ = ("batch", "buffer", "position", "rng")

    def __init__(self, rng: np.random.Generator, batch: int = 1024) -> None:
        self.rng = rng
        self.batch = batch
        self.buffer: list[float] = []
        self.position = 0

    def draw(self) -> float:
        if self.position == len(self.buffer):
            self.buffer = self.rng.random(self.batch).tolist()
            self.position = 0
        value = self.buffer[self.position]
        self.position += 1
        return value


class _PowerOfTwoPool(Pool):
    """Agents with room in an array, so two of them can be sampled in O(1).

    An agent's index in the array is stored on its member record, so removal
    is a swap with the last element.
    """

    __slots__ = ("room", "uniforms")

    def __init__(self, uniforms: _Uniforms) -> None:
        super().__init__()
        self.uniforms = uniforms
        self.room: list[Member] = []

    def _add(self, member: Member) -> None:
        member.room_index = len(self.room)
        self.room.append(member)

    def _remove(self, member: Member) -> None:
        index = member.room_index
        last = self.room.pop()
        if last is not member:
            self.room[index] = last
            last.room_index = index
        member.room_index = -1

    def _joined(self, member: Member) -> None:
        if member.has_room:
            self._add(member)

    def _left(self, member: Member) -> None:
        if member.room_index >= 0:
            self._remove(member)

    def _load_changed(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        if has_room and not had_room:
            self._add(member)
        elif had_room and not has_room:
            self._remove(member)

    def pick(self, task: TaskInfo) -> Member:
        room = self.room
        count = len(room)
        if count == 1:
            return room[0]
        # Two distinct indices: the second is drawn from the count - 1 others.
        first = min(int(self.uniforms.draw() * count), count - 1)
        second = min(int(self.uniforms.draw() * (count - 1)), count - 2)
        if second >= first:
            second += 1
        a, b = room[first], room[second]
        return b if b.load < a.load else a


class PowerOfTwoBalancer(PoolBalancer[_PowerOfTwoPool]):
    """The less loaded of two agents sampled at random among those with room.

    The "power of two choices" (Azar, Broder, Karlin and Upfal, 1999; Mitzenmacher,
    2001): with n tasks placed on n agents this way the maximum load is
    ln ln n / ln 2 + O(1), against about ln n / ln ln n for one random choice,
    while needing load information about only two agents, which is why it
    suits coordinators whose load view is stale or partial. Ties go to the
    first agent sampled. ``choose`` is O(1).

    Random numbers are drawn from *rng* in batches of 1024, so the generator
    should belong to the balancer alone (for example one spawned from the run's
    seed sequence) for runs to be reproducible.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self._uniforms = _Uniforms(rng)

    def _new_pool(self) -> _PowerOfTwoPool:
        return _PowerOfTwoPool(self._uniforms)
