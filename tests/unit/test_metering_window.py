"""Spec for the record times metering accepts (issue 17, item 6): a window around the tenant's billing time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.metering.domain.acceptance import Verdict, decide
from services.metering.domain.window import Window, accepted_window
from shared.contracts.usage import UsageRecord

CLOCK = datetime(2026, 2, 1, tzinfo=UTC)
WALL = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)


def usage_at(when: str) -> UsageRecord:
    return UsageRecord.model_validate(
        {
            "event_id": "e-1",
            "source": "ninjaone",
            "tenant_id": "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b",
            "company_ref": "acme",
            "service_ref": "rmm",
            "quantity": "1",
            "occurred_at": when,
        }
    )


class TestTheWindow:
    def test_is_730_days_back_and_35_ahead_of_the_tenants_clock(self) -> None:
        window = accepted_window(live=False, clock=CLOCK, now=WALL)
        assert window == Window(datetime(2024, 2, 2, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC))

    def test_a_live_tenant_before_its_first_tick_is_judged_on_the_wall_clock(self) -> None:
        assert accepted_window(live=True, clock=None, now=WALL).latest == datetime(2027, 1, 11, 13, 0, tzinfo=UTC)

    def test_a_sandbox_without_a_clock_has_only_the_outer_bounds(self) -> None:
        window = accepted_window(live=False, clock=None, now=WALL)
        assert (window.earliest.year, window.latest.year) == (2000, 2100)

    def test_the_outer_bounds_hold_whatever_the_clock(self) -> None:
        window = accepted_window(live=False, clock=datetime(2099, 12, 1, tzinfo=UTC), now=WALL, days_ahead=366)
        assert window.latest == datetime(2100, 1, 1, tzinfo=UTC)


class TestARecordOutsideTheWindow:
    @pytest.mark.parametrize("when", ["2150-01-01T00:00:00Z", "2023-12-31T00:00:00Z", "2026-03-09T00:00:00Z"])
    def test_is_rejected_naming_the_field(self, when: str) -> None:
        decision = decide(usage_at(when), None, None, window=accepted_window(live=False, clock=CLOCK, now=WALL))
        assert (decision.verdict, decision.field, decision.code) == (Verdict.REJECTED, "occurred_at", "out_of_window")
        assert decision.reason is not None
        assert decision.reason.startswith("occurred_at: ")

    def test_inside_it_goes_on_to_be_mapped(self) -> None:
        decision = decide(
            usage_at("2026-02-20T00:00:00Z"), None, None, window=accepted_window(live=False, clock=CLOCK, now=WALL)
        )
        assert (decision.verdict, decision.code) == (Verdict.UNMAPPED, "unknown_company")
