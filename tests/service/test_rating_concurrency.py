"""Rating's consumers against the stack's real Postgres, interleaved by hand.

Rating has three consumers per tenant (accepted records, catalog events, clock ticks) that run concurrently
in their own transactions. A record that arrives before the catalog entities that price it is parked and
re-rated when the catalog changes; a record of a period being closed must be either in the close or late.
These specs hold a transaction open at the dangerous point and run the other consumer against it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.rating import use_cases
from shared.contracts.catalog import (
    AssignmentState,
    CatalogEvent,
    CompanyState,
    PlanLine,
    PlanState,
    ServiceState,
    TenantState,
)
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.db.pool import create_pool
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.envelope import Envelope, Parsed
from shared.services import service
from tests.support.platform import Platform

D = Decimal


@pytest.fixture
async def pool(platform: Platform) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(platform.stack.dsn(service("rating")), max_size=4)
    yield p
    await p.close()


@asynccontextmanager
async def rating_tx(pool: asyncpg.Pool, tenant: UUID) -> AsyncIterator[UnitOfWork]:
    """A rating transaction whose effects are kept but whose messages are not published: these tenants exist
    only in rating's tables, so the stack's other services (invoicing waiting for a client it will never
    hear of) must not receive their charges."""
    async with unit_of_work(pool, tenant_id=tenant) as uow:
        yield uow
        uow.discard_pending()


def parsed(tenant_id: UUID, body: Any) -> Parsed[Any]:
    return Parsed(Envelope("test", 0, 0, None, b"", {}), tenant_id, body)


class World:
    """A tenant of rating's own (catalog never hears of it): one client, one service, one plan."""

    def __init__(self, *, service_type: str = "Time", line: PlanLine | None = None) -> None:
        self.tenant = uuid.uuid4()
        self.company = CompanyState(
            tenant_id=self.tenant,
            company_id=uuid.uuid4(),
            company_ref="acme",
            name="Acme Dental",
            region="GB",
            currency="GBP",
            billing_anchor=date(2026, 1, 1),
        )
        self.service = ServiceState(
            tenant_id=self.tenant,
            service_id=uuid.uuid4(),
            code="helpdesk",
            name="Helpdesk",
            service_type=service_type,
            default_rate=D("80.00"),
            currency="GBP",
            unit="hour" if service_type == "Time" else "GB",
        )
        self.plan = PlanState(
            tenant_id=self.tenant,
            plan_id=uuid.uuid4(),
            name="Support",
            plan_type="hybrid",
            billing_frequency="monthly",
            currency="GBP",
            lines=[line or PlanLine(service_id=self.service.service_id, custom_rate=D("120.00"))],
        )
        self.assignment = AssignmentState(
            tenant_id=self.tenant,
            assignment_id=uuid.uuid4(),
            company_id=self.company.company_id,
            plan_id=self.plan.plan_id,
            start_date=date(2026, 1, 1),
        )

    def event(self, state: Any, entity_id: UUID) -> Parsed[CatalogEvent]:
        return parsed(
            self.tenant,
            CatalogEvent(
                event_id=uuid.uuid4(),
                tenant_id=self.tenant,
                entity_type=state.entity_type,
                entity_id=entity_id,
                version=1,
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                state=state,
            ),
        )

    def setup_events(self) -> list[Parsed[CatalogEvent]]:
        tenant = TenantState(
            tenant_id=self.tenant, name="Northwind", mode="sandbox", timezone="UTC", base_currency="GBP"
        )
        return [
            self.event(tenant, self.tenant),
            self.event(self.company, self.company.company_id),
            self.event(self.service, self.service.service_id),
            self.event(self.plan, self.plan.plan_id),
        ]

    def assignment_event(self) -> Parsed[CatalogEvent]:
        return self.event(self.assignment, self.assignment.assignment_id)

    def time_entry(self, day: int = 5) -> AcceptedTime:
        rid = uuid.uuid4()
        return AcceptedTime(
            record_id=rid,
            tenant_id=self.tenant,
            source="connectwise",
            entry_id=f"cw-{rid.hex[:8]}",
            company_id=self.company.company_id,
            company_ref=self.company.company_ref,
            service_id=self.service.service_id,
            service_ref=self.service.code,
            user_ref="tech.jane",
            start_time=datetime(2026, 1, day, 9, tzinfo=UTC),
            end_time=datetime(2026, 1, day, 10, tzinfo=UTC),
            hours=D("1"),
            billable=True,
        )

    def usage(self, quantity: str, day: int = 20) -> AcceptedUsage:
        rid = uuid.uuid4()
        return AcceptedUsage(
            record_id=rid,
            tenant_id=self.tenant,
            source="ninjaone",
            event_id=f"evt-{rid.hex[:8]}",
            company_id=self.company.company_id,
            company_ref=self.company.company_ref,
            service_id=self.service.service_id,
            service_ref=self.service.code,
            kind="delta",
            quantity=D(quantity),
            unit="GB",
            occurred_at=datetime(2026, 1, day, 12, tzinfo=UTC),
        )

    def tick(self, now: datetime, previous: datetime | None = None) -> Parsed[ClockTick]:
        return parsed(
            self.tenant,
            ClockTick(
                tick_id=uuid.uuid4(), tenant_id=self.tenant, now=now, previous=previous, mode="test", livemode=False
            ),
        )


