"""The rules both shells play when a zone is out of the chief's reach for several reasons."""

from __future__ import annotations

from sim.policies.health.zone_reasons import COORDINATOR, CUT_OFF, OUTAGE, ZoneReasons


def test_the_zone_is_back_only_when_the_last_reason_ends_and_dark_since_the_first() -> None:
    book = ZoneReasons()
    first = book.begin("B", CUT_OFF, 100.0)
    assert first.new and first.went_dark and book.dark("B")
    second = book.begin("B", OUTAGE, 130.0)
    assert second.new and not second.went_dark
    assert book.dark_since("B") == 100.0  # one verdict judges both: checks fail from 100 s
    assert book.end("B", OUTAGE) == (True, False)  # the region is back, the cut is not
    assert book.dark("B") and not book.holds("B", OUTAGE)
    assert book.end("B", CUT_OFF) == (True, True)
    assert not book.dark("B")


def test_overlapping_reasons_of_one_kind_end_with_the_last() -> None:
    book = ZoneReasons()
    assert book.begin("A", OUTAGE, 10.0).new
    again = book.begin("A", OUTAGE, 20.0)
    assert not again.new and not again.went_dark  # the first outage took the agents
    assert book.end("A", OUTAGE) == (False, False)
    assert book.end("A", OUTAGE) == (True, True)


def test_an_outage_ends_a_crash_and_a_crash_in_the_dark_is_nothing() -> None:
    book = ZoneReasons()
    assert book.begin("C", COORDINATOR, 5.0).went_dark
    assert not book.begin("C", COORDINATOR, 6.0).new  # already down: nothing more to crash
    outage = book.begin("C", OUTAGE, 7.0)
    assert outage.crash_ended and not book.holds("C", COORDINATOR)
    assert book.dark_since("C") == 5.0
    assert book.end("C", COORDINATOR) == (False, False)  # its restart changes nothing now
    assert book.begin("C", COORDINATOR, 8.0) == book.begin("C", COORDINATOR, 9.0)
    assert not book.begin("C", COORDINATOR, 8.0).new
    assert book.end("C", OUTAGE) == (True, True)  # a fresh coordinator with the region
    assert book.end("D", CUT_OFF) == (False, False)  # never out of reach: nothing ends
