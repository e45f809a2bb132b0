"""The chief coordinators' disks: when each one's write-ahead log has written what it was given.

Scenario: every Ready that must sync costs one fsync, and a chief's writes
finish one after another. A WAL stall makes each fsync take seconds; while it
lasts, and until the writes it left queued are done, the chief's Ready loop is
serial — it waits for its disk before it sends anything (etcd's loop is).
The control plane asks this object when a write is done and keeps the clock.
"""

from __future__ import annotations

from collections.abc import Iterable


class ChiefDisks:
    """Per-chief fsync queue, stalls, and whether a chief's loop waits for its disk."""

    def __init__(self, ids: Iterable[int], fsync_s: float) -> None:
        #: With latency switched off (textbook form) the log costs nothing either.
        self.fsync_s = fsync_s
        #: Chiefs whose disk stalls, with the time one fsync takes meanwhile; and
        #: until when each stalled chief's loop still waits for its disk.
        self._stalled: dict[int, float] = {}
        self._serial_until: dict[int, float] = {}
        #: When each chief's disk finishes the writes issued so far (one fsync per
        #: Ready that must sync, one after another).
        self._disk_free = dict.fromkeys(ids, 0.0)

    @property
    def any_stalled(self) -> bool:
        return bool(self._stalled)

    def stall(self, node_id: int, fsync_s: float) -> None:
        """The chief's WAL writes take *fsync_s* each until :meth:`unstall`."""
        self._stalled[node_id] = fsync_s

    def unstall(self, node_id: int, now: float) -> None:
        """Writes are fast again; the ones queued behind the stall still finish first."""
        self._stalled.pop(node_id, None)
        self._serial_until[node_id] = max(now, self._disk_free[node_id])

    def serial(self, node_id: int, now: float) -> bool:
        """Whether the node's loop blocks on its disk (a stall, or the writes it left queued)."""
        return node_id in self._stalled or now < self._serial_until.get(node_id, now)

    def write(self, node_id: int, now: float, *, must_sync: bool) -> float:
        """Queue a Ready's write (one fsync if it must sync); when every write so far is done."""
        if must_sync:
            fsync = self._stalled.get(node_id, self.fsync_s)
            self._disk_free[node_id] = max(now, self._disk_free[node_id]) + fsync
        return max(now, self._disk_free[node_id])
