"""Spec for the remainder rule: a prorated fixed fee's amount is fixed at the invoice line, after conversion."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.proration import piece
from shared.money import round_half_up
from shared.periods import BillingFrequency, period_containing

D = Decimal


class TestPiece:
    @pytest.mark.parametrize(
        ("first", "end", "days", "expected"),
        [
            # Jan (31 days) from the 15th: C(31) - C(14) = 100 - round(100 x 14/31 = 45.161..) = 54.84
            (14, 31, 31, D("54.84")),
            # the first 14 days: C(14) - C(0) = 45.16; with the piece above, 45.16 + 54.84 = 100.00
            (0, 14, 31, D("45.16")),
            # February 2026 (28 days), last 7 days: 100 - round(100 x 21/28 = 75) = 25.00
            (21, 28, 28, D("25.00")),
            # leap February 2028 (29 days), last 7 days: 100 - round(100 x 22/29 = 75.862..) = 24.14
            (22, 29, 29, D("24.14")),
        ],
    )
    def test_a_piece_is_the_difference_of_cumulative_rounded_amounts(
        self, first: int, end: int, days: int, expected: Decimal
    ) -> None:
        assert piece(D(100), first=first, end=end, days=days, currency="GBP") == expected

    def test_a_plan_change_on_the_15th_splits_the_month_into_pieces_summing_to_the_full_price(self) -> None:
        # 99.99 over Jan 1-15 (14 days) then Jan 15-Feb 1 (17 days): C(14) = round(99.99 x 14/31 = 45.157..) = 45.16
        first = piece(D("99.99"), first=0, end=14, days=31, currency="GBP")
        second = piece(D("99.99"), first=14, end=31, days=31, currency="GBP")
        assert (first, second) == (D("45.16"), D("54.83"))  # 99.99 - 45.16
        assert first + second == D("99.99")

    def test_yen_rounds_to_whole_units(self) -> None:
        # 1000 JPY, 10 of 31 days: round(1000 x 10/31 = 322.58) = 323
        assert piece(D(1000), first=0, end=10, days=31, currency="JPY") == D(323)

    def test_a_whole_cycle_split_anywhere_sums_to_the_converted_price_rounded_once(self) -> None:
        # 99.99 GBP at 1.16 EUR = 115.9884 EUR: a whole cycle's line is 115.99; its two pieces sum to that
        converted = D("99.99") * D("1.16")
        first = piece(converted, first=0, end=14, days=31, currency="EUR")  # round(52.38...) = 52.38
        second = piece(converted, first=14, end=31, days=31, currency="EUR")  # 115.99 - 52.38 = 63.61
        assert (first, second) == (D("52.38"), D("63.61"))

    def test_rounding_after_conversion_keeps_the_converted_price(self) -> None:
        # 400 USD for 28 of 30 days at 1,500 NGN per USD: the converted price is 600,000.00 NGN; the piece is
        # 600,000 - round(600,000 x 2/30 = 40,000) = 560,000.00. Rounding in USD first (373.33) gave 559,995.00.
        assert piece(D(400) * 1500, first=2, end=30, days=30, currency="NGN") == D("560000.00")
        assert D("373.33") * 1500 == D("559995.00")

    def test_days_outside_the_cycle_are_refused(self) -> None:
        with pytest.raises(ValueError, match="not inside"):
            piece(D(100), first=10, end=32, days=31, currency="GBP")


frequencies = st.sampled_from(list(BillingFrequency))
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
prices = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=D("0.0001"), max_value=10_000, places=4, allow_nan=False, allow_infinity=False)


class TestProperties:
    @given(
        frequency=frequencies,
        anchor=days,
        day=days,
        price=prices,
        rate=rates,
        cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=6),
    )
    def test_prorated_pieces_of_a_cycle_sum_exactly_to_its_converted_price_rounded(
        self, frequency: BillingFrequency, anchor: date, day: date, price: Decimal, rate: Decimal, cuts: list[int]
    ) -> None:
        cycle = period_containing(day, frequency=frequency, anchor=anchor)
        inner = sorted({c for c in cuts if c < cycle.days})
        edges = [0, *inner, cycle.days]
        converted = price * rate
        pieces = [
            piece(converted, first=a, end=b, days=cycle.days, currency="GBP") for a, b in itertools.pairwise(edges)
        ]
        assert sum(pieces, D(0)) == round_half_up(converted, currency="GBP")
        assert all(p >= 0 for p in pieces)
