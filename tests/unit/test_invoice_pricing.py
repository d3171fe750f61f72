"""Spec for services.invoicing.domain.pricing: conversion, then discounts, then the net rounded half-up.

Covers the seed's "Discounts and Promotions Tests" on the domain: percentages on invoice totals, fixed amounts
on services or plans, time-bound discounts only within their dates, a client's discount overriding the plan's.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.building import Draft, build, invoice_id_for
from services.invoicing.domain.pricing import CannotInvoice, PricedLine, apply_discounts, converted, draft_lines
from shared.contracts.catalog import ApprovalStatus, CompanyState, DiscountState
from shared.contracts.rating import ChargeCreated, PriceRule
from shared.contracts.tax import ConversionQuoted, ConvertedAmount, QuotedLine, QuotedTax, TaxQuoted

TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
COMPANY = UUID("11111111-1111-4111-8111-111111111111")
OTHER = UUID("22222222-2222-4222-8222-222222222222")
PLAN = UUID("44444444-4444-4444-8444-444444444444")
JAN = (date(2026, 1, 1), date(2026, 2, 1))
INVOICE = invoice_id_for(TENANT, COMPANY, *JAN)
_serial = iter(range(1, 10**9))


def charge(amount: str, *, service: str = "rmm", currency: str = "GBP", plan: UUID | None = PLAN) -> ChargeCreated:
    return ChargeCreated(
        charge_id=uuid5(TENANT, f"c{next(_serial)}"),
        tenant_id=TENANT,
        company_id=COMPANY,
        company_ref="acme",
        period_start=JAN[0],
        period_end=JAN[1],
        kind="usage",
        service_id=uuid5(TENANT, service),
        service_ref=service,
        description=service,
        quantity=Decimal(1),
        unit="device",
        unit_price=Decimal(amount),
        amount=Decimal(amount),
        currency=currency,
        source_records=[uuid5(TENANT, f"r{next(_serial)}")],
        price_rule=PriceRule(plan_id=plan, model="flat", rate=Decimal(amount), rate_source="service_default_rate"),
    )


def discount(value: str, *, fixed: bool = False, **scope: Any) -> DiscountState:
    return DiscountState(
        tenant_id=TENANT,
        discount_id=uuid5(TENANT, f"d{next(_serial)}"),
        name=f"{value} off",
        discount_type="fixed_amount" if fixed else "percentage",
        value=Decimal(value),
        currency="GBP" if fixed else None,
        approval_status=scope.pop("approval_status", ApprovalStatus.APPROVED),
        **scope,
    )


def priced(charges: list[ChargeCreated], discounts: list[DiscountState], currency: str = "GBP") -> list[PricedLine]:
    lines = draft_lines(INVOICE, charges)
    return apply_discounts(converted(lines, {}, currency), discounts, company_id=COMPANY, currency=currency)


def by_service(lines: list[PricedLine]) -> dict[str, tuple[str, str, str]]:
    return {p.line.service_ref: (f"{p.amount}", f"{p.discount_amount}", f"{p.net_amount}") for p in lines}


class TestPercentageDiscounts:
    def test_a_plans_percentage_discounts_each_of_its_lines(self) -> None:
        # 10 % of 100.00 = 10.00; 10 % of 33.33 = 3.333 -> net 29.997 -> 30.00 (discount 3.33)
        lines = priced([charge("100.00"), charge("33.33", service="backup")], [discount("10", plan_id=PLAN)])

        assert by_service(lines) == {"rmm": ("100.00", "10.00", "90.00"), "backup": ("33.33", "3.33", "30.00")}

    def test_a_client_wide_percentage_is_taken_off_the_invoice_total_and_allocated_by_largest_remainder(self) -> None:
        # 15 % of (10.01 + 10.01 + 10.01 = 30.03) = 4.5045 -> 4.50; each line's exact share is 1.5015:
        # 1.50 each leaves 0.00 to place, so 1.50 / 1.50 / 1.50 (sums to the invoice discount 4.50)
        lines = priced(
            [charge("10.01", service="a"), charge("10.01", service="b"), charge("10.01", service="c")],
            [discount("15", company_id=COMPANY)],
        )

        assert sum(p.discount_amount for p in lines) == Decimal("4.50")
        assert [p.discount_amount for p in lines] == [Decimal("1.50")] * 3

    def test_a_client_wide_percentage_gives_the_leftover_cent_to_the_largest_remainder(self) -> None:
        # 10 % of (0.05 + 0.05 + 0.10 = 0.20) = 0.02; shares 0.005, 0.005, 0.010 -> 0.00, 0.00, 0.01 + 1 cent
        # leftover to the first of the tied 0.005 remainders: 0.01, 0.00, 0.01
        lines = priced(
            [charge("0.05", service="a"), charge("0.05", service="b"), charge("0.10", service="c")],
            [discount("10", company_id=COMPANY)],
        )

        assert [f"{p.discount_amount}" for p in lines] == ["0.01", "0.00", "0.01"]


class TestFixedAmountDiscounts:
    def test_a_fixed_amount_on_a_service_comes_off_that_service_only(self) -> None:
        rmm = uuid5(TENANT, "rmm")
        lines = priced(
            [charge("50.00"), charge("20.00", service="backup")], [discount("5.00", fixed=True, service_id=rmm)]
        )

        assert by_service(lines) == {"rmm": ("50.00", "5.00", "45.00"), "backup": ("20.00", "0.00", "20.00")}

    def test_a_fixed_amount_on_a_plan_is_taken_once_and_split_across_its_lines(self) -> None:
        # 10.00 over 30.00 + 10.00: shares 7.50 and 2.50
        lines = priced(
            [charge("30.00"), charge("10.00", service="backup")], [discount("10.00", fixed=True, plan_id=PLAN)]
        )

        assert by_service(lines) == {"rmm": ("30.00", "7.50", "22.50"), "backup": ("10.00", "2.50", "7.50")}

    def test_a_fixed_amount_never_takes_a_line_below_zero(self) -> None:
        lines = priced([charge("3.00")], [discount("10.00", fixed=True, plan_id=PLAN)])

        assert by_service(lines) == {"rmm": ("3.00", "3.00", "0.00")}

    def test_percentages_come_before_fixed_amounts(self) -> None:
        # 100.00 - 10 % = 90.00, then - 5.00 = 85.00
        lines = priced([charge("100.00")], [discount("5.00", fixed=True, plan_id=PLAN), discount("10", plan_id=PLAN)])

        assert by_service(lines) == {"rmm": ("100.00", "15.00", "85.00")}

    def test_a_fixed_amount_in_another_currency_holds_the_invoice(self) -> None:
        usd = discount("5.00", fixed=True, plan_id=PLAN).model_copy(update={"currency": "USD"})

        with pytest.raises(CannotInvoice, match=r"fixed discount '5.00 off' is in USD but the invoice is in GBP"):
            priced([charge("100.00")], [usd])


class TestWhichDiscountsApply:
    def test_a_time_bound_discount_applies_only_within_its_dates(self) -> None:
        during = discount("10", plan_id=PLAN, valid_from=date(2025, 12, 1), valid_to=date(2026, 2, 1))
        ended = discount("10", plan_id=PLAN, valid_from=date(2025, 12, 1), valid_to=date(2026, 1, 1))
        future = discount("10", plan_id=PLAN, valid_from=date(2026, 2, 1))

        assert by_service(priced([charge("100.00")], [during]))["rmm"][1] == "10.00"
        assert by_service(priced([charge("100.00")], [ended]))["rmm"][1] == "0.00"  # valid_to is exclusive
        assert by_service(priced([charge("100.00")], [future]))["rmm"][1] == "0.00"  # not yet on any of its days

    def test_a_clients_own_discount_overrides_the_plans_default(self) -> None:
        default = discount("10", plan_id=PLAN)
        own = discount("25", plan_id=PLAN, company_id=COMPANY)
        someone_elses = discount("50", plan_id=PLAN, company_id=OTHER)

        assert by_service(priced([charge("100.00")], [default, own, someone_elses]))["rmm"] == (
            "100.00",
            "25.00",
            "75.00",
        )
        assert by_service(priced([charge("100.00")], [default, someone_elses]))["rmm"][1] == "10.00"

    @pytest.mark.parametrize("status", [ApprovalStatus.PENDING, ApprovalStatus.REJECTED])
    def test_only_approved_discounts_apply(self, status: ApprovalStatus) -> None:
        lines = priced([charge("100.00")], [discount("30", plan_id=PLAN, approval_status=status)])

        assert by_service(lines)["rmm"] == ("100.00", "0.00", "100.00")

    def test_a_correction_line_takes_no_discount(self) -> None:
        lines = priced([charge("-20.00")], [discount("10", plan_id=PLAN)])

        assert by_service(lines)["rmm"] == ("-20.00", "0.00", "-20.00")


class TestConversion:
    def test_converts_exactly_then_discounts_then_rounds_the_net(self) -> None:
        # USD 12.3456 x 0.8 = 9.87648 GBP; 10 % off = 8.888832 -> net 8.89; amount 9.88; discount 0.99
        lines = draft_lines(INVOICE, [charge("12.3456", currency="USD")])
        quote = ConversionQuoted(
            request_id=uuid5(TENANT, "q"),
            tenant_id=TENANT,
            invoice_id=INVOICE,
            from_currency="USD",
            to_currency="GBP",
            on=JAN[1],
            rate=Decimal("0.8"),
            rate_date=date(2026, 1, 30),
            exchange_rates=[],
            amounts=[
                ConvertedAmount(line_id=lines[0].line_id, amount=Decimal("12.3456"), converted=Decimal("9.87648"))
            ],
        )

        [line] = apply_discounts(
            converted(lines, {"USD": quote}, "GBP"), [discount("10", plan_id=PLAN)], company_id=COMPANY, currency="GBP"
        )

        assert (line.unit_price, line.amount, line.discount_amount, line.net_amount) == (
            Decimal("9.87648"),
            Decimal("9.88"),
            Decimal("0.99"),
            Decimal("8.89"),
        )


def taxed_at(lines: list[PricedLine], percent: Decimal) -> TaxQuoted:
    """Tax-currency's answer at one rate, each tax rounded half-up per line (its rule)."""
    quoted = []
    for p in lines:
        tax = (p.net_amount * percent / 100).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        taxes = [
            QuotedTax(
                name="VAT",
                rate=percent,
                amount=tax,
                compound=False,
                exemption_reason=None,
                tax_rate_id=uuid5(TENANT, "vat"),
            )
        ]
        quoted.append(
            QuotedLine(
                line_id=p.line.line_id, net_amount=p.net_amount, taxes=taxes, tax_amount=tax, total=p.net_amount + tax
            )
        )
    return TaxQuoted(
        request_id=uuid5(TENANT, "t"),
        tenant_id=TENANT,
        invoice_id=INVOICE,
        currency="GBP",
        tax_inclusive=False,
        lines=quoted,
        tax_total=sum((q.tax_amount for q in quoted), Decimal(0)),
    )


