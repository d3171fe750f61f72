"""The quantity boundary: where a derived quantity is rounded before it is priced and printed. Pure.

A time-weighted average, an included quantity prorated by days and a bucket allocation prorated by days rarely
terminate (54 VM-days / 31 days). They are rounded **half-up to 4 decimal places** here, once, and the rounded
quantity is what the model prices and the invoice prints, so ``quantity x unit price`` is the charge's amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

QUANTITY_PLACES = 4
_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)


def round_quantity(quantity: Decimal) -> Decimal:
    """Half-up to QUANTITY_PLACES decimal places (ROUND_HALF_UP named here, where the rounding happens)."""
    return quantity.quantize(_QUANTUM, rounding=ROUND_HALF_UP).normalize() + 0


def prorated_quantity(quantity: Decimal, *, days: int, of_days: int) -> Decimal:
    """``quantity`` for ``days`` of an ``of_days``-day period, at the quantity boundary (whole when all days)."""
    if days >= of_days:
        return quantity
    return round_quantity(quantity * days / of_days)
