"""Spec for services.invoicing.domain.building: lines from charges, rounded once per line, half-up."""

from __future__ import annotations

import random
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.building import Draft, build, check, invoice_id_for, invoice_number
from services.invoicing.domain.pricing import CannotInvoice, PricedLine, apply_discounts, converted, draft_lines
from shared.contracts.catalog import CompanyState
from shared.contracts.invoices import Invoice, InvoiceStatus
from shared.contracts.rating import ChargeCreated, PriceRule
from shared.contracts.tax import QuotedLine, TaxQuoted

TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
COMPANY = UUID("11111111-1111-4111-8111-111111111111")
PLAN = UUID("44444444-4444-4444-8444-444444444444")
JAN = (date(2026, 1, 1), date(2026, 2, 1))
ISSUE = date(2026, 2, 1)
NUMBER = "INV-2602-00001"
MINOR_UNITS = {"GBP": 2, "JPY": 0, "BHD": 3}


def a_company(**changes: Any) -> CompanyState:
    fields: dict[str, Any] = {
        "tenant_id": TENANT,
        "company_id": COMPANY,
        "company_ref": "acme",
        "name": "Acme Dental",
        "billing_email": "ap@acme.example",
        "region": "GB",
        "currency": "GBP",
        "payment_terms_days": 30,
        "billing_anchor": date(2026, 1, 1),
    }
    return CompanyState(**(fields | changes))


_serial = iter(range(1, 10**9))


def a_charge(
    amount: str,
    *,
    service_ref: str = "managed-device",
    unit_price: str | None = None,
    quantity: str = "1",
    currency: str = "GBP",
    late: bool = False,
    description: str | None = None,
    kind: str = "usage",
) -> ChargeCreated:
    price = Decimal(unit_price if unit_price is not None else amount)
    return ChargeCreated(
        charge_id=uuid5(TENANT, f"charge-{next(_serial)}"),
        tenant_id=TENANT,
        company_id=COMPANY,
        company_ref="acme",
        period_start=JAN[0],
        period_end=JAN[1],
        kind=kind,
        service_id=uuid5(TENANT, service_ref),
        service_ref=service_ref,
        description=description or service_ref.replace("-", " ").capitalize(),
        quantity=Decimal(quantity),
        unit="device",
        unit_price=price,
        amount=Decimal(amount),
        currency=currency,
        source_records=[uuid5(TENANT, f"record-{next(_serial)}")],
        price_rule=PriceRule(plan_id=PLAN, model="flat", rate=price, rate_source="service_default_rate"),
        late=late,
    )


def a_draft(*, company: CompanyState | None = None, issue: date = ISSUE) -> Draft:
    return Draft(
        invoice_id=invoice_id_for(TENANT, COMPANY, *JAN),
        company=company or a_company(),
        period_start=JAN[0],
        period_end=JAN[1],
        issue_date=issue,
    )


def untaxed(priced: list[PricedLine], currency: str = "GBP") -> TaxQuoted:
    """Tax-currency's answer when nothing is taxed (a withdrawn tax): each net as sent, no taxes."""
    zero = Decimal(0).scaleb(-MINOR_UNITS[currency])
    lines = [
        QuotedLine(line_id=p.line.line_id, net_amount=p.net_amount, taxes=[], tax_amount=zero, total=p.net_amount)
        for p in priced
    ]
    return TaxQuoted(
        request_id=uuid5(TENANT, "tax"),
        tenant_id=TENANT,
        invoice_id=invoice_id_for(TENANT, COMPANY, *JAN),
        currency=currency,
        tax_inclusive=False,
        lines=lines,
        tax_total=zero,
    )


def priced_of(charges: list[ChargeCreated], company: CompanyState) -> list[PricedLine]:
    lines = draft_lines(invoice_id_for(TENANT, COMPANY, *JAN), charges)
    return apply_discounts(converted(lines, {}, company.currency), [], company_id=COMPANY, currency=company.currency)


