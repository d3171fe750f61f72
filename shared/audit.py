"""The audit trail every service writes its changes to (who, what, before / after, when).

Rows are append-only for the service role and hash-chained per tenant by a trigger (see
``db/kernel_migrations/0000_kernel_03_audit.sql``); `verify` walks the chain and names the first broken link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
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
