"""Time entries: billable duration and the rate that prices it. Pure.

**Duration.** The entry's minutes (end - start), rounded *up* to the plan line's
``rounding_increment_minutes`` when set, then raised to ``minimum_minutes`` when set. Billable hours are
minutes / 60 (exact for 6-, 15- and 30-minute increments; otherwise to 60 significant digits).

**Rate precedence** (first that applies):
1. the plan line's price in force on the entry's day — its ``custom_rate`` or per_unit ``pricing``;
2. the technician's ``hourly_rate`` (catalog user matched by ``user_id``, else by ``user_ref``), when it is
   in the plan's currency (or has no currency of its own);
3. the service's ``default_rate``, when it is in the plan's currency.
(A per-role rate would sit between 2 and 3; the catalog has no role rates, so there is none.)

Non-billable entries are recorded by rating and never charged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from shared.contracts.catalog import LinePrice, PerUnitPricing, PlanLine, ServiceState, UserState, price_on

_HOURS = Context(prec=60)


def billable_minutes(start: datetime, end: datetime, line: PlanLine | None) -> Decimal:
    span = end - start
    seconds = Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds) / 1_000_000
    minutes = seconds / 60
    if line is not None and line.rounding_increment_minutes:
        inc = line.rounding_increment_minutes
        minutes = Decimal(math.ceil(seconds / (60 * inc)) * inc)
    if line is not None and line.minimum_minutes is not None:
        minutes = max(minutes, Decimal(line.minimum_minutes))
    return minutes


def hours_of(minutes: Decimal) -> Decimal:
    return _HOURS.divide(minutes, Decimal(60))


MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)


def amount_for_hours(hours: Decimal, rate: Decimal) -> Decimal:
    """``hours`` x ``rate`` at full precision, for hours that went through arithmetic (a bucket's overage).

    Work is whole microseconds at its finest, so the hours are snapped to them first: hours held as repeating
    decimals (65 min = 1.0833… h, a bucket's 10 min = 0.1666… h subtracted) otherwise land a true half cent
    (65 min at 153.30 = 166.075, billed 166.08) a hair below it, and the invoice line rounds down.
    """
    micros = _HOURS.multiply(hours, MICROSECONDS_PER_HOUR).to_integral_value(ROUND_HALF_EVEN)
    return _HOURS.divide(_HOURS.multiply(micros, rate), MICROSECONDS_PER_HOUR)


@dataclass(frozen=True, slots=True)
class TimeRate:
    rate: Decimal
    source: str  # plan_line_custom_rate[@date], plan_line_per_unit_price[@date], user_hourly_rate, service_default_rate


class NoTimeRate(ValueError):
    pass


def time_rate(
    *, line: PlanLine | None, user: UserState | None, service: ServiceState, currency: str, day: date
) -> TimeRate:
    if line is not None:
        terms = price_on(line, day)
        suffix = f"@{terms.effective_from.isoformat()}" if isinstance(terms, LinePrice) else ""
        if terms.pricing is not None:
            if not isinstance(terms.pricing, PerUnitPricing):
                raise NoTimeRate(f"time is priced per hour; pricing model {terms.pricing.model} does not apply to time")
            return TimeRate(terms.pricing.unit_price, "plan_line_per_unit_price" + suffix)
        if terms.custom_rate is not None:
            return TimeRate(terms.custom_rate, "plan_line_custom_rate" + suffix)
    if user is not None and user.hourly_rate is not None and user.currency in (None, currency):
        return TimeRate(user.hourly_rate, "user_hourly_rate")
    if service.currency == currency:
        return TimeRate(service.default_rate, "service_default_rate")
    raise NoTimeRate(
        f"service {service.code!r} has its default rate in {service.currency} but the plan is in {currency}, and "
        "neither the line nor the technician has a rate in it"
    )
