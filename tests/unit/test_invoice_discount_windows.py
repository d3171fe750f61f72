"""Spec for discounts judged on each charge's own service days (docs/billing-rules.md §7; issue 24's first part).

"10 % off until 15 March" covers the days it covers: a time entry or usage record by its own day, a fixed fee or
a period-priced line by the share of its days inside the window. Charges under different windows never share a
line (a plan billed in advance carries two months' fees; a discount from the 1st of the second is that month's).
Figures are worked by hand.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from services.invoicing.domain.building import invoice_id_for
from services.invoicing.domain.pricing import PricedLine, apply_discounts, converted, draft_lines
from shared.contracts.catalog import ApprovalStatus, DiscountState
from shared.contracts.rating import ChargeCreated, PriceRule, Proration
from shared.contracts.tax import ConversionQuoted, ConvertedAmount

D = Decimal
TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
COMPANY = UUID("11111111-1111-4111-8111-111111111111")
PLAN = UUID("44444444-4444-4444-8444-444444444444")
NOV = (date(2026, 11, 1), date(2026, 12, 1))
INVOICE = invoice_id_for(TENANT, COMPANY, *NOV)
_serial = iter(range(1, 10**9))


def charge(
    amount: str,
    *,
    days: tuple[date, date],
    kind: str = "time",
    service: str = "helpdesk",
    currency: str = "USD",
    proration: Proration | None = None,
    cycle: tuple[date, date] | None = None,
) -> ChargeCreated:
    """A charge billed in November for the service days ``days`` (or a prorated run of ``cycle``)."""
    start, end = cycle or days
    return ChargeCreated(
        charge_id=uuid5(TENANT, f"c{next(_serial)}"),
        tenant_id=TENANT,
        company_id=COMPANY,
        company_ref="r1",
        period_start=NOV[0],
        period_end=NOV[1],
        kind=kind,
        service_id=uuid5(TENANT, service),
        service_ref=service,
        description=service,
        quantity=D(1),
        unit="hour" if kind == "time" else "month",
        unit_price=D(amount),
        amount=D(amount),
        currency=currency,
        source_records=[],
        price_rule=PriceRule(plan_id=PLAN, model="flat", rate=D(amount), rate_source="plan_line_custom_rate"),
        service_period_start=start,
        service_period_end=end,
        proration=proration,
    )


def day(d: date) -> tuple[date, date]:
    return d, d + timedelta(days=1)


def discount(value: str, *, fixed: bool = False, **scope: Any) -> DiscountState:
    return DiscountState(
        tenant_id=TENANT,
        discount_id=uuid5(TENANT, f"d{next(_serial)}"),
        name=f"{value} off",
        discount_type="fixed_amount" if fixed else "percentage",
        value=D(value),
        currency="USD" if fixed else None,
        approval_status=ApprovalStatus.APPROVED,
        **scope,
    )


def priced(
    charges: list[ChargeCreated], discounts: list[DiscountState], *, quotes: dict[str, ConversionQuoted] | None = None
) -> list[PricedLine]:
    lines = draft_lines(INVOICE, charges, discounts=discounts, company_id=COMPANY)
    return apply_discounts(converted(lines, quotes or {}, "USD"), discounts, company_id=COMPANY, currency="USD")


def nets(lines: list[PricedLine]) -> list[tuple[str, str]]:
    return sorted((f"{p.amount}", f"{p.discount_amount}") for p in lines)


class TestARecordIsJudgedOnItsOwnDay:
    """The issue's three clients: one hour of HELPDESK at 160.00 each (tax is tax-currency's, left out here)."""

    def test_a_discount_starting_mid_month_covers_an_entry_after_its_start(self) -> None:
        # R1: 10 % from 16 Nov, one hour on 20 Nov: 160.00 - 16.00 (x 1.05 tax = 151.20)
        r1 = discount("10", company_id=COMPANY, valid_from=date(2026, 11, 16))
        assert nets(priced([charge("160.00", days=day(date(2026, 11, 20)))], [r1])) == [("160.00", "16.00")]

    def test_a_discount_ending_mid_month_does_not_cover_an_entry_after_its_end(self) -> None:
        # R2: 10 % until 16 Nov (exclusive), one hour on 20 Nov: no discount (x 1.05 = 168.00)
        r2 = discount("10", company_id=COMPANY, valid_to=date(2026, 11, 16))
        assert nets(priced([charge("160.00", days=day(date(2026, 11, 20)))], [r2])) == [("160.00", "0.00")]

    def test_a_discount_ending_mid_month_covers_an_entry_before_its_end(self) -> None:
        # R3: 10 % until 16 Nov, one hour on 5 Nov: 16.00 off (x 1.05 = 151.20)
        r3 = discount("10", company_id=COMPANY, valid_to=date(2026, 11, 16))
        assert nets(priced([charge("160.00", days=day(date(2026, 11, 5)))], [r3])) == [("160.00", "16.00")]

    def test_entries_either_side_of_a_window_edge_are_on_separate_lines(self) -> None:
        # 5 Nov and 20 Nov under a discount until 16 Nov: two lines, 16.00 off the first only
        until_16 = discount("10", company_id=COMPANY, valid_to=date(2026, 11, 16))
        entries = [charge("160.00", days=day(date(2026, 11, 5))), charge("160.00", days=day(date(2026, 11, 20)))]
        lines = priced(entries, [until_16])
        assert nets(lines) == [("160.00", "0.00"), ("160.00", "16.00")]

    def test_entries_under_the_same_discounts_share_a_line(self) -> None:
        entries = [charge("160.00", days=day(date(2026, 11, 5))), charge("160.00", days=day(date(2026, 11, 9)))]
        assert nets(priced(entries, [discount("10", company_id=COMPANY)])) == [("320.00", "32.00")]


class TestAFeeIsDiscountedForTheDaysTheWindowCovers:
    def test_a_monthly_fee_with_a_discount_from_the_16th_gets_it_for_15_of_30_days(self) -> None:
        # 300.00 for November; 10 % from 16 Nov: 300 x 10 % x 15 / 30 = 15.00
        fee = charge("300.00", days=NOV, kind="fixed", service="managed")
        assert nets(priced([fee], [discount("10", plan_id=PLAN, valid_from=date(2026, 11, 16))])) == [
            ("300.00", "15.00")
        ]

    def test_a_clients_own_discount_until_the_11th_then_the_plans_default(self) -> None:
        # 300.00; the client's 20 % until 11 Nov (10 days), then the plan's 5 % (20 days):
        # 300 x 20 % x 10/30 = 20.00 + 300 x 5 % x 20/30 = 10.00 -> 30.00
        own = discount("20", company_id=COMPANY, plan_id=PLAN, valid_to=date(2026, 11, 11))
        default = discount("5", plan_id=PLAN)
        fee = charge("300.00", days=NOV, kind="fixed", service="managed")
        assert nets(priced([fee], [own, default])) == [("300.00", "30.00")]

    def test_a_client_wide_percentage_is_computed_on_the_covered_share_of_each_line(self) -> None:
        # 310.00 for the month, 15 % client-wide from 17 Nov (14 of 30 days): round(310 x 14/30 x 15 %) = 21.70
        fee = charge("310.00", days=NOV, kind="fixed", service="managed")
        assert nets(priced([fee], [discount("15", company_id=COMPANY, valid_from=date(2026, 11, 17))])) == [
            ("310.00", "21.70")
        ]

    def test_a_fixed_amount_is_taken_once_when_its_window_covers_any_service_day(self) -> None:
        # 25.00 off, valid from 30 Nov: the fee's last day is inside the window, so the whole 25.00 (never prorated)
        fee = charge("300.00", days=NOV, kind="fixed", service="managed")
        assert nets(priced([fee], [discount("25.00", fixed=True, plan_id=PLAN, valid_from=date(2026, 11, 30))])) == [
            ("300.00", "25.00")
        ]

    def test_a_prorated_fee_is_judged_on_its_own_run(self) -> None:
        # started 21 Nov: 10 of 30 days of 300.00 = 100.00; a discount until 26 Nov covers 5 of those 10 days:
        # 100.00 x 10 % x 5/10 = 5.00
        run = Proration(days=10, cycle_days=30, full_price=D("300.00"), first_day=date(2026, 11, 21), end_day=NOV[1])
        fee = charge("100.00", days=NOV, cycle=NOV, kind="fixed", service="managed", proration=run)
        assert nets(priced([fee], [discount("10", plan_id=PLAN, valid_to=date(2026, 11, 26))])) == [("100.00", "5.00")]


class TestAPlanBilledInAdvance:
    def test_this_and_next_months_fees_are_apart_when_a_discount_starts_on_the_1st(self) -> None:
        # November's fee (in arrears of the first cycle) and December's (in advance) on the November invoice;
        # 10 % from 1 Dec: December's 300.00 takes 30.00, November's none
        nov = charge("300.00", days=NOV, kind="fixed", service="managed")
        dec = charge("300.00", days=(date(2026, 12, 1), date(2027, 1, 1)), kind="fixed", service="managed")
        lines = priced([nov, dec], [discount("10", plan_id=PLAN, valid_from=date(2026, 12, 1))])
        assert nets(lines) == [("300.00", "0.00"), ("300.00", "30.00")]

    def test_without_a_window_edge_between_them_the_two_months_share_a_line(self) -> None:
        nov = charge("300.00", days=NOV, kind="fixed", service="managed")
        dec = charge("300.00", days=(date(2026, 12, 1), date(2027, 1, 1)), kind="fixed", service="managed")
        assert nets(priced([nov, dec], [discount("10", plan_id=PLAN)])) == [("600.00", "60.00")]


class TestTheRemainderRuleAfterConversion:
    def test_a_prorated_fee_is_rounded_in_the_invoice_currency(self) -> None:
        # 400 USD for 28 of 30 days, invoiced in NGN at 1,500: C(30) - C(2) = 600,000.00 - 40,000.00 = 560,000.00
        run = Proration(days=28, cycle_days=30, full_price=D(400), first_day=date(2026, 11, 3), end_day=NOV[1])
        exact = D(400) * 28 / 30  # 373.333..., as rating charges it
        fee = charge(f"{exact}", days=NOV, cycle=NOV, kind="fixed", service="managed", proration=run)
        lines = draft_lines(INVOICE, [fee])
        quote = ConversionQuoted(
            request_id=uuid5(TENANT, "q"),
            tenant_id=TENANT,
            invoice_id=INVOICE,
            from_currency="USD",
            to_currency="NGN",
            on=NOV[1],
            rate=D(1500),
            rate_date=NOV[1],
            exchange_rates=[],
            amounts=[ConvertedAmount(line_id=lines[0].line_id, amount=exact, converted=exact * 1500)],
        )
        [line] = apply_discounts(converted(lines, {"USD": quote}, "NGN"), [], company_id=COMPANY, currency="NGN")
        assert (line.amount, line.net_amount) == (D("560000.00"), D("560000.00"))
