"""Spec for shared.money and shared.currencies: exact Decimal amounts, half-up rounding, exact allocation."""

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.currencies import CURRENCIES, Currency, UnknownCurrency, currency
from shared.money import (
    InvalidAllocation,
    InvalidAmount,
    MoneyError,
    UnroundedAmount,
    allocate_largest_remainder,
    parse_amount,
    round_half_up,
    to_wire,
)

# One currency for each number of minor units, so every property runs at 0, 2, 3 and 4 places.
CODES = ["JPY", "KRW", "USD", "EUR", "BHD", "KWD", "CLF"]
codes = st.sampled_from(CODES)
amounts = st.decimals(
    min_value=Decimal("-1000000"),
    max_value=Decimal("1000000"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)


def minor_unit(code: str) -> Decimal:
    return Decimal(1).scaleb(-currency(code).minor_units)


class TestCurrency:
    @pytest.mark.parametrize(
        ("code", "minor_units"),
        [
            ("USD", 2), ("EUR", 2), ("GBP", 2),
            ("JPY", 0), ("KRW", 0), ("CLP", 0), ("ISK", 0), ("VND", 0), ("XAF", 0), ("XOF", 0),
            ("BHD", 3), ("KWD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("LYD", 3), ("IQD", 3),
            ("CLF", 4), ("UYW", 4),
        ],
    )  # fmt: skip
    def test_knows_the_iso_4217_minor_units(self, code: str, minor_units: int) -> None:
        assert currency(code).minor_units == minor_units

    def test_returns_a_named_frozen_record(self) -> None:
        usd = currency("USD")

        assert usd == Currency("USD", "US Dollar", 2)
        with pytest.raises(AttributeError):
            usd.minor_units = 3  # type: ignore[misc]

    @pytest.mark.parametrize("code", ["usd", "US", "USDX", "", "XXX", "XAU", "HRK", "ZZZ"])
    def test_rejects_unknown_lowercase_and_unbillable_codes(self, code: str) -> None:
        with pytest.raises(UnknownCurrency, match="unknown currency code"):
            currency(code)

    def test_is_a_value_error(self) -> None:
        assert issubclass(UnknownCurrency, ValueError)

    def test_lists_only_three_letter_upper_case_codes_with_known_minor_units(self) -> None:
        assert len(CURRENCIES) > 150
        for code, entry in CURRENCIES.items():
            assert entry.code == code
            assert len(code) == 3
            assert code.isascii()
            assert code.isupper()
            assert entry.minor_units in {0, 2, 3, 4}
            assert entry.name


class TestParseAmount:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("12.50", Decimal("12.50")), ("0", Decimal("0")), ("-3.1", Decimal("-3.1")), ("007", Decimal("7"))],
    )
    def test_reads_a_plain_decimal_string_exactly(self, text: str, expected: Decimal) -> None:
        amount = parse_amount(text)

        assert amount == expected
        assert str(amount) == str(expected)  # the digits as sent, trailing zeros included

    def test_drops_the_sign_of_zero(self) -> None:
        assert str(parse_amount("-0.00")) == "0.00"

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (12.5, "must be a decimal string, got float"),
            (12, "must be a decimal string, got int"),
            (Decimal("12.5"), "must be a decimal string, got Decimal"),
            ("", "empty string"),
            ("NaN", "not a finite number"),
            ("-Infinity", "not a finite number"),
            ("inf", "not a finite number"),
            ("1e3", "exponent notation"),
            ("1.5E-2", "exponent notation"),
            (" 1.00", "not a plain decimal string"),
            ("+1", "not a plain decimal string"),
            ("1.", "not a plain decimal string"),
            (".5", "not a plain decimal string"),
            ("1,000.00", "not a plain decimal string"),
            ("١٢", "not a plain decimal string"),  # Arabic-Indic digits: Decimal() would accept them
        ],
    )
    def test_rejects_and_names_the_problem(self, value: object, problem: str) -> None:
        with pytest.raises(InvalidAmount, match=problem):
            parse_amount(value)  # type: ignore[arg-type]

    @settings(max_examples=200)
    @given(amount=amounts)
    def test_round_trips_any_plain_decimal(self, amount: Decimal) -> None:
        assert parse_amount(f"{amount:f}") == amount


