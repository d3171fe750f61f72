"""Billing periods and cycles. Pure: nothing here reads a clock, so callers pass every date in.

A period is a half-open range of calendar days [start, end). Cycles are laid out from an anchor date;
every boundary is computed from the anchor directly (anchor + k steps), never from the previous
boundary, so month-end anchors do not drift: Jan 31 -> Feb 29 -> Mar 31, not Mar 29.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

__all__ = [
    "BillingFrequency",
    "InvalidPeriod",
    "NaiveDatetime",
    "Period",
    "PeriodError",
    "UnknownTimeZone",
    "local_date",
    "next_period",
    "period_bounds_utc",
    "period_containing",
    "periods_between",
    "prorate_fraction",
]


class PeriodError(ValueError):
    """Base of every error raised by this module."""


class InvalidPeriod(PeriodError):
    """A period that is empty, reversed, not made of dates, or not a cycle of the given schedule."""


class NaiveDatetime(PeriodError):
    """A datetime without a time zone where an instant was needed."""


class UnknownTimeZone(PeriodError):
    """A time zone name that is not in the IANA database."""


@dataclass(frozen=True, slots=True)
class Period:
    """The calendar days [start, end): start is included, end is not."""

    start: date
    end: date

    def __post_init__(self) -> None:
        # datetime is a subclass of date, but mixing the two breaks comparisons and day counts.
        if not all(type(d) is date for d in (self.start, self.end)):
            raise InvalidPeriod(f"period bounds must be dates, got {self.start!r} and {self.end!r}")
        if self.start >= self.end:
            raise InvalidPeriod(f"period start {self.start} must be before its end {self.end}")

    @property
    def days(self) -> int:
        """How many calendar days the period covers."""
        return (self.end - self.start).days

    def contains(self, d: date) -> bool:
        """Whether day d falls inside [start, end)."""
        return self.start <= d < self.end

    def overlap(self, other: Period) -> Period | None:
        """The days both periods cover, or None if they share no day."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Period(start, end) if start < end else None


class BillingFrequency(StrEnum):
    """How often a billing cycle repeats; the values are the wire spellings."""

    WEEKLY = "weekly"
    BI_WEEKLY = "bi-weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMI_ANNUALLY = "semi-annually"
    ANNUALLY = "annually"


_STEP_DAYS: Final = {BillingFrequency.WEEKLY: 7, BillingFrequency.BI_WEEKLY: 14}
_STEP_MONTHS: Final = {
    BillingFrequency.MONTHLY: 1,
    BillingFrequency.QUARTERLY: 3,
    BillingFrequency.SEMI_ANNUALLY: 6,
    BillingFrequency.ANNUALLY: 12,
}


def _boundary(anchor: date, k: int, frequency: BillingFrequency) -> date:
    """Start of cycle k (cycle 0 starts on the anchor; negative k are cycles before it)."""
    if frequency in _STEP_DAYS:
        return anchor + timedelta(days=k * _STEP_DAYS[frequency])
    # relativedelta clamps to the month's last day (Jan 31 + 1 month = Feb 28/29), and because we add
    # k whole steps to the anchor itself the day returns to 31 wherever the month has one.
    result: date = anchor + relativedelta(months=k * _STEP_MONTHS[frequency])
    return result


def period_containing(d: date, *, frequency: BillingFrequency, anchor: date) -> Period:
    """The billing cycle that contains day d, for cycles starting on anchor and every step before or after.

    Weekly and bi-weekly cycles are 7 and 14 days. Monthly, quarterly, semi-annual and annual cycles step
    1, 3, 6 and 12 months from the anchor; an anchor on the 29th-31st falls on the last day of shorter months.
    """
    frequency = BillingFrequency(frequency)
    if frequency in _STEP_DAYS:
        k = (d - anchor).days // _STEP_DAYS[frequency]  # floor division also counts back before the anchor
    else:
        months = (d.year - anchor.year) * 12 + (d.month - anchor.month)
        k = months // _STEP_MONTHS[frequency]
        # The month count ignores the day, so the guess can be one cycle off either way; boundaries
        # strictly increase with k, so walking settles on the one cycle that holds d.
        while _boundary(anchor, k, frequency) > d:
            k -= 1
        while _boundary(anchor, k + 1, frequency) <= d:
            k += 1
    return Period(_boundary(anchor, k, frequency), _boundary(anchor, k + 1, frequency))


def next_period(p: Period, *, frequency: BillingFrequency, anchor: date) -> Period:
    """The cycle that follows p; p must itself be a cycle of this schedule (else InvalidPeriod)."""
    if period_containing(p.start, frequency=frequency, anchor=anchor) != p:
        raise InvalidPeriod(f"{p} is not a {frequency} cycle anchored on {anchor}")
    return period_containing(p.end, frequency=frequency, anchor=anchor)


def periods_between(start: date, end: date, *, frequency: BillingFrequency, anchor: date) -> list[Period]:
    """The cycles that overlap [start, end), in order; empty when start == end.

    The first may begin before start and the last may end after end: callers prorate the edges.
    """
    if start > end:
        raise InvalidPeriod(f"range start {start} is after its end {end}")
    cycles: list[Period] = []
    if start == end:
        return cycles
    cycle = period_containing(start, frequency=frequency, anchor=anchor)
    while cycle.start < end:
        cycles.append(cycle)
        cycle = period_containing(cycle.end, frequency=frequency, anchor=anchor)
    return cycles


def prorate_fraction(active: Period, cycle: Period) -> Fraction:
    """The exact share of cycle covered by active: overlapping days / cycle days, 0 when they do not meet."""
    shared = active.overlap(cycle)
    return Fraction(shared.days, cycle.days) if shared else Fraction(0)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # ValueError: malformed keys such as "../x"
        raise UnknownTimeZone(f"unknown IANA time zone {tz!r}") from exc


def local_date(instant: datetime, *, tz: str) -> date:
    """The calendar date of an aware instant in the IANA time zone tz (a tenant's billing zone)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise NaiveDatetime(f"{instant!r} has no time zone; pass an aware datetime")
    return instant.astimezone(_zone(tz)).date()


def period_bounds_utc(p: Period, *, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight at p.start and p.end in tz; on DST days the span is 23 or 25 hours.

    Where a DST change skips midnight itself (e.g. America/Santiago), fold=0 resolves the missing
    midnight with the offset before the change, which lands exactly on the first instant of that day.
    """
    zone = _zone(tz)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC)

    return midnight(p.start), midnight(p.end)
