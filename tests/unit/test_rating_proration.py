"""Spec for rating's proration by days: the billable runs of a cycle and their exact share of the fee."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Context, Decimal
from uuid import UUID

import pytest

from services.rating.domain.proration import billable_runs, exact_share, split_at
from shared.contracts.catalog import AssignmentState, StatusChange
from shared.periods import Period

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


class TestExactShare:
    @pytest.mark.parametrize(
        ("cycle", "run", "expected"),
        [
            # Jan has 31 days; from the 15th: 17 days. 100 x 17 / 31 = 54.838709677..., kept exact for the invoice line
            (JAN, Period(date(2026, 1, 15), date(2026, 2, 1)), Context(prec=60).divide(D(1700), D(31))),
            # February 2026 (28 days), the last 7: exactly 25
            (Period(date(2026, 2, 1), date(2026, 3, 1)), Period(date(2026, 2, 22), date(2026, 3, 1)), D(25)),
            # a whole cycle is the price itself
            (JAN, JAN, D(100)),
        ],
    )
    def test_a_run_is_charged_its_days_share_of_the_price_unrounded(
        self, cycle: Period, run: Period, expected: Decimal
    ) -> None:
        assert exact_share(D(100), cycle, run) == expected

    def test_the_share_is_precise_to_far_beyond_any_minor_unit(self) -> None:
        share = exact_share(
            D("400"), Period(date(2026, 11, 1), date(2026, 12, 1)), Period(date(2026, 11, 3), date(2026, 12, 1))
        )
        assert abs(share - D("373.333333333333333333")) < D("1e-18")

    def test_a_run_outside_its_cycle_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not inside"):
            exact_share(D(100), JAN, Period(date(2025, 12, 31), date(2026, 1, 5)))


class TestBillableRuns:
    def test_a_suspension_mid_month_leaves_two_runs_and_reactivation_resumes_billing(self) -> None:
        history = [change("suspended", date(2026, 1, 10)), change("active", date(2026, 1, 20))]
        runs = billable_runs(JAN, assignment(), history)
        assert runs == [Period(date(2026, 1, 1), date(2026, 1, 10)), Period(date(2026, 1, 20), date(2026, 2, 1))]
        assert [r.days for r in runs] == [9, 12]

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
