"""Spec for snapshot aggregation (peak, time-weighted average, last) and threshold crossings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from services.rating.domain.snapshots import aggregate
from services.rating.domain.thresholds import DEFAULT_LEVELS, crossed
from shared.contracts.catalog import SnapshotAggregation

D = Decimal
END = datetime(2026, 2, 1, tzinfo=UTC)
SNAPS = [  # 10 devices from Jan 1, 30 from Jan 11, 20 from Jan 21 (31-day month)
    (datetime(2026, 1, 11, tzinfo=UTC), UUID(int=2), D(30)),
    (datetime(2026, 1, 1, tzinfo=UTC), UUID(int=1), D(10)),
    (datetime(2026, 1, 21, tzinfo=UTC), UUID(int=3), D(20)),
]


class TestAggregate:
    @pytest.mark.parametrize(
        ("how", "expected"),
        [
            (SnapshotAggregation.PEAK, D(30)),
            (SnapshotAggregation.LAST, D(20)),  # the latest count, whatever the order they arrived in
            # (10 x 10 days + 30 x 10 days + 20 x 11 days) / 31 days = 620 / 31 = 20
            (SnapshotAggregation.TIME_WEIGHTED_AVERAGE, D(20)),
        ],
    )
    def test_turns_snapshots_into_the_periods_quantity(self, how: SnapshotAggregation, expected: Decimal) -> None:
        assert aggregate(how, SNAPS, period_end=END) == expected

    def test_the_average_starts_at_the_first_count(self) -> None:
        snaps = [
            (datetime(2026, 1, 22, tzinfo=UTC), UUID(int=1), D(8)),
            (datetime(2026, 1, 27, tzinfo=UTC), UUID(int=2), D(2)),
        ]
        # 8 for 5 days, 2 for 5 days, over the 10 days from Jan 22: (40 + 10) / 10 = 5
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, snaps, period_end=END) == D(5)

    def test_no_snapshot_is_zero(self) -> None:
        assert aggregate(SnapshotAggregation.PEAK, [], period_end=END) == D(0)


CARRIED_AT_JAN_1 = (datetime(2026, 1, 1, tzinfo=UTC), UUID(int=9), D(41))  # counted in December, in force on Jan 1
IN_JAN = [  # no count on Jan 1 this time: 30 from Jan 11, 20 from Jan 21
    (datetime(2026, 1, 21, tzinfo=UTC), UUID(int=3), D(20)),
    (datetime(2026, 1, 11, tzinfo=UTC), UUID(int=2), D(30)),
]


class TestTheCountCarriedIn:
    """A snapshot is in force until the next one: the latest count before the span counts at the span's start."""

    @pytest.mark.parametrize(
        ("how", "expected"),
        [
            (SnapshotAggregation.PEAK, D(41)),  # max(41, 30, 20): the carried-in count was in force on Jan 1-11
            (SnapshotAggregation.LAST, D(20)),  # a count of the period is later than the carried-in one
            # (41 x 10 days + 30 x 10 days + 20 x 11 days) / 31 days = (410 + 300 + 220) / 31 = 930 / 31 = 30
            (SnapshotAggregation.TIME_WEIGHTED_AVERAGE, D(30)),
        ],
    )
    def test_counts_from_the_periods_start_until_the_first_snapshot_of_the_period(
        self, how: SnapshotAggregation, expected: Decimal
    ) -> None:
        assert aggregate(how, IN_JAN, period_end=END, carried_in=CARRIED_AT_JAN_1) == expected

    @pytest.mark.parametrize("how", list(SnapshotAggregation))
    def test_with_no_snapshot_in_the_period_the_carried_in_count_is_the_quantity(
        self, how: SnapshotAggregation
    ) -> None:
        # 41 devices in force all January: peak 41, last 41, 41 x 31 days / 31 days = 41
        assert aggregate(how, [], period_end=END, carried_in=CARRIED_AT_JAN_1) == D(41)

    def test_a_carried_in_count_of_zero_bills_nothing_and_weighs_its_days_at_zero(self) -> None:
        zero = (datetime(2026, 1, 1, tzinfo=UTC), UUID(int=9), D(0))
        assert aggregate(SnapshotAggregation.PEAK, [], period_end=END, carried_in=zero) == D(0)
        late_count = [(datetime(2026, 1, 22, tzinfo=UTC), UUID(int=1), D(31))]
        # 0 for 21 days, 31 for the last 10: (0 x 21 + 31 x 10) / 31 = 310 / 31 = 10 (not 31: zero was in force)
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, late_count, period_end=END, carried_in=zero) == D(
            10
        )

    def test_a_span_starting_mid_period_is_weighted_from_its_own_start(self) -> None:
        # an assignment from Jan 11: the count carried in counts from Jan 11, 41 then 20 from Jan 21
        carried = (datetime(2026, 1, 11, tzinfo=UTC), UUID(int=9), D(41))
        later = [(datetime(2026, 1, 21, tzinfo=UTC), UUID(int=3), D(20))]
        # (41 x 10 days + 20 x 11 days) / 21 days = (410 + 220) / 21 = 630 / 21 = 30
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, later, period_end=END, carried_in=carried) == D(30)

    def test_a_snapshot_at_the_spans_very_start_replaces_the_carried_in_count(self) -> None:
        at_start = [(datetime(2026, 1, 1, tzinfo=UTC), UUID(int=1), D(10))]
        assert aggregate(SnapshotAggregation.PEAK, at_start, period_end=END, carried_in=CARRIED_AT_JAN_1) == D(10)


class TestThresholds:
    def test_a_total_crossing_80_and_100_percent_at_once_crosses_both(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(15), after=D(21)) == [D(80), D(100)]  # 16 and 20

    def test_a_level_already_passed_is_not_crossed_again(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(16), after=D(18)) == []

    def test_reaching_a_level_exactly_crosses_it(self) -> None:
        assert crossed([D(50)], limit=D(20), before=D(0), after=D(10)) == [D(50)]
