"""``per_unit``: every unit at one price (the catalog's per_unit pricing, a custom rate or a default rate)."""

from __future__ import annotations

from decimal import Decimal

from services.rating.domain.models import Piece, register
from shared.contracts.catalog import PerUnitPricing


@register("per_unit")
def per_unit(terms: PerUnitPricing, quantity: Decimal) -> list[Piece]:
    return [Piece(quantity=quantity, unit_price=terms.unit_price)]
