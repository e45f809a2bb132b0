"""Stable storage for one Raft node: the narrow interface and an in-memory implementation.

The node never writes to storage. It reads it once, when it is built, to
recover term, vote, commit index and log after a crash; from then on it hands
the shell what must be written (``Ready.hard_state`` and ``Ready.entries``)
and the shell writes it, taking whatever time its disk takes: the SimPy shell
adds an fsync delay, the live shell writes a file, the tests write to
:class:`MemoryStorage` at once.

A crash is modelled by dropping the node object and building a new one from
the same storage; whatever the shell had not yet written is lost, exactly as
on a real machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sim.policies.raft.messages import Entry, HardState

__all__ = ["MemoryStorage", "Storage"]


class Storage(Protocol):
    """What a node needs from its disk, and what the shell needs to fill it.

    Indices start at 1. ``entries(lo, hi)`` is the half-open range [lo, hi)
    and must exist whole. ``append`` overwrites: it first discards every
    stored entry at or after the first new entry's index, because a follower's
    log may have to give up a conflicting suffix (Raft paper §5.3). Appending
    may leave no gap: the first new index is at most ``last_index() + 1``.
    """

    def initial_state(self) -> HardState:
        """The hard state last set, or the zero state for a node that never ran."""
        ...

    def last_index(self) -> int:
        """Index of the last stored entry, 0 when the log is empty."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at *index*; 0 for index 0."""
        ...

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Stored entries with lo <= index < hi."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None:
        """Replace the stored term, vote and commit index."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Store *entries*, discarding any stored suffix from the first one's index on."""
        ...


class MemoryStorage:
    """A :class:`Storage` kept in a Python list, for the simulator and the tests.

    The list starts with a dummy entry of term 0 at index 0, so that the
    entry with index *i* sits at position *i* and "the term before the first
    entry" is an ordinary lookup (etcd's MemoryStorage does the same; there a
    snapshot moves the dummy forward and every position is offset by its
    index, which this class does not need because it never compacts).
    """

    __slots__ = ("_entries", "_hard_state")

    def __init__(self, entries: Sequence[Entry] = (), hard_state: HardState | None = None) -> None:
        self._entries: list[Entry] = [Entry(term=0, index=0)]
        self._hard_state = hard_state if hard_state is not None else HardState()
        if entries:
            self.append(entries)

    def initial_state(self) -> HardState:
        return self._hard_state

    def last_index(self) -> int:
        return len(self._entries) - 1

    def term(self, index: int) -> int:
        if not 0 <= index <= self.last_index():
            raise IndexError(f"no entry at index {index} (last is {self.last_index()})")
        return self._entries[index].term

    def entries(self, lo: int, hi: int) -> list[Entry]:
        if not 1 <= lo <= hi <= self.last_index() + 1:
            raise IndexError(f"entries [{lo}, {hi}) outside [1, {self.last_index() + 1})")
        return self._entries[lo:hi]

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        if not 1 <= first <= self.last_index() + 1:
            raise ValueError(f"append at index {first} would leave a gap after {self.last_index()}")
        for offset, entry in enumerate(entries):
            if entry.index != first + offset:
                raise ValueError(f"entries not contiguous at index {entry.index}")
        del self._entries[first:]
        self._entries.extend(entries)

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Write one Ready's durable part: the hard state (if any) and the entries."""
        if hard_state is not None:
            self.set_hard_state(hard_state)
        self.append(entries)
