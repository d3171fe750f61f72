"""Which model and terms price a plan line on a day, and the priced pieces of a quantity on it. Pure.

The line's price in force on the day (`price_on`: its effective-dated ``prices``, else its own terms) is
one of: a ``pricing`` model (per_unit, graduated, volume, package — or any registered model), a flat
``custom_rate`` (priced as per_unit), or neither, when the service's ``default_rate`` applies (per_unit).
``included_quantity`` units of each period are free: the model prices ``max(0, quantity - included)``.
"""

from __future__ import annotations

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
