"""The test clock can wait until the tick's work is done (issue 16): `"settle": true` answers only once every
consumer group has consumed everything and every service's outbox is relayed, so the closed period's invoice
is there to read with no sleep. A row committed to an outbox but not yet relayed keeps it from settling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from shared.faults import RELAY_HELD
from shared.services import service
from shared.stack.stack import Stack
from tests.support.platform import Platform, Tenant, as_time

MONTH_END = "2026-02-01T00:00:00+00:00"


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    """A fresh sandbox tenant with VAT 20 % for its GB client in tax-currency."""
    t = await platform.sandbox_tenant()
    await platform.tax_rate(t, region="GB", name="VAT", rate="20")
    return t


async def invoices_of(platform: Platform, tenant: Tenant) -> list[dict[str, Any]]:
    async with platform.invoicing_api() as api:
        response = await api.get("/v1/invoices", headers=tenant.auth)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def clock_of(platform: Platform, tenant: Tenant) -> dict[str, Any]:
    response = await platform.catalog.get("/v1/test-clock", headers=tenant.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def unrelayed(platform: Platform, name: str) -> int:
    async with httpx.AsyncClient(base_url=platform.stack.url(service(name)), timeout=10.0) as api:
        pending: int = (await api.get("/health/outbox")).json()["pending"]
    return pending


@contextmanager
def relay_held(stack: Stack, name: str) -> Iterator[None]:
    """``name`` runs with its outbox relay held (fault point ``relay_held``): what it commits stays in its
    outbox until the block ends and it runs normally again, which relays it."""
    stack.stop_service(name)
    stack.start_service(service(name), extra_env={"MSP_FAULT_POINT": RELAY_HELD})
    stack.wait_ready([name])
    try:
        yield
    finally:
        stack.stop_service(name)
        stack.start_service(service(name))
        stack.wait_ready([name])


async def outbox_empty(platform: Platform, name: str) -> bool:
    return await unrelayed(platform, name) == 0


async def settled_clock(platform: Platform, tenant: Tenant) -> dict[str, Any] | None:
    clock = await clock_of(platform, tenant)
    return clock if clock["settled"] else None


class TestAnAdvanceThatWaitsForItsWork:
    async def test_answers_once_the_closed_periods_invoice_is_issued(self, platform: Platform, tenant: Tenant) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))

        status, advanced = await platform.advance_clock_settled(tenant, MONTH_END)
        [invoice] = await invoices_of(platform, tenant)  # read at once: no sleep, no polling

        assert (status, advanced["settled"], advanced["behind"]) == (200, True, None)
        assert advanced["settled_after_s"] >= 0
        assert (invoice["period_start"], invoice["period_end"]) == ("2026-01-01", "2026-02-01")
        assert (invoice["status"], invoice["total"]) == ("finalized", "45.00")  # 3 x 12.50 + VAT 20 % 7.50
        assert (await clock_of(platform, tenant))["settled"] is True

    async def test_without_settle_it_answers_once_the_tick_is_committed_as_before(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        advanced = await platform.advance_clock(tenant, MONTH_END)

        assert (advanced["settled"], advanced["settled_after_s"], advanced["behind"]) == (None, None, None)
        clock = await clock_of(platform, tenant)
        assert (clock["mode"], clock["clock"], as_time(clock["now"])) == ("sandbox", "test", as_time(MONTH_END))


class TestTheWaitSeesEveryOutbox:
    async def test_a_tax_quote_committed_but_not_relayed_keeps_the_platform_unsettled_until_it_is_relayed(
        self, platform: Platform, stack: Stack, tenant: Tenant
    ) -> None:
        await platform.wait_for(lambda: outbox_empty(platform, "tax_currency"))  # the rate's notice has gone out
        with relay_held(stack, "tax_currency"):
            await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))

            status, advanced = await platform.advance_clock_settled(tenant, MONTH_END, timeout_s=3)
            [held] = await invoices_of(platform, tenant)
            polled = await clock_of(platform, tenant)
        settled = await platform.wait_for(lambda: settled_clock(platform, tenant), timeout_s=60)
        [issued] = await invoices_of(platform, tenant)

        assert (status, advanced["settled"], advanced["settled_after_s"]) == (202, False, None)
        assert advanced["behind"]["outboxes"].get("tax_currency") == 1  # the quote invoicing waits for
        assert advanced["behind"]["consumer_groups"] == {}  # Kafka alone looks settled
        assert held["status"] == "awaiting_tax"
        assert (polled["settled"], polled["behind"]["outboxes"].get("tax_currency")) == (False, 1)
        assert settled["behind"] is None  # relayed once tax-currency runs normally again, then consumed
        assert (issued["status"], issued["total"]) == ("finalized", "45.00")
