"""Spec for buckets of hours: use in time order, overage, rollover policies."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.rating.domain import thresholds
from services.rating.domain.buckets import Lot, available, carried_through, settle
from services.rating.domain.time_entries import amount_for_hours, hours_of
from shared.contracts.catalog import BucketDefinition

D = Decimal


def bucket(hours: str = "10", policy: str = "none", **rollover: object) -> BucketDefinition:
    return BucketDefinition.model_validate(
        {"hours": hours, "period": "monthly", "overage_rate": "110.00", "rollover": {"policy": policy, **rollover}}
    )


def entries(*hours: str) -> list[tuple[UUID, Decimal]]:
    return [(UUID(int=i + 1), D(h)) for i, h in enumerate(hours)]


class TestSettle:
    def test_hours_within_the_allocation_have_no_overage(self) -> None:
        s = settle(bucket(), [], entries("3", "4"))
        assert (s.used, s.overage, s.remaining) == (D(7), D(0), D(3))  # 10 - 7

    def test_the_entry_that_exhausts_the_bucket_is_split_and_later_ones_are_overage(self) -> None:
        s = settle(bucket(), [], entries("6", "6", "2"))
        # 6 from the bucket (4 left), then 4 of 6 (2 over), then 2 over: overage 4
        assert [(u.from_bucket, u.overage) for u in s.uses] == [(D(6), D(0)), (D(4), D(2)), (D(0), D(2))]
        assert (s.used, s.overage, s.remaining) == (D(10), D(4), D(0))

    def test_no_rollover_lapses_what_is_left(self) -> None:
        s = settle(bucket(), [], entries("4"))
        assert (s.rolled_out, s.expired) == ((), D(6))

    def test_carry_up_to_carries_at_most_max_hours(self) -> None:
        s = settle(bucket(policy="carry_up_to", max_hours="5"), [], entries("2"))
        assert (s.rolled_out, s.expired) == ((Lot(D(5)),), D(3))  # 8 left, 5 carried, 3 lapse

    def test_carried_hours_are_used_before_the_allocation(self) -> None:
        s = settle(bucket(policy="carry_up_to", max_hours="5"), [Lot(D(5))], entries("7"))
        # 5 carried used first, then 2 of the 10: 8 remain, capped to 5
        assert (s.rolled_in, s.used, s.remaining, s.rolled_out) == (D(5), D(7), D(8), (Lot(D(5)),))

    def test_expire_after_keeps_each_lot_for_its_periods_then_lapses_it(self) -> None:
        definition = bucket(policy="expire_after", periods=2)
        first = settle(definition, [], entries("4"))  # 6 left, usable 2 more periods
        assert first.rolled_out == (Lot(D(6), 2),)
        second = settle(definition, first.rolled_out, entries("10"))  # uses the 6 carried, then 4 of the 10
        assert (second.used, second.rolled_out) == (D(10), (Lot(D(6), 2),))
        third = settle(definition, (Lot(D(3), 1), Lot(D(6), 2)), [])  # the older lot ages out
        assert (third.rolled_out, third.expired) == ((Lot(D(6), 1), Lot(D(10), 2)), D(3))


hours = st.decimals(min_value=0, max_value=40, places=2, allow_nan=False, allow_infinity=False)
definitions = st.builds(
    lambda h, policy, cap, periods: bucket(str(h), policy, max_hours=str(cap), periods=periods),
    st.decimals(min_value="0.5", max_value=50, places=1),
    st.sampled_from(["none", "carry_up_to", "expire_after"]),
    st.decimals(min_value=0, max_value=30, places=1),
    st.integers(min_value=1, max_value=3),
)


class TestProperties:
    @given(
        definition=definitions,
        carried=st.lists(st.builds(Lot, hours, st.integers(min_value=1, max_value=3)), max_size=3),
        used=st.lists(hours, max_size=8),
    )
    def test_used_plus_remaining_is_allocation_plus_rollover_and_overage_is_never_negative(
        self, definition: BucketDefinition, carried: list[Lot], used: list[Decimal]
    ) -> None:
        s = settle(definition, carried, [(UUID(int=i + 1), h) for i, h in enumerate(used)])
        assert s.used + s.remaining == s.allocation + s.rolled_in
        assert s.overage >= 0
        assert s.used + s.overage == sum(used, D(0))
        assert s.rolled_out_hours + s.expired == s.remaining


class TestThresholdLevels:
    def test_a_plan_line_or_bucket_without_levels_announces_80_and_100_percent(self) -> None:
        assert thresholds.levels(None) == (Decimal(80), Decimal(100))

    def test_configured_levels_replace_the_defaults_in_ascending_order_once_each(self) -> None:
        assert thresholds.levels([Decimal(90), Decimal(50), Decimal(90)]) == (Decimal(50), Decimal(90))
        # 4 -> 9 of a limit of 10: crosses 50 % (5) and 90 % (9)
        assert thresholds.crossed(
            thresholds.levels([Decimal(50), Decimal(90)]), limit=Decimal(10), before=Decimal(4), after=Decimal(9)
        ) == [Decimal(50), Decimal(90)]

    def test_levels_must_be_positive_percentages(self) -> None:
        with pytest.raises(ValidationError, match="threshold_levels"):
            BucketDefinition(
                hours=Decimal(10), period="monthly", overage_rate=Decimal(1), threshold_levels=[Decimal(0)]
            )


class TestHoursAvailable:
    """A period's threshold levels are fractions of its hours available: allocation + rolled in."""

    def test_the_demo_retainer_weeks_carry_into_the_next_and_raise_its_hours_available(self) -> None:
        retainer = bucket("10", "carry_up_to", max_hours="5")
        week1, week2 = entries("2", "4"), entries("4", "5", "3")
        into_week2 = carried_through(retainer, [], [week1])  # 10 - 6 = 4 left, at most 5 carried: 4
        assert available(retainer, into_week2) == D(14)  # 10 + 4
        into_week3 = carried_through(retainer, [], [week1, week2])  # 14 - 12 = 2 left: 2
        assert available(retainer, into_week3) == D(12)  # 10 + 2
        assert carried_through(retainer, [Lot(D(3))], []) == [Lot(D(3))]  # no period between: what is carried

    @given(definition=definitions, periods=st.lists(st.lists(hours, max_size=4), max_size=4))
    def test_carrying_through_periods_is_settling_them_one_after_the_other(
        self, definition: BucketDefinition, periods: list[list[Decimal]]
    ) -> None:
        lots: list[Lot] = []
        for used in periods:
            lots = list(settle(definition, lots, [(UUID(int=i + 1), h) for i, h in enumerate(used)]).rolled_out)
        as_entries = [[(UUID(int=i + 1), h) for i, h in enumerate(used)] for used in periods]
        assert carried_through(definition, [], as_entries) == lots


class TestOverageAmountsKeepAHalfCent:
    """Seed 1012 of the simulator (issue 16): a bucket's overage of 65 min at 153.30/h is 166.075 exactly, which
    the invoice rounds half up to 166.08; multiplying the overage hours as held (1.0833…, cut at 28 digits by the
    subtraction) gave 166.0749… and 166.07."""

    def test_65_minutes_beyond_a_bucket_of_10_minutes_at_153_30_is_166_075(self) -> None:
        ten_minutes, seventy_five = hours_of(D(10)), hours_of(D(75))
        s = settle(bucket(hours="1"), [], [(UUID(int=1), seventy_five)], allocation=ten_minutes)
        assert s.overage * D("153.30") < D("166.075")  # the hazard: the hours as held fall short
        assert amount_for_hours(s.overage, D("153.30")) == D("166.075")  # 13/12 h x 153.30, worked by hand

    def test_hours_that_are_exact_are_left_as_they_are(self) -> None:
        assert amount_for_hours(D("1.25"), D("110.00")) == D("137.5")
        assert amount_for_hours(D("0.0000001"), D("3600")) == D("0.00036")  # 0.36 ms: whole microseconds
