"""Spec for rating's pluggable pricing models: per_unit, graduated, volume, package, included quantities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.rating.domain import models
from services.rating.domain.line_pricing import LineTerms, line_terms, price_quantity
from services.rating.domain.models import Piece, UnknownPricingModel, total
from shared.contracts.catalog import (
    GraduatedPricing,
    PackagePricing,
    PerUnitPricing,
    PlanLine,
    ServiceState,
    Tier,
    VolumePricing,
)
from tests.unit.test_pricing import SERVICE, a_service

D = Decimal
TIERS = [
    Tier(up_to=D(10), unit_price=D("12.50")),
    Tier(up_to=D(50), unit_price=D("10.00")),
    Tier(up_to=None, unit_price=D("8.00")),
]
GRADUATED = GraduatedPricing(model="graduated", tiers=TIERS)
VOLUME = VolumePricing(model="volume", tiers=TIERS)
PACKAGE = PackagePricing(model="package", package_size=D(10), package_price=D("99.00"))


def amount(model: str, terms: Any, quantity: str) -> Decimal:
    return total(models.price(model, terms, D(quantity)))


class TestPerUnit:
    def test_prices_every_unit_at_its_price(self) -> None:
        assert amount("per_unit", PerUnitPricing(model="per_unit", unit_price=D("12.50")), "3") == D("37.50")  # 3x12.50


class TestGraduated:
    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            ("0", D("0")),
            ("4", D("50.00")),  # 4 x 12.50
            ("10", D("125.00")),  # 10 x 12.50 (up_to is inclusive)
            ("11", D("135.00")),  # 125 + 1 x 10
            ("50", D("525.00")),  # 125 + 40 x 10
            ("60", D("605.00")),  # 125 + 400 + 10 x 8
            ("10.5", D("130.00")),  # 125 + 0.5 x 10
        ],
    )
    def test_each_tier_prices_the_units_that_fall_into_it(self, quantity: str, expected: Decimal) -> None:
        assert amount("graduated", GRADUATED, quantity) == expected

    def test_pieces_name_their_tier_and_its_bounds(self) -> None:
        pieces = models.price("graduated", GRADUATED, D(60))
        assert [(p.tier, p.tier_from, p.tier_up_to, p.quantity, p.unit_price) for p in pieces] == [
            (0, D(0), D(10), D(10), D("12.50")),
            (1, D(10), D(50), D(40), D("10.00")),
            (2, D(50), None, D(10), D("8.00")),
        ]

    def test_a_tier_flat_fee_is_added_once_when_the_quantity_reaches_the_tier(self) -> None:
        tiers = [Tier(up_to=D(10), unit_price=D(1)), Tier(up_to=None, unit_price=D(2), flat_fee=D(5))]
        terms = GraduatedPricing(model="graduated", tiers=tiers)
        assert amount("graduated", terms, "10") == D(10)  # 10 x 1, second tier not reached
        assert amount("graduated", terms, "12") == D(19)  # 10 x 1 + 2 x 2 + 5


class TestVolume:
    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            ("4", D("50.00")),  # 4 x 12.50
            ("10", D("125.00")),  # 10 x 12.50
            ("11", D("110.00")),  # 11 x 10.00: the whole quantity at the tier containing 11
            ("60", D("480.00")),  # 60 x 8.00
        ],
    )
    def test_the_tier_containing_the_total_prices_every_unit(self, quantity: str, expected: Decimal) -> None:
        assert amount("volume", VOLUME, quantity) == expected

    def test_adds_the_flat_fee_of_the_tier_reached(self) -> None:
        tiers = [Tier(up_to=D(10), unit_price=D(3), flat_fee=D(1)), Tier(up_to=None, unit_price=D(2), flat_fee=D(7))]
        assert amount("volume", VolumePricing(model="volume", tiers=tiers), "20") == D(47)  # 20 x 2 + 7


class TestPackage:
    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [("1", D("99.00")), ("10", D("99.00")), ("10.01", D("198.00")), ("25", D("297.00"))],  # ceil(q/10) x 99
    )
    def test_sells_whole_packages_and_rounds_a_partial_one_up(self, quantity: str, expected: Decimal) -> None:
        assert amount("package", PACKAGE, quantity) == expected


class TestIncludedQuantity:
    def test_included_units_are_free_and_the_rest_is_priced_by_the_model(self) -> None:
        terms = LineTerms("graduated", GRADUATED, "plan_line_pricing")
        assert total(price_quantity(terms, D(15), included=D(5))) == D("125.00")  # 15 - 5 = 10 x 12.50
        assert total(price_quantity(terms, D(4), included=D(5))) == D(0)  # all included


class TestRegistry:
    def test_a_new_model_is_one_function_registering_itself_by_name(self) -> None:
        @models.register("capped_test")
        def capped(terms: dict[str, Decimal], quantity: Decimal) -> list[Piece]:
            return [Piece(min(quantity, terms["cap"]), terms["rate"])]

        try:
            assert "capped_test" in models.registered()
            assert amount("capped_test", {"cap": D(5), "rate": D(2)}, "9") == D(10)  # min(9, 5) x 2
        finally:
            models._REGISTRY.pop("capped_test")

    def test_an_unknown_model_is_refused_by_name(self) -> None:
        with pytest.raises(UnknownPricingModel, match="'nope'"):
            models.price("nope", None, D(1))


class TestLineTerms:
    def service(self) -> ServiceState:
        return a_service(default_rate="12.50")

    def test_a_line_without_terms_uses_the_service_default_rate(self) -> None:
        terms = line_terms(self.service(), PlanLine(service_id=SERVICE), date(2026, 1, 5))
        assert (terms.model, terms.flat_rate(), terms.rate_source) == ("per_unit", D("12.50"), "service_default_rate")

    def test_a_dated_price_names_its_effective_date(self) -> None:
        dated = {"effective_from": "2026-01-16", "pricing": GRADUATED.model_dump(mode="json")}
        line = PlanLine.model_validate({"service_id": str(SERVICE), "custom_rate": "10", "prices": [dated]})
        before = line_terms(self.service(), line, date(2026, 1, 15))
        after = line_terms(self.service(), line, date(2026, 1, 16))
        assert (before.model, before.rate_source) == ("per_unit", "plan_line_custom_rate")
        assert (after.model, after.rate_source) == ("graduated", "plan_line_pricing@2026-01-16")


# -- properties ----------------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[Tier]:
    bounds = sorted(set(draw(st.lists(st.integers(min_value=1, max_value=5000), min_size=0, max_size=4))))
    rates = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return [Tier(up_to=D(b), unit_price=r) for b, r in zip(bounds, rates, strict=False)] + [
        Tier(up_to=None, unit_price=rates[-1])
    ]


def tier_of(tiers: list[Tier], q: Decimal) -> Tier:
    return next(t for t in tiers if t.up_to is None or q <= t.up_to)


class TestProperties:
    @given(tiers=tier_lists(), q=quantities, extra=st.decimals(min_value=0, max_value=50, places=3))
    def test_graduated_is_continuous_each_extra_unit_costs_the_rate_of_its_tier(
        self, tiers: list[Tier], q: Decimal, extra: Decimal
    ) -> None:
        terms = GraduatedPricing(model="graduated", tiers=tiers)
        upper = tier_of(tiers, q + extra)
        assume(q > 0 and (tier_of(tiers, q) is upper))  # both ends inside one tier
        lower_bound = D(0) if tiers.index(upper) == 0 else tiers[tiers.index(upper) - 1].up_to
        assume(lower_bound is not None and q > lower_bound)
        assert (
            amount("graduated", terms, str(q + extra)) - amount("graduated", terms, str(q)) == extra * upper.unit_price
        )

    @given(tiers=tier_lists(), q=quantities)
    def test_volume_is_the_quantity_times_the_rate_of_the_tier_containing_it(
        self, tiers: list[Tier], q: Decimal
    ) -> None:
        assert amount("volume", VolumePricing(model="volume", tiers=tiers), str(q)) == q * tier_of(tiers, q).unit_price

    @given(tiers=tier_lists(), q=quantities)
    def test_graduated_and_volume_agree_inside_the_first_tier(self, tiers: list[Tier], q: Decimal) -> None:
        assume(tiers[0].up_to is None or q <= tiers[0].up_to)
        graduated = amount("graduated", GraduatedPricing(model="graduated", tiers=tiers), str(q))
        assert graduated == amount("volume", VolumePricing(model="volume", tiers=tiers), str(q))

    @given(tiers=tier_lists(), q=quantities)
    def test_graduated_pieces_cover_the_quantity_exactly(self, tiers: list[Tier], q: Decimal) -> None:
        pieces = models.price("graduated", GraduatedPricing(model="graduated", tiers=tiers), q)
        assert sum((p.quantity for p in pieces), D(0)) == q

    @given(size=st.integers(min_value=1, max_value=100), price=prices, q=quantities)
    def test_packages_always_cover_the_quantity_with_less_than_one_spare(
        self, size: int, price: Decimal, q: Decimal
    ) -> None:
        [piece] = models.price(
            "package", PackagePricing(model="package", package_size=D(size), package_price=price), q
        ) or [Piece(D(0), price)]
        assert piece.quantity * size >= q > (piece.quantity - 1) * size
