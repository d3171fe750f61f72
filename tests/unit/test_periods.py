"""Spec for shared.periods: half-open periods, anchored billing cycles, proration and tenant time zones."""

from datetime import UTC, date, datetime, timedelta, timezone
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.periods import (
    BillingFrequency,
    InvalidPeriod,
    NaiveDatetime,
    Period,
    PeriodError,
    UnknownTimeZone,
    local_date,
    next_period,
    period_bounds_utc,
    period_containing,
    periods_between,
    prorate_fraction,
)

F = BillingFrequency
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
frequencies = st.sampled_from(list(BillingFrequency))


def starts(anchor: date, frequency: BillingFrequency, count: int) -> list[date]:
    """The first `count` cycle starts from the anchor, found by walking next_period."""
    cycle = period_containing(anchor, frequency=frequency, anchor=anchor)
    found = []
    for _ in range(count):
        found.append(cycle.start)
        cycle = next_period(cycle, frequency=frequency, anchor=anchor)
    return found


class TestPeriod:
    def test_counts_days_half_open(self) -> None:
        assert Period(date(2024, 2, 1), date(2024, 3, 1)).days == 29

    def test_contains_its_start_but_not_its_end(self) -> None:
        p = Period(date(2024, 1, 1), date(2024, 2, 1))

        assert p.contains(date(2024, 1, 1))
        assert p.contains(date(2024, 1, 31))
        assert not p.contains(date(2024, 2, 1))
        assert not p.contains(date(2023, 12, 31))

    @pytest.mark.parametrize(
        ("start", "end"), [(date(2024, 1, 2), date(2024, 1, 1)), (date(2024, 1, 1), date(2024, 1, 1))]
    )
    def test_rejects_an_empty_or_reversed_range(self, start: date, end: date) -> None:
        with pytest.raises(InvalidPeriod, match="must be before"):
            Period(start, end)

    def test_rejects_datetimes_as_bounds(self) -> None:
        with pytest.raises(InvalidPeriod, match="must be dates"):
            Period(datetime(2024, 1, 1, tzinfo=UTC), date(2024, 2, 1))

    @pytest.mark.parametrize(
        ("other", "expected"),
        [
            (Period(date(2024, 1, 20), date(2024, 2, 10)), Period(date(2024, 1, 20), date(2024, 2, 1))),
            (Period(date(2023, 12, 1), date(2024, 3, 1)), Period(date(2024, 1, 1), date(2024, 2, 1))),
            (Period(date(2024, 1, 5), date(2024, 1, 6)), Period(date(2024, 1, 5), date(2024, 1, 6))),
            (Period(date(2024, 2, 1), date(2024, 3, 1)), None),  # touching at the end shares no day
            (Period(date(2023, 11, 1), date(2023, 12, 1)), None),
        ],
    )
    def test_overlap_is_the_shared_days_or_none(self, other: Period, expected: Period | None) -> None:
        january = Period(date(2024, 1, 1), date(2024, 2, 1))

        assert january.overlap(other) == expected
        assert other.overlap(january) == expected

    def test_is_immutable(self) -> None:
        p = Period(date(2024, 1, 1), date(2024, 2, 1))

        with pytest.raises(AttributeError):
            p.start = date(2024, 1, 2)  # type: ignore[misc]

    def test_errors_share_one_value_error_base(self) -> None:
        for error in (InvalidPeriod, NaiveDatetime, UnknownTimeZone):
            assert issubclass(error, PeriodError)
        assert issubclass(PeriodError, ValueError)


class TestBillingFrequency:
    def test_uses_the_wire_spellings(self) -> None:
        assert [f.value for f in BillingFrequency] == [
            "weekly",
            "bi-weekly",
            "monthly",
            "quarterly",
            "semi-annually",
            "annually",
        ]
        assert BillingFrequency("bi-weekly") is BillingFrequency.BI_WEEKLY
        assert str(BillingFrequency.SEMI_ANNUALLY) == "semi-annually"


