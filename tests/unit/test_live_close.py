"""The live close (services/catalog/domain/live_close.py; issue 18, item 1): a live tenant's clock stops one
microsecond short of its next local midnight until the grace has passed and a barrier run that began after it
has passed, or until the max wait; it never moves backwards. Times worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.catalog.domain.live_close import CloseRules, needs_barrier, next_local_midnight, tick_target

RULES = CloseRules(grace=timedelta(minutes=15), max_wait=timedelta(hours=1))
TOKYO = "Asia/Tokyo"  # UTC+9: local midnight of 1 December is 15:00 UTC on 30 November


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def target(current: str, now: str, cleared: str | None = None, zone: str = TOKYO) -> datetime | None:
    return tick_target(
        current=utc(current), now=utc(now), timezone=zone, rules=RULES, cleared=utc(cleared) if cleared else None
    )


def test_the_next_local_midnight_is_the_tenants() -> None:
    assert next_local_midnight(utc("2026-11-30T14:59:59"), TOKYO) == utc("2026-11-30T15:00:00")
    assert next_local_midnight(utc("2026-11-30T15:00:00"), TOKYO) == utc("2026-12-01T15:00:00")
    # a DST day in London: midnight of 30 March 2026 is 23:00 UTC on the 29th
    assert next_local_midnight(utc("2026-03-29T12:00:00"), "Europe/London") == utc("2026-03-29T23:00:00")


def test_a_tick_that_crosses_no_midnight_moves_to_the_wall_time() -> None:
    assert target("2026-11-30T14:00:00", "2026-11-30T14:59:59") == utc("2026-11-30T14:59:59")


def test_a_tick_past_midnight_stops_a_microsecond_short_of_it_during_the_grace() -> None:
    held = target("2026-11-30T14:59:00", "2026-11-30T15:10:00")
    assert held == utc("2026-11-30T14:59:59.999999")
    assert not needs_barrier(utc("2026-11-30T14:59:00"), utc("2026-11-30T15:10:00"), TOKYO, RULES)


def test_after_the_grace_it_waits_for_a_barrier_run_that_began_after_it() -> None:
    current, now = "2026-11-30T14:59:59.999999", "2026-11-30T15:16:00"
    assert needs_barrier(utc(current), utc(now), TOKYO, RULES)
    assert target(current, now) is None  # already held: no tick
    assert target(current, now, cleared="2026-11-30T15:14:00") is None  # began before midnight + grace
    assert target(current, now, cleared="2026-11-30T15:15:00") == utc(now)  # then the close goes ahead


def test_a_barrier_never_passed_is_given_up_after_the_max_wait() -> None:
    held = "2026-11-30T14:59:59.999999"
    assert target(held, "2026-11-30T16:14:59") is None
    assert target(held, "2026-11-30T16:15:00") == utc("2026-11-30T16:15:00")  # midnight + 15 min + 1 h


def test_the_clock_never_moves_backwards() -> None:
    assert target("2026-12-01T00:00:00", "2026-11-30T23:00:00", zone="UTC") is None


def test_a_scheduler_back_after_days_away_closes_at_once_its_max_wait_long_past() -> None:
    current, now = "2026-11-28T12:00:00", "2026-11-30T12:00:00"  # two UTC midnights passed meanwhile
    assert needs_barrier(utc(current), utc(now), "UTC", RULES)  # the pass still runs the barrier first
    assert target(current, now, zone="UTC") == utc(now)  # and closes even if it did not pass
