"""Spec for services.catalog.domain.clock: sandbox-only test clocks that move strictly forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from services.catalog.domain.clock import (
    BeyondTheCalendar,
    ClockError,
    ClockMustMoveForward,
    NotASandbox,
    advance,
    wall_tick,
)
from shared.contracts.catalog import TenantMode
from shared.contracts.clock import ClockMode, ClockTick

TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
JAN_31 = datetime(2026, 1, 31, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


class TestAdvance:
    def test_stops_at_2100_so_a_clock_can_always_move_again(self) -> None:
        # issue 17: a sandbox clock advanced to 9999 could never move again and accepted no record
        with pytest.raises(BeyondTheCalendar, match="the latest is 2100-01-01"):
            advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=datetime(9999, 1, 1, tzinfo=UTC))
        tick = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=datetime(2100, 1, 1, tzinfo=UTC))
        assert tick.now.year == 2100

    def test_moves_a_sandbox_clock_forward(self) -> None:
        tick = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=FEB_1)

        assert (tick.tenant_id, tick.previous, tick.now) == (TENANT, JAN_31, FEB_1)

    def test_sets_a_sandbox_clock_that_has_no_time_yet(self) -> None:
        tick = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=None, to=datetime(2020, 1, 1, tzinfo=UTC))

        assert tick.previous is None
        assert tick.now == datetime(2020, 1, 1, tzinfo=UTC)

    def test_marks_the_tick_as_test_mode_not_live(self) -> None:
        tick = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=FEB_1)

        assert tick.mode is ClockMode.TEST
        assert tick.livemode is False

    def test_refuses_a_live_tenant(self) -> None:
        with pytest.raises(NotASandbox, match=f"tenant {TENANT} is live"):
            advance(tenant_id=TENANT, mode=TenantMode.LIVE, current=JAN_31, to=FEB_1)

    def test_refuses_a_live_tenant_even_without_a_current_time(self) -> None:
        with pytest.raises(NotASandbox):
            advance(tenant_id=TENANT, mode=TenantMode.LIVE, current=None, to=FEB_1)

    @pytest.mark.parametrize(
        "to",
        [
            JAN_31,
            JAN_31 - timedelta(microseconds=1),
            datetime(2026, 1, 1, tzinfo=UTC),
            # The same instant written in another offset is not a move.
            datetime(2026, 1, 31, 1, tzinfo=timezone(timedelta(hours=1))),
        ],
        ids=["same-instant", "a-microsecond-back", "a-month-back", "same-instant-other-offset"],
    )
    def test_refuses_to_stand_still_or_go_back(self, to: datetime) -> None:
        with pytest.raises(ClockMustMoveForward, match="cannot move to"):
            advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=to)

    def test_accepts_the_smallest_step_forward(self) -> None:
        to = JAN_31 + timedelta(microseconds=1)

        assert advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=to).now == to

    def test_refusals_share_one_base(self) -> None:
        assert issubclass(NotASandbox, ClockError)
        assert issubclass(ClockMustMoveForward, ClockError)

    def test_gives_every_tick_its_own_id(self) -> None:
        first = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=FEB_1)
        second = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=JAN_31, to=FEB_1)

        assert first.tick_id != second.tick_id

    def test_produces_a_tick_that_round_trips_on_the_wire(self) -> None:
        tick = advance(tenant_id=TENANT, mode=TenantMode.SANDBOX, current=None, to=FEB_1)

        assert ClockTick.model_validate_json(tick.model_dump_json()) == tick
        assert tick.key() == str(TENANT)


class TestWallTick:
    def test_is_live_and_in_wall_mode(self) -> None:
        tick = wall_tick(tenant_id=TENANT, current=JAN_31, now=FEB_1)

        assert tick.mode is ClockMode.WALL
        assert tick.livemode is True

    def test_carries_the_previous_and_new_time(self) -> None:
        tick = wall_tick(tenant_id=TENANT, current=None, now=FEB_1)

        assert (tick.tenant_id, tick.previous, tick.now) == (TENANT, None, FEB_1)
