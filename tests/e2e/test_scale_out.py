"""Operators scale each service on its own (issue 18, item 3): a second replica of metering, rating and invoicing
joins while records flow, the groups share their partitions between the replicas, then the second replicas are
SIGKILLed mid-flow — and every record is still charged exactly once and every invoice is exact.

Six tenants (one client each) so the records' keys spread over the partitions.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.services import service
from shared.topology import of_service
from tests.support.platform import Platform, Tenant

MONTH_END = "2026-02-01T00:00:00+00:00"
SCALED = ("metering", "rating", "invoicing")
RECORDS = 1_200
TENANTS = 6


async def group_members(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """How many members each group has, from the broker's group description. (Tansu describes no member's
    assignment, so whether the work is shared is read from each replica's own counters: `applied_by`.)"""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described: dict[str, int] = {}
        for group in groups:
            [response] = await admin.describe_consumer_groups([group])
            [found] = response.to_object()["groups"]
            described[group] = len(found["members"])
        return described
    finally:
        await admin.close()


async def applied_by(url: str) -> float:
    """Records this one process has applied, over all its consumers (its Prometheus counter)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics/")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("consumer_records_total{") and 'outcome="applied"' in line
    )


async def publish_steadily(platform: Platform, tenants: list[Tenant], sent: dict[str, int]) -> None:
    """RECORDS usage records of quantity 1, round-robin over the tenants, at about 100 a second."""
    for i in range(RECORDS):
        tenant = tenants[i % len(tenants)]
        await platform.send_usage(tenant, platform.usage(tenant, quantity="1"))
        sent[str(tenant.tenant_id)] = sent.get(str(tenant.tenant_id), 0) + 1
        if i % 10 == 9:
            await asyncio.sleep(0.1)


def line_quantity(event: dict[str, Any]) -> Decimal:
    [line] = event["invoice"]["lines"]
    return Decimal(line["quantity"])


@pytest.mark.slow
class TestScaleOut:
    async def test_replicas_join_and_die_mid_flow_and_every_record_is_charged_once(self, platform: Platform) -> None:
        stack = platform.stack
        tenants = [await platform.sandbox_tenant() for _ in range(TENANTS)]
        for tenant in tenants:
            await platform.tax_rate(tenant, region="GB", name="VAT", rate="20")
        groups = [s.group for name in SCALED for s in of_service(name)]
        sent: dict[str, int] = {}
        flow = asyncio.create_task(publish_steadily(platform, tenants, sent))
        try:
            await asyncio.sleep(2)
            for name in SCALED:  # the second replicas join while records flow
                stack.start_service(service(name), replica=2)
            await asyncio.to_thread(stack.wait_ready, list(SCALED))

            last: dict[str, int] = {}

            async def joined() -> dict[str, int] | None:
                last.update(await group_members(stack.bootstrap, groups))
                return dict(last) if set(last.values()) == {2} else None

            try:
                membership = await platform.wait_for(joined, timeout_s=90)
            except AssertionError as exc:
                raise AssertionError(f"the second replicas did not join every group: {last}") from exc

            async def working() -> dict[str, float] | None:  # each second replica applies records too
                done = {name: await applied_by(stack.url(service(name), 2)) for name in SCALED}
                return done if all(done.values()) else None

            work_of_second = await platform.wait_for(working, timeout_s=60)
            for name in SCALED:  # then die, as with the OOM killer, while records still flow
                stack.stop_service(f"{name}#2", kill=True)
            await flow
        finally:
            flow.cancel()
            for name in SCALED:
                stack.stop_service(f"{name}#2", kill=True)

        started = time.monotonic()
        for tenant in tenants:
            await platform.advance_clock(tenant, MONTH_END)
        invoices = {str(t.tenant_id): (await platform.invoices(t, settle_s=1.0, timeout_s=120))[0] for t in tenants}
        charges = {
            str(t.tenant_id): int(await platform.value_as_tenant("rating", t, "SELECT count(*) FROM charges"))
            for t in tenants
        }
        print(f"scale-out: {RECORDS} records, {TENANTS} tenants, closed in {time.monotonic() - started:.1f} s")

        assert set(membership.values()) == {2}  # both replicas in every group of the three services
        print(f"scale-out: records applied by the second replicas before they were killed: {work_of_second}")
        assert sum(sent.values()) == RECORDS
        assert charges == sent  # every record charged exactly once
        for tenant_id, event in invoices.items():
            quantity = Decimal(sent[tenant_id])
            assert line_quantity(event) == quantity
            assert Decimal(event["invoice"]["total"]) == (quantity * Decimal("12.50") * Decimal("1.2")).quantize(
                Decimal("0.01")
            )