class TestRoundHalfUp:
    @pytest.mark.parametrize(
        ("amount", "code", "expected"),
        [
            ("1.5", "USD", "1.50"),
            ("1.005", "USD", "1.01"),
            ("0.125", "USD", "0.13"),
            ("0.124999", "USD", "0.12"),
            ("2.5", "JPY", "3"),
            ("1.4", "JPY", "1"),
            ("1999.5", "KRW", "2000"),
            ("1.2345", "BHD", "1.235"),
            ("1.0005", "BHD", "1.001"),
            ("0.0004", "KWD", "0.000"),
            ("12.34565", "CLF", "12.3457"),
            ("7", "USD", "7.00"),
        ],
    )
    def test_rounds_to_the_currency_minor_units_with_ties_up(self, amount: str, code: str, expected: str) -> None:
        rounded = round_half_up(Decimal(amount), currency=code)

        assert str(rounded) == expected  # quantized: the exponent matches the currency too

    @pytest.mark.parametrize(
        ("amount", "code", "half_up", "half_even"),
        [("2.5", "JPY", "3", "2"), ("0.125", "USD", "0.13", "0.12"), ("1.0005", "BHD", "1.001", "1.000")],
    )
    def test_differs_from_pythons_default_half_even_on_ties(
        self, amount: str, code: str, half_up: str, half_even: str
    ) -> None:
        value = Decimal(amount)

        assert round_half_up(value, currency=code) == Decimal(half_up)
        assert value.quantize(minor_unit(code), rounding=ROUND_HALF_EVEN) == Decimal(half_even)

    @pytest.mark.parametrize(
        ("amount", "code", "expected"),
        [
            ("-2.5", "JPY", "-3"),
            ("-0.125", "USD", "-0.13"),
            ("-1.0005", "BHD", "-1.001"),
            ("-0.124", "USD", "-0.12"),
        ],
    )
    def test_rounds_negative_ties_away_from_zero(self, amount: str, code: str, expected: str) -> None:
        assert str(round_half_up(Decimal(amount), currency=code)) == expected

    def test_never_returns_negative_zero(self) -> None:
        assert str(round_half_up(Decimal("-0.001"), currency="USD")) == "0.00"

    @pytest.mark.parametrize("value", [1.5, 2, Decimal("NaN"), Decimal("Infinity")])
    def test_rejects_floats_ints_and_non_finite_values(self, value: object) -> None:
        with pytest.raises(InvalidAmount):
            round_half_up(value, currency="USD")  # type: ignore[arg-type]

    def test_rejects_an_unknown_currency(self) -> None:
        with pytest.raises(UnknownCurrency):
            round_half_up(Decimal("1"), currency="usd")

    def test_refuses_an_amount_too_long_to_round_exactly(self) -> None:
        with pytest.raises(InvalidAmount, match="significant digits"):
            round_half_up(Decimal("9" * 70), currency="USD")

    @settings(max_examples=200)
    @given(amount=amounts, code=codes)
    def test_is_idempotent(self, amount: Decimal, code: str) -> None:
        once = round_half_up(amount, currency=code)

        assert round_half_up(once, currency=code) == once

    @settings(max_examples=200)
    @given(amount=amounts, code=codes)
    def test_moves_the_amount_by_at_most_half_a_minor_unit(self, amount: Decimal, code: str) -> None:
        rounded = round_half_up(amount, currency=code)

        assert abs(rounded - amount) <= minor_unit(code) / 2
        assert rounded.as_tuple().exponent == -currency(code).minor_units

    @settings(max_examples=200)
    @given(amount=amounts, code=codes)
    def test_is_symmetric_around_zero(self, amount: Decimal, code: str) -> None:
        assert round_half_up(-amount, currency=code) == -round_half_up(amount, currency=code)


class TestToWire:
    @pytest.mark.parametrize(
        ("amount", "code", "wire"),
        [
            ("1.5", "USD", "1.50"),
            ("1.500", "USD", "1.50"),
            ("7", "USD", "7.00"),
            ("-3.1", "EUR", "-3.10"),
            ("2", "JPY", "2"),
            ("2.000", "JPY", "2"),
            ("1E+3", "JPY", "1000"),
            ("1.235", "BHD", "1.235"),
            ("1.2", "KWD", "1.200"),
            ("-0.00", "USD", "0.00"),
        ],
    )
    def test_writes_exactly_the_currency_minor_unit_digits(self, amount: str, code: str, wire: str) -> None:
        assert to_wire(Decimal(amount), currency=code) == wire

    @pytest.mark.parametrize(("amount", "code"), [("1.005", "USD"), ("2.5", "JPY"), ("1.0005", "BHD")])
    def test_refuses_an_amount_that_was_not_rounded(self, amount: str, code: str) -> None:
        with pytest.raises(UnroundedAmount, match="decimal places"):
            to_wire(Decimal(amount), currency=code)

    @settings(max_examples=200)
    @given(amount=amounts, code=codes)
    def test_round_trips_through_parse_amount_after_rounding(self, amount: Decimal, code: str) -> None:
        rounded = round_half_up(amount, currency=code)

        wire = to_wire(rounded, currency=code)

        assert parse_amount(wire) == rounded
        digits_after_point = len(wire.partition(".")[2])
        assert digits_after_point == currency(code).minor_units