class TestPeriodContaining:
    @pytest.mark.parametrize(("year", "february_end"), [(2023, date(2023, 2, 28)), (2024, date(2024, 2, 29))])
    def test_monthly_from_a_31st_anchor_lands_on_each_month_end_without_drifting(
        self, year: int, february_end: date
    ) -> None:
        anchor = date(year, 1, 31)

        found = starts(anchor, F.MONTHLY, 13)

        month_ends = [31, None, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        expected = [date(year, m, d) if d else february_end for m, d in enumerate(month_ends, start=1)]
        assert found == [*expected, date(year + 1, 1, 31)]

    @pytest.mark.parametrize(
        ("anchor", "expected"),
        [
            (date(2023, 1, 29), [date(2023, 1, 29), date(2023, 2, 28), date(2023, 3, 29), date(2023, 4, 29)]),
            (date(2024, 1, 29), [date(2024, 1, 29), date(2024, 2, 29), date(2024, 3, 29), date(2024, 4, 29)]),
            (date(2023, 1, 30), [date(2023, 1, 30), date(2023, 2, 28), date(2023, 3, 30), date(2023, 4, 30)]),
            (date(2024, 1, 30), [date(2024, 1, 30), date(2024, 2, 29), date(2024, 3, 30), date(2024, 4, 30)]),
            (date(2024, 3, 31), [date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 30)]),
        ],
    )
    def test_monthly_anchors_on_the_29th_to_31st_clamp_to_short_months(
        self, anchor: date, expected: list[date]
    ) -> None:
        assert starts(anchor, F.MONTHLY, 4) == expected

    def test_annual_from_feb_29_uses_feb_28_in_common_years_and_feb_29_again_in_leap_years(self) -> None:
        anchor = date(2024, 2, 29)

        assert starts(anchor, F.ANNUALLY, 5) == [
            date(2024, 2, 29),
            date(2025, 2, 28),
            date(2026, 2, 28),
            date(2027, 2, 28),
            date(2028, 2, 29),
        ]
        assert period_containing(date(2023, 6, 1), frequency=F.ANNUALLY, anchor=anchor) == Period(
            date(2023, 2, 28), date(2024, 2, 29)
        )

    @pytest.mark.parametrize(
        ("frequency", "anchor", "expected"),
        [
            (F.QUARTERLY, "2024-01-31", ["2024-01-31", "2024-04-30", "2024-07-31", "2024-10-31"]),
            (F.QUARTERLY, "2023-11-30", ["2023-11-30", "2024-02-29", "2024-05-30", "2024-08-30"]),
            (F.SEMI_ANNUALLY, "2023-08-31", ["2023-08-31", "2024-02-29", "2024-08-31", "2025-02-28"]),
            (F.ANNUALLY, "2024-03-15", ["2024-03-15", "2025-03-15", "2026-03-15", "2027-03-15"]),
        ],
    )  # fmt: skip
    def test_longer_cycles_step_whole_months_from_the_anchor(
        self, frequency: BillingFrequency, anchor: str, expected: list[str]
    ) -> None:
        assert starts(date.fromisoformat(anchor), frequency, 4) == [date.fromisoformat(e) for e in expected]

    @pytest.mark.parametrize(
        ("frequency", "day", "expected"),
        [
            (F.WEEKLY, date(2024, 1, 1), Period(date(2024, 1, 1), date(2024, 1, 8))),
            (F.WEEKLY, date(2024, 1, 7), Period(date(2024, 1, 1), date(2024, 1, 8))),
            (F.WEEKLY, date(2024, 1, 8), Period(date(2024, 1, 8), date(2024, 1, 15))),
            (F.WEEKLY, date(2023, 12, 31), Period(date(2023, 12, 25), date(2024, 1, 1))),
            (F.BI_WEEKLY, date(2024, 1, 14), Period(date(2024, 1, 1), date(2024, 1, 15))),
            (F.BI_WEEKLY, date(2024, 1, 15), Period(date(2024, 1, 15), date(2024, 1, 29))),
            (F.BI_WEEKLY, date(2023, 12, 31), Period(date(2023, 12, 18), date(2024, 1, 1))),
            (F.BI_WEEKLY, date(2023, 12, 17), Period(date(2023, 12, 4), date(2023, 12, 18))),
        ],
    )
    def test_weekly_cycles_step_7_or_14_days_from_the_anchor_also_backwards(
        self, frequency: BillingFrequency, day: date, expected: Period
    ) -> None:
        assert period_containing(day, frequency=frequency, anchor=date(2024, 1, 1)) == expected

    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            (date(2023, 12, 30), Period(date(2023, 11, 30), date(2023, 12, 31))),
            (date(2023, 12, 31), Period(date(2023, 12, 31), date(2024, 1, 31))),
            (date(2024, 2, 28), Period(date(2024, 1, 31), date(2024, 2, 29))),
            (date(2024, 2, 29), Period(date(2024, 2, 29), date(2024, 3, 31))),
            (date(2024, 4, 30), Period(date(2024, 4, 30), date(2024, 5, 31))),
        ],
    )
    def test_monthly_finds_the_cycle_around_any_day_before_or_after_the_anchor(
        self, day: date, expected: Period
    ) -> None:
        assert period_containing(day, frequency=F.MONTHLY, anchor=date(2024, 1, 31)) == expected

    def test_accepts_the_wire_spelling_of_the_frequency(self) -> None:
        by_name = period_containing(date(2024, 5, 5), frequency="quarterly", anchor=date(2024, 1, 1))  # type: ignore[arg-type]

        assert by_name == Period(date(2024, 4, 1), date(2024, 7, 1))

    @settings(max_examples=200)
    @given(day=dates, anchor=dates, frequency=frequencies)
    def test_always_contains_the_day(self, day: date, anchor: date, frequency: BillingFrequency) -> None:
        cycle = period_containing(day, frequency=frequency, anchor=anchor)

        assert cycle.contains(day)
        assert period_containing(cycle.start, frequency=frequency, anchor=anchor) == cycle


