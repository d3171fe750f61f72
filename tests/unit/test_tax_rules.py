"""Seed 000, Taxation Details Tests, at the domain: which rates apply, exemptions, exact amounts, law changes.

Every expected amount is worked out by hand in the test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from services.tax_currency.domain.taxes import (
    Exemption,
    LineInput,
    QuoteError,
    Region,
    TaxRate,
    exemption_for,
    quote_taxes,
    resolve,
)
from shared.contracts.tax import FailureReason

D = Decimal
RECORDED = datetime(2025, 1, 1, tzinfo=UTC)
CLIENT = uuid.UUID("11111111-1111-4111-8111-111111111111")


def rate(
    name: str = "VAT",
    pct: str = "20",
    *,
    country: str = "GB",
    sub: str | None = None,
    category: str | None = None,
    compound: bool = False,
    order: int = 0,
    valid_from: str = "2020-01-01",
    valid_to: str | None = None,
    withdrawn: bool = False,
    recorded_at: datetime = RECORDED,
) -> TaxRate:
    return TaxRate(
        tax_rate_id=uuid.uuid4(),
        country=country,
        subdivision=sub,
        tax_category=category,
        name=name,
        rate=D(pct),
        compound=compound,
        apply_order=order,
        valid_from=date.fromisoformat(valid_from),
        valid_to=date.fromisoformat(valid_to) if valid_to else None,
        withdrawn=withdrawn,
        recorded_at=recorded_at,
    )


def exemption(category: str | None = None, reason: str = "NGO certificate 2291", **kw: str) -> Exemption:
    return Exemption(
        exemption_id=uuid.uuid4(),
        company_id=CLIENT,
        tax_category=category,
        reason=reason,
        valid_from=date.fromisoformat(kw.get("valid_from", "2020-01-01")),
        valid_to=date.fromisoformat(kw["valid_to"]) if "valid_to" in kw else None,
    )


def quote(
    rates: list[TaxRate],
    *amounts: str,
    region: str = "GB",
    day: str = "2026-02-01",
    category: str | None = None,
    currency: str = "GBP",
    inclusive: bool = False,
    exemptions: tuple[Exemption, ...] = (),
    company: UUID | None = CLIENT,
):  # type: ignore[no-untyped-def]
    lines = [LineInput(uuid.uuid4(), D(a), category) for a in amounts]
    return quote_taxes(
        lines=lines,
        rates=rates,
        exemptions=list(exemptions),
        region=Region.parse(region),
        company_id=company,
        day=date.fromisoformat(day),
        code=currency,
        inclusive=inclusive,
    )


class TestCorrectRateByTheClientsRegion:
    def test_a_gb_client_pays_gb_vat_and_not_another_countrys(self) -> None:
        gb, de = rate("VAT", "20"), rate("MwSt", "19", country="DE")

        taxes = quote([gb, de], "100.00").lines[0].taxes

        assert [(t.name, t.rate, t.amount, t.tax_rate_id) for t in taxes] == [
            ("VAT", D("20"), D("20.00"), gb.tax_rate_id)
        ]

    def test_a_us_ny_client_pays_the_country_and_the_state_tax_that_both_apply(self) -> None:
        federal = rate("Federal levy", "1", country="US", order=0)
        state = rate("NY State Sales Tax", "4", country="US", sub="NY", order=1)
        texas = rate("TX State Sales Tax", "6.25", country="US", sub="TX", order=1)

        taxes = quote([federal, state, texas], "80.00", region="US-NY", currency="USD").lines[0].taxes

        # 80.00 x 1 % = 0.80; 80.00 x 4 % = 3.20; Texas' rate is not New York's
        assert [(t.name, t.amount) for t in taxes] == [("Federal levy", D("0.80")), ("NY State Sales Tax", D("3.20"))]

    def test_a_subdivision_rate_of_the_same_name_replaces_the_country_rate_there(self) -> None:
        mainland = rate("VAT", "21", country="ES")
        canaries = rate("VAT", "7", country="ES", sub="CN")

        taxes = quote([mainland, canaries], "100.00", region="ES-CN", currency="EUR").lines[0].taxes

        assert [(t.rate, t.amount) for t in taxes] == [(D("7"), D("7.00"))]

    def test_a_category_rate_replaces_the_general_rate_of_the_same_name_for_that_category(self) -> None:
        standard, reduced = rate("VAT", "20"), rate("VAT", "5", category="energy")

        general = quote([standard, reduced], "100.00", category=None).lines[0].taxes
        energy = quote([standard, reduced], "100.00", category="energy").lines[0].taxes
        other = quote([standard, reduced], "100.00", category="software").lines[0].taxes

        assert [t.amount for t in general] == [D("20.00")]
        assert [t.amount for t in energy] == [D("5.00")]
        assert [t.amount for t in other] == [D("20.00")]  # no own rate: the general one applies

    def test_a_region_without_any_rate_is_an_explicit_error_never_a_silent_zero(self) -> None:
        with pytest.raises(QuoteError) as raised:
            quote([rate(country="GB")], "100.00", region="FR", currency="EUR")

        assert raised.value.reason is FailureReason.MISSING_TAX_RATE
        assert "region FR" in raised.value.message
        assert "2026-02-01" in raised.value.message

    def test_a_withdrawn_tax_leaves_the_line_untaxed_without_an_error(self) -> None:
        rows = [rate("Sales tax", "5", country="US", sub="OR", valid_from="2020-01-01")]
        rows.append(rate("Sales tax", "0", country="US", sub="OR", valid_from="2025-01-01", withdrawn=True))

        line = quote(rows, "50.00", region="US-OR", currency="USD").lines[0]

        assert (line.taxes, line.tax_amount, line.total) == ((), D(0), D("50.00"))


class TestExemptionsForCertainClientsOrServices:
    def test_an_exempt_client_gets_each_tax_at_zero_with_the_reason_on_the_line(self) -> None:
        vat = rate("VAT", "20")

        line = quote([vat], "250.00", exemptions=(exemption(),)).lines[0]

        assert [(t.name, t.rate, t.amount, t.exemption_reason, t.tax_rate_id) for t in line.taxes] == [
            ("VAT", D(0), D("0.00"), "NGO certificate 2291", vat.tax_rate_id)
        ]
        assert line.total == D("250.00")

    def test_a_category_exemption_covers_only_that_categorys_lines(self) -> None:
        vat = rate("VAT", "20")
        ngo = (exemption(category="training", reason="Education exemption"),)

        training = quote([vat], "100.00", category="training", exemptions=ngo).lines[0]
        hosting = quote([vat], "100.00", category="hosting", exemptions=ngo).lines[0]

        assert [(t.amount, t.exemption_reason) for t in training.taxes] == [(D(0), "Education exemption")]
        assert [(t.amount, t.exemption_reason) for t in hosting.taxes] == [(D("20.00"), None)]

    def test_another_client_is_not_exempt(self) -> None:
        line = quote([rate()], "100.00", exemptions=(exemption(),), company=uuid.uuid4()).lines[0]

        assert line.tax_amount == D("20.00")

    def test_an_exemption_applies_only_within_its_dates(self) -> None:
        window = (exemption(valid_from="2026-01-01", valid_to="2026-03-01"),)

        before = quote([rate()], "10.00", day="2025-12-31", exemptions=window).lines[0]
        during = quote([rate()], "10.00", day="2026-02-28", exemptions=window).lines[0]
        after = quote([rate()], "10.00", day="2026-03-01", exemptions=window).lines[0]

        assert [before.tax_amount, during.tax_amount, after.tax_amount] == [D("2.00"), D(0), D("2.00")]

    def test_a_category_exemption_wins_over_a_whole_client_one_for_its_reason(self) -> None:
        whole, specific = exemption(reason="Charity"), exemption(category="training", reason="Education")

        chosen = exemption_for([whole, specific], company_id=CLIENT, category="training", day=date(2026, 1, 1))

        assert chosen == specific


class TestAccurateTaxOnInvoiceItems:
    def test_19_99_gbp_at_20_percent_vat_is_4_00(self) -> None:
        line = quote([rate("VAT", "20")], "19.99").lines[0]

        # 19.99 x 20 / 100 = 3.998 → half-up to 2 places = 4.00
        assert (line.net_amount, line.tax_amount, line.total) == (D("19.99"), D("4.00"), D("23.99"))

    def test_each_line_is_rounded_on_its_own_and_the_invoice_sums_its_lines(self) -> None:
        result = quote([rate("VAT", "20")], "0.03", "0.03", "0.03")

        # each 0.03 x 20 % = 0.006 → 0.01; three lines = 0.03 (not round(0.09 x 20 %) = 0.02)
        assert [line.tax_amount for line in result.lines] == [D("0.01")] * 3
        assert result.tax_total == D("0.03")

    def test_a_half_minor_unit_rounds_up(self) -> None:
        # 0.125 x ... : 2.50 x 5 % = 0.125 → 0.13 (half-up, not half-even's 0.12)
        assert quote([rate("VAT", "5")], "2.50").lines[0].tax_amount == D("0.13")

    def test_zero_decimal_currency_rounds_to_whole_yen(self) -> None:
        # 1999 x 10 % = 199.9 → 200
        assert quote([rate("JCT", "10", country="JP")], "1999", region="JP", currency="JPY").tax_total == D("200")

    def test_three_decimal_currency_rounds_to_fils(self) -> None:
        # 12.345 x 10 % = 1.2345 → 1.235 (half-up at the third place)
        assert quote([rate("VAT", "10", country="BH")], "12.345", region="BH", currency="BHD").tax_total == D("1.235")

    def test_a_compound_tax_is_charged_on_the_net_plus_the_taxes_before_it(self) -> None:
        gst = rate("GST", "5", country="CA", order=1)
        qst = rate("QST", "9.975", country="CA", sub="QC", compound=True, order=2)

        line = quote([qst, gst], "100.00", region="CA-QC", currency="CAD").lines[0]

        # GST 100.00 x 5 % = 5.00; QST (100.00 + 5.00) x 9.975 % = 10.473750 → 10.47
        assert [(t.name, t.amount, t.compound) for t in line.taxes] == [
            ("GST", D("5.00"), False),
            ("QST", D("10.47"), True),
        ]
        assert line.total == D("115.47")

    def test_an_inclusive_price_is_split_not_taxed_again(self) -> None:
        line = quote([rate("VAT", "20")], "120.00", inclusive=True).lines[0]

        # 120.00 contains 20 %: tax = 120.00 x 20/120 = 20.00, net = 100.00
        assert (line.net_amount, line.tax_amount, line.total) == (D("100.00"), D("20.00"), D("120.00"))

    def test_an_inclusive_split_that_does_not_divide_evenly_still_adds_up_to_the_gross(self) -> None:
        line = quote([rate("VAT", "20")], "9.99", inclusive=True).lines[0]

        # 9.99 x 20/120 = 1.665 → 1.67; net = 9.99 - 1.67 = 8.32; 8.32 + 1.67 = 9.99
        assert (line.net_amount, line.tax_amount, line.total) == (D("8.32"), D("1.67"), D("9.99"))

    def test_an_inclusive_compound_split_uses_the_compounded_share(self) -> None:
        gst = rate("GST", "5", country="CA", order=1)
        qst = rate("QST", "10", country="CA", compound=True, order=2)

        line = quote([gst, qst], "115.50", region="CA", currency="CAD", inclusive=True).lines[0]

        # per unit of net: GST 0.05, QST (1 + 0.05) x 0.10 = 0.105; F = 1.155
        # GST 115.50 x 0.05 / 1.155 = 5.00; QST 115.50 x 0.105 / 1.155 = 10.50; net 100.00
        assert [t.amount for t in line.taxes] == [D("5.00"), D("10.50")]
        assert line.net_amount == D("100.00")

    def test_an_unrounded_amount_is_refused_naming_the_line(self) -> None:
        with pytest.raises(QuoteError) as raised:
            quote([rate()], "10.005")

        assert raised.value.reason is FailureReason.INVALID_REQUEST
        assert raised.value.field == "lines.0.amount"

    def test_an_unknown_currency_is_refused(self) -> None:
        with pytest.raises(QuoteError) as raised:
            quote([rate()], "10.00", currency="XYZ")

        assert raised.value.reason is FailureReason.UNKNOWN_CURRENCY


class TestRatesCorrectlyUpdatedWhenTaxLawsChange:
    LAW = [rate("VAT", "17.5", valid_from="2008-12-01"), rate("VAT", "20", valid_from="2011-01-04")]

    def test_the_new_rate_applies_from_its_effective_date_and_the_old_one_before(self) -> None:
        # 100.00 x 17.5 % = 17.50 the day before; 100.00 x 20 % = 20.00 from the day of the change
        assert quote(self.LAW, "100.00", day="2011-01-03").tax_total == D("17.50")
        assert quote(self.LAW, "100.00", day="2011-01-04").tax_total == D("20.00")

    def test_an_old_invoice_date_recomputes_to_the_same_numbers_after_the_change(self) -> None:
        before = quote(self.LAW[:1], "100.00", day="2010-06-30")
        after = quote(self.LAW, "100.00", day="2010-06-30")

        assert before.lines[0].taxes == after.lines[0].taxes

    def test_a_temporary_category_rate_ends_on_its_valid_to_and_the_general_rate_returns(self) -> None:
        rows = [
            rate("VAT", "20"),
            rate("VAT", "5", category="hospitality", valid_from="2020-07-15", valid_to="2021-10-01"),
        ]

        during = quote(rows, "100.00", category="hospitality", day="2021-09-30").tax_total
        after = quote(rows, "100.00", category="hospitality", day="2021-10-01").tax_total

        assert (during, after) == (D("5.00"), D("20.00"))

    def test_a_rate_that_ended_with_no_successor_is_missing_not_zero(self) -> None:
        with pytest.raises(QuoteError) as raised:
            quote([rate("VAT", "20", valid_to="2026-01-01")], "100.00", day="2026-01-01")

        assert raised.value.reason is FailureReason.MISSING_TAX_RATE

    def test_a_correction_recorded_later_for_the_same_date_wins_for_new_quotes(self) -> None:
        wrong = rate("VAT", "2", valid_from="2026-01-01", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
        fixed = rate("VAT", "20", valid_from="2026-01-01", recorded_at=datetime(2026, 1, 2, tzinfo=UTC))

        chosen = resolve([fixed, wrong], region=Region.parse("GB"), category=None, day=date(2026, 1, 5))

        assert chosen == [fixed]

    def test_a_rate_not_yet_in_force_is_not_applied(self) -> None:
        with pytest.raises(QuoteError):
            quote([rate("VAT", "20", valid_from="2027-01-01")], "100.00", day="2026-12-31")


class TestRegions:
    @pytest.mark.parametrize(
        ("text", "country", "sub"), [("GB", "GB", None), ("US-NY", "US", "NY"), ("FR-75", "FR", "75")]
    )
    def test_parse_iso_3166(self, text: str, country: str, sub: str | None) -> None:
        assert Region.parse(text) == Region(country, sub)
        assert str(Region.parse(text)) == text

    @pytest.mark.parametrize("text", ["gb", "GBR", "US-", "US_NY", ""])
    def test_refuse_anything_else(self, text: str) -> None:
        with pytest.raises(ValueError, match="ISO 3166"):
            Region.parse(text)
