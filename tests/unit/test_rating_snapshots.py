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


class TestThresholds:
    def test_a_total_crossing_80_and_100_percent_at_once_crosses_both(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(15), after=D(21)) == [D(80), D(100)]  # 16 and 20

    def test_a_level_already_passed_is_not_crossed_again(self) -> None:
        assert crossed(DEFAULT_LEVELS, limit=D(20), before=D(16), after=D(18)) == []

    def test_reaching_a_level_exactly_crosses_it(self) -> None:
        assert crossed([D(50)], limit=D(20), before=D(0), after=D(10)) == [D(50)]
