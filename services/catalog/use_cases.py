"""Catalog use cases: one function per verb, each in one unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from services.catalog.adapters.repository import CatalogRepository, State, entity_id_of
from services.catalog.domain import clock
from shared import audit, topics
from shared.clock.lag import ConsumerLagProbe
from shared.contracts.catalog import CatalogEvent, TenantState
from shared.contracts.clock import ClockTick
from shared.db.uow import UnitOfWork, unit_of_work


class UnknownTenant(LookupError):
    def __init__(self, tenant_id: UUID) -> None:
        super().__init__(f"tenant {tenant_id} does not exist")


async def save_entity(pool: asyncpg.Pool, *, state: State, actor: str, at: datetime) -> CatalogEvent:
    """Create or change a catalog entity, audit it and publish its new state."""
    async with unit_of_work(pool, tenant_id=state.tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        version, before = await repo.upsert(state)
        entity_id = entity_id_of(state)
        event = CatalogEvent(
            event_id=uuid.uuid4(),
            tenant_id=state.tenant_id,
            entity_type=state.entity_type,
            entity_id=entity_id,
            version=version,
            occurred_at=at,
            state=state,
        )
        uow.publish(topic=topics.CATALOG_EVENTS.name, key=event.key(), message=event, message_id=event.event_id)
        await audit.record(
            uow,
            actor=actor,
            action="created" if before is None else "updated",
            entity_type=state.entity_type,
            entity_id=entity_id,
            at=at,
            before=_jsonable(before),
            after=state,
        )
        if isinstance(state, TenantState) and before is None:
            await _start_clock(uow, repo, state, at)
        return event


async def _start_clock(uow: UnitOfWork, repo: CatalogRepository, tenant: TenantState, at: datetime) -> None:
    # Live tenants follow the wall clock from now. A sandbox's test clock has no time until its first
    # advance, so an operator can rehearse any month, past or future.
    if tenant.mode == "live":
        await repo.set_clock(tenant.tenant_id, at, "wall")


def _jsonable(before: dict[str, object] | None) -> dict[str, object] | None:
    if before is None:
        return None
    return {
        k: (str(v) if not isinstance(v, (str, int, float, bool, dict, list, type(None))) else v)
        for k, v in before.items()
    }


async def advance_test_clock(
    pool: asyncpg.Pool,
    lag: ConsumerLagProbe,
    *,
    tenant_id: UUID,
    to: datetime,
    actor: str,
    at: datetime,
    timeout_s: float,
) -> tuple[ClockTick, float]:
    """Move a sandbox tenant's billing time to ``to`` once every consumer has caught up.

    Returns the tick and how long it waited for consumers.
    """
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tenant = await repo.tenant(tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        clock.advance(tenant_id=tenant_id, mode=tenant.mode, current=await repo.clock_now(tenant_id), to=to)
    waited = await lag.wait_until_settled(timeout_s=timeout_s)
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tick = clock.advance(
            tenant_id=tenant_id, mode=tenant.mode, current=await repo.clock_now(tenant_id, lock=True), to=to
        )
        await repo.set_clock(tenant_id, to, "test")
        uow.publish(topic=topics.CLOCK_TICKS.name, key=tick.key(), message=tick, message_id=tick.tick_id)
        await audit.record(
            uow,
            actor=actor,
            action="clock_advanced",
            entity_type="tenant_clock",
            entity_id=tenant_id,
            at=at,
            before={"now": _iso(tick.previous)},
            after={"now": tick.now.isoformat()},
        )
    return tick, waited


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def tick_live_tenants(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Publish a wall-clock tick for every live tenant (the scheduler calls this)."""
    async with unit_of_work(pool) as uow:
        tenants = await CatalogRepository(uow.conn).live_tenants()
    for tenant_id in tenants:
        async with unit_of_work(pool, tenant_id=tenant_id) as uow:
            repo = CatalogRepository(uow.conn)
            tick = clock.wall_tick(tenant_id=tenant_id, current=await repo.clock_now(tenant_id, lock=True), now=now)
            await repo.set_clock(tenant_id, now, "wall")
            uow.publish(topic=topics.CLOCK_TICKS.name, key=tick.key(), message=tick, message_id=tick.tick_id)
    return len(tenants)
