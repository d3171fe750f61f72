"""Pluggable pricing models: each model is one module that registers a function under its name.

A model turns a period's (or a record's) billable quantity into priced *pieces*: one piece per tier
reached (or per package count, or one for a flat rate), each with its own quantity, unit price and exact
amount. Pieces are what a charge shows, so "why is this amount?" is answered by the pieces themselves.

Adding a model: write ``services/rating/domain/models/<name>.py`` with ``@register("<name>")`` on a
function ``(terms, quantity) -> list[Piece]`` and import it below (tests plug one in at runtime with the
same decorator). ``terms`` is the catalog's pricing object for that model (``shared.contracts.catalog``).

Pure: no I/O, no clock; amounts at full precision (rounding is invoicing's, at the invoice line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["Piece", "PricingFunction", "UnknownPricingModel", "price", "register", "registered"]


@dataclass(frozen=True, slots=True)
class Piece:
    """One priced part of a quantity: ``quantity`` x ``unit_price`` = ``amount`` (exactly)."""

    quantity: Decimal
    unit_price: Decimal
    unit: str = "unit"  # "unit", "flat_fee" (a tier's one-off fee) or "package"
    tier: int | None = None  # index of the tier in the terms (None for untiered models)
    tier_from: Decimal | None = None  # exclusive lower bound of the tier's quantity range
    tier_up_to: Decimal | None = None  # inclusive upper bound (None: unbounded)

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price


PricingFunction = Callable[[Any, Decimal], list[Piece]]

_REGISTRY: dict[str, PricingFunction] = {}


class UnknownPricingModel(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no pricing model registered as {name!r} (known: {', '.join(sorted(_REGISTRY))})")
        self.name = name


def register(name: str) -> Callable[[PricingFunction], PricingFunction]:
    """Register ``fn`` as the model called ``name`` (re-registering a name replaces it)."""

    def add(fn: PricingFunction) -> PricingFunction:
        _REGISTRY[name] = fn
        return fn

    return add


def registered() -> list[str]:
    return sorted(_REGISTRY)


def price(model: str, terms: Any, quantity: Decimal) -> list[Piece]:
    """Price ``quantity`` (>= 0) with the model registered as ``model``; no pieces for a zero quantity."""
    if quantity < 0:
        raise ValueError(f"cannot price a negative quantity {quantity}")
    fn = _REGISTRY.get(model)
    if fn is None:
        raise UnknownPricingModel(model)
    if quantity == 0:
        return []
    return fn(terms, quantity)


def total(pieces: list[Piece]) -> Decimal:
    return sum((p.amount for p in pieces), Decimal(0))


# Built-in models register themselves on import.
from services.rating.domain.models import graduated, package, per_unit, volume  # noqa: E402, F401
