"""The live close barrier (shared/clock/barrier.py; issue 18, item 1) against the real broker, Postgres and
services: it waits for what was published before it began, however busy the platform keeps, and names what is
still in flight when it cannot pass."""

from __future__ import annotations

import asyncio

import pytest

from shared.clock.barrier import BarrierNotPassed, CloseBarrier
from shared.clock.lag import ConsumerLagProbe
from shared.clock.outboxes import ServiceOutboxes
from shared.services import SERVICES, service
from tests.support.platform import Platform, Tenant


def barrier_of(platform: Platform) -> CloseBarrier:
    outboxes = ServiceOutboxes(urls={s.name: platform.stack.url(s) for s in SERVICES})
    return CloseBarrier(ConsumerLagProbe(platform.stack.bootstrap, outboxes=outboxes), outboxes)


@pytest.mark.slow
class TestTheCloseBarrier:
    async def test_a_record_rating_has_not_taken_holds_it_until_rating_has(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        stack = platform.stack
        stack.stop_service("rating")
        try:
            record = platform.usage(tenant, quantity="2")
            await platform.send_usage(tenant, record)
            await platform.messages(  # metering took it and relayed it: it waits for rating on its topic
                "metering.accepted.v1", where=lambda d: d.get("event_id") == record["event_id"]
            )
            with pytest.raises(BarrierNotPassed) as held:
                await barrier_of(platform).wait(timeout_s=5)
        finally:
            stack.start_service(service("rating"))
        assert "rating.accepted" in str(held.value)  # what is in flight, named
        await asyncio.to_thread(stack.wait_ready, ["rating"])
        assert await barrier_of(platform).wait(timeout_s=90) >= 0
        charged = await platform.value_as_tenant("rating", tenant, "SELECT count(*) FROM rated_records")
        assert charged == 1  # rating has it: a close now would include it

    async def test_it_passes_while_records_keep_arriving(self, platform: Platform, tenant: Tenant) -> None:
        stop = asyncio.Event()

        async def keep_publishing() -> None:
            while not stop.is_set():
                await platform.send_usage(tenant, platform.usage(tenant, quantity="1"))
                await asyncio.sleep(0.02)

        flow = asyncio.create_task(keep_publishing())
        try:
            await asyncio.sleep(1)
            waited = await barrier_of(platform).wait(timeout_s=90)  # a quiet moment never comes
            assert not flow.done()
        finally:
            stop.set()
            await flow
        print(f"close barrier passed in {waited:.1f} s under a steady stream of usage")
