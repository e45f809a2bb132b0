"""A node's replicated log: entries, commit index, and what is durable or applied.

The node keeps its whole log in memory (the simulator never compacts) and
tracks three boundaries on it, each only ever moved forward except where a
comment says otherwise:

- ``committed``: the highest index known to be stored on a majority in a way
  no future leader can undo (Raft paper §5.3, §5.4.2). Never decreases.
- ``applied``: the highest index already handed to the shell in
  ``Ready.committed``; always <= ``committed``.
- the unstable boundary: entries from ``first_unstable`` on have not yet been
  handed to the shell in ``Ready.entries`` for persisting. A follower that
  truncates a conflicting suffix moves it back to the truncation point, since
  the new entries at those indices have not been written anywhere yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.policies.raft.messages import Entry
from sim.policies.raft.storage import Storage

__all__ = ["RaftLog"]


class RaftLog:
    """The log of one node, recovered from storage and extended in memory.

    Position *i* of the internal list holds the entry with index *i*; position
    0 holds a dummy entry of term 0, so "the term of index 0" is 0 and the
    consistency check for the first real entry (prevLogIndex 0, prevLogTerm 0)
    needs no special case.
    """

    __slots__ = ("_entries", "_first_unstable", "applied", "committed")

    def __init__(self, storage: Storage, *, committed: int = 0, applied: int = 0) -> None:
        last = storage.last_index()
        self._entries: list[Entry] = [Entry(term=0, index=0)]
        if last:
            self._entries.extend(storage.entries(1, last + 1))
        if not 0 <= applied <= committed <= last:
            raise ValueError(f"need 0 <= applied {applied} <= commit {committed} <= last {last}")
        self.committed = committed
        self.applied = applied
        self._first_unstable = last + 1

    # ---------------------------------------------------------------- reading

    @property
    def last_index(self) -> int:
        """Index of the last entry, 0 for an empty log."""
        return len(self._entries) - 1

    @property
    def last_term(self) -> int:
        """Term of the last entry, 0 for an empty log."""
        return self._entries[-1].term

    @property
    def first_unstable(self) -> int:
        """Index of the first entry not yet handed to the shell for persisting."""
        return self._first_unstable

    def term_at(self, index: int) -> int | None:
        """Term of the entry at *index*; 0 at index 0, ``None`` past the end."""
        if 0 <= index < len(self._entries):
            return self._entries[index].term
        return None

    def entry(self, index: int) -> Entry:
        """The entry at *index* (1 ≤ index ≤ last_index)."""
        if not 1 <= index <= self.last_index:
            raise IndexError(f"no entry at index {index} (last is {self.last_index})")
        return self._entries[index]

    def entries(self, lo: int = 1, hi: int | None = None) -> tuple[Entry, ...]:
        """Entries with lo <= index < hi (hi defaults to past the end)."""
        stop = len(self._entries) if hi is None else min(hi, len(self._entries))
        return tuple(self._entries[max(lo, 1) : stop])

    def matches(self, index: int, term: int) -> bool:
        """Whether this log holds an entry of *term* at *index* (always true at 0, 0)."""
        return self.term_at(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as up-to-date as this one.

        Raft paper §5.4.1: the log whose last entry has the later term is more
        up-to-date; with equal last terms, the longer log is.
        """
        if last_term != self.last_term:
            return last_term > self.last_term
        return last_index >= self.last_index

    def conflict_hint(self, index: int, term: int) -> tuple[int, int]:
        """Where the leader should probe next after this log rejected (index, term).

        Starts from min(index, last_index) and walks back over entries whose
        term is greater than *term*: the leader's entry at *index* has term
        *term* and its earlier entries have terms no greater, so none of those
        positions can match. Returns the index reached and this log's term
        there. Entries of a smaller term are not skipped: the leader may hold
        that very entry further back, and only it can tell.
        """
        hint = min(index, self.last_index)
        while hint > 0 and self._entries[hint].term > term:
            hint -= 1
        return hint, self._entries[hint].term

    # ---------------------------------------------------------------- writing

    def append(self, entries: Sequence[Entry]) -> int:
        """Append entries that continue the log exactly (a leader's own proposals)."""
        for entry in entries:
            if entry.index != len(self._entries):
                raise ValueError(f"entry index {entry.index} does not follow {self.last_index}")
            if entry.term < self.last_term:
                raise ValueError(f"entry term {entry.term} below last term {self.last_term}")
            self._entries.append(entry)
        return self.last_index

    def try_append(self, prev_index: int, prev_term: int, entries: Sequence[Entry]) -> int | None:
        """A follower's half of AppendEntries (Raft paper §5.3, Figure 2 receiver steps 2–4).

        Returns ``None`` when this log has no entry (prev_index, prev_term);
        otherwise makes the log agree with *entries* and returns the index of
        the last entry the message vouches for, prev_index + len(entries).

        Only a real conflict (same index, different term) truncates: an
        entry already present with the right term is kept, and so is anything
        after the message's entries. A delayed or duplicated AppendEntries
        therefore never shortens the log, which would lose entries the
        follower has already acknowledged.
        """
        if not self.matches(prev_index, prev_term):
            return None
        for pos, entry in enumerate(entries):
            have = self.term_at(entry.index)
            if have == entry.term:
                continue
            if have is not None:
                if entry.index <= self.committed:
                    # Log matching and leader completeness rule this out; if it
                    # happens, the node must stop rather than rewrite history.
                    raise AssertionError(
                        f"conflict at committed index {entry.index} (commit {self.committed})"
                    )
                del self._entries[entry.index :]
                self._first_unstable = min(self._first_unstable, entry.index)
            self._entries.extend(entries[pos:])
            break
        return prev_index + len(entries)

    def commit_to(self, index: int) -> bool:
        """Raise the commit index to *index* if that is an advance; report whether it moved."""
        if index <= self.committed:
            return False
        if index > self.last_index:
            raise ValueError(f"commit {index} past last index {self.last_index}")
        self.committed = index
        return True

    def unstable(self) -> tuple[Entry, ...]:
        """Entries not yet handed to the shell for persisting."""
        return tuple(self._entries[self._first_unstable :])

    def stable_to(self, index: int, term: int) -> None:
        """The shell has persisted entries up to (index, term).

        Ignored if the log no longer holds that entry: it was overwritten after
        the Ready was taken, and the newer entry at that index still waits.
        """
        if self.matches(index, term) and index >= self._first_unstable:
            self._first_unstable = index + 1

    def to_apply(self) -> tuple[Entry, ...]:
        """Committed entries not yet handed to the shell, in index order."""
        return tuple(self._entries[self.applied + 1 : self.committed + 1])

    def applied_to(self, index: int) -> None:
        """The shell has taken the committed entries up to *index*."""
        if not self.applied <= index <= self.committed:
            raise ValueError(f"applied {index} outside [{self.applied}, {self.committed}]")
        self.applied = index
