"""asyncpg pools with the codecs every service needs (jsonb as Python objects; numeric stays Decimal)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

DbConnection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""A connection, whether held directly or borrowed from a pool."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10, min_size: int = 1, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs)
    assert pool is not None
    return pool