class TestAllocateLargestRemainder:
    def test_gives_the_leftover_units_to_the_largest_remainders(self) -> None:
        parts = allocate_largest_remainder(Decimal("100.00"), [Decimal(1), Decimal(1), Decimal(1)], currency="USD")

        assert parts == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]

    def test_breaks_remainder_ties_by_earlier_index(self) -> None:
        parts = allocate_largest_remainder(Decimal("0.02"), [Decimal(1)] * 3, currency="USD")

        assert parts == [Decimal("0.01"), Decimal("0.01"), Decimal("0.00")]

    def test_prefers_a_larger_remainder_over_an_earlier_index(self) -> None:
        # Exact shares 3.3, 3.3, 3.4 JPY: the one leftover yen goes to the third part.
        parts = allocate_largest_remainder(Decimal("10"), [Decimal("33"), Decimal("33"), Decimal("34")], currency="JPY")

        assert parts == [Decimal(3), Decimal(3), Decimal(4)]

    def test_returns_parts_quantized_to_the_currency(self) -> None:
        parts = allocate_largest_remainder(Decimal("1.000"), [Decimal(1), Decimal(3)], currency="BHD")

        assert [str(p) for p in parts] == ["0.250", "0.750"]

    def test_splits_a_negative_total_as_the_mirror_of_the_positive_one(self) -> None:
        weights = [Decimal(1), Decimal(1), Decimal(1)]

        parts = allocate_largest_remainder(Decimal("-100.00"), weights, currency="USD")

        assert parts == [Decimal("-33.34"), Decimal("-33.33"), Decimal("-33.33")]

    def test_gives_nothing_to_a_zero_weight(self) -> None:
        parts = allocate_largest_remainder(Decimal("5"), [Decimal(0), Decimal(2)], currency="JPY")

        assert parts == [Decimal(0), Decimal(5)]

    @pytest.mark.parametrize("weights", [[], [Decimal(0)], [Decimal(0), Decimal(0)]])
    def test_rejects_weights_that_sum_to_zero(self, weights: list[Decimal]) -> None:
        with pytest.raises(ValueError, match="sum to zero"):
            allocate_largest_remainder(Decimal("1.00"), weights, currency="USD")

    def test_rejects_a_negative_weight(self) -> None:
        with pytest.raises(InvalidAllocation, match="negative"):
            allocate_largest_remainder(Decimal("1.00"), [Decimal(2), Decimal(-1)], currency="USD")

    def test_rejects_a_total_that_was_not_rounded(self) -> None:
        with pytest.raises(UnroundedAmount):
            allocate_largest_remainder(Decimal("1.005"), [Decimal(1)], currency="USD")

    def test_raises_only_money_errors(self) -> None:
        assert issubclass(InvalidAllocation, MoneyError)
        assert issubclass(UnroundedAmount, MoneyError)
        assert issubclass(InvalidAmount, MoneyError)
        assert issubclass(MoneyError, ValueError)

    @settings(max_examples=200)
    @given(
        raw_total=amounts,
        code=codes,
        weights=st.lists(st.decimals(min_value=0, max_value=1000, places=3), min_size=1, max_size=12).filter(
            lambda ws: sum(ws) > 0
        ),
    )
    def test_parts_sum_exactly_and_stay_within_one_unit_of_the_exact_share(
        self, raw_total: Decimal, code: str, weights: list[Decimal]
    ) -> None:
        total = round_half_up(raw_total, currency=code)
        unit = minor_unit(code)

        parts = allocate_largest_remainder(total, weights, currency=code)

        assert len(parts) == len(weights)
        assert sum(parts) == total
        weight_sum = sum(Fraction(w) for w in weights)
        for part, weight in zip(parts, weights, strict=True):
            assert part % unit == 0
            assert part.as_tuple().exponent == unit.as_tuple().exponent
            exact_share = Fraction(total) * Fraction(weight) / weight_sum
            assert abs(Fraction(part) - exact_share) < Fraction(unit)
        assert allocate_largest_remainder(-total, weights, currency=code) == [-p for p in parts]
