"""The unit of work: one Postgres transaction holding an effect, its inbox entries and its outbox rows.

The tenant is set per transaction with ``SET LOCAL`` (``set_config(..., true)``), so row-level security
scopes every statement; a batch that spans tenants switches tenant inside the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from shared.db.pool import DbConnection

NIL_TENANT = UUID(int=0)
"""Owner of records that belong to no tenant (e.g. a dead letter whose tenant_id could not be read)."""


class NoTenantSet(RuntimeError):
    """A tenant-scoped write was attempted before `UnitOfWork.set_tenant`."""


@dataclass(slots=True)
class OutboxMessage:
    tenant_id: UUID
    topic: str
    key: str
    payload: bytes
    message_id: UUID = field(default_factory=uuid.uuid4)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class UnitOfWork:
    conn: DbConnection
    tenant_id: UUID | None = None
    _pending: list[OutboxMessage] = field(default_factory=list)

    async def set_tenant(self, tenant_id: UUID) -> None:
        await self.flush()
        await self.conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        self.tenant_id = tenant_id

    def require_tenant(self) -> UUID:
        if self.tenant_id is None:
            raise NoTenantSet("set_tenant() must be called before tenant-scoped work")
        return self.tenant_id

    def publish(
        self,
        *,
        topic: str,
        key: str,
        message: BaseModel | bytes,
        message_id: UUID | None = None,
        headers: dict[str, str] | None = None,
    ) -> UUID:
        """Queue a message for the outbox; it is written before commit, in this transaction."""
        payload = message if isinstance(message, bytes) else message.model_dump_json().encode()
        out = OutboxMessage(
            tenant_id=self.require_tenant(),
            topic=topic,
            key=key,
            payload=payload,
            message_id=message_id or uuid.uuid4(),
            headers=headers or {},
        )
        self._pending.append(out)
        return out.message_id

    def discard_pending(self) -> None:
        """Forget queued messages (their savepoint was rolled back)."""
        self._pending.clear()

    async def flush(self) -> None:
        if not self._pending:
            return
        rows = self._pending
        self._pending = []
        await insert_outbox(self.conn, rows)


async def insert_outbox(conn: DbConnection, rows: Sequence[OutboxMessage]) -> None:
    # One multi-row statement. COPY would be faster but Postgres refuses COPY FROM into tables under
    # row-level security, and the outbox is one.
    await conn.execute(
        """
        INSERT INTO outbox (tenant_id, message_id, topic, key, payload, headers)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::jsonb[])
        """,
        [r.tenant_id for r in rows],
        [r.message_id for r in rows],
        [r.topic for r in rows],
        [r.key for r in rows],
        [r.payload for r in rows],
        [r.headers for r in rows],
    )


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, *, tenant_id: UUID | None = None) -> AsyncIterator[UnitOfWork]:
    """A transaction; the outbox is flushed just before commit. Leaving by an exception rolls back."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn=conn)
        if tenant_id is not None:
            await uow.set_tenant(tenant_id)
        yield uow
        await uow.flush()
