"""Tenant-defined threshold levels (``threshold_levels`` on a plan line or a bucket), against real Postgres."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from services.rating import use_cases
from shared import topics
from shared.contracts.catalog import BucketDefinition, PlanLine, Rollover, RolloverPolicy
from shared.contracts.metering import AcceptedTime
from shared.contracts.rating import ThresholdCrossed
from shared.db.uow import unit_of_work
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


class TestBucketLevelsAreFractionsOfTheHoursAvailable:
    """A bucket's levels are percentages of the period's hours available: its allocation plus the hours rolled
    into it, counted from the entries rated so far while the periods before it are not settled yet (they are
    settled when the monthly billing period closes, long after a weekly bucket's alerts matter)."""

    async def test_hours_rolled_in_from_an_unsettled_week_raise_the_next_weeks_limit(
        self, platform: Platform, pool: asyncpg.Pool
    ) -> None:
        world = World()
        world.plan = world.plan.model_copy(
            update={
                "bucket": BucketDefinition(
                    hours=D("10"),
                    period="weekly",
                    overage_rate=D("110.00"),
                    rollover=Rollover(policy=RolloverPolicy.CARRY_UP_TO, max_hours=D("5")),
                )
            }
        )
        async with rating_tx(pool, world.tenant) as uow:
            await use_cases.project_catalog(uow, [*world.setup_events(), world.assignment_event()])

        # weeks from Thursday 1 January (the client's anchor); levels 80 % and 100 %
        # week 1: 6 h of 10 = 60 %: nothing; 10 - 6 = 4 h left, carried (at most 5)
        assert await rate_and_announce(pool, world, entry(world, day=2, hours=6)) == []
        # week 2: 4 + 5 = 9 h of 10 + 4 = 14 h = 64 %: nothing (of 10 alone it would be 90 %, past 80 %)
        assert await rate_and_announce(pool, world, entry(world, day=9, hours=4), entry(world, day=10, hours=5)) == []
        # + 3 h = 12 h of 14 = 85.7 %: 80 % (11.2 h) crossed, 100 % (14 h) not (of 10 it would be 120 %)
        assert await rate_and_announce(pool, world, entry(world, day=12, hours=3)) == [(D(80), D(14), D(12))]
        # week 3: 14 - 12 = 2 h carried, so 10 + 2 = 12 h available; 6 + 6 = 12 h = 100 %: 80 % and 100 %
        week3 = await rate_and_announce(pool, world, entry(world, day=16, hours=6), entry(world, day=17, hours=6))
        assert week3 == [(D(80), D(12), D(12)), (D(100), D(12), D(12))]
        assert await crossed_per_week(pool, world) == [
            (date(2026, 1, 8), D(80)),
            (date(2026, 1, 15), D(80)),
            (
                date(2026, 1, 15),
                D(100),
            ),
        ]


def entry(world: World, *, day: int, hours: int) -> AcceptedTime:
    e = world.time_entry(day=day)
    return e.model_copy(update={"end_time": e.start_time + timedelta(hours=hours), "hours": D(hours)})


async def rate_and_announce(
    pool: asyncpg.Pool, world: World, *records: object
) -> list[tuple[Decimal, Decimal, Decimal]]:
    """Rate a batch; the (level, limit, total) of each threshold.crossed it published."""
    async with unit_of_work(pool, tenant_id=world.tenant) as uow:
        await use_cases.rate_records(uow, [parsed(world.tenant, r) for r in records])
        events = [
            ThresholdCrossed.model_validate_json(m.payload)
            for m in uow._pending
            if m.topic == topics.RATING_THRESHOLDS.name
        ]
        uow.discard_pending()  # rating's own tenant: nothing is published
    return [(e.level_percent, e.limit, e.total) for e in events]


async def crossed_per_week(pool: asyncpg.Pool, world: World) -> list[tuple[date, Decimal]]:
    found = await rows(pool, world.tenant, "SELECT period_start, level FROM threshold_crossings ORDER BY 1, 2")
    return [(r["period_start"], r["level"]) for r in found]
