"""Affinity: consistent hashing with bounded loads, and its process-independent hashing.

The ring positions come from SplitMix64 and BLAKE2b rather than the built-in
``hash``, so two processes with different ``PYTHONHASHSEED`` agree on where
every key and agent sits.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from array import array
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from sim.policies.balancing.indexes import LoadBuckets, Member
from sim.policies.balancing.pool import Pool, PoolBalancer
from sim.policies.types import TaskInfo

__all__ = ["AffinityBalancer", "key_position", "vnode_positions"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: a stable 64-bit integer hash (no per-process salt)."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * _MIX1) & _MASK64
    value = ((value ^ (value >> 27)) * _MIX2) & _MASK64
    return value ^ (value >> 31)


def _mix64_array(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """:func:`_mix64` over an array; uint64 arithmetic wraps modulo 2**64 as needed."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(_MIX1)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(_MIX2)
    return values ^ (values >> np.uint64(31))


def key_position(key: int) -> int:
    """Where an affinity key sits on the ring, in [0, 2**63)."""
    return _mix64(key + _GOLDEN) >> 1


def vnode_positions(agent_ids: list[str], vnodes: int) -> npt.NDArray[np.int64]:
    """The ring positions of the agents' virtual nodes, in [0, 2**63), one row per agent.

    An agent's positions are the first *vnodes* outputs of a SplitMix64 stream
    seeded with a BLAKE2b digest of its id, so they depend on the id alone: an
    agent that leaves and re-joins gets its keys back, and every process
    agrees.
    """
    seeds = np.array(
        [
            int.from_bytes(hashlib.blake2b(a.encode("utf-8"), digest_size=8).digest(), "little")
            for a in agent_ids
        ],
        dtype=np.uint64,
    )
    steps = np.arange(1, vnodes + 1, dtype=np.uint64) * np.uint64(_GOLDEN)
    return (_mix64_array(seeds[:, None] + steps[None, :]) >> np.uint64(1)).astype(np.int64)