async def rows(pool: asyncpg.Pool, tenant: UUID, query: str, *args: Any) -> list[asyncpg.Record]:
    async with unit_of_work(pool, tenant_id=tenant) as uow:
        return list(await uow.conn.fetch(query, *args))


async def blocked_or_done(platform: Platform, task: Awaitable[Any]) -> None:
    """Return once ``task`` has finished, or is waiting for a lock another transaction holds."""
    admin = await platform.connect("rating", admin=True)
    try:
        fut = asyncio.ensure_future(task)
        while not fut.done():
            waiting = await admin.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if waiting:
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


class TestParkedRecordsAreNeverLost:
    async def test_a_record_parked_while_its_plan_arrives_concurrently_is_rated_by_the_catalog_consumer(
        self, platform: Platform, pool: asyncpg.Pool
    ) -> None:
        world = World()
        async with rating_tx(pool, world.tenant) as uow:
            await use_cases.project_catalog(uow, world.setup_events())  # everything but the assignment
        entry = world.time_entry()

        rating_may_commit = asyncio.Event()
        parked = asyncio.Event()

        async def rate() -> None:
            async with rating_tx(pool, world.tenant) as uow:
                await use_cases.rate_records(uow, [parsed(world.tenant, entry)])  # no plan yet: parked
                parked.set()
                await rating_may_commit.wait()

        async def project_assignment() -> None:
            async with rating_tx(pool, world.tenant) as uow:
                await use_cases.project_catalog(uow, [world.assignment_event()])

        rating = asyncio.create_task(rate())
        await parked.wait()
        catalog = asyncio.create_task(project_assignment())
        await blocked_or_done(platform, asyncio.shield(catalog))  # it must not re-rate before the park commits
        rating_may_commit.set()
        await asyncio.gather(rating, catalog)

        # 1 h (09:00 to 10:00) x 120.00 custom rate
        [charge] = await rows(pool, world.tenant, "SELECT amount FROM charges")
        assert charge["amount"] == D("120.00")
        assert await rows(pool, world.tenant, "SELECT record_id FROM unrated_records") == []


class TestAClosingPeriodWaitsForRecordsInFlight:
    async def test_a_usage_record_committed_while_its_period_closes_is_priced_in_that_close(
        self, platform: Platform, pool: asyncpg.Pool
    ) -> None:
        line = PlanLine(service_id=uuid.UUID(int=0), included_quantity=D("10"), custom_rate=D("5.00"))
        world = World(service_type="Usage", line=line)
        world.plan.lines[0] = line.model_copy(update={"service_id": world.service.service_id})
        async with rating_tx(pool, world.tenant) as uow:
            await use_cases.project_catalog(uow, [*world.setup_events(), world.assignment_event()])
        record = world.usage("14")

        rating_may_commit = asyncio.Event()
        deferred = asyncio.Event()

        async def rate() -> None:
            async with rating_tx(pool, world.tenant) as uow:
                await use_cases.rate_records(uow, [parsed(world.tenant, record)])  # priced at the close
                deferred.set()
                await rating_may_commit.wait()

        async def close() -> None:
            async with rating_tx(pool, world.tenant) as uow:
                await use_cases.close_periods(uow, [world.tick(datetime(2026, 2, 1, tzinfo=UTC))])

        rating = asyncio.create_task(rate())
        await deferred.wait()
        closing = asyncio.create_task(close())
        await blocked_or_done(platform, asyncio.shield(closing))
        rating_may_commit.set()
        await asyncio.gather(rating, closing)

        # 14 GB - 10 included = 4 GB x 5.00, charged in January's close (not late, not lost)
        charges = await rows(pool, world.tenant, "SELECT amount, period_start, document FROM charges")
        assert [(c["amount"], c["period_start"]) for c in charges] == [(D("20.00"), date(2026, 1, 1))]
        [period] = await rows(pool, world.tenant, "SELECT status, charge_count FROM billing_periods")
        assert (period["status"], period["charge_count"]) == ("closed", 1)
