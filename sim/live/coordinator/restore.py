"""A snapshot into the books: a takeover's head start, and a primary's memory kept bounded.

Scenario: the service compacts its record streams (``sim.live.retention``).
A replica taking the lease first loads the snapshot (``restore``): the
counters of the work it forgot, the ids it still recognises, and — through
the catch-up — the records of the work still open, before each stream's
tail. And the primary, after each compaction, drops from its own books the
finished work the snapshot now remembers by id alone (``forget``): a
service running for months holds its open work and one dedupe window of
ids, not every task it ever ran.
"""

from __future__ import annotations

from sim.live.coordinator.catch_up import StreamFollow
from sim.live.coordinator.state import Books, Counters
from sim.live.snapshot import BASE_COUNTERS, Snapshot


def restore(books: Books, follow: StreamFollow, snapshot: Snapshot) -> None:
    """Start *books* from *snapshot*; *follow*'s catch-up replays its open records first."""
    counters = Counters()
    for name in BASE_COUNTERS:
        kind = type(getattr(counters, name))
        setattr(counters, name, kind(snapshot.base.get(name, 0)))
    books.counters = counters
    books.forgotten = {task_id: outcome for task_id, (outcome, _) in snapshot.done.items()}
    books.forgotten_jobs = set(snapshot.done_jobs)
    follow.prelude = {stream: list(docs) for stream, docs in snapshot.kept.items()}
    follow.skip = dict(snapshot.seqs)


def forget(books: Books, snapshot: Snapshot) -> int:
    """Drop the finished work *snapshot* remembers by id from *books*; how many tasks went.

    Synchronous (no await): no handler runs in between. Only work the books
    also show finished goes; the ids stay recognised through ``forgotten``.
    Incremental (set differences, in C), as the window may hold millions of ids.
    """
    for job_id in snapshot.done_jobs.keys() - books.forgotten_jobs:
        job = books.jobs.get(job_id)
        if job is not None and all(
            (t := books.tasks.get(i)) is None or t.done for i in job.tasks.values()
        ):
            del books.jobs[job_id]
    gone = 0
    for task_id in snapshot.done.keys() - books.forgotten.keys():
        task = books.tasks.get(task_id)
        if task is not None and task.done and task.job_id not in books.jobs:
            del books.tasks[task_id]
            gone += 1
        books.pending_done.pop(task_id, None)  # (a catch-up's note of an early end)
        books.forgotten[task_id] = snapshot.done[task_id][0]
    for task_id in books.forgotten.keys() - snapshot.done.keys():
        del books.forgotten[task_id]  # past the dedupe window: new work if it comes again
    books.forgotten_jobs = set(snapshot.done_jobs)
    return gone
