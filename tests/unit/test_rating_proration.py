"""Spec for rating's proration by days and its cumulative remainder rule."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rating.domain.proration import billable_runs, prorated, split_at
from shared.contracts.catalog import AssignmentState, StatusChange
from shared.periods import BillingFrequency, Period, period_containing

D = Decimal
TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
ASSIGNMENT = UUID("99999999-9999-4999-8999-999999999999")
SERVICE = UUID("22222222-2222-4222-8222-222222222222")
JAN = Period(date(2026, 1, 1), date(2026, 2, 1))


def assignment(start: date = date(2026, 1, 1), end: date | None = None) -> AssignmentState:
    return AssignmentState(
        tenant_id=TENANT,
        assignment_id=ASSIGNMENT,
        company_id=UUID(int=1),
        plan_id=UUID(int=2),
        start_date=start,
        end_date=end,
    )


def change(status: str, on: date, **scope: UUID) -> StatusChange:
    return StatusChange(
        change_id=UUID(int=on.toordinal()),
        status=status,
        effective_date=on,
        reason="test",
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="user:x",
        **scope,
    )


class TestProrated:
    @pytest.mark.parametrize(
        ("cycle", "run", "expected"),
        [
            # Jan has 31 days; started on the 15th: 17 days. C(31) - C(14) = 100 - round(100 x 14/31 = 45.161..) = 54.84
            (JAN, Period(date(2026, 1, 15), date(2026, 2, 1)), D("54.84")),
            # the first 14 days: C(14) - C(0) = 45.16; with the piece above, 45.16 + 54.84 = 100.00
            (JAN, Period(date(2026, 1, 1), date(2026, 1, 15)), D("45.16")),
            # February 2026 (28 days), last 7 days: 100 - round(100 x 21/28 = 75) = 25.00
            (Period(date(2026, 2, 1), date(2026, 3, 1)), Period(date(2026, 2, 22), date(2026, 3, 1)), D("25.00")),
            # leap February 2028 (29 days), last 7 days: 100 - round(100 x 22/29 = 75.862..) = 24.14
            (Period(date(2028, 2, 1), date(2028, 3, 1)), Period(date(2028, 2, 23), date(2028, 3, 1)), D("24.14")),
            # a whole cycle is never rounded
            (JAN, JAN, D("100")),
        ],
    )
    def test_a_piece_is_the_difference_of_cumulative_rounded_amounts(
        self, cycle: Period, run: Period, expected: Decimal
    ) -> None:
        assert prorated(D(100), cycle, run, currency="GBP") == expected

    def test_a_plan_change_on_the_15th_splits_the_month_into_pieces_summing_to_the_full_price(self) -> None:
        # 99.99 over Jan 1-15 (14 days) then Jan 15-Feb 1 (17 days): C(14) = round(99.99 x 14/31 = 45.157..) = 45.16
        first = prorated(D("99.99"), JAN, Period(date(2026, 1, 1), date(2026, 1, 15)), currency="GBP")
        second = prorated(D("99.99"), JAN, Period(date(2026, 1, 15), date(2026, 2, 1)), currency="GBP")
        assert (first, second) == (D("45.16"), D("54.83"))  # 99.99 - 45.16
        assert first + second == D("99.99")

    def test_yen_rounds_to_whole_units(self) -> None:
        # 1000 JPY, 10 of 31 days: round(1000 x 10/31 = 322.58) = 323
        assert prorated(D(1000), JAN, Period(date(2026, 1, 1), date(2026, 1, 11)), currency="JPY") == D(323)


class TestBillableRuns:
    def test_a_suspension_mid_month_leaves_two_runs_and_reactivation_resumes_billing(self) -> None:
        history = [change("suspended", date(2026, 1, 10)), change("active", date(2026, 1, 20))]
        runs = billable_runs(JAN, assignment(), history)
        assert runs == [Period(date(2026, 1, 1), date(2026, 1, 10)), Period(date(2026, 1, 20), date(2026, 2, 1))]
        # 100 over Jan: C(9) = round(29.032..) = 29.03; C(31) - C(19) = 100 - round(61.290..) = 38.71
        assert [prorated(D(100), JAN, r, currency="GBP") for r in runs] == [D("29.03"), D("38.71")]

    def test_a_cancelled_service_is_not_billed_from_its_cancellation(self) -> None:
        history = [change("cancelled", date(2026, 1, 25), service_id=SERVICE)]
        assert billable_runs(JAN, assignment(), history, service_id=SERVICE) == [
            Period(date(2026, 1, 1), date(2026, 1, 25))
        ]
        assert billable_runs(JAN, assignment(), history, service_id=UUID(int=7)) == [JAN]

    def test_an_assignment_ending_mid_cycle_is_billed_to_its_end_date_exclusive(self) -> None:
        assert billable_runs(JAN, assignment(end=date(2026, 1, 20)), []) == [
            Period(date(2026, 1, 1), date(2026, 1, 20))
        ]

    def test_runs_are_cut_where_the_price_changes(self) -> None:
        assert split_at([JAN], [date(2026, 1, 16), date(2026, 3, 1)]) == [
            Period(date(2026, 1, 1), date(2026, 1, 16)),
            Period(date(2026, 1, 16), date(2026, 2, 1)),
        ]


frequencies = st.sampled_from(list(BillingFrequency))
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
prices = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)


class TestProperties:
    @given(
        frequency=frequencies,
        anchor=days,
        day=days,
        price=prices,
        cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=6),
    )
    def test_prorated_pieces_of_a_period_sum_exactly_to_its_full_price(
        self, frequency: BillingFrequency, anchor: date, day: date, price: Decimal, cuts: list[int]
    ) -> None:
        cycle = period_containing(day, frequency=frequency, anchor=anchor)
        inner = sorted({cycle.start + timedelta(days=c) for c in cuts if c < cycle.days})
        edges = [cycle.start, *inner, cycle.end]
        pieces = [prorated(price, cycle, Period(a, b), currency="GBP") for a, b in itertools.pairwise(edges)]
        assert sum(pieces, D(0)) == price
        assert all(p >= 0 for p in pieces)
