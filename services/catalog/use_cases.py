"""Catalog use cases: one function per verb, each in one unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.catalog.adapters.repository import CatalogRepository, State, entity_id_of
from services.catalog.domain import clock
from services.catalog.domain.credentials import (
    ApiKey,
    MalformedApiKey,
    hash_secret,
    new_api_key,
    parse_api_key,
    secret_matches,
)
from shared import audit, topics
from shared.auth import Principal
from shared.clock.lag import ConsumerLagProbe
from shared.contracts.catalog import CatalogEvent, Role, TenantState, UserKind, UserState
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


class UnknownUser(LookupError):
    def __init__(self, user_id: UUID) -> None:
        super().__init__(f"user {user_id} does not exist")


class InvalidCredential(Exception):
    """The API key is unknown, revoked, wrong, or its user is inactive (deliberately not saying which)."""

    def __init__(self) -> None:
        super().__init__("invalid API key")


async def mint_api_key(pool: asyncpg.Pool, *, tenant_id: UUID, user_id: UUID, actor: str, at: datetime) -> ApiKey:
    """A new API key for a user; its secret is returned once and stored only as a hash."""
    key = new_api_key(tenant_id=tenant_id, key_id=uuid.uuid4())
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.get("users", "user_id", user_id) is None:
            raise UnknownUser(user_id)
        await repo.add_api_key(key_id=key.key_id, user_id=user_id, secret_hash=hash_secret(key.secret), at=at)
        await audit.record(
            uow,
            actor=actor,
            action="api_key_created",
            entity_type="user",
            entity_id=user_id,
            at=at,
            after={"key_id": str(key.key_id)},
        )
    return key


async def bootstrap_admin(
    pool: asyncpg.Pool, *, tenant_id: UUID, email: str, name: str, actor: str, at: datetime
) -> tuple[UserState, ApiKey]:
    """The platform operator's way in to a tenant: its admin user (created if new) and an API key."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.tenant(tenant_id) is None:
            raise UnknownTenant(tenant_id)
        existing = await repo.user_by_email(email)
    user = existing or UserState(
        tenant_id=tenant_id, user_id=uuid.uuid4(), email=email, name=name, role=Role.ADMIN, kind=UserKind.STAFF
    )
    if existing is None:
        await save_entity(pool, state=user, actor=actor, at=at)
    return user, await mint_api_key(pool, tenant_id=tenant_id, user_id=user.user_id, actor=actor, at=at)


async def authenticate(pool: asyncpg.Pool, *, api_key: str) -> Principal:
    """Who an API key belongs to, checked inside that key's tenant (raises `InvalidCredential`)."""
    try:
        key = parse_api_key(api_key)
    except MalformedApiKey as exc:
        raise InvalidCredential from exc
    async with unit_of_work(pool, tenant_id=key.tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        found = await repo.api_key(key.key_id)
        if found is None or not secret_matches(key.secret, found[1]):
            raise InvalidCredential
        user: UserState | None = await repo.get("users", "user_id", found[0])
    if user is None or not user.active:
        raise InvalidCredential
    return Principal(user_id=user.user_id, tenant_id=key.tenant_id, role=user.role, company_id=user.company_id)


async def read_entity(pool: asyncpg.Pool, *, tenant_id: UUID, table: str, id_col: str, entity_id: UUID) -> Any | None:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await CatalogRepository(uow.conn).get(table, id_col, entity_id)


async def list_entities(
    pool: asyncpg.Pool, *, tenant_id: UUID, table: str, id_col: str, after: UUID | None, limit: int
) -> list[Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await CatalogRepository(uow.conn).page(table, id_col, after=after, limit=limit)
