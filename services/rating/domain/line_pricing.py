"""Which model and terms price a plan line on a day, and the priced pieces of a quantity on it. Pure.

The line's price in force on the day (`price_on`: its effective-dated ``prices``, else its own terms) is
one of: a ``pricing`` model (per_unit, graduated, volume, package — or any registered model), a flat
``custom_rate`` (priced as per_unit), or neither, when the service's ``default_rate`` applies (per_unit).
``included_quantity`` units of each period are free: the model prices ``max(0, quantity - included)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from services.rating.domain import models
from shared.contracts.catalog import LinePrice, PerUnitPricing, PlanLine, PriceTerms, ServiceState, price_on


@dataclass(frozen=True, slots=True)
class LineTerms:
    """The rule that prices a line on a day, named so a charge can say where its price came from."""

    model: str
    terms: Any
    rate_source: str  # plan_line_pricing[@date], plan_line_custom_rate[@date], service_default_rate

    @property
    def per_record(self) -> bool:
        """A per_unit price needs no other record of the period, so each record is charged as it comes."""
        return self.model == "per_unit"

    def flat_rate(self) -> Decimal:
        assert isinstance(self.terms, PerUnitPricing)
        return self.terms.unit_price


def line_terms(service: ServiceState, line: PlanLine | None, day: date) -> LineTerms:
    if line is None:
        return LineTerms(
            "per_unit", PerUnitPricing(model="per_unit", unit_price=service.default_rate), "service_default_rate"
        )
    terms: PriceTerms = price_on(line, day)
    suffix = f"@{terms.effective_from.isoformat()}" if isinstance(terms, LinePrice) else ""
    if terms.pricing is not None:
        source = "plan_line_per_unit_price" if terms.pricing.model == "per_unit" else "plan_line_pricing"
        return LineTerms(terms.pricing.model, terms.pricing, source + suffix)
    if terms.custom_rate is not None:
        return LineTerms(
            "per_unit", PerUnitPricing(model="per_unit", unit_price=terms.custom_rate), "plan_line_custom_rate" + suffix
        )
    return LineTerms(
        "per_unit", PerUnitPricing(model="per_unit", unit_price=service.default_rate), "service_default_rate"
    )


def billable_after_included(quantity: Decimal, included: Decimal) -> Decimal:
    """Included units are used first; only what is beyond them is priced."""
    return max(Decimal(0), quantity - included)


def price_quantity(terms: LineTerms, quantity: Decimal, *, included: Decimal = Decimal(0)) -> list[models.Piece]:
    return models.price(terms.model, terms.terms, billable_after_included(quantity, included))


def pieces_between(terms: LineTerms, before: Decimal, after: Decimal) -> list[models.Piece]:
    """The pieces of the units in ``(before, after]`` of a period's priced quantity, under ``terms``: the
    model's pieces for ``after`` minus its pieces for ``before``, tier by tier (a piece of the same tier,
    unit and price is reduced by what ``before`` already had; what is left of ``before`` in another tier,
    as a volume total that moved up a tier, is a negative piece). So the pieces of consecutive ranges
    under the same terms always sum to the model's price of the whole quantity, exactly."""
    upper = models.price(terms.model, terms.terms, after)
    lower = models.price(terms.model, terms.terms, before)
    out: list[models.Piece] = []
    for piece in upper:
        mark = (piece.tier, piece.unit, piece.unit_price)
        same = next((p for p in lower if (p.tier, p.unit, p.unit_price) == mark), None)
        if same is not None:
            lower.remove(same)
            piece = dataclasses.replace(piece, quantity=piece.quantity - same.quantity)
        if piece.quantity != 0:
            out.append(piece)
    out.extend(dataclasses.replace(p, quantity=-p.quantity) for p in lower if p.quantity != 0)
    return out
