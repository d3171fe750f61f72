"""Spec for rating's time entries: billable minutes (increments, minimum) and the rate precedence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from services.rating.domain.time_entries import NoTimeRate, billable_minutes, hours_of, time_rate
from shared.contracts.catalog import PlanLine, UserState
from tests.unit.test_pricing import SERVICE, TENANT, a_service

D = Decimal
START = datetime(2026, 1, 15, 9, tzinfo=UTC)
DAY = date(2026, 1, 15)


def line(**fields: object) -> PlanLine:
    return PlanLine.model_validate({"service_id": str(SERVICE), **fields})


def tech(rate: str | None = "95.00", currency: str | None = "GBP") -> UserState:
    return UserState(
        tenant_id=TENANT,
        user_id=UUID(int=5),
        email="sam@example.com",
        name="Sam",
        role="technician",
        kind="staff",
        user_ref="tech.sam",
        hourly_rate=None if rate is None else D(rate),
        currency=currency,
    )


class TestBillableMinutes:
    @pytest.mark.parametrize(
        ("minutes", "fields", "expected"),
        [
            (50, {}, D(50)),  # no increment, no minimum: as worked
            (50, {"rounding_increment_minutes": 15}, D(60)),  # 50 up to the next 15: 4 x 15
            (60, {"rounding_increment_minutes": 15}, D(60)),  # already on an increment
            (61, {"rounding_increment_minutes": 15}, D(75)),  # one minute over: 5 x 15
            (10, {"rounding_increment_minutes": 6, "minimum_minutes": 30}, D(30)),  # 12, raised to the minimum 30
            (40, {"rounding_increment_minutes": 6, "minimum_minutes": 30}, D(42)),  # 7 x 6, above the minimum
        ],
    )
    def test_rounds_up_to_the_increment_then_applies_the_minimum(
        self, minutes: int, fields: dict[str, object], expected: Decimal
    ) -> None:
        assert billable_minutes(START, START + timedelta(minutes=minutes), line(**fields)) == expected

    def test_hours_are_minutes_over_sixty(self) -> None:
        assert hours_of(D(75)) == D("1.25")  # 75 / 60


class TestRatePrecedence:
    def test_the_plan_lines_custom_rate_comes_first(self) -> None:
        rate = time_rate(line=line(custom_rate="120"), user=tech(), service=a_service(), currency="GBP", day=DAY)
        assert (rate.rate, rate.source) == (D(120), "plan_line_custom_rate")

    def test_then_the_technicians_hourly_rate(self) -> None:
        rate = time_rate(line=line(), user=tech(), service=a_service(), currency="GBP", day=DAY)
        assert (rate.rate, rate.source) == (D("95.00"), "user_hourly_rate")

    def test_then_the_service_default_rate(self) -> None:
        rate = time_rate(line=line(), user=tech(rate=None), service=a_service(), currency="GBP", day=DAY)
        assert (rate.rate, rate.source) == (D("12.50"), "service_default_rate")

    def test_a_technician_rate_in_another_currency_is_skipped(self) -> None:
        rate = time_rate(line=line(), user=tech(currency="USD"), service=a_service(), currency="GBP", day=DAY)
        assert rate.source == "service_default_rate"

    def test_a_dated_line_price_applies_from_its_date(self) -> None:
        dated = line(custom_rate="100", prices=[{"effective_from": "2026-01-16", "custom_rate": "110"}])
        before = time_rate(line=dated, user=None, service=a_service(), currency="GBP", day=DAY)
        after = time_rate(line=dated, user=None, service=a_service(), currency="GBP", day=date(2026, 1, 16))
        assert (before.rate, after.rate, after.source) == (D(100), D(110), "plan_line_custom_rate@2026-01-16")

    def test_no_rate_in_the_plans_currency_is_refused(self) -> None:
        with pytest.raises(NoTimeRate, match="USD"):
            time_rate(line=None, user=None, service=a_service(currency="USD"), currency="GBP", day=DAY)