class TestNextPeriod:
    @settings(max_examples=200)
    @given(day=dates, anchor=dates, frequency=frequencies)
    def test_starts_where_the_previous_cycle_ends(self, day: date, anchor: date, frequency: BillingFrequency) -> None:
        cycle = period_containing(day, frequency=frequency, anchor=anchor)

        following = next_period(cycle, frequency=frequency, anchor=anchor)

        assert following.start == cycle.end
        assert following == period_containing(cycle.end, frequency=frequency, anchor=anchor)

    def test_rejects_a_period_that_is_not_a_cycle_of_the_schedule(self) -> None:
        with pytest.raises(InvalidPeriod, match="is not a monthly cycle"):
            next_period(Period(date(2024, 1, 5), date(2024, 2, 5)), frequency=F.MONTHLY, anchor=date(2024, 1, 1))


class TestPeriodsBetween:
    def test_lists_the_cycles_overlapping_the_range_in_order(self) -> None:
        cycles = periods_between(date(2024, 1, 15), date(2024, 3, 31), frequency=F.MONTHLY, anchor=date(2024, 1, 31))

        assert cycles == [
            Period(date(2023, 12, 31), date(2024, 1, 31)),
            Period(date(2024, 1, 31), date(2024, 2, 29)),
            Period(date(2024, 2, 29), date(2024, 3, 31)),
        ]

    def test_is_empty_for_an_empty_range(self) -> None:
        assert periods_between(date(2024, 1, 1), date(2024, 1, 1), frequency=F.WEEKLY, anchor=date(2024, 1, 1)) == []

    def test_rejects_a_reversed_range(self) -> None:
        with pytest.raises(InvalidPeriod, match="after its end"):
            periods_between(date(2024, 2, 1), date(2024, 1, 1), frequency=F.WEEKLY, anchor=date(2024, 1, 1))

    @settings(max_examples=200)
    @given(start=dates, length=st.integers(min_value=1, max_value=800), anchor=dates, frequency=frequencies)
    def test_covers_the_range_without_gaps_or_overlaps(
        self, start: date, length: int, anchor: date, frequency: BillingFrequency
    ) -> None:
        end = start + timedelta(days=length)

        cycles = periods_between(start, end, frequency=frequency, anchor=anchor)

        assert cycles[0].contains(start)
        assert cycles[-1].start < end <= cycles[-1].end
        for earlier, later in pairwise(cycles):
            assert earlier.end == later.start
        overlaps = [c.overlap(Period(start, end)) for c in cycles]
        assert sum(o.days for o in overlaps if o is not None) == length
        assert None not in overlaps


class TestProrateFraction:
    @pytest.mark.parametrize(
        ("active", "expected"),
        [
            (Period(date(2024, 2, 1), date(2024, 3, 1)), Fraction(1)),
            (Period(date(2024, 1, 1), date(2024, 4, 1)), Fraction(1)),
            (Period(date(2024, 2, 15), date(2024, 3, 1)), Fraction(15, 29)),
            (Period(date(2024, 1, 20), date(2024, 2, 2)), Fraction(1, 29)),
            (Period(date(2024, 3, 1), date(2024, 3, 5)), Fraction(0)),
        ],
    )
    def test_is_the_exact_share_of_cycle_days_covered(self, active: Period, expected: Fraction) -> None:
        february = Period(date(2024, 2, 1), date(2024, 3, 1))

        assert prorate_fraction(active, february) == expected

    @settings(max_examples=200)
    @given(day=dates, anchor=dates, frequency=frequencies, data=st.data())
    def test_lies_in_0_to_1_and_sums_to_1_across_a_split(
        self, day: date, anchor: date, frequency: BillingFrequency, data: st.DataObject
    ) -> None:
        cycle = period_containing(day, frequency=frequency, anchor=anchor)
        split = cycle.start + timedelta(days=data.draw(st.integers(min_value=1, max_value=cycle.days - 1)))
        before, after = Period(cycle.start, split), Period(split, cycle.end)

        fractions = [prorate_fraction(part, cycle) for part in (before, after)]

        assert all(0 < f < 1 for f in fractions)
        assert sum(fractions) == 1

    @settings(max_examples=200)
    @given(a=dates, b=dates, day=dates, anchor=dates, frequency=frequencies)
    def test_stays_within_0_and_1_for_any_active_range(
        self, a: date, b: date, day: date, anchor: date, frequency: BillingFrequency
    ) -> None:
        if a == b:
            b = a + timedelta(days=1)
        active = Period(min(a, b), max(a, b))
        cycle = period_containing(day, frequency=frequency, anchor=anchor)

        assert 0 <= prorate_fraction(active, cycle) <= 1


