"""Which record times metering accepts: a window around the tenant's billing time. Pure, no clock.

A record dated 240 months apart used to create 240 monthly partitions (slowing the tenant's queries five-fold),
and a record of the year 9999 was accepted, then dead-lettered by rating ("year 10000 is out of range"): metering
had said `accepted` for a record never billed (issue 17). A record's time (``occurred_at``, or a time entry's
``start_time`` and ``end_time``) must now lie in ``[billing time - days_back, billing time + days_ahead]``:

- the billing time is the tenant's clock (its last tick: a sandbox's test clock, a live tenant's wall clock);
- before a tenant's first tick it is the wall clock, when the tenant is live; a sandbox without a clock yet has
  only the platform's outer bounds (records are sent ahead of a test clock's first advance);
- whatever the clock, nothing before 2000 or from 2100 on is accepted (every date rating computes must exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

OUTER_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
OUTER_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
DAYS_BACK = 730
DAYS_AHEAD = 35


@dataclass(frozen=True, slots=True)
class Window:
    earliest: datetime
    latest: datetime  # exclusive

    def refusal(self, at: datetime) -> str | None:
        """Why ``at`` is not accepted, or None when it is."""
        if at < self.earliest:
            return f"{at.isoformat()} is before {self.earliest.isoformat()}, the earliest time metering accepts"
        if at >= self.latest:
            return f"{at.isoformat()} is not before {self.latest.isoformat()}, the latest time metering accepts"
        return None


def accepted_window(
    *, live: bool, clock: datetime | None, now: datetime, days_back: int = DAYS_BACK, days_ahead: int = DAYS_AHEAD
) -> Window:
    """The window for a tenant whose billing time is ``clock`` (None before its first tick); ``now`` is the wall
    clock, given by the caller."""
    anchor = clock if clock is not None else (now if live else None)
    if anchor is None:
        return Window(OUTER_EARLIEST, OUTER_LATEST)
    return Window(
        max(OUTER_EARLIEST, anchor - timedelta(days=days_back)),
        min(OUTER_LATEST, anchor + timedelta(days=days_ahead)),
    )