COMPANY_STATE = CompanyState(
    tenant_id=TENANT,
    company_id=COMPANY,
    company_ref="acme",
    name="Acme",
    billing_email="ap@acme.example",
    region="GB",
    currency="GBP",
    billing_anchor=JAN[0],
)
DRAFT = Draft(invoice_id=INVOICE, company=COMPANY_STATE, period_start=JAN[0], period_end=JAN[1], issue_date=JAN[1])

money = st.decimals(min_value=Decimal("-50"), max_value=Decimal("5000"), places=4)
percent = st.sampled_from(["5", "10", "12.5", "33.3333", "100"])


class TestInvoiceProperties:
    @given(
        amounts=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), money), min_size=1, max_size=12),
        plan_pct=st.one_of(st.none(), percent),
        client_pct=st.one_of(st.none(), percent),
        fixed=st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)),
        vat=st.sampled_from([Decimal(0), Decimal("5"), Decimal("20")]),
        credit=st.decimals(min_value=Decimal(0), max_value=Decimal("1000"), places=2),
    )
    def test_total_is_subtotal_minus_discounts_plus_tax_and_each_is_the_sum_of_its_lines(
        self,
        amounts: list[tuple[str, Decimal]],
        plan_pct: str | None,
        client_pct: str | None,
        fixed: Decimal | None,
        vat: Decimal,
        credit: Decimal,
    ) -> None:
        discounts = []
        if plan_pct:
            discounts.append(discount(plan_pct, plan_id=PLAN))
        if client_pct:
            discounts.append(discount(client_pct, company_id=COMPANY))
        if fixed:
            discounts.append(discount(f"{fixed}", fixed=True, plan_id=PLAN))
        lines = priced([charge(f"{a}", service=s) for s, a in amounts], discounts)

        invoice = build(DRAFT, number="INV-2602-00001", priced=lines, tax=taxed_at(lines, vat), credit_available=credit)

        assert invoice.total == invoice.subtotal - invoice.discount_total + invoice.tax_total
        assert invoice.subtotal == sum(x.amount for x in invoice.lines)
        assert invoice.discount_total == sum(x.discount_amount for x in invoice.lines)
        assert invoice.tax_total == sum(x.tax_amount for x in invoice.lines)
        assert all(x.net_amount >= 0 or x.amount < 0 for x in invoice.lines)  # discounts never make a line negative
        assert invoice.credits_applied == max(Decimal(0), min(credit, invoice.total))
        assert invoice.amount_due == invoice.total - invoice.credits_applied


