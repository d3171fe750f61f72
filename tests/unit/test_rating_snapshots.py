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
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)  # January, 31 days
JAN = {"span_start": START, "span_end": END}
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
        assert aggregate(how, SNAPS, **JAN) == expected

    def test_before_the_first_count_nothing_is_in_force_so_the_average_is_over_the_whole_span(self) -> None:
        snaps = [
            (datetime(2026, 1, 22, tzinfo=UTC), UUID(int=1), D(8)),
            (datetime(2026, 1, 27, tzinfo=UTC), UUID(int=2), D(2)),
        ]
        # 0 for 21 days, 8 for 5 days, 2 for 5 days: (0 + 40 + 10) / 31 = 1.6129... -> 1.6129 (half-up, 4 places)
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, snaps, **JAN) == D("1.6129")

    def test_the_issues_vms_are_54_vm_days_over_30_days(self) -> None:
        # VMs counted 4 on 13 Nov, 4 on 16 Nov and 2 on 22 Nov: 4 x 9 days + 2 x 9 days = 54 VM-days; / 30 = 1.8
        nov = {"span_start": datetime(2026, 11, 1, tzinfo=UTC), "span_end": datetime(2026, 12, 1, tzinfo=UTC)}
        vms = [
            (datetime(2026, 11, 13, tzinfo=UTC), UUID(int=1), D(4)),
            (datetime(2026, 11, 16, tzinfo=UTC), UUID(int=2), D(4)),
            (datetime(2026, 11, 22, tzinfo=UTC), UUID(int=3), D(2)),
        ]
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, vms, **nov) == D("1.8")

    def test_a_first_vm_on_the_28th_weighs_its_own_days_only(self) -> None:
        nov = {"span_start": datetime(2026, 11, 1, tzinfo=UTC), "span_end": datetime(2026, 12, 1, tzinfo=UTC)}
        vm = [(datetime(2026, 11, 28, tzinfo=UTC), UUID(int=1), D(1))]
        # 1 VM for 3 of 30 days = 0.1, not a whole VM for the month
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, vm, **nov) == D("0.1")

    def test_the_average_is_rounded_half_up_to_four_places(self) -> None:
        # 1 device for 2 of 3 days: 0.66666... -> 0.6667; 1 for 1 of 8 days: 0.125 exactly stays 0.125
        three = {"span_start": START, "span_end": datetime(2026, 1, 4, tzinfo=UTC)}
        one = [(datetime(2026, 1, 2, tzinfo=UTC), UUID(int=1), D(1))]
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, one, **three) == D("0.6667")
        eight = {"span_start": START, "span_end": datetime(2026, 1, 9, tzinfo=UTC)}
        last_day = [(datetime(2026, 1, 8, tzinfo=UTC), UUID(int=1), D(1))]
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, last_day, **eight) == D("0.125")
        half = [(datetime(2026, 1, 1, 2, 24, tzinfo=UTC), UUID(int=1), D("0.00012"))]  # in force 99.9 % of a day
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, half, span_start=START,
                         span_end=datetime(2026, 1, 2, tzinfo=UTC)) == D("0.0001")  # fmt: skip

    def test_no_snapshot_is_zero(self) -> None:
        assert aggregate(SnapshotAggregation.PEAK, [], **JAN) == D(0)


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
        assert aggregate(how, IN_JAN, **JAN, carried_in=CARRIED_AT_JAN_1) == expected

    @pytest.mark.parametrize("how", list(SnapshotAggregation))
    def test_with_no_snapshot_in_the_period_the_carried_in_count_is_the_quantity(
        self, how: SnapshotAggregation
    ) -> None:
        # 41 devices in force all January: peak 41, last 41, 41 x 31 days / 31 days = 41
        assert aggregate(how, [], **JAN, carried_in=CARRIED_AT_JAN_1) == D(41)

    def test_a_carried_in_count_of_zero_bills_nothing_and_weighs_its_days_at_zero(self) -> None:
        zero = (datetime(2026, 1, 1, tzinfo=UTC), UUID(int=9), D(0))
        assert aggregate(SnapshotAggregation.PEAK, [], **JAN, carried_in=zero) == D(0)
        late_count = [(datetime(2026, 1, 22, tzinfo=UTC), UUID(int=1), D(31))]
        # 0 for 21 days, 31 for the last 10: (0 x 21 + 31 x 10) / 31 = 310 / 31 = 10 (not 31: zero was in force)
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, late_count, **JAN, carried_in=zero) == D(10)

    def test_a_span_starting_mid_period_is_weighted_from_its_own_start(self) -> None:
        # an assignment from Jan 11: the count carried in counts from Jan 11, 41 then 20 from Jan 21
        span = {"span_start": datetime(2026, 1, 11, tzinfo=UTC), "span_end": END}
        carried = (datetime(2026, 1, 11, tzinfo=UTC), UUID(int=9), D(41))
        later = [(datetime(2026, 1, 21, tzinfo=UTC), UUID(int=3), D(20))]
        # (41 x 10 days + 20 x 11 days) / 21 days = (410 + 220) / 21 = 630 / 21 = 30
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, later, **span, carried_in=carried) == D(30)

    def test_a_span_ending_mid_period_averages_to_its_own_end(self) -> None:
        # an assignment ending on Jan 11: 41 carried in for the 10 days of the span, whatever follows
        span = {"span_start": START, "span_end": datetime(2026, 1, 11, tzinfo=UTC)}
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, [], **span, carried_in=CARRIED_AT_JAN_1) == D(41)
        later = [(datetime(2026, 1, 6, tzinfo=UTC), UUID(int=3), D(21))]
        # 41 for 5 days, 21 for 5 days: 310 / 10 = 31
        assert aggregate(SnapshotAggregation.TIME_WEIGHTED_AVERAGE, later, **span, carried_in=CARRIED_AT_JAN_1) == D(31)

    def test_a_snapshot_at_the_spans_very_start_replaces_the_carried_in_count(self) -> None:
        at_start = [(datetime(2026, 1, 1, tzinfo=UTC), UUID(int=1), D(10))]
        assert aggregate(SnapshotAggregation.PEAK, at_start, **JAN, carried_in=CARRIED_AT_JAN_1) == D(10)


class TestThresholds:
    def test_a_total_crossing_80_and_100_percent_at_once_crosses_both(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(15), after=D(21)) == [D(80), D(100)]  # 16 and 20

    def test_a_level_already_passed_is_not_crossed_again(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(16), after=D(18)) == []

    def test_reaching_a_level_exactly_crosses_it(self) -> None:
        assert crossed([D(50)], limit=D(20), before=D(0), after=D(10)) == [D(50)]
