"""Spec for services.rating.domain.cycles: which billing periods a clock tick closes."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rating.domain.cycles import periods_to_close
from shared.periods import BillingFrequency, Period, period_containing

MONTHLY = BillingFrequency.MONTHLY
JAN_1 = date(2026, 1, 1)


def closed(
    *,
    today: date,
    start: date = JAN_1,
    last_closed_end: date | None = None,
    anchor: date = JAN_1,
    frequency: BillingFrequency = MONTHLY,
) -> list[tuple[date, date]]:
    periods = periods_to_close(
        start=start, last_closed_end=last_closed_end, today=today, frequency=frequency, anchor=anchor
    )
    return [(p.start, p.end) for p in periods]


class TestPeriodsToClose:
    def test_closes_the_first_month_from_the_assignment_start(self) -> None:
        assert closed(today=date(2026, 2, 10)) == [(date(2026, 1, 1), date(2026, 2, 1))]

    def test_closes_the_cycle_an_assignment_started_in_part_way(self) -> None:
        assert closed(start=date(2026, 1, 15), today=date(2026, 2, 1)) == [(date(2026, 1, 1), date(2026, 2, 1))]

    def test_closes_from_the_last_closed_end(self) -> None:
        result = closed(last_closed_end=date(2026, 2, 1), today=date(2026, 3, 5))

        assert result == [(date(2026, 2, 1), date(2026, 3, 1))]

    def test_closes_nothing_again_when_the_last_close_is_up_to_date(self) -> None:
        assert closed(last_closed_end=date(2026, 3, 1), today=date(2026, 3, 5)) == []

    @pytest.mark.parametrize("today", [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 31)])
    def test_closes_nothing_while_today_is_inside_the_first_period(self, today: date) -> None:
        assert closed(today=today) == []

    def test_closes_nothing_before_the_assignment_starts(self) -> None:
        assert closed(start=date(2026, 3, 1), today=date(2026, 2, 15)) == []

    def test_closes_a_period_on_a_tick_exactly_at_its_end(self) -> None:
        assert closed(today=date(2026, 2, 1)) == [(date(2026, 1, 1), date(2026, 2, 1))]

    def test_does_not_close_a_period_the_day_before_its_end(self) -> None:
        assert closed(today=date(2026, 1, 31)) == []

    def test_closes_each_month_once_after_a_multi_month_jump(self) -> None:
        result = closed(today=date(2026, 5, 20))

        assert result == [
            (date(2026, 1, 1), date(2026, 2, 1)),
            (date(2026, 2, 1), date(2026, 3, 1)),
            (date(2026, 3, 1), date(2026, 4, 1)),
            (date(2026, 4, 1), date(2026, 5, 1)),
        ]

    def test_follows_an_anchor_on_the_31st_through_short_months(self) -> None:
        result = closed(start=date(2026, 1, 31), anchor=date(2026, 1, 31), today=date(2026, 5, 31))

        assert result == [
            (date(2026, 1, 31), date(2026, 2, 28)),
            (date(2026, 2, 28), date(2026, 3, 31)),
            (date(2026, 3, 31), date(2026, 4, 30)),
            (date(2026, 4, 30), date(2026, 5, 31)),
        ]

    def test_a_later_tick_after_a_close_continues_where_it_stopped(self) -> None:
        first = closed(today=date(2026, 3, 10))
        second = closed(last_closed_end=first[-1][1], today=date(2026, 5, 1))

        assert [p[0] for p in first + second] == [date(2026, m, 1) for m in (1, 2, 3, 4)]


@st.composite
def schedules(draw: st.DrawFn) -> tuple[date, date | None, date, BillingFrequency, date]:
    frequency = draw(st.sampled_from(list(BillingFrequency)))
    anchor = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    start = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    last_closed_end = None
    if draw(st.booleans()):
        # A real last close ends on a cycle boundary at or after the start.
        last_closed_end = period_containing(start, frequency=frequency, anchor=anchor).end
    today = draw(st.dates(min_value=start, max_value=start + timedelta(days=3 * 366)))
    return start, last_closed_end, today, frequency, anchor


class TestPeriodsToCloseProperties:
    @given(schedules())
    def test_closed_periods_tile_without_gaps_from_begin_up_to_today(
        self, schedule: tuple[date, date | None, date, BillingFrequency, date]
    ) -> None:
        start, last_closed_end, today, frequency, anchor = schedule
        begin = max(start, last_closed_end) if last_closed_end else start

        periods = periods_to_close(
            start=start, last_closed_end=last_closed_end, today=today, frequency=frequency, anchor=anchor
        )

        first_open = period_containing(begin, frequency=frequency, anchor=anchor)
        if periods:
            assert periods[0] == first_open
            assert all(a.end == b.start for a, b in pairwise(periods))
            assert periods[-1].end <= today
            first_open = period_containing(periods[-1].end, frequency=frequency, anchor=anchor)
        # Maximal: the next period is still running today (or begins later), so nothing was left out.
        assert first_open.end > today

    @given(schedules())
    def test_closes_each_period_once_across_successive_ticks(
        self, schedule: tuple[date, date | None, date, BillingFrequency, date]
    ) -> None:
        start, _, today, frequency, anchor = schedule
        midway = start + (today - start) // 2
        all_at_once = periods_to_close(
            start=start, last_closed_end=None, today=today, frequency=frequency, anchor=anchor
        )

        first = periods_to_close(start=start, last_closed_end=None, today=midway, frequency=frequency, anchor=anchor)
        last_end = first[-1].end if first else None
        second = periods_to_close(
            start=start, last_closed_end=last_end, today=today, frequency=frequency, anchor=anchor
        )

        assert first + second == all_at_once
        assert all(isinstance(p, Period) for p in all_at_once)
