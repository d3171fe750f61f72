"""The test clock's rules: only sandbox tenants have one, and it only moves forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from shared.contracts.catalog import TenantMode
from shared.contracts.clock import ClockMode, ClockTick


class ClockError(Exception):
    """Base of the clock's refusals."""


class NotASandbox(ClockError):
    def __init__(self, tenant_id: UUID) -> None:
        super().__init__(f"tenant {tenant_id} is live: only sandbox tenants run on a test clock")


class ClockMustMoveForward(ClockError):
    def __init__(self, current: datetime, to: datetime) -> None:
        super().__init__(f"the test clock is at {current.isoformat()}; it cannot move to {to.isoformat()}")


LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""A test clock moves no later than this: one advanced to 9999 could never move again, and no record of its
tenant would be accepted (issue 17)."""


class BeyondTheCalendar(ClockError):
    def __init__(self, to: datetime) -> None:
        super().__init__(f"the test clock cannot move to {to.isoformat()}: the latest is {LATEST.isoformat()}")


def advance(*, tenant_id: UUID, mode: TenantMode, current: datetime | None, to: datetime) -> ClockTick:
    if mode != TenantMode.SANDBOX:
        raise NotASandbox(tenant_id)
    if current is not None and to <= current:
        raise ClockMustMoveForward(current, to)
    if to > LATEST:
        raise BeyondTheCalendar(to)
    return ClockTick(
        tick_id=uuid.uuid4(),
        tenant_id=tenant_id,
        now=to,
        previous=current,
        mode=ClockMode.TEST,
        livemode=False,
    )


def wall_tick(*, tenant_id: UUID, current: datetime | None, now: datetime) -> ClockTick:
    return ClockTick(
        tick_id=uuid.uuid4(),
        tenant_id=tenant_id,
        now=now,
        previous=current,
        mode=ClockMode.WALL,
        livemode=True,
    )