class _AffinityPool(Pool):
    """A hash ring with bounded loads, plus load buckets for keyless tasks.

    The ring is kept as two numpy arrays (positions, owner slot) that are
    merged incrementally when agents join or leave, and mirrored for lookups
    as two ``array('q')``, because ``bisect`` and indexing on those are
    several times cheaper than numpy scalar calls, copying them from numpy is
    a memcpy, and flat 64-bit arrays (rather than lists of int objects) keep
    a large ring's lookups to one cache miss each. An owner slot indexes
    ``slots``, which holds every membership this pool has had; departed ones
    stay there but are no longer on the ring. A table of bucket starts narrows the
    binary search to the few points of one bucket, so finding a key's place
    is O(1) expected rather than O(log(n * vnodes)) cache misses. Membership
    changes are applied lazily, on the next keyed ``pick``, so a burst of
    joins costs one merge.
    """

    __slots__ = (
        "buckets",
        "c",
        "owners",
        "pending_add",
        "pending_remove",
        "positions",
        "ring_owners",
        "ring_positions",
        "ring_shift",
        "ring_table",
        "slots",
        "vnodes",
    )

    def __init__(self, c: float, vnodes: int) -> None:
        super().__init__()
        self.c = c
        self.vnodes = vnodes
        self.buckets = LoadBuckets()
        self.slots: list[Member] = []
        self.positions: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.owners: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.ring_positions: array[int] = array("q")
        self.ring_owners: array[int] = array("q")
        self.ring_table: array[int] = array("q", [0, 0])
        self.ring_shift = 63
        self.pending_add: list[int] = []
        self.pending_remove: list[int] = []

    def _joined(self, member: Member) -> None:
        member.slot = len(self.slots)
        self.slots.append(member)
        self.pending_add.append(member.slot)
        if member.has_room:
            self.buckets.add(member)

    def _left(self, member: Member) -> None:
        self.pending_remove.append(member.slot)
        if member.has_room:
            self.buckets.discard(member, member.load)

    def _load_changed(self, member: Member, old: int, had_room: bool, has_room: bool) -> None:
        self.buckets.moved(member, old, had_room, has_room)

    def _sync(self) -> None:
        positions, owners = self.positions, self.owners
        if self.pending_remove:
            gone = np.isin(owners, np.array(self.pending_remove, dtype=np.int64))
            positions, owners = positions[~gone], owners[~gone]
            self.pending_remove.clear()
        # Members that joined and left again since the last sync are skipped.
        joined = [
            member
            for member in (self.slots[slot] for slot in self.pending_add)
            if self.by_seq.get(member.seq) is member
        ]
        self.pending_add.clear()
        if joined:
            new_positions = vnode_positions(
                [member.agent_id for member in joined], self.vnodes
            ).ravel()
            new_owners = np.repeat(
                np.array([member.slot for member in joined], dtype=np.int64), self.vnodes
            )
            order = np.argsort(new_positions, kind="stable")
            new_positions, new_owners = new_positions[order], new_owners[order]
            at = np.searchsorted(positions, new_positions, side="right")
            positions = np.insert(positions, at, new_positions)
            owners = np.insert(owners, at, new_owners)
        self.positions, self.owners = positions, owners
        self.ring_positions = array("q", positions.tobytes())
        # Positions are uniform hashes, so cutting the ring into about one
        # bucket per point and recording where each bucket starts turns the
        # binary search over the whole ring into one over a bucket of ~1 point.
        bits = max(len(positions).bit_length() - 1, 0)
        self.ring_shift = 63 - bits
        per_bucket = np.bincount(positions >> np.int64(self.ring_shift), minlength=1 << bits)
        table = np.zeros(len(per_bucket) + 1, dtype=np.int64)
        np.cumsum(per_bucket, out=table[1:])
        self.ring_table = array("q", table.tobytes())
        self.ring_owners = array("q", owners.tobytes())

    def restore_order(self, reached: Callable[[str], float]) -> None:
        self.buckets.reorder(reached)

    def pick(self, task: TaskInfo) -> Member:
        least = self.buckets.least()
        key = task.affinity_key
        if key is None:
            return least
        bound = math.ceil(self.c * (self.total_load + 1) / len(self.members))
        if least.load >= bound:
            # Mixed capacities can leave every agent under the bound full;
            # the least loaded agent with room is the least bad choice.
            return least
        if self.pending_add or self.pending_remove:
            self._sync()
        owners = self.ring_owners
        slots = self.slots
        position = key_position(key)
        bucket = position >> self.ring_shift
        table = self.ring_table
        index = bisect.bisect_left(self.ring_positions, position, table[bucket], table[bucket + 1])
        end = len(owners)
        # Terminates: ``least`` is on the ring, has room and is under the bound.
        while True:
            if index == end:
                index = 0
            member = slots[owners[index]]
            if member.load < bound and member.load < member.capacity:
                return member
            index += 1


class AffinityBalancer(PoolBalancer[_AffinityPool]):
    """Keeps tasks with the same ``affinity_key`` on one agent, within a load bound.

    Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
    2018): each agent owns ``vnodes`` points of a 63-bit ring, a key goes to
    the owner of the first point clockwise from the key's hash whose agent
    holds fewer than ``ceil((1 + epsilon) * (total_in_flight + 1) / n)`` tasks
    and is below capacity. A key therefore sticks to its agent until that
    agent is overloaded relative to the pool or leaves, and a join or leave
    moves only the keys of the agents concerned. No agent can exceed the
    bound, which is what plain consistent hashing cannot promise under skewed
    keys. Tasks without a key are placed as by least connections.

    ``choose`` costs a binary search plus a walk whose expected length is
    bounded by a function of ``epsilon`` alone (O(1/epsilon**2) bins), not of
    the pool size. The first keyed choice after membership changes pays for
    merging the ring: O(n * vnodes) array work, in numpy.
    """

    def __init__(self, *, epsilon: float = 0.25, vnodes: int = 64) -> None:
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        if vnodes < 1:
            raise ValueError(f"vnodes must be >= 1, got {vnodes}")
        super().__init__()
        self._c = 1.0 + epsilon
        self._vnodes = vnodes

    def _new_pool(self) -> _AffinityPool:
        return _AffinityPool(self._c, self._vnodes)