class TestLocalDate:
    @pytest.mark.parametrize(
        ("instant", "tz", "expected"),
        [
            (datetime(2024, 3, 1, 4, 59, tzinfo=UTC), "America/New_York", date(2024, 2, 29)),
            (datetime(2024, 3, 1, 5, 0, tzinfo=UTC), "America/New_York", date(2024, 3, 1)),
            (datetime(2024, 6, 30, 23, 30, tzinfo=UTC), "Europe/London", date(2024, 7, 1)),
            (datetime(2024, 12, 31, 23, 30, tzinfo=UTC), "Europe/London", date(2024, 12, 31)),
            (datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=9))), "UTC", date(2024, 1, 1)),
            (datetime(2024, 12, 31, 11, 0, tzinfo=UTC), "Pacific/Kiritimati", date(2025, 1, 1)),
        ],
    )
    def test_is_the_calendar_date_in_the_tenant_zone(self, instant: datetime, tz: str, expected: date) -> None:
        assert local_date(instant, tz=tz) == expected

    def test_rejects_a_naive_datetime(self) -> None:
        with pytest.raises(NaiveDatetime, match="no time zone"):
            local_date(datetime(2024, 1, 1, 12, 0), tz="Europe/London")

    def test_rejects_an_unknown_zone(self) -> None:
        with pytest.raises(UnknownTimeZone, match="Mars/Olympus_Mons"):
            local_date(datetime(2024, 1, 1, tzinfo=UTC), tz="Mars/Olympus_Mons")


class TestPeriodBoundsUtc:
    @pytest.mark.parametrize(
        ("tz", "day", "start_utc", "end_utc", "hours"),
        [
            # Spring forward: the local day is 23 hours long.
            ("Europe/London", "2024-03-31", "2024-03-31T00:00Z", "2024-03-31T23:00Z", 23),
            ("America/New_York", "2024-03-10", "2024-03-10T05:00Z", "2024-03-11T04:00Z", 23),
            # Fall back: the local day is 25 hours long.
            ("Europe/London", "2024-10-27", "2024-10-26T23:00Z", "2024-10-28T00:00Z", 25),
            ("America/New_York", "2024-11-03", "2024-11-03T04:00Z", "2024-11-04T05:00Z", 25),
            # Chile moves its clocks at midnight, so 2024-09-08 00:00 never happens there.
            ("America/Santiago", "2024-09-08", "2024-09-08T04:00Z", "2024-09-09T03:00Z", 23),
            ("UTC", "2024-03-31", "2024-03-31T00:00Z", "2024-04-01T00:00Z", 24),
        ],
    )  # fmt: skip
    def test_gives_local_midnights_as_utc_instants_across_dst_changes(
        self, tz: str, day: str, start_utc: str, end_utc: str, hours: int
    ) -> None:
        local_day = date.fromisoformat(day)

        start, end = period_bounds_utc(Period(local_day, local_day + timedelta(days=1)), tz=tz)

        assert (start, end) == (datetime.fromisoformat(start_utc), datetime.fromisoformat(end_utc))
        assert start.utcoffset() == timedelta(0)
        assert end - start == timedelta(hours=hours)

    def test_spans_a_whole_month_including_its_dst_change(self) -> None:
        march = Period(date(2024, 3, 1), date(2024, 4, 1))

        start, end = period_bounds_utc(march, tz="Europe/London")

        assert start == datetime(2024, 3, 1, 0, tzinfo=UTC)
        assert end == datetime(2024, 3, 31, 23, tzinfo=UTC)

    @settings(max_examples=200)
    @given(
        day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
        tz=st.sampled_from(["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]),
    )
    def test_bounds_map_back_to_the_period_days(self, day: date, tz: str) -> None:
        start, end = period_bounds_utc(Period(day, day + timedelta(days=1)), tz=tz)

        assert local_date(start, tz=tz) == day
        assert local_date(end, tz=tz) == day + timedelta(days=1)
        assert local_date(end - timedelta(microseconds=1), tz=tz) == day
