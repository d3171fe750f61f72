"""A named lease among a service's replicas: exactly one holds it at a time, and another takes it over within
about a second when the holder stops or dies.

The lease is a session-level advisory lock held on a dedicated connection. Postgres releases it when that
session ends, so a holder that is SIGKILLed, or whose connection breaks, gives it up without any expiry to
wait out; a replica waiting for it polls once a second. The holder checks its connection before each unit of
leased work (`Lease.still_held`), so it never acts on a lease it lost with its connection.

Used by the outbox relay (one relay per schema) and catalog's wall-clock scheduler (one ticker per platform).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from shared.db.pool import DbConnection


@dataclass(slots=True)
class Lease:
    name: str
    conn: DbConnection

    async def still_held(self) -> None:
        """Raise (the connection's own error) when the session holding the lease is gone."""
        await self.conn.fetchval("SELECT 1")


@asynccontextmanager
async def leased(pool: asyncpg.Pool, name: str, *, poll_s: float = 1.0) -> AsyncIterator[Lease]:
    """Wait until this process holds the lease ``name``, then hold it for the block."""
    async with pool.acquire() as conn:
        # Another replica holds it while its session lives; poll to take over when it goes away.
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):  # noqa: ASYNC110
            await asyncio.sleep(poll_s)
        try:
            yield Lease(name, conn)
        finally:
            with contextlib.suppress(Exception):  # a broken session has released it already
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
