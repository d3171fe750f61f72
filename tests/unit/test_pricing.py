"""Spec for services.rating.domain.pricing: a delta usage record on an active plan line, priced flat."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rating.domain.pricing import (
    Deferred,
    PlanCandidate,
    Recorded,
    Unrated,
    move_to_period,
    price_usage,
    route_like,
)
from shared.contracts.catalog import AssignmentState, BundleState, CompanyState, PlanLine, PlanState, ServiceState
from shared.contracts.metering import AcceptedUsage
from shared.contracts.rating import ChargeCreated
from shared.periods import BillingFrequency, Period

TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
COMPANY = UUID("11111111-1111-4111-8111-111111111111")
SERVICE = UUID("22222222-2222-4222-8222-222222222222")
OTHER_SERVICE = UUID("33333333-3333-4333-8333-333333333333")
PLAN = UUID("44444444-4444-4444-8444-444444444444")
OTHER_PLAN = UUID("55555555-5555-4555-8555-555555555555")
RECORD = UUID("66666666-6666-4666-8666-666666666666")
OTHER_RECORD = UUID("77777777-7777-4777-8777-777777777777")
DAY = date(2026, 1, 15)


def a_company(*, anchor: date = date(2026, 1, 1)) -> CompanyState:
    return CompanyState(
        tenant_id=TENANT,
        company_id=COMPANY,
        company_ref="acme",
        name="Acme Dental",
        billing_email="ap@acme.example",
        region="GB",
        currency="GBP",
        billing_anchor=anchor,
    )


def a_service(*, default_rate: str = "12.50", service_id: UUID = SERVICE, currency: str = "GBP") -> ServiceState:
    return ServiceState(
        tenant_id=TENANT,
        service_id=service_id,
        code="managed-device",
        name="Managed device",
        service_type="Usage",
        default_rate=Decimal(default_rate),
        currency=currency,
        unit="device",
    )


def a_plan(*, lines: list[PlanLine] | None = None, plan_id: UUID = PLAN) -> PlanState:
    return PlanState(
        tenant_id=TENANT,
        plan_id=plan_id,
        name="Managed devices",
        plan_type="usage-based",
        billing_frequency="monthly",
        currency="GBP",
        lines=[PlanLine(service_id=SERVICE)] if lines is None else lines,
    )


def an_assignment(*, start: date = date(2026, 1, 1), end: date | None = None, plan_id: UUID = PLAN) -> AssignmentState:
    return AssignmentState(
        tenant_id=TENANT,
        assignment_id=UUID(int=plan_id.int ^ 1),
        company_id=COMPANY,
        plan_id=plan_id,
        start_date=start,
        end_date=end,
    )


def a_record(*, quantity: str = "3", kind: str = "delta", record_id: UUID = RECORD) -> AcceptedUsage:
    return AcceptedUsage(
        record_id=record_id,
        tenant_id=TENANT,
        source="ninjaone",
        event_id=f"evt-{record_id}",
        company_id=COMPANY,
        company_ref="acme",
        service_id=SERVICE,
        service_ref="managed-device",
        kind=kind,
        quantity=Decimal(quantity),
        unit="device",
        occurred_at=datetime(2026, 1, 15, 10, tzinfo=UTC),
    )


def a_candidate(**assignment: Any) -> PlanCandidate:
    plan = a_plan(lines=assignment.pop("lines", None), plan_id=assignment.get("plan_id", PLAN))
    return PlanCandidate(an_assignment(**assignment), plan)


def priced(
    *,
    record: AcceptedUsage | None = None,
    day: date = DAY,
    company: CompanyState | None = None,
    service: ServiceState | None = None,
    candidates: list[PlanCandidate] | None = None,
) -> tuple[ChargeCreated, BillingFrequency]:
    result = price_usage(
        record or a_record(),
        day=day,
        company=company or a_company(),
        service=service or a_service(),
        candidates=[a_candidate()] if candidates is None else candidates,
    )
    assert not isinstance(result, Unrated), result
    return result


def charge_of(**kwargs: Any) -> ChargeCreated:
    return priced(**kwargs)[0]


class TestFlatPricing:
    def test_prices_at_the_plan_lines_custom_rate(self) -> None:
        candidate = a_candidate(lines=[PlanLine(service_id=SERVICE, custom_rate=Decimal("10.00"))])

        charge = charge_of(candidates=[candidate])

        assert charge.unit_price == Decimal("10.00")
        assert charge.amount == Decimal("30.00")
        assert charge.price_rule.rate_source == "plan_line_custom_rate"

    def test_falls_back_to_the_services_default_rate(self) -> None:
        charge = charge_of(service=a_service(default_rate="12.50"))

        assert charge.unit_price == Decimal("12.50")
        assert charge.amount == Decimal("37.50")
        assert charge.price_rule.rate_source == "service_default_rate"

    @pytest.mark.parametrize(
        ("quantity", "rate", "amount"),
        [
            ("3", "12.345", "37.035"),
            ("0.5", "0.001", "0.0005"),
            ("7", "0.333333", "2.333331"),
            ("0", "12.50", "0.00"),
        ],
    )
    def test_keeps_the_amount_at_full_precision(self, quantity: str, rate: str, amount: str) -> None:
        charge = charge_of(record=a_record(quantity=quantity), service=a_service(default_rate=rate))

        assert format(charge.amount, "f") == amount

    @given(
        quantity=st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
        rate=st.decimals(min_value=0, max_value=10**4, places=6, allow_nan=False, allow_infinity=False),
    )
    def test_amount_is_exactly_quantity_times_rate(self, quantity: Decimal, rate: Decimal) -> None:
        charge = charge_of(record=a_record(quantity=str(quantity)), service=a_service(default_rate=str(rate)))

        assert charge.amount == quantity * rate

    def test_describes_the_charge_from_the_record_service_and_plan(self) -> None:
        charge, frequency = priced()

        assert frequency is BillingFrequency.MONTHLY
        assert charge.kind == "usage"
        assert charge.tenant_id == TENANT
        assert charge.company_id == COMPANY
        assert charge.company_ref == "acme"
        assert charge.service_id == SERVICE
        assert charge.service_ref == "managed-device"
        assert charge.description == "Managed device"
        assert charge.quantity == Decimal("3")
        assert charge.unit == "device"
        assert charge.currency == "GBP"
        assert charge.source_records == [RECORD]
        assert charge.price_rule.plan_id == PLAN
        assert charge.price_rule.model == "flat"
        assert charge.late is False

    def test_does_not_relabel_a_default_rate_in_another_currency(self) -> None:
        result = price_usage(
            a_record(), day=DAY, company=a_company(), service=a_service(currency="USD"), candidates=[a_candidate()]
        )

        assert isinstance(result, Unrated) or result[0].currency == "USD"

    def test_uses_the_first_candidate_that_is_active_and_covers_the_service(self) -> None:
        ended = a_candidate(end=date(2026, 1, 10), lines=[PlanLine(service_id=SERVICE, custom_rate=Decimal("1"))])
        current = a_candidate(plan_id=OTHER_PLAN, lines=[PlanLine(service_id=SERVICE, custom_rate=Decimal("2"))])

        charge = charge_of(candidates=[ended, current])

        assert charge.price_rule.plan_id == OTHER_PLAN
        assert charge.unit_price == Decimal("2")


class TestPeriodOfACharge:
    @pytest.mark.parametrize(
        ("anchor", "day", "start", "end"),
        [
            (date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1), date(2026, 2, 1)),
            (date(2026, 1, 1), date(2026, 1, 31), date(2026, 1, 1), date(2026, 2, 1)),
            (date(2026, 1, 1), date(2026, 2, 1), date(2026, 2, 1), date(2026, 3, 1)),
            (date(2025, 6, 15), date(2026, 1, 14), date(2025, 12, 15), date(2026, 1, 15)),
            (date(2025, 6, 15), date(2026, 1, 15), date(2026, 1, 15), date(2026, 2, 15)),
            # anchored on the 31st: short months end on their last day, the 31st returns where it exists
            (date(2026, 1, 31), date(2026, 2, 27), date(2026, 1, 31), date(2026, 2, 28)),
            (date(2026, 1, 31), date(2026, 2, 28), date(2026, 2, 28), date(2026, 3, 31)),
            (date(2026, 1, 31), date(2026, 4, 30), date(2026, 4, 30), date(2026, 5, 31)),
            (date(2023, 1, 31), date(2024, 2, 29), date(2024, 2, 29), date(2024, 3, 31)),
        ],
    )
    def test_is_the_monthly_cycle_containing_the_local_day_on_the_clients_anchor(
        self, anchor: date, day: date, start: date, end: date
    ) -> None:
        charge = charge_of(day=day, company=a_company(anchor=anchor), candidates=[a_candidate(start=date(2020, 1, 1))])

        assert (charge.period_start, charge.period_end) == (start, end)


class TestUnrated:
    def test_when_the_service_is_not_in_ratings_catalog_view(self) -> None:
        result = price_usage(a_record(), day=DAY, company=a_company(), service=None, candidates=[a_candidate()])

        assert isinstance(result, Unrated)
        assert "'managed-device'" in result.reason
        assert "catalog" in result.reason

    def test_not_when_the_record_is_a_snapshot_which_is_aggregated_at_the_periods_close(self) -> None:
        result = price_usage(
            a_record(kind="snapshot"), day=DAY, company=a_company(), service=a_service(), candidates=[a_candidate()]
        )

        assert isinstance(result, Deferred)
        assert result.disposition == "at_close"

    @pytest.mark.parametrize(
        ("start", "end", "day"),
        [
            (date(2026, 1, 16), None, date(2026, 1, 15)),
            (date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 15)),
            (date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 20)),
        ],
        ids=["before-start", "on-end-date", "after-end-date"],
    )
    def test_when_no_assignment_is_active_on_the_day(self, start: date, end: date | None, day: date) -> None:
        result = price_usage(
            a_record(),
            day=day,
            company=a_company(),
            service=a_service(),
            candidates=[a_candidate(start=start, end=end)],
        )

        assert isinstance(result, Unrated)
        assert result.reason == (
            f"no active plan of client 'acme' covers service 'managed-device' on {day.isoformat()}"
        )

    @pytest.mark.parametrize(
        ("start", "end", "day"),
        [
            (date(2026, 1, 15), None, date(2026, 1, 15)),
            (date(2026, 1, 1), date(2026, 1, 16), date(2026, 1, 15)),
        ],
        ids=["on-start-date", "day-before-end-date"],
    )
    def test_not_when_the_day_is_inside_start_to_end(self, start: date, end: date | None, day: date) -> None:
        charge = charge_of(day=day, candidates=[a_candidate(start=start, end=end)])

        assert charge.unit_price == Decimal("12.50")

    def test_when_the_plan_does_not_include_the_service(self) -> None:
        result = price_usage(
            a_record(),
            day=DAY,
            company=a_company(),
            service=a_service(),
            candidates=[a_candidate(lines=[PlanLine(service_id=OTHER_SERVICE)])],
        )

        assert isinstance(result, Unrated)
        assert "'acme'" in result.reason
        assert "'managed-device'" in result.reason

    def test_when_the_client_has_no_plans(self) -> None:
        result = price_usage(a_record(), day=DAY, company=a_company(), service=a_service(), candidates=[])

        assert isinstance(result, Unrated)


class TestChargeId:
    def test_is_the_same_when_the_same_record_is_priced_again(self) -> None:
        assert charge_of().charge_id == charge_of().charge_id

    def test_does_not_depend_on_the_rate_or_day(self) -> None:
        first = charge_of(day=date(2026, 1, 15))
        second = charge_of(day=date(2026, 1, 20), service=a_service(default_rate="99"))

        assert first.charge_id == second.charge_id

    def test_differs_per_record(self) -> None:
        assert charge_of().charge_id != charge_of(record=a_record(record_id=OTHER_RECORD)).charge_id

    def test_differs_per_plan(self) -> None:
        other = a_candidate(plan_id=OTHER_PLAN)

        assert charge_of().charge_id != charge_of(candidates=[other]).charge_id


class TestMoveToPeriod:
    def test_marks_the_charge_late_and_moves_it_into_the_open_period(self) -> None:
        charge = charge_of()
        open_period = Period(date(2026, 2, 1), date(2026, 3, 1))

        moved = move_to_period(charge, open_period)

        assert (moved.period_start, moved.period_end) == (date(2026, 2, 1), date(2026, 3, 1))
        assert moved.late is True
        assert moved.model_dump(exclude={"period_start", "period_end", "late"}) == charge.model_dump(
            exclude={"period_start", "period_end", "late"}
        )

    def test_leaves_the_original_charge_untouched(self) -> None:
        charge = charge_of()

        move_to_period(charge, Period(date(2026, 2, 1), date(2026, 3, 1)))

        assert (charge.period_start, charge.late) == (date(2026, 1, 1), False)


class TestBundledServices:
    BUNDLE = UUID("88888888-8888-4888-8888-888888888888")

    def a_bundle(self) -> BundleState:
        return BundleState(
            tenant_id=TENANT,
            bundle_id=self.BUNDLE,
            name="Security pack",
            price=Decimal("99.00"),
            currency="GBP",
            service_ids=[SERVICE, OTHER_SERVICE],
        )

    def test_usage_of_a_service_sold_in_a_bundle_is_recorded_not_charged_at_the_service_price(self) -> None:
        result = price_usage(
            a_record(),
            day=DAY,
            company=a_company(),
            service=a_service(),
            candidates=[a_candidate(lines=[PlanLine(bundle_id=self.BUNDLE)])],
            bundles={self.BUNDLE: self.a_bundle()},
        )

        assert isinstance(result, Recorded)
        assert result.disposition == "in_bundle"
        assert "bundle 'Security pack'" in result.note
        assert "99.00 GBP" in result.note

    def test_a_service_line_beside_a_bundle_of_other_services_is_still_priced(self) -> None:
        bundle = self.a_bundle().model_copy(update={"service_ids": [OTHER_SERVICE, RECORD]})
        lines = [PlanLine(bundle_id=self.BUNDLE), PlanLine(service_id=SERVICE)]

        result = price_usage(
            a_record(),
            day=DAY,
            company=a_company(),
            service=a_service(),
            candidates=[a_candidate(lines=lines)],
            bundles={self.BUNDLE: bundle},
        )

        assert not isinstance(result, Unrated)
        assert result[0].unit_price == Decimal("12.50")


class TestRoutingABatch:
    """A batch routes each (client, service, day, kind) once and every other such record with `route_like`:
    that must be exactly what pricing each record on its own gives."""

    LINES = {
        "flat": [PlanLine(service_id=SERVICE, custom_rate=Decimal("10.00"))],
        "default rate": [PlanLine(service_id=SERVICE)],
        "included (at close)": [PlanLine(service_id=SERVICE, included_quantity=Decimal("5"))],
        "not covered": [PlanLine(service_id=OTHER_SERVICE)],
    }

    @pytest.mark.parametrize("lines", LINES.values(), ids=list(LINES))
    @given(
        first=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3),
        second=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3),
        kind=st.sampled_from(["delta", "snapshot"]),
    )
    def test_routing_like_a_record_of_the_same_client_service_day_and_kind_equals_pricing_it_alone(
        self, lines: list[PlanLine], first: Decimal, second: Decimal, kind: str
    ) -> None:
        def route(record: AcceptedUsage) -> Any:
            return price_usage(
                record, day=DAY, company=a_company(), service=a_service(), candidates=[a_candidate(lines=lines)]
            )

        one = a_record(quantity=str(first), kind=kind)
        other = a_record(quantity=str(second), kind=kind, record_id=OTHER_RECORD)

        assert route_like(route(one), other) == route(other)
