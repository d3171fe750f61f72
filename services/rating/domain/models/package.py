"""``package``: units are sold in whole packages of ``package_size``; a partial package costs a whole one."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from services.rating.domain.models import Piece, register
from shared.contracts.catalog import PackagePricing


@register("package")
def package(terms: PackagePricing, quantity: Decimal) -> list[Piece]:
    packages = (quantity / terms.package_size).to_integral_value(rounding=ROUND_CEILING)
    return [Piece(packages, terms.package_price, "package")]
