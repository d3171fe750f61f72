"""Integration-tier fixtures: SQL as each role against the real database of the session stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.db.pool import create_pool
from shared.services import SERVICES, service
from tests.support.platform import Platform

SERVICE_NAMES = tuple(s.name for s in SERVICES)
POLL_TIMEOUT_S = 60.0

AppPool = Callable[[str], Awaitable[asyncpg.Pool]]


@asynccontextmanager
async def as_tenant(conn: asyncpg.Connection, tenant_id: UUID | str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction scoped to one tenant, exactly as `shared.db.uow.UnitOfWork.set_tenant` scopes it."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        yield conn


async def rows_as_tenant(conn: asyncpg.Connection, tenant_id: UUID | str, query: str, *args: Any) -> list[Any]:
    async with as_tenant(conn, tenant_id):
        return list(await conn.fetch(query, *args))


@pytest.fixture
async def admin(platform: Platform) -> AsyncIterator[asyncpg.Connection]:
    """The superuser (bypasses row-level security), on database ``billing``."""
    conn = await platform.connect("catalog", admin=True)
    yield conn
    await conn.close()


@pytest.fixture
async def app_conn(platform: Platform) -> AsyncIterator[Callable[[str], Awaitable[asyncpg.Connection]]]:
    """Open connections as ``<svc>_app``; all are closed after the test."""
    opened: list[asyncpg.Connection] = []

    async def connect(service_name: str) -> asyncpg.Connection:
        conn = await platform.connect(service_name)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.close()


@pytest.fixture(scope="session")
async def app_pool(platform: Platform) -> AsyncIterator[AppPool]:
    """Pools as ``<svc>_app`` with the services' codecs (what `shared.db.uow.unit_of_work` expects)."""
    pools: dict[str, asyncpg.Pool] = {}

    async def get(service_name: str) -> asyncpg.Pool:
        if service_name not in pools:
            pools[service_name] = await create_pool(platform.stack.dsn(service(service_name)), min_size=1, max_size=2)
        return pools[service_name]

    yield get
    for pool in pools.values():
        await pool.close()
