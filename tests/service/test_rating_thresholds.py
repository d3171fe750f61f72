"""Tenant-defined threshold levels (``threshold_levels`` on a plan line or a bucket), against real Postgres."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from services.rating import use_cases
from shared.contracts.catalog import BucketDefinition, PlanLine
from tests.service.test_rating_concurrency import World, parsed, rating_tx, rows
from tests.service.test_rating_concurrency import pool as pool  # the fixture
from tests.support.platform import Platform

D = Decimal


async def crossed(pool: asyncpg.Pool, world: World) -> list[Decimal]:
    found = await rows(pool, world.tenant, "SELECT level FROM threshold_crossings ORDER BY level")
    return [r["level"] for r in found]


async def rate(pool: asyncpg.Pool, world: World, *records: object) -> None:
    async with rating_tx(pool, world.tenant) as uow:
        await use_cases.rate_records(uow, [parsed(world.tenant, r) for r in records])


class TestTenantDefinedLevels:
    async def test_a_usage_line_announces_its_own_levels_of_its_included_quantity_instead_of_80_and_100(
        self, platform: Platform, pool: asyncpg.Pool
    ) -> None:
        world = World(service_type="Usage")
        world.plan.lines[0] = PlanLine(
            service_id=world.service.service_id,
            included_quantity=D("10"),
            custom_rate=D("5.00"),
            threshold_levels=[D("50"), D("90"), D("120")],
        )
        async with rating_tx(pool, world.tenant) as uow:
            await use_cases.project_catalog(uow, [*world.setup_events(), world.assignment_event()])

        await rate(pool, world, world.usage("6", day=5))  # 6 of 10 = 60 %: 50 crossed
        assert await crossed(pool, world) == [D(50)]
        await rate(pool, world, world.usage("2", day=6))  # 8 = 80 %: nothing (80 is not one of its levels)
        assert await crossed(pool, world) == [D(50)]
        await rate(pool, world, world.usage("5", day=7))  # 13 = 130 %: 90 and 120 crossed
        assert await crossed(pool, world) == [D(50), D(90), D(120)]

    async def test_a_bucket_announces_its_own_levels_of_its_hours(self, platform: Platform, pool: asyncpg.Pool) -> None:
        world = World()
        world.plan = world.plan.model_copy(
            update={
                "bucket": BucketDefinition(
                    hours=D("10"), period="monthly", overage_rate=D("110.00"), threshold_levels=[D("25")]
                )
            }
        )
        async with rating_tx(pool, world.tenant) as uow:
            await use_cases.project_catalog(uow, [*world.setup_events(), world.assignment_event()])

        await rate(pool, world, world.time_entry(day=5), world.time_entry(day=6))  # 2 h of 10 = 20 %: none
        assert await crossed(pool, world) == []
        await rate(pool, world, world.time_entry(day=7))  # 3 h = 30 %: 25 crossed (and not 80)
        assert await crossed(pool, world) == [D(25)]
