"""How far a live tenant's clock may move at a wall tick: the live close, pure (issue 18, item 1).

A live tenant's periods end at tenant-local midnights. The clock stops just short of the next local midnight
(one microsecond before it) until both

- the **grace** has passed since that midnight (records stamped before it may still be on their way from
  upstream tools: `CLOSE_GRACE_SECONDS`, 15 minutes by default), and
- the **close barrier** has been passed by a run that began after midnight + grace: everything published on the
  platform before then went through metering and rating (`shared/clock/barrier.py`),

and then moves to the wall time, closing every period that ended. If the barrier cannot be passed for
`CLOSE_MAX_WAIT_SECONDS` after midnight + grace (a consumer stuck), the close goes ahead anyway — what is still
in flight is rated into the open period as late usage, never lost — and the scheduler says so in its log.
The clock never moves backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CloseRules:
    grace: timedelta
    max_wait: timedelta


def next_local_midnight(after: datetime, timezone: str) -> datetime:
    """The first tenant-local midnight strictly after ``after``."""
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)


def due_boundary(current: datetime | None, now: datetime, timezone: str) -> datetime | None:
    """The local midnight a tick at ``now`` would cross (the first after ``current``), or None."""
    if current is None:
        return None
    boundary = next_local_midnight(current, timezone)
    return boundary if boundary <= now else None


def needs_barrier(current: datetime | None, now: datetime, timezone: str, rules: CloseRules) -> bool:
    """Whether this tenant waits on a barrier run now: it crosses a midnight whose grace has passed."""
    boundary = due_boundary(current, now, timezone)
    return boundary is not None and now >= boundary + rules.grace


def tick_target(
    *, current: datetime | None, now: datetime, timezone: str, rules: CloseRules, cleared: datetime | None
) -> datetime | None:
    """Where the tenant's clock moves at wall time ``now`` (None: it stays). ``cleared``: the wall time at which
    the last passed barrier run began — everything published before it went through."""
    if current is not None and now <= current:
        return None  # never backwards
    boundary = due_boundary(current, now, timezone)
    if boundary is None:
        return now
    ready = boundary + rules.grace
    if (cleared is not None and cleared >= ready) or now >= ready + rules.max_wait:
        return now
    held = boundary - MICROSECOND
    return held if current is None or held > current else None