def taxed_inclusive(lines: list[PricedLine], percent: Decimal) -> TaxQuoted:
    """Tax-currency's split of gross lines at one rate (its rule): tax = round_half_up(G x r / (100 + r)),
    net = G - tax."""
    quoted = []
    for p in lines:
        gross = p.net_amount
        tax = (gross * percent / (100 + percent)).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        taxes = [
            QuotedTax(
                name="VAT",
                rate=percent,
                amount=tax,
                compound=False,
                exemption_reason=None,
                tax_rate_id=uuid5(TENANT, "v"),
            )
        ]
        quoted.append(
            QuotedLine(line_id=p.line.line_id, net_amount=gross - tax, taxes=taxes, tax_amount=tax, total=gross)
        )
    return TaxQuoted(
        request_id=uuid5(TENANT, "t"),
        tenant_id=TENANT,
        invoice_id=INVOICE,
        currency="GBP",
        tax_inclusive=True,
        lines=quoted,
        tax_total=sum((q.tax_amount for q in quoted), Decimal(0)),
    )


class TestTaxInclusive:
    def test_a_gross_price_is_backed_out_per_line_and_the_document_is_net_of_tax(self) -> None:
        lines = priced([charge("120.00")], [discount("10", plan_id=PLAN)])  # 120.00 incl. VAT, 10% off: 108.00

        invoice = build(DRAFT, number="INV-2602-00001", priced=lines, tax=taxed_inclusive(lines, Decimal(20)))

        [line] = invoice.lines
        # VAT in 108.00 at 20%: 108.00 x 20 / 120 = 18.00; net 90.00
        # the 12.00 discount's VAT share in the same proportion: 12.00 x 18.00 / 108.00 = 2.00 -> discount 10.00
        # amount = 90.00 + 10.00 = 100.00 (the net list price); unit price 100.00 / 1
        assert (line.amount, line.discount_amount, line.net_amount, line.tax_amount, line.total) == (
            Decimal("100.00"),
            Decimal("10.00"),
            Decimal("90.00"),
            Decimal("18.00"),
            Decimal("108.00"),
        )
        assert line.unit_price == Decimal("100.000000")
        assert (invoice.tax_inclusive, invoice.total) == (True, Decimal("108.00"))

    def test_the_rounding_rule_leaves_net_plus_tax_equal_to_the_inclusive_amount(self) -> None:
        lines = priced([charge("9.99"), charge("0.01", service="backup")], [])

        invoice = build(DRAFT, number="INV-2602-00001", priced=lines, tax=taxed_inclusive(lines, Decimal(20)))

        # 9.99 x 20 / 120 = 1.665 -> 1.67, net 8.32; 0.01 x 20 / 120 = 0.00166 -> 0.00, net 0.01
        assert by_line(invoice) == {"rmm": ("8.32", "1.67", "9.99"), "backup": ("0.01", "0.00", "0.01")}
        assert invoice.total == Decimal("10.00")  # 9.99 + 0.01, exactly what the catalog prices add up to

    @given(
        amounts=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), money), min_size=1, max_size=10),
        plan_pct=st.one_of(st.none(), percent),
        fixed=st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)),
        vat=st.sampled_from([Decimal(0), Decimal("5"), Decimal("20"), Decimal("17.5")]),
    )
    def test_inclusive_invoices_total_exactly_their_gross_lines_and_still_reconcile(
        self, amounts: list[tuple[str, Decimal]], plan_pct: str | None, fixed: Decimal | None, vat: Decimal
    ) -> None:
        discounts = []
        if plan_pct:
            discounts.append(discount(plan_pct, plan_id=PLAN))
        if fixed:
            discounts.append(discount(f"{fixed}", fixed=True, plan_id=PLAN))
        lines = priced([charge(f"{a}", service=s) for s, a in amounts], discounts)

        invoice = build(DRAFT, number="INV-2602-00001", priced=lines, tax=taxed_inclusive(lines, vat))

        assert invoice.total == sum((p.net_amount for p in lines), Decimal(0))  # the inclusive amounts, exactly
        for line, p in zip(invoice.lines, lines, strict=True):
            assert line.net_amount + line.tax_amount == line.total == p.net_amount
            assert line.amount - line.discount_amount == line.net_amount
        assert invoice.total == invoice.subtotal - invoice.discount_total + invoice.tax_total


def by_line(invoice: Any) -> dict[str, tuple[str, str, str]]:
    return {x.service_ref: (f"{x.net_amount}", f"{x.tax_amount}", f"{x.total}") for x in invoice.lines}
