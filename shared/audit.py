"""The audit trail every service writes its changes to (who, what, before / after, when).

Rows are append-only for the service role and hash-chained per tenant by a trigger (see
``db/kernel_migrations/0000_kernel_03_audit.sql``); `verify` walks the chain and names the first broken link;
`query` reads entries back filtered by entity, actor and time (``shared/audit_api.py`` serves it over HTTP).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    broken_seq: int | None
    problem: str | None


def _snapshot(value: BaseModel | dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    return value.model_dump(mode="json")


async def record(
    uow: UnitOfWork,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | UUID,
    at: datetime,
    before: BaseModel | dict[str, Any] | None = None,
    after: BaseModel | dict[str, Any] | None = None,
) -> None:
    """Append one audit row in the caller's transaction (so the change and its audit commit together)."""
    await uow.conn.execute(
        """
        INSERT INTO audit_log (tenant_id, audit_id, occurred_at, actor, action, entity_type, entity_id,
                               before, after)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        uow.require_tenant(),
        uuid.uuid4(),
        at,
        actor,
        action,
        entity_type,
        str(entity_id),
        _snapshot(before),
        _snapshot(after),
    )


async def verify(uow: UnitOfWork) -> Verification:
    row = await uow.conn.fetchrow("SELECT * FROM audit_verify($1)", uow.require_tenant())
    assert row is not None
    return Verification(ok=row["ok"], checked=row["checked"], broken_seq=row["broken_seq"], problem=row["problem"])


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries `query` returns; ``None`` means any. Times are ``[since, until)`` on ``occurred_at``."""

    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None  # keyset paging: entries after this sequence number
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    audit_id: UUID
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


def _utc(value: datetime | None) -> datetime | None:
    """A naive time (``2026-01-01`` from a query string) is read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def query(uow: UnitOfWork, f: AuditFilter) -> list[AuditEntry]:
    """The tenant's entries matching ``f``, in chain order (``seq`` ascending), at most ``f.limit``."""
    rows = await uow.conn.fetch(
        """
        SELECT seq, audit_id, occurred_at, actor, action, entity_type, entity_id, before, after, prev_hash, hash
        FROM audit_log
        WHERE tenant_id = $1
          AND ($2::text IS NULL OR entity_type = $2)
          AND ($3::text IS NULL OR entity_id = $3)
          AND ($4::text IS NULL OR actor = $4)
          AND ($5::timestamptz IS NULL OR occurred_at >= $5)
          AND ($6::timestamptz IS NULL OR occurred_at < $6)
          AND ($7::bigint IS NULL OR seq > $7)
        ORDER BY seq
        LIMIT $8
        """,
        uow.require_tenant(),
        f.entity_type,
        f.entity_id,
        f.actor,
        _utc(f.since),
        _utc(f.until),
        f.after_seq,
        f.limit,
    )
    return [
        AuditEntry(
            seq=r["seq"],
            audit_id=r["audit_id"],
            at=r["occurred_at"],
            actor=r["actor"],
            action=r["action"],
            entity_type=r["entity_type"],
            entity_id=r["entity_id"],
            before=r["before"],
            after=r["after"],
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )
        for r in rows
    ]
