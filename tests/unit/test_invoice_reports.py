"""Invoicing's reports, pure: grouping billed amounts, per-invoice conversion to the base currency, aging."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.reports import (
    GroupBy,
    IssuedInvoice,
    Names,
    NoPinnedRate,
    PinnedRate,
    ReportLine,
    aging,
    billed,
    bucket_of,
    currency_totals,
    in_base,
)
from shared.reports import to_csv

D = Decimal
ACME, BISTRO = uuid.uuid4(), uuid.uuid4()
USAGE_PLAN, BUCKET_PLAN = uuid.uuid4(), uuid.uuid4()
DEVICE, ONSITE = uuid.uuid4(), uuid.uuid4()
ENDPOINTS = uuid.uuid4()
NAMES = Names(
    plan_types={USAGE_PLAN: "usage-based", BUCKET_PLAN: "bucket"},
    service_names={DEVICE: "Managed device", ONSITE: "Onsite"},
    service_categories={DEVICE: ENDPOINTS, ONSITE: None},
    category_names={ENDPOINTS: "Managed endpoints"},
)


def line(amount: str, discount: str, tax: str, *, plan: uuid.UUID | None, service: uuid.UUID | None) -> ReportLine:
    net = D(amount) - D(discount)
    refs = {DEVICE: "managed-device", ONSITE: "onsite"}
    return ReportLine(
        plan_id=plan,
        service_id=service,
        service_ref=refs.get(service) if service else None,
        amount=D(amount),
        discount=D(discount),
        net=net,
        tax=D(tax),
        total=net + D(tax),
    )


def invoice(
    company: uuid.UUID,
    currency: str,
    total: str,
    *,
    lines: list[ReportLine] | None = None,
    rates: list[PinnedRate] | None = None,
    due: date = date(2026, 3, 3),
    issued: date = date(2026, 2, 1),
    paid: str = "0",
    credits: str = "0",
    status: str = "finalized",
    period: tuple[date, date] = (date(2026, 1, 1), date(2026, 2, 1)),
) -> IssuedInvoice:
    return IssuedInvoice(
        invoice_id=uuid.uuid4(),
        invoice_number=None,
        company_id=company,
        company_name="Acme Dental" if company == ACME else "Bistro Ltd",
        status=status,
        currency=currency,
        period_start=period[0],
        period_end=period[1],
        issue_date=issued,
        due_date=due,
        total=D(total),
        amount_paid=D(paid),
        credits_applied=D(credits),
        lines=lines or [],
        rates=rates or [],
    )


def acme_january() -> IssuedInvoice:
    # usage 50.00 - 10 % = 45.00 + VAT 9.00; bucket overage 220.00 + VAT 44.00; total 318.00
    return invoice(
        ACME,
        "GBP",
        "318.00",
        lines=[
            line("50.00", "5.00", "9.00", plan=USAGE_PLAN, service=DEVICE),
            line("220.00", "0.00", "44.00", plan=BUCKET_PLAN, service=ONSITE),
        ],
    )


def bistro_january() -> IssuedInvoice:
    # 7 x 12.50 = 87.50 GBP x 1.17 = 102.375 -> 102.38 EUR; net 92.14 (10 % off, exact then rounded); VAT 18.43
    return invoice(
        BISTRO,
        "EUR",
        "110.57",
        lines=[line("102.38", "10.24", "18.43", plan=USAGE_PLAN, service=DEVICE)],
        rates=[PinnedRate("EUR", "GBP", D("1.17"))],
    )


def adjusted() -> IssuedInvoice:
    return invoice(ACME, "GBP", "-12.00", lines=[line("-10.00", "0.00", "-2.00", plan=None, service=None)])


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(r["key"], r["currency"], r["amount"], r["discounts"], r["net"], r["tax"], r["total"]) for r in rows]


class TestBilledAmounts:
    def test_by_plan_type_one_row_per_type_and_currency_and_adjustments_have_no_plan(self) -> None:
        rows = billed([acme_january(), bistro_january(), adjusted()], GroupBy.PLAN_TYPE, NAMES)

        assert summary(rows) == [
            ("bucket", "GBP", "220.00", "0.00", "220.00", "44.00", "264.00"),
            ("none", "GBP", "-10.00", "0.00", "-10.00", "-2.00", "-12.00"),
            ("usage-based", "EUR", "102.38", "10.24", "92.14", "18.43", "110.57"),
            ("usage-based", "GBP", "50.00", "5.00", "45.00", "9.00", "54.00"),
        ]
        assert [r["label"] for r in rows][1] == "No plan (billing adjustments)"

    def test_by_service_category_labels_by_category_name_and_keeps_uncategorized_apart(self) -> None:
        rows = billed([acme_january(), bistro_january()], GroupBy.SERVICE_CATEGORY, NAMES)

        assert [(r["key"], r["label"], r["currency"], r["total"]) for r in rows] == [
            (str(ENDPOINTS), "Managed endpoints", "EUR", "110.57"),
            (str(ENDPOINTS), "Managed endpoints", "GBP", "54.00"),
            ("uncategorized", "Uncategorized", "GBP", "264.00"),
        ]

    def test_by_service_keys_by_code_and_labels_by_name(self) -> None:
        rows = billed([acme_january(), acme_january()], GroupBy.SERVICE, NAMES)

        # two invoices: 2 x 54.00 and 2 x 264.00
        assert [(r["key"], r["label"], r["total"], r["invoices"]) for r in rows] == [
            ("managed-device", "Managed device", "108.00", 2),
            ("onsite", "Onsite", "528.00", 2),
        ]

    def test_by_client_sums_to_the_invoice_totals(self) -> None:
        rows = billed([acme_january(), bistro_january()], GroupBy.CLIENT, NAMES)

        by_client = {r["label"]: (r["currency"], r["amount"], r["discounts"], r["tax"], r["total"]) for r in rows}
        assert by_client == {
            "Acme Dental": ("GBP", "270.00", "5.00", "53.00", "318.00"),  # 50 + 220; 9 + 44
            "Bistro Ltd": ("EUR", "102.38", "10.24", "18.43", "110.57"),
        }

    def test_by_period_keys_by_the_iso_interval(self) -> None:
        february = invoice(
            ACME,
            "GBP",
            "60.00",
            lines=[line("50.00", "0.00", "10.00", plan=USAGE_PLAN, service=DEVICE)],
            period=(date(2026, 2, 1), date(2026, 3, 1)),
        )
        rows = billed([acme_january(), february], GroupBy.PERIOD, NAMES)

        assert [(r["key"], r["total"]) for r in rows] == [
            ("2026-01-01/2026-02-01", "318.00"),
            ("2026-02-01/2026-03-01", "60.00"),
        ]

    def test_a_plan_invoicing_has_not_heard_of_is_unknown_not_dropped(self) -> None:
        stray = invoice(ACME, "GBP", "12.00", lines=[line("10.00", "0.00", "2.00", plan=uuid.uuid4(), service=DEVICE)])

        assert summary(billed([stray], GroupBy.PLAN_TYPE, NAMES)) == [
            ("unknown", "GBP", "10.00", "0.00", "10.00", "2.00", "12.00")
        ]


class TestConversionToTheBaseCurrency:
    def test_each_invoice_is_converted_with_its_own_pinned_rate_and_rounded_half_up(self) -> None:
        # 110.57 EUR / 1.17 = 94.504273... -> 94.50 GBP
        assert in_base(bistro_january(), "GBP") == D("94.50")

    def test_half_a_penny_rounds_up(self) -> None:
        # 10.05 / 2 = 5.025 -> 5.03
        half = invoice(BISTRO, "EUR", "10.05", rates=[PinnedRate("EUR", "GBP", D("2"))])
        assert in_base(half, "GBP") == D("5.03")

    def test_rounding_is_per_invoice_then_summed_not_on_the_sum(self) -> None:
        # each: 10.01 / 2 = 5.005 -> 5.01; two of them 10.02 (rounding the sum 20.02 / 2 = 10.01 would differ)
        two = [invoice(BISTRO, "EUR", "10.01", rates=[PinnedRate("EUR", "GBP", D("2"))]) for _ in range(2)]

        totals = currency_totals(two, "GBP")

        assert totals["rows"] == [
            {"currency": "EUR", "invoices": 2, "total": "20.02", "total_in_base": "10.02", "unconverted": 0}
        ]
        assert totals["total_in_base"] == "10.02"

    def test_different_rates_on_different_invoices_each_count(self) -> None:
        # 117.00 / 1.17 = 100.00; 120.00 / 1.20 = 100.00
        a = invoice(BISTRO, "EUR", "117.00", rates=[PinnedRate("EUR", "GBP", D("1.17"))])
        b = invoice(BISTRO, "EUR", "120.00", rates=[PinnedRate("EUR", "GBP", D("1.20"))])
        assert currency_totals([a, b], "GBP")["rows"][0]["total_in_base"] == "200.00"

    def test_a_two_currency_tenant_totals_per_currency_and_in_base(self) -> None:
        totals = currency_totals([acme_january(), bistro_january()], "GBP")

        assert totals == {
            "base_currency": "GBP",
            "rows": [
                {"currency": "EUR", "invoices": 1, "total": "110.57", "total_in_base": "94.50", "unconverted": 0},
                {"currency": "GBP", "invoices": 1, "total": "318.00", "total_in_base": "318.00", "unconverted": 0},
            ],
            "total_in_base": "412.50",  # 318.00 + 94.50
        }

    def test_an_invoice_without_a_pinned_rate_is_counted_unconverted_never_guessed(self) -> None:
        bare = invoice(BISTRO, "EUR", "50.00")
        with pytest.raises(NoPinnedRate):
            in_base(bare, "GBP")
        assert currency_totals([bare], "GBP")["rows"][0] | {"total": "-"} == {
            "currency": "EUR",
            "invoices": 1,
            "total": "-",
            "total_in_base": "0.00",
            "unconverted": 1,
        }

    def test_a_rate_against_another_base_is_not_used(self) -> None:
        other = invoice(BISTRO, "EUR", "50.00", rates=[PinnedRate("EUR", "USD", D("0.9"))])
        with pytest.raises(NoPinnedRate):
            in_base(other, "GBP")

    def test_yen_rounds_to_whole_units(self) -> None:
        # base JPY: 10.00 GBP at 190.555 JPY per GBP is not how rows read; a GBP invoice in a JPY tenant:
        # row GBP per 1 JPY = 0.0052 -> 10.00 / 0.0052 = 1923.0769... -> 1923
        gbp = invoice(ACME, "GBP", "10.00", rates=[PinnedRate("GBP", "JPY", D("0.0052"))])
        assert in_base(gbp, "JPY") == D("1923")

    @given(
        totals=st.lists(st.decimals(min_value=0, max_value=100000, places=2), min_size=1, max_size=8),
        rate=st.decimals(min_value=D("0.1"), max_value=D("10"), places=4),
    )
    def test_the_base_total_is_the_sum_of_per_invoice_amounts_each_within_half_a_penny(
        self, totals: list[Decimal], rate: Decimal
    ) -> None:
        invoices = [invoice(BISTRO, "EUR", str(t), rates=[PinnedRate("EUR", "GBP", rate)]) for t in totals]
        converted = [in_base(i, "GBP") for i in invoices]
        for t, c in zip(totals, converted, strict=True):
            assert abs(c - t / rate) <= D("0.005")
            assert c == c.quantize(D("0.01"))
        assert D(currency_totals(invoices, "GBP")["total_in_base"]) == sum(converted)


class TestAging:
    @pytest.mark.parametrize(
        ("days", "bucket"),
        [
            (-5, "current"),
            (0, "current"),
            (1, "1_30"),
            (30, "1_30"),
            (31, "31_60"),
            (60, "31_60"),
            (61, "61_90"),
            (90, "61_90"),
            (91, "over_90"),
            (400, "over_90"),
        ],
    )
    def test_bucket_boundaries(self, days: int, bucket: str) -> None:
        assert bucket_of(days) == bucket
        due = date(2026, 3, 3)
        report = aging([invoice(ACME, "GBP", "100.00", due=due)], due + timedelta(days=days))
        [row] = report["rows"]
        assert row[bucket] == "100.00"
        assert sum(D(row[b]) for b in ("current", "1_30", "31_60", "61_90", "over_90")) == D("100.00")

    def test_outstanding_is_total_less_paid_less_credits_applied_per_client_and_currency(self) -> None:
        as_of = date(2026, 3, 20)
        invoices = [
            # Acme: 318.00 - 100.00 paid = 218.00, due 3 March: 17 days -> 1_30
            invoice(ACME, "GBP", "318.00", paid="100.00", due=date(2026, 3, 3)),
            # Acme: 60.00 - 15.00 credit = 45.00, due 20 March: 0 days -> current
            invoice(ACME, "GBP", "60.00", credits="15.00", due=date(2026, 3, 20)),
            # Bistro: 110.57 EUR due 15 Feb: 33 days -> 31_60
            invoice(BISTRO, "EUR", "110.57", due=date(2026, 2, 15)),
            # paid in full, void, issued after as_of: not receivable
            invoice(ACME, "GBP", "70.00", paid="70.00", status="paid"),
            invoice(ACME, "GBP", "80.00", status="void"),
            invoice(ACME, "GBP", "90.00", issued=date(2026, 3, 21), due=date(2026, 4, 20)),
        ]

        report = aging(invoices, as_of)

        cells = [
            (r["company_name"], r["currency"], r["current"], r["1_30"], r["31_60"], r["total"]) for r in report["rows"]
        ]
        assert cells == [
            ("Acme Dental", "GBP", "45.00", "218.00", "0.00", "263.00"),
            ("Bistro Ltd", "EUR", "0.00", "0.00", "110.57", "110.57"),
        ]
        assert [(t["company_name"], t["currency"], t["total"], t["invoices"]) for t in report["totals"]] == [
            ("Total", "EUR", "110.57", 1),
            ("Total", "GBP", "263.00", 2),  # 45.00 + 218.00
        ]

    def test_csv_has_a_header_and_the_same_columns(self) -> None:
        report = aging([invoice(ACME, "GBP", "10.00")], date(2026, 3, 3))
        columns = ("company_id", "company_name", "currency", "current", "1_30", "31_60", "61_90", "over_90", "total")

        text = to_csv([*report["rows"], *report["totals"]], columns)

        assert text.splitlines() == [
            ",".join(columns),
            f"{ACME},Acme Dental,GBP,10.00,0.00,0.00,0.00,0.00,10.00",
            ",Total,GBP,10.00,0.00,0.00,0.00,0.00,10.00",
        ]


class TestCsvCells:
    def test_null_is_empty_decimals_keep_their_digits_and_nested_values_are_compact_json(self) -> None:
        rows = [{"a": None, "b": D("1.50"), "c": {"x": D("2.00"), "y": [1]}, "d": True, "e": "x,y"}]

        assert to_csv(rows, ("a", "b", "c", "d", "e", "missing")).splitlines() == [
            "a,b,c,d,e,missing",
            ',1.50,"{""x"":""2.00"",""y"":[1]}",true,"x,y",',
        ]

    def test_a_name_a_spreadsheet_would_run_as_a_formula_is_made_inert_and_amounts_are_untouched(self) -> None:
        rows = [
            {"label": '=HYPERLINK("http://evil.example","x")', "amount": "-5.00", "net": D("-5.00")},
            {"label": "@SUM(A1:A9)", "amount": "+3", "net": D("0")},
            {"label": "-Acme", "amount": "12.50", "net": D("1")},
        ]

        assert to_csv(rows, ("label", "amount", "net")).splitlines() == [
            "label,amount,net",
            '"\'=HYPERLINK(""http://evil.example"",""x"")",-5.00,-5.00',
            "'@SUM(A1:A9),+3,0",
            "'-Acme,12.50,1",
        ]
