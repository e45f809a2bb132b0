"""A throwaway reader of one stream from a point in it: a wall time or a sequence.

Segments read a window of history by time, and the compactor finds its cut by
time and reads up to it by sequence. Each needs the same short-lived consumer
(no acknowledgements, so it moves nothing in the stream) and must delete it
however the read ends, or the broker keeps a consumer per segment and cut.
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


@contextlib.asynccontextmanager
async def reader_from(
    js: JetStreamContext,
    stream: str,
    subject: str,
    prefix: str,
    *,
    wall: float | None = None,
    sequence: int | None = None,
) -> AsyncIterator[JetStreamContext.PullSubscription]:
    """A pull subscription on *stream* starting at *wall* (seconds) or at *sequence*."""
    if (wall is None) == (sequence is None):
        raise ValueError("expected exactly one of wall and sequence")
    if wall is not None:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.datetime.fromtimestamp(wall, datetime.UTC),
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
        )
    else:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=sequence,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
        )
    durable = f"{prefix}_{secrets.token_hex(4)}"
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    try:
        yield sub
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, durable)
