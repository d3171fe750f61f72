"""Exchange rates in force and conversion through the base currency (domain), with hand-worked numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.tax_currency.domain.fx import DERIVED_RATE_DIGITS, ExchangeRate, conversion, in_force
from services.tax_currency.domain.taxes import QuoteError
from shared.contracts.tax import FailureReason

D = Decimal


def row(code: str, rate: str, day: str, *, base: str = "GBP", recorded: int = 1) -> ExchangeRate:
    return ExchangeRate(
        uuid.uuid4(), code, base, D(rate), date.fromisoformat(day), "ECB", datetime(2026, 1, recorded, tzinfo=UTC)
    )


HISTORY = [row("USD", "1.20", "2026-01-15"), row("USD", "1.25", "2026-01-30"), row("USD", "1.40", "2026-02-02")]


def convert(a: str, b: str, rows: list[ExchangeRate], day: str = "2026-02-01"):  # type: ignore[no-untyped-def]
    return conversion(from_currency=a, to_currency=b, base="GBP", rows=rows, day=date.fromisoformat(day))


class TestConversionUsingCurrentExchangeRates:
    def test_the_rate_in_force_is_the_latest_on_or_before_the_invoice_date(self) -> None:
        assert in_force(HISTORY, currency="USD", base="GBP", day=date(2026, 2, 1)) == HISTORY[1]
        assert in_force(HISTORY, currency="USD", base="GBP", day=date(2026, 1, 30)) == HISTORY[1]
        assert in_force(HISTORY, currency="USD", base="GBP", day=date(2026, 1, 14)) is None

    def test_from_the_base_the_stored_rate_applies_exactly(self) -> None:
        quoted = convert("GBP", "USD", HISTORY)

        # 80.00 GBP x 1.25 = 100 USD
        assert (quoted.rate, quoted.rate_date, quoted.rows) == (D("1.25"), date(2026, 1, 30), (HISTORY[1],))
        assert quoted.apply(D("80.00")) == D(100)

    def test_to_the_base_the_inverse_rate_applies(self) -> None:
        quoted = convert("USD", "GBP", HISTORY)

        # 1 / 1.25 = 0.8; 12.3456 x 0.8 = 9.87648 (exact, not rounded: invoicing rounds the net)
        assert quoted.rate == D("0.8")
        assert quoted.apply(D("12.3456")) == D("9.87648")

    def test_an_inverse_that_does_not_terminate_is_rounded_to_15_significant_digits(self) -> None:
        quoted = convert("JPY", "GBP", [row("JPY", "190", "2026-01-30")])

        # 1 / 190 = 0.00526315789473684210… → 15 significant digits, half-up: 0.00526315789473684
        assert quoted.rate == D("0.00526315789473684")
        assert len(quoted.rate.as_tuple().digits) == DERIVED_RATE_DIGITS

    def test_between_two_other_currencies_the_cross_rate_goes_through_the_base_and_pins_both_rows(self) -> None:
        eur = row("EUR", "1.15", "2026-01-20")

        quoted = convert("USD", "EUR", [*HISTORY, eur])

        # 1.15 / 1.25 = 0.92; 100.00 USD x 0.92 = 92 EUR; the older leg's date (EUR, 01-20) is shown
        assert (quoted.rate, quoted.apply(D("100.00"))) == (D("0.92"), D(92))
        assert quoted.rows == (HISTORY[1], eur)
        assert quoted.rate_date == date(2026, 1, 20)

    def test_the_same_currency_is_the_identity_and_pins_nothing(self) -> None:
        quoted = convert("USD", "USD", [])

        assert (quoted.rate, quoted.rate_date, quoted.rows, quoted.apply(D("1.005"))) == (D(1), None, (), D("1.005"))

    def test_a_correction_recorded_later_for_the_same_date_wins(self) -> None:
        wrong, fixed = row("USD", "12.5", "2026-01-30", recorded=1), row("USD", "1.25", "2026-01-30", recorded=2)

        assert convert("GBP", "USD", [fixed, wrong]).rows == (fixed,)

    def test_rows_against_another_base_are_not_used(self) -> None:
        with pytest.raises(QuoteError):
            convert("GBP", "USD", [row("USD", "1.08", "2026-01-30", base="EUR")])

    def test_a_missing_rate_names_the_currency_and_the_date(self) -> None:
        with pytest.raises(QuoteError) as raised:
            convert("GBP", "CHF", HISTORY)

        assert raised.value.reason is FailureReason.MISSING_EXCHANGE_RATE
        assert "CHF" in raised.value.message
        assert "2026-02-01" in raised.value.message
        assert raised.value.field == "to_currency"
