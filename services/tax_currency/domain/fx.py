"""Exchange rates in force and conversion between currencies. Pure: no I/O, no clock.

Rates are stored against the tenant's base currency: ``rate`` = units of ``currency`` per 1 unit of base.

* **In force on a day:** the row with the latest ``rate_date`` on or before the day; a correction recorded
  later for the same ``rate_date`` wins for new quotes (latest ``recorded_at``). Quotes pin the row ids
  they used, so an invoice already quoted keeps its numbers.
* **The rate applied** (units of ``to`` per 1 ``from``):
  base → X is X's stored rate, exactly; X → base is 1 / rate(X); X → Y is rate(Y) / rate(X). A derived
  rate (the last two) is a named rounding boundary: HALF-UP to ``DERIVED_RATE_DIGITS`` significant digits.
* **Converted amounts** are ``amount x rate`` computed exactly (no rounding here): whoever reads the
  invoice's ``fx[]`` entry can recompute them. Invoicing rounds later, at the line's net.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation
from uuid import UUID

from services.tax_currency.domain.taxes import QuoteError
from shared.contracts.tax import FailureReason

DERIVED_RATE_DIGITS = 15
"""Significant digits of a derived (inverse or cross) rate. Relative error <= 5e-15: on an amount of
10^12 minor units that is under 0.01 of a minor unit."""

_DERIVED = Context(prec=DERIVED_RATE_DIGITS, rounding=ROUND_HALF_UP, traps=[InvalidOperation])
# Products of an amount and a rate are exact; should one ever need more digits than this, it raises.
_EXACT = Context(prec=200, traps=[InvalidOperation, Inexact])


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    exchange_rate_id: UUID
    currency: str
    base_currency: str
    rate: Decimal  # units of currency per 1 base
    rate_date: date
    source: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Conversion:
    from_currency: str
    to_currency: str
    rate: Decimal
    rate_date: date | None  # None for the identity (same currency): nothing pinned
    rows: tuple[ExchangeRate, ...]

    def apply(self, amount: Decimal) -> Decimal:
        """amount x rate, exact; trailing zeros dropped ("11.650000" → "11.65")."""
        product = _EXACT.multiply(amount, self.rate)
        return _plain(product)


def _plain(value: Decimal) -> Decimal:
    if value.is_zero():
        return Decimal(0)
    normal = value.normalize(_EXACT)
    # normalize() may leave an exponent ("1E+2"); integral values get their digits back so they print "100"
    if normal == normal.to_integral_value():
        return normal.quantize(Decimal(1), context=_EXACT)
    return normal


def in_force(rows: Iterable[ExchangeRate], *, currency: str, base: str, day: date) -> ExchangeRate | None:
    """The ``currency`` row against ``base`` with the latest rate_date <= day (latest recorded wins)."""
    candidates = [r for r in rows if r.currency == currency and r.base_currency == base and r.rate_date <= day]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.rate_date, r.recorded_at, str(r.exchange_rate_id)))


def conversion(
    *, from_currency: str, to_currency: str, base: str, rows: Sequence[ExchangeRate], day: date
) -> Conversion:
    """The conversion in force on ``day``; raises QuoteError(missing_exchange_rate) naming the currency."""
    if from_currency == to_currency:
        return Conversion(from_currency, to_currency, Decimal(1), None, ())

    def leg(code: str) -> ExchangeRate:
        row = in_force(rows, currency=code, base=base, day=day)
        if row is None:
            raise QuoteError(
                FailureReason.MISSING_EXCHANGE_RATE,
                f"no exchange rate for {code} against base {base} on or before {day.isoformat()}",
                field="from_currency" if code == from_currency else "to_currency",
            )
        return row

    if from_currency == base:
        to_row = leg(to_currency)
        return Conversion(from_currency, to_currency, to_row.rate, to_row.rate_date, (to_row,))
    if to_currency == base:
        from_row = leg(from_currency)
        # Named rounding boundary: the inverse rate, HALF-UP to DERIVED_RATE_DIGITS significant digits.
        inverse = _DERIVED.divide(Decimal(1), from_row.rate)
        return Conversion(from_currency, to_currency, _plain(inverse), from_row.rate_date, (from_row,))
    from_row, to_row = leg(from_currency), leg(to_currency)
    # Named rounding boundary: the cross rate through the base, HALF-UP to DERIVED_RATE_DIGITS digits.
    cross = _DERIVED.divide(to_row.rate, from_row.rate)
    # A derived rate is only as fresh as its older leg: that is the date the invoice's fx[] entry shows.
    rate_date = min(from_row.rate_date, to_row.rate_date)
    return Conversion(from_currency, to_currency, _plain(cross), rate_date, (from_row, to_row))
