"""``volume``: the tier that contains the whole quantity prices every unit (plus that tier's flat fee)."""

from __future__ import annotations

from decimal import Decimal

from services.rating.domain.models import Piece, register
from shared.contracts.catalog import VolumePricing


@register("volume")
def volume(terms: VolumePricing, quantity: Decimal) -> list[Piece]:
    lower = Decimal(0)
    for i, tier in enumerate(terms.tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            pieces = [Piece(quantity, tier.unit_price, tier=i, tier_from=lower, tier_up_to=tier.up_to)]
            if tier.flat_fee:
                pieces.append(Piece(Decimal(1), tier.flat_fee, "flat_fee", i, lower, tier.up_to))
            return pieces
        lower = tier.up_to
    raise ValueError("volume tiers must end with an unbounded tier")  # the catalog refuses such plans
