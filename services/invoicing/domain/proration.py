"""The remainder rule for prorated fixed fees, applied at the invoice line after conversion. Pure.

**Where we round, and why.** A fee prorated over days is ``price x days / cycle_days``, which rarely
terminates (100 x 15/31); rating keeps it exact on the charge. Pieces of one cycle (a start, a change, a
suspension, a cancellation, on one invoice or several) must add up to the cycle's price, so the invoice line
is a named rounding boundary for them: in the **invoice currency**, day boundary ``k`` of an ``N``-day cycle has
the cumulative amount ``C(k) = round_half_up(price x rate x k / N)``; the piece for days ``[a, b)`` is
``C(b) - C(a)``. Any split of a cycle telescopes to ``C(N) - C(0)``: the converted price rounded as a whole
cycle's line would be, and a piece never depends on how the rest was split (nor is ever negative). Applied after the
conversion, not before, so a 400 USD fee for 28 of 30 days at 1,500 NGN / USD is 560,000.00 NGN, not the
559,995.00 that rounding in USD first gave. (docs/billing-rules.md §7)
"""

from __future__ import annotations

from decimal import Context, Decimal

from shared.money import round_half_up

_PRECISE = Context(prec=60)


def cumulative(price: Decimal, k: int, n: int, *, currency: str) -> Decimal:
    """``C(k)``: the share of ``price`` for the cycle's first ``k`` of ``n`` days, rounded half-up."""
    return round_half_up(_PRECISE.divide(price * k, Decimal(n)), currency=currency)


def piece(price: Decimal, *, first: int, end: int, days: int, currency: str) -> Decimal:
    """The amount of days ``[first, end)`` (offsets from the cycle's start) of a ``days``-day cycle."""
    if not 0 <= first < end <= days:
        raise ValueError(f"days [{first}, {end}) are not inside a {days}-day cycle")
    return cumulative(price, end, days, currency=currency) - cumulative(price, first, days, currency=currency)
