"""Month-end for real (issue 18, item 1): a live tenant's period closes at its local midnight by the wall clock,
and usage published in the last second before midnight, still in flight when midnight strikes (rating is down),
is on the closing invoice — not next month's late adjustment.

Catalog is restarted for this spec with a one-second tick, a three-second grace and its wall clock shifted
(WALL_CLOCK_OFFSET_SECONDS, a local-stack setting) so that a UTC midnight comes about a minute later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from shared.services import service
from tests.support.platform import Platform

LEAD_S = 75.0  # catalog's shifted clock starts this long before the midnight
GRACE_S = 3


def next_midnight_after(moment: datetime) -> datetime:
    return datetime.combine(moment.date() + timedelta(days=1), time(0), tzinfo=UTC)


@pytest.fixture
async def midnight(platform: Platform) -> AsyncIterator[tuple[datetime, timedelta]]:
    """Catalog on a shifted wall clock: (the coming midnight, the shift). Restored afterwards."""
    stack = platform.stack
    real = datetime.now(UTC)
    coming = next_midnight_after(real + timedelta(seconds=LEAD_S + 30))
    shift = coming - timedelta(seconds=LEAD_S) - real
    stack.stop_service("catalog")
    env = {
        "CLOCK_TICK_SECONDS": "1",
        "CLOSE_GRACE_SECONDS": str(GRACE_S),
        "WALL_CLOCK_OFFSET_SECONDS": str(shift.total_seconds()),
    }
    stack.start_service(service("catalog"), extra_env=env)
    await asyncio.to_thread(stack.wait_ready, ["catalog"])
    try:
        yield coming, shift
    finally:
        stack.stop_service("catalog")
        stack.start_service(service("catalog"))
        await asyncio.to_thread(stack.wait_ready, ["catalog"])


async def sleep_until(moment: datetime, shift: timedelta) -> None:
    await asyncio.sleep(max(0.0, (moment - (datetime.now(UTC) + shift)).total_seconds()))


@pytest.mark.slow
class TestTheLiveClose:
    async def test_usage_published_in_the_last_second_before_midnight_is_on_the_closing_invoice(
        self, platform: Platform, midnight: tuple[datetime, timedelta]
    ) -> None:
        coming, shift = midnight
        anchor = (coming - timedelta(days=7)).date().isoformat()  # weekly: the period [anchor, midnight) closes
        tenant = await platform.sandbox_tenant(mode="live", timezone="UTC", anchor=anchor, frequency="weekly")
        await platform.tax_rate(tenant, region="GB", name="VAT", rate="20")
        await platform.wait_ready(tenant, "metering", "rating")
        early = platform.usage(tenant, quantity="2", occurred_at=(coming - timedelta(minutes=1)).isoformat())
        await platform.send_usage(tenant, early)

        await sleep_until(coming - timedelta(seconds=10), shift)
        platform.stack.stop_service("rating")  # what comes now stays in flight past midnight
        try:
            await sleep_until(coming - timedelta(seconds=1.5), shift)
            last_second = (coming - timedelta(seconds=1)).isoformat()
            for _ in range(5):
                await platform.send_usage(tenant, platform.usage(tenant, quantity="1", occurred_at=last_second))
            await sleep_until(coming + timedelta(seconds=GRACE_S + 3), shift)  # midnight and its grace are past
        finally:
            platform.stack.start_service(service("rating"))

        [event] = await platform.invoices(tenant, timeout_s=120, settle_s=2.0)
        invoice = event["invoice"]
        assert invoice["period_end"] == coming.date().isoformat()
        [line] = invoice["lines"]
        assert Decimal(line["quantity"]) == Decimal(7)  # 2 a minute before midnight + 5 in its last second
        assert Decimal(invoice["total"]) == Decimal("105.00")  # 7 x 12.50 = 87.50, + VAT 20 % 17.50
