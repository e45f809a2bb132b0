"""A loop whose library swallowed its cancellation still stops (sim.live.cancel)."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest

from sim.live.cancel import close_bounded, run_bounded, stop_if_cancelled
from sim.live.transport import StreamReader


async def converting_request() -> None:
    """What some client libraries do: a cancelled wait comes out as their own timeout."""
    try:
        await asyncio.sleep(0.005)
    except asyncio.CancelledError:
        raise TimeoutError("request timed out") from None


async def broker_loop(check: bool, rounds: list[int]) -> None:
    while True:
        try:
            await converting_request()
        except Exception:
            if check:
                stop_if_cancelled()
        rounds.append(1)
        if len(rounds) > 60:  # the unchecked loop would run for ever: end the test
            return
        await asyncio.sleep(0)


@pytest.mark.parametrize("check", [True, False])
def test_a_swallowed_cancel_stops_the_loop_only_with_the_check(check: bool) -> None:
    async def body() -> tuple[bool, int]:
        rounds: list[int] = []
        task = asyncio.create_task(broker_loop(check, rounds))
        await asyncio.sleep(0.02)
        before = len(rounds)
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
        return task.cancelled(), len(rounds) - before

    cancelled, after = asyncio.run(body())
    if check:
        assert cancelled and after <= 1
    else:
        assert not cancelled and after > 1  # the hang the check exists for


class _TimingOutJetStream:
    """A JetStream context whose publish never gets an ack and, cancelled, says timeout."""

    def __init__(self) -> None:
        self.calls = 0
        self.acks = False  # set at the end: a publisher that kept retrying gets its ack

    async def publish(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        if self.acks:
            return
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError("nats: timeout") from None


def test_a_cancelled_publish_stops_retrying() -> None:
    """transport.publish retries through a broker restart, but not through a cancel."""
    from sim.live.transport import publish

    async def body() -> tuple[bool, int]:
        js = _TimingOutJetStream()
        task = asyncio.create_task(publish(js, "orch.result.A", {"kind": "start"}, "s.1.1"))  # type: ignore[arg-type]
        await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.wait([task], timeout=0.5)
        cancelled = task.cancelled()
        js.acks = True  # (so the unfixed loop ends instead of hanging the test)
        await asyncio.wait([task], timeout=2.0)
        return cancelled, js.calls

    cancelled, calls = asyncio.run(body())
    assert cancelled and calls == 1


def test_a_run_ends_though_a_task_it_left_behind_never_stops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """asyncio.run would wait for the stubborn task for ever; run_bounded names and leaves it."""
    cancels: list[int] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancels.append(1)  # swallowed: the loop goes on

    async def main() -> int:
        asyncio.get_running_loop().create_task(stubborn(), name="stubborn-loop")
        await asyncio.sleep(0)
        return 7

    assert run_bounded(main(), grace_s=0.2) == 7
    assert cancels == [1]
    err = capsys.readouterr().err
    assert "stubborn-loop did not stop within 0.2 s" in err and "stubborn" in err


def test_a_run_whose_tasks_stop_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> str:
        asyncio.get_running_loop().create_task(asyncio.sleep(10))
        return "done"

    assert run_bounded(main(), grace_s=5.0) == "done"
    assert capsys.readouterr().err == ""


def test_bundled_beats_stop_when_cancelled_as_a_flush_ends() -> None:
    """The race 3.11's ``asyncio.wait_for`` loses: the cancel lands as its inner await has
    just finished, and it returns the result instead of raising. FleetBeats' loop then
    slept on for ever; a live run waiting for its fleet to stop hung (seen once in CI)."""
    from sim.live.fleet_beats import FleetBeats

    async def body() -> tuple[bool, int]:
        beats = FleetBeats(heartbeat_s=0.001)
        flushes = 0
        outer: asyncio.Task[None] | None = None

        async def flush(links: object) -> None:
            nonlocal flushes
            flushes += 1
            if flushes == 3:
                # Queued before the flush's own completion wakes wait_for: the outer task
                # is cancelled while wait_for's inner future is already done.
                assert outer is not None
                asyncio.get_running_loop().call_soon(outer.cancel)

        beats.flush = flush  # type: ignore[method-assign]
        outer = asyncio.create_task(beats.run([]))
        await asyncio.wait([outer], timeout=0.5)
        stopped = outer.done()
        if not stopped:  # (the unfixed loop: end it for good)
            outer.cancel()
            await asyncio.wait([outer], timeout=0.5)
        return stopped and outer.cancelled(), flushes

    stopped, flushes = asyncio.run(body())
    assert stopped, f"still beating after {flushes} flushes"
    assert flushes == 3


def test_try_once_gives_the_result_or_none_and_never_swallows_a_cancel() -> None:
    from sim.live.cancel import try_once

    async def fails() -> int:
        raise ConnectionError("broker restarting")

    async def answers() -> int:
        return 7

    async def body() -> tuple[int | None, int | None, int | None, bool]:
        ok, failed = await try_once(answers()), await try_once(fails())
        late = await try_once(asyncio.sleep(1.0, result=3), timeout_s=0.01)
        # A cancel reported by the library as its own timeout still cancels the caller.
        task = asyncio.create_task(try_once(converting_request()))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
        return ok, failed, late, task.cancelled()

    assert asyncio.run(body()) == (7, None, None, True)


class Closable:
    """A connection whose close finishes, fails, or never returns (nats.py#671)."""

    def __init__(self, how: str) -> None:
        self.how = how

    async def close(self) -> None:
        if self.how == "hangs":
            await asyncio.Event().wait()
        if self.how == "fails":
            raise ConnectionError("already gone")


def test_a_close_that_never_returns_is_given_up_and_a_failed_one_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def body() -> float:
        started = asyncio.get_running_loop().time()
        await close_bounded(Closable("fine"))
        await close_bounded(Closable("fails"))
        await close_bounded(Closable("hangs"), timeout_s=0.1)
        return asyncio.get_running_loop().time() - started

    assert run_bounded(body(), grace_s=0.5) < 0.5
    assert "did not close within 0.1 s" in capsys.readouterr().err


class _CancelAsTimeout:
    """A pull subscription as nats-py's: a fetch cancelled while it waits raises its timeout."""

    async def fetch(self, batch: int, timeout: float) -> list[object]:
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            raise nats.errors.TimeoutError from None
        raise nats.errors.TimeoutError


def test_a_stream_reader_cancelled_mid_fetch_stops_its_follower() -> None:
    """A follower's loop (read, handle, read again) ends when cancelled, though the library
    turned the cancel into a timeout: the read re-raises it instead of reading nothing.
    (Bounded to 100 reads, so a read that swallows the cancel fails here, not hangs.)"""

    async def story() -> None:
        reader = StreamReader(None, "S", "s.>", "d")  # type: ignore[arg-type]
        reader._sub = _CancelAsTimeout()  # type: ignore[assignment]

        async def follow() -> None:
            for _ in range(100):
                await reader.read(1, 0.01)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(story())