def invoice_of(charges: list[ChargeCreated], **draft: Any) -> Invoice:
    d = a_draft(**draft)
    priced = priced_of(charges, d.company)
    return build(d, number=NUMBER, priced=priced, tax=untaxed(priced, d.company.currency))


def money_fields(invoice: Invoice) -> list[Decimal]:
    totals = ["subtotal", "discount_total", "tax_total", "total", "credits_applied", "amount_paid", "amount_due"]
    per_line = ["amount", "discount_amount", "net_amount", "tax_amount", "total"]
    return [getattr(invoice, f) for f in totals] + [getattr(line, f) for line in invoice.lines for f in per_line]


def half_up(amount: Decimal, places: int) -> Decimal:
    """The oracle: Decimal's own ROUND_HALF_UP, independent of shared.money."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class TestInvoiceLines:
    def test_group_charges_of_one_service_and_unit_price_into_one_line(self) -> None:
        invoice = invoice_of([a_charge("12.50", quantity="1"), a_charge("25.00", unit_price="12.50", quantity="2")])

        [line] = invoice.lines
        assert line.service_ref == "managed-device"
        assert line.quantity == Decimal("3")
        assert line.unit_price == Decimal("12.50")
        assert line.amount == Decimal("37.50")

    def test_split_charges_of_one_service_at_different_unit_prices(self) -> None:
        invoice = invoice_of([a_charge("12.50"), a_charge("10.00"), a_charge("12.50")])

        assert sorted((line.unit_price, line.amount) for line in invoice.lines) == [
            (Decimal("10.00"), Decimal("10.00")),
            (Decimal("12.50"), Decimal("25.00")),
        ]

    def test_split_charges_of_different_services(self) -> None:
        invoice = invoice_of([a_charge("1.00", service_ref="backup"), a_charge("1.00", service_ref="managed-device")])

        assert [line.service_ref for line in invoice.lines] == ["backup", "managed-device"]

    @pytest.mark.parametrize(
        ("amounts", "currency", "line", "if_rounded_per_charge"),
        [
            (["0.005"] * 3, "GBP", "0.02", "0.03"),  # 0.015 -> 0.02
            (["0.005"] * 5, "GBP", "0.03", "0.05"),  # 0.025 -> 0.03 (half-even would give 0.02)
            (["0.004"] * 3, "GBP", "0.01", "0.00"),  # 0.012 -> 0.01
            (["0.3333"] * 3, "GBP", "1.00", "0.99"),  # 0.9999 -> 1.00
            (["0.5", "0.5", "0.5"], "JPY", "2", "3"),  # 1.5 -> 2
            (["2.5"], "JPY", "3", "3"),  # half-up, not half-even's 2
            (["0.0005"] * 3, "BHD", "0.002", "0.003"),  # 0.0015 -> 0.002
            (["1.2345"], "BHD", "1.235", "1.235"),
        ],
    )
    def test_round_the_lines_sum_half_up_once_not_each_charge(
        self, amounts: list[str], currency: str, line: str, if_rounded_per_charge: str
    ) -> None:
        charges = [a_charge(a, unit_price="0.001", currency=currency) for a in amounts]
        per_charge = sum(half_up(Decimal(a), MINOR_UNITS[currency]) for a in amounts)

        invoice = invoice_of(charges, company=a_company(currency=currency))

        assert [format(x.amount, "f") for x in invoice.lines] == [line]
        assert format(per_charge, "f") == if_rounded_per_charge

    def test_mark_a_line_with_late_usage_in_its_description(self) -> None:
        invoice = invoice_of([a_charge("1.00"), a_charge("1.00", late=True)])

        assert invoice.lines[0].description == "Managed device (late usage)"

    def test_carry_no_discount_or_tax_when_none_applies(self) -> None:
        [line] = invoice_of([a_charge("12.50")]).lines

        assert (line.discount_amount, line.tax_amount, line.taxes) == (Decimal("0.00"), Decimal("0.00"), [])
        assert line.net_amount == line.total == line.amount

    def test_cover_the_invoice_period(self) -> None:
        [line] = invoice_of([a_charge("12.50")]).lines

        assert (line.period_start, line.period_end) == JAN

    def test_are_the_same_whatever_order_the_charges_arrive_in(self) -> None:
        charges = [a_charge(a, service_ref=s) for a in ("1.005", "2.10", "0.333") for s in ("backup", "m365", "rmm")]
        shuffled = charges.copy()
        random.Random(7).shuffle(shuffled)

        assert invoice_of(shuffled) == invoice_of(charges)

    def test_have_distinct_ids_even_when_only_the_description_differs(self) -> None:
        invoice = invoice_of([a_charge("1.00", description="Managed device"), a_charge("1.00", description="RMM")])

        assert len(invoice.lines) == 2
        assert len({line.line_id for line in invoice.lines}) == 2


class TestInvoiceTotals:
    def test_equal_the_sums_of_the_lines(self) -> None:
        invoice = invoice_of(
            [a_charge("12.505"), a_charge("0.004", service_ref="backup"), a_charge("7.5", service_ref="m365")]
        )

        assert invoice.subtotal == sum(line.amount for line in invoice.lines) == Decimal("20.01")
        assert invoice.total == invoice.amount_due == invoice.subtotal
        assert (invoice.discount_total, invoice.tax_total) == (Decimal("0.00"), Decimal("0.00"))
        assert (invoice.credits_applied, invoice.amount_paid) == (Decimal("0.00"), Decimal("0.00"))

    def test_are_accepted_by_the_invoice_contract(self) -> None:
        invoice = invoice_of([a_charge("12.505"), a_charge("0.004", service_ref="backup")])

        assert Invoice.model_validate_json(invoice.model_dump_json()) == invoice

    def test_are_zero_for_a_period_without_charges(self) -> None:
        invoice = invoice_of([])

        assert invoice.lines == []
        assert format(invoice.total, "f") == "0.00"


class TestInvoiceHeader:
    @pytest.mark.parametrize(
        ("issue", "terms", "due"),
        [
            (date(2026, 2, 1), 30, date(2026, 3, 3)),
            (date(2026, 1, 31), 30, date(2026, 3, 2)),
            (date(2024, 2, 1), 30, date(2024, 3, 2)),  # leap year
            (date(2026, 12, 15), 30, date(2027, 1, 14)),
            (date(2026, 2, 1), 0, date(2026, 2, 1)),
        ],
    )
    def test_is_due_payment_terms_days_after_issue(self, issue: date, terms: int, due: date) -> None:
        invoice = invoice_of([a_charge("1.00")], company=a_company(payment_terms_days=terms), issue=issue)

        assert (invoice.issue_date, invoice.due_date) == (issue, due)

    def test_snapshots_the_customer_and_period(self) -> None:
        invoice = invoice_of([a_charge("1.00")], company=a_company(tax_id="GB123456789"))

        assert invoice.customer.name == "Acme Dental"
        assert invoice.customer.billing_email == "ap@acme.example"
        assert invoice.customer.region == "GB"
        assert invoice.customer.tax_id == "GB123456789"
        assert (invoice.period_start, invoice.period_end) == JAN

    def test_is_finalized_in_the_clients_currency_with_the_given_number(self) -> None:
        invoice = invoice_of([a_charge("1.00")])

        assert invoice.status is InvoiceStatus.FINALIZED
        assert invoice.currency == "GBP"
        assert invoice.invoice_number == NUMBER
        assert invoice.invoice_id == invoice_id_for(TENANT, COMPANY, *JAN)


class TestInvoiceId:
    def test_is_the_same_for_the_same_client_and_period(self) -> None:
        assert invoice_id_for(TENANT, COMPANY, *JAN) == invoice_id_for(TENANT, COMPANY, *JAN)

    def test_differs_per_period(self) -> None:
        feb = (date(2026, 2, 1), date(2026, 3, 1))

        assert invoice_id_for(TENANT, COMPANY, *JAN) != invoice_id_for(TENANT, COMPANY, *feb)


class TestInvoiceNumber:
    @pytest.mark.parametrize(
        ("issue", "sequence", "number"),
        [
            (date(2026, 2, 1), 1, "INV-2602-00001"),
            (date(2026, 2, 28), 42, "INV-2602-00042"),
            (date(2025, 12, 31), 99999, "INV-2512-99999"),
            (date(2026, 2, 1), 123456, "INV-2602-123456"),
            (date(2030, 1, 1), 1234567, "INV-3001-1234567"),
        ],
    )
    def test_is_inv_yymm_and_at_least_five_digits(self, issue: date, sequence: int, number: str) -> None:
        assert invoice_number(issue, sequence) == number

    @given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.integers(1, 10**9))
    def test_always_matches_the_invoice_contracts_pattern(self, issue: date, sequence: int) -> None:
        number = invoice_number(issue, sequence)

        accepted = Invoice.model_validate({**invoice_of([]).model_dump(), "invoice_number": number})

        assert number.startswith(f"INV-{issue:%y%m}-")
        assert int(number.rsplit("-", 1)[1]) == sequence
        assert accepted.invoice_number == number


class TestCannotInvoice:
    def test_charges_in_a_foreign_currency_without_a_conversion_quote(self) -> None:
        lines = draft_lines(invoice_id_for(TENANT, COMPANY, *JAN), [a_charge("1.00"), a_charge("2.00", currency="USD")])

        with pytest.raises(CannotInvoice, match=r"no conversion from USD to GBP was quoted"):
            converted(lines, {}, "GBP")

    @pytest.mark.parametrize("email", [None, ""])
    def test_a_client_without_a_billing_email(self, email: str | None) -> None:
        with pytest.raises(CannotInvoice, match=r"client 'acme' has no billing email"):
            invoice_of([a_charge("1.00")], company=a_company(billing_email=email))

    def test_is_known_before_a_number_is_spent(self) -> None:
        with pytest.raises(CannotInvoice):
            check(a_draft(company=a_company(billing_email=None)))

    def test_not_raised_for_a_valid_draft(self) -> None:
        check(a_draft())


amounts = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("100000"), places=6).map(lambda d: f"{d:f}")
charge_specs = st.lists(
    st.tuples(st.sampled_from(["backup", "m365", "rmm"]), st.sampled_from(["0.50", "1", "12.345"]), amounts),
    max_size=25,
)


class TestInvoiceRoundingProperties:
    @given(currency=st.sampled_from(sorted(MINOR_UNITS)), specs=charge_specs)
    def test_subtotal_is_the_sum_of_half_up_rounded_line_sums_at_the_currencys_minor_units(
        self, currency: str, specs: list[tuple[str, str, str]]
    ) -> None:
        charges = [a_charge(amount, service_ref=s, unit_price=p, currency=currency) for s, p, amount in specs]
        places = MINOR_UNITS[currency]
        line_sums: dict[tuple[str, Decimal], Decimal] = {}
        for s, p, amount in specs:
            line_sums[s, Decimal(p)] = line_sums.get((s, Decimal(p)), Decimal(0)) + Decimal(amount)

        invoice = invoice_of(charges, company=a_company(currency=currency))

        assert len(invoice.lines) == len(line_sums)
        assert {(x.service_ref, x.unit_price): x.amount for x in invoice.lines} == {
            key: half_up(total, places) for key, total in line_sums.items()
        }
        assert invoice.subtotal == sum(half_up(total, places) for total in line_sums.values())
        assert {-m.as_tuple().exponent for m in money_fields(invoice)} == {places}
        assert all(not (m.is_zero() and m.is_signed()) for m in money_fields(invoice))
