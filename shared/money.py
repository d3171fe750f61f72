"""Money helpers. An amount is always a `decimal.Decimal`, never a float.

Amounts travel as plain decimal strings ("12.50"). Rounding happens only at named boundaries, always
ROUND_HALF_UP to the currency's ISO 4217 minor units; `to_wire` refuses anything not yet rounded.
Unknown currency codes raise `shared.currencies.UnknownCurrency` (a ValueError).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

from shared.currencies import currency as _currency

__all__ = [
    "InvalidAllocation",
    "InvalidAmount",
    "MoneyError",
    "UnroundedAmount",
    "allocate_largest_remainder",
    "parse_amount",
    "round_half_up",
    "to_wire",
]

# The wire grammar: optional minus, ASCII digits, optional fraction with at least one digit.
# No "+", no exponent, no whitespace, no "1." or ".5": one spelling per value keeps wire data comparable.
_WIRE_AMOUNT: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Spellings Decimal() would accept but the wire must not; matched only to name the problem in the error.
_NON_FINITE: Final = re.compile(r"[+-]?(?:inf(?:inity)?|s?nan[0-9]*)", re.IGNORECASE)
_EXPONENT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)e[+-]?[0-9]+", re.IGNORECASE)

# An explicit context, so a caller who changed the thread's decimal context cannot change our results.
# The precision is far beyond any invoice; past it quantize raises instead of silently rounding.
_CONTEXT: Final = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


class MoneyError(ValueError):
    """Base of every error raised by this module."""


class InvalidAmount(MoneyError):
    """The value is not a usable amount: wrong type, not finite, or not in the wire format."""


class UnroundedAmount(MoneyError):
    """The amount has more decimal places than its currency allows; round it at a named boundary first."""


class InvalidAllocation(MoneyError):
    """The weights cannot split a total (none given, a negative one, or they sum to zero)."""


def parse_amount(text: str) -> Decimal:
    """Parse a wire amount such as "12.50", "0" or "-3.1" into a Decimal, keeping its digits as given.

    Rejects non-strings (a float has already lost the exact value), the empty string, NaN and Infinity,
    exponent notation ("1e3") and anything else outside the plain decimal grammar, with InvalidAmount.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f"amount must be a decimal string, got {type(text).__name__} {text!r}")
    if _WIRE_AMOUNT.fullmatch(text):
        return _without_negative_zero(Decimal(text))
    if not text:
        raise InvalidAmount("amount is an empty string")
    if _NON_FINITE.fullmatch(text.strip()):
        raise InvalidAmount(f"amount {text!r} is not a finite number")
    if _EXPONENT.fullmatch(text.strip()):
        raise InvalidAmount(f"amount {text!r} uses exponent notation; write the digits out")
    raise InvalidAmount(f"amount {text!r} is not a plain decimal string like '12.50'")


def round_half_up(amount: Decimal, *, currency: str) -> Decimal:
    """Round to the currency's minor units with ROUND_HALF_UP, returning a quantized Decimal.

    Ties go away from zero, so negatives mirror positives: USD 0.125 -> 0.13 and -0.125 -> -0.13
    (Python's default, half-even, would give 0.12). Examples: USD 1.5 -> 1.50, JPY 2.5 -> 3,
    BHD 1.2345 -> 1.235.
    """
    # ROUND_HALF_UP named here, where rounding happens, rather than trusting any context default.
    return _without_negative_zero(_quantize(amount, currency, rounding=ROUND_HALF_UP))


def to_wire(amount: Decimal, *, currency: str) -> str:
    """Format a rounded amount with exactly the currency's minor-unit digits: USD "1.50", JPY "2".

    Raises UnroundedAmount if the value needs more digits than the currency has (USD 1.005); trailing
    zeros alone are fine (USD 1.500 -> "1.50"). Never rounds: callers round at a named boundary first.
    """
    exact = _quantize(amount, currency, rounding=ROUND_HALF_UP)  # only compared, never returned rounded
    if exact != amount:
        minor_units = _currency(currency).minor_units
        raise UnroundedAmount(f"{amount} {currency} has more than {minor_units} decimal places; round first")
    return f"{_without_negative_zero(exact):f}"


def allocate_largest_remainder(total: Decimal, weights: Sequence[Decimal], *, currency: str) -> list[Decimal]:
    """Split a rounded total across non-negative weights into minor-unit parts that sum exactly to total.

    Each part first gets its exact proportional share rounded toward zero; the minor units left over go
    one each to the parts with the largest discarded remainders, ties to the earlier index. Every part is
    therefore within one minor unit of its exact share. A negative total (a discount) is split as its
    absolute value and negated, so allocate(-t) == [-p for p in allocate(t)].
    """
    minor_units = _currency(currency).minor_units
    if _quantize(total, currency, rounding=ROUND_HALF_UP) != total:
        raise UnroundedAmount(f"total {total} {currency} has more than {minor_units} decimal places")
    # Work in whole minor units with exact Fractions: Decimal division would round inside the allocation.
    units = Fraction(total) * 10**minor_units
    exact_weights = [Fraction(_require_finite(w)) for w in weights]
    if any(w < 0 for w in exact_weights):
        raise InvalidAllocation(f"weights must not be negative: {list(weights)}")
    weight_sum = sum(exact_weights, Fraction(0))
    if weight_sum == 0:
        raise InvalidAllocation("weights sum to zero (or none were given); nothing to allocate by")

    sign = -1 if units < 0 else 1
    to_share = abs(int(units))
    shares = [to_share * w / weight_sum for w in exact_weights]
    parts = [s.numerator // s.denominator for s in shares]
    leftover = to_share - sum(parts)  # in [0, len(parts)) since each floor loses less than one unit
    by_remainder = sorted(range(len(parts)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return [Decimal(sign * p).scaleb(-minor_units, context=_CONTEXT) for p in parts]


def _quantize(amount: Decimal, code: str, *, rounding: str) -> Decimal:
    """Quantize to one minor unit of the currency: USD to 0.01, JPY to 1."""
    _require_finite(amount)
    quantum = Decimal(1).scaleb(-_currency(code).minor_units, context=_CONTEXT)
    try:
        return amount.quantize(quantum, rounding=rounding, context=_CONTEXT)
    except InvalidOperation:
        raise InvalidAmount(f"amount {amount} needs more than {_CONTEXT.prec} significant digits") from None


def _require_finite(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal):
        raise InvalidAmount(f"amount must be a Decimal, got {type(amount).__name__} {amount!r}")
    if not amount.is_finite():
        raise InvalidAmount(f"amount {amount} is not a finite number")
    return amount


def _without_negative_zero(amount: Decimal) -> Decimal:
    # Decimal keeps the sign of zero ("-0.00"); no invoice should ever print that.
    return amount.copy_abs() if amount.is_zero() else amount
