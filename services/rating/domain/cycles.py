"""Which billing periods a tick closes: pure."""

from __future__ import annotations

from datetime import date

from shared.periods import BillingFrequency, Period, periods_between


def periods_to_close(
    *, start: date, last_closed_end: date | None, today: date, frequency: BillingFrequency, anchor: date
) -> list[Period]:
    """Periods overlapping [first billable day, today) that ended by ``today``; the first may begin before a
    mid-cycle start (proration of that partial period belongs to pricing, not to closing)."""
    begin = max(start, last_closed_end) if last_closed_end else start
    if begin >= today:
        return []
    return [p for p in periods_between(begin, today, frequency=frequency, anchor=anchor) if p.end <= today]
