"""``graduated``: each tier prices the units that fall into it (tier i holds units in (up_to[i-1], up_to[i]]).

A tier's ``flat_fee`` is added once when the quantity reaches into that tier. So each extra unit costs the
rate of the tier it falls in, plus the tier's flat fee for the first unit to enter it.
"""

from __future__ import annotations

from decimal import Decimal

from services.rating.domain.models import Piece, register
from shared.contracts.catalog import GraduatedPricing


@register("graduated")
def graduated(terms: GraduatedPricing, quantity: Decimal) -> list[Piece]:
    pieces: list[Piece] = []
    lower = Decimal(0)
    for i, tier in enumerate(terms.tiers):
        if quantity <= lower:
            break
        upper = tier.up_to
        in_tier = quantity - lower if upper is None else min(quantity, upper) - lower
        if in_tier > 0:
            pieces.append(Piece(in_tier, tier.unit_price, tier=i, tier_from=lower, tier_up_to=upper))
            if tier.flat_fee:
                pieces.append(Piece(Decimal(1), tier.flat_fee, "flat_fee", i, lower, upper))
        if upper is None:
            break
        lower = upper
    return pieces
