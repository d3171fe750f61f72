"""Catalog persistence (asyncpg). Every statement runs inside a tenant-scoped unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.catalog.domain.kinds import BY_TYPE, Kind
from shared.contracts.approvals import ApprovalRuleSet
from shared.contracts.catalog import CompanyState, TenantState
from shared.db.pool import DbConnection


class DuplicateValue(Exception):
    """A value the model promises is unique per tenant is taken (the field says which)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_UNIQUE_INDEXES = {
    "entities_company_ref": ("company_ref", "another client already has this company_ref"),
    "entities_service_code": ("code", "another service already has this code"),
    "entities_user_email": ("email", "another user already has this email"),
    "company_refs_pkey": ("refs", "another client already uses this source and ref"),
}


class CatalogRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- tenants --------------------------------------------------------------------------------------
    async def upsert_tenant(self, state: TenantState) -> tuple[int, dict[str, Any] | None]:
        before = await self._conn.fetchrow("SELECT * FROM tenants WHERE tenant_id = $1 FOR UPDATE", state.tenant_id)
        version: int = await self._conn.fetchval(
            """
            INSERT INTO tenants (tenant_id, name, mode, timezone, base_currency) VALUES ($1,$2,$3,$4,$5)
            ON CONFLICT (tenant_id) DO UPDATE SET name = $2, mode = $3, timezone = $4, base_currency = $5,
                version = tenants.version + 1
            RETURNING version
            """,
            state.tenant_id,
            state.name,
            state.mode.value,
            state.timezone,
            state.base_currency,
        )
        return version, {k: str(v) for k, v in dict(before).items()} if before else None

    async def tenant(self, tenant_id: UUID) -> TenantState | None:
        row = await self._conn.fetchrow("SELECT * FROM tenants WHERE tenant_id = $1", tenant_id)
        if row is None:
            return None
        return TenantState(
            tenant_id=row["tenant_id"],
            name=row["name"],
            mode=row["mode"],
            timezone=row["timezone"],
            base_currency=row["base_currency"],
        )

    async def tenant_version(self, tenant_id: UUID) -> int:
        version: int = await self._conn.fetchval("SELECT version FROM tenants WHERE tenant_id = $1", tenant_id)
        return version

    # -- entities (implements domain.rules.CatalogView) -----------------------------------------------
    async def get(self, entity_type: str, entity_id: UUID) -> Any | None:
        doc = await self._conn.fetchval(
            "SELECT state FROM entities WHERE entity_type = $1 AND entity_id = $2 AND NOT deleted",
            entity_type,
            entity_id,
        )
        return BY_TYPE[entity_type].model.model_validate(doc) if doc is not None else None

    async def find(self, entity_type: str, **equals: str) -> list[Any]:
        """Live entities of a type whose top-level state fields equal the given values."""
        rows = await self._conn.fetch(
            """SELECT state FROM entities WHERE entity_type = $1 AND NOT deleted AND state @> $2::jsonb
               ORDER BY entity_id""",
            entity_type,
            equals,
        )
        model = BY_TYPE[entity_type].model
        return [model.model_validate(r["state"]) for r in rows]

    async def page(self, kind: Kind, *, after: UUID | None, limit: int, equals: dict[str, str]) -> list[Any]:
        """Keyset pagination in id order: stable while others insert."""
        rows = await self._conn.fetch(
            """SELECT state FROM entities
               WHERE entity_type = $1 AND NOT deleted AND state @> $2::jsonb AND ($3::uuid IS NULL OR entity_id > $3)
               ORDER BY entity_id LIMIT $4""",
            kind.entity_type,
            equals,
            after,
            limit,
        )
        return [kind.model.model_validate(r["state"]) for r in rows]

    async def locked(self, kind: Kind, entity_id: UUID) -> tuple[Any | None, int]:
        """The entity's live state (None if absent or deleted) and version, locked for this transaction.

        The advisory lock serialises writers of one entity even before its row exists (FOR UPDATE locks
        nothing then), so two first saves of the same id cannot both publish version 1.
        """
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2::uuid::text, 0))",
            kind.entity_type,
            entity_id,
        )
        row = await self._conn.fetchrow(
            "SELECT state, version, deleted FROM entities WHERE entity_type = $1 AND entity_id = $2 FOR UPDATE",
            kind.entity_type,
            entity_id,
        )
        if row is None:
            return None, 0
        return (None if row["deleted"] else kind.model.model_validate(row["state"])), row["version"]

    async def store(self, kind: Kind, state: Any, *, version: int, deleted: bool = False) -> None:
        try:
            async with self._conn.transaction():
                await self._conn.execute(
                    """INSERT INTO entities (tenant_id, entity_type, entity_id, state, version, deleted)
                       VALUES (app_tenant(), $1, $2, $3, $4, $5)
                       ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE
                       SET state = EXCLUDED.state, version = EXCLUDED.version, deleted = EXCLUDED.deleted""",
                    kind.entity_type,
                    kind.entity_id(state),
                    state.model_dump(mode="json"),
                    version,
                    deleted,
                )
                if isinstance(state, CompanyState):
                    await self._store_refs(state, deleted=deleted)
        except asyncpg.UniqueViolationError as exc:
            field, message = _UNIQUE_INDEXES.get(exc.constraint_name or "", ("", str(exc)))
            raise DuplicateValue(field, message) from exc

    async def _store_refs(self, company: CompanyState, *, deleted: bool) -> None:
        await self._conn.execute("DELETE FROM company_refs WHERE company_id = $1", company.company_id)
        if not deleted and company.refs:
            await self._conn.executemany(
                "INSERT INTO company_refs VALUES (app_tenant(), $1, $2, $3)",
                [(r.source, r.ref, company.company_id) for r in company.refs],
            )

    async def everything(self) -> list[tuple[str, Any, int, bool]]:
        """Every entity of the tenant, deleted ones too, in a stable order: (type, state, version, deleted)."""
        rows = await self._conn.fetch(
            "SELECT entity_type, state, version, deleted FROM entities ORDER BY entity_type, entity_id"
        )
        return [
            (r["entity_type"], BY_TYPE[r["entity_type"]].model.model_validate(r["state"]), r["version"], r["deleted"])
            for r in rows
            if r["entity_type"] in BY_TYPE
        ]

    # -- approval rules (from approvals.rules.v1) -------------------------------------------------------
    async def approval_rules(self) -> ApprovalRuleSet | None:
        doc = await self._conn.fetchval("SELECT rule_set FROM approval_rules WHERE tenant_id = app_tenant()")
        return ApprovalRuleSet.model_validate(doc) if doc is not None else None

    async def replace_approval_rules(self, rule_set: ApprovalRuleSet) -> bool:
        """Keep ``rule_set`` when it is newer than the one held; True when it replaced it."""
        replaced = await self._conn.fetchval(
            """INSERT INTO approval_rules (tenant_id, version, rule_set) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, rule_set = EXCLUDED.rule_set
               WHERE approval_rules.version < EXCLUDED.version
               RETURNING 1""",
            rule_set.tenant_id,
            rule_set.version,
            rule_set.model_dump(mode="json"),
        )
        return replaced is not None

    # -- credentials ----------------------------------------------------------------------------------
    async def user_by_email(self, email: str) -> Any | None:
        doc = await self._conn.fetchval(
            """SELECT state FROM entities
               WHERE entity_type = 'user' AND NOT deleted AND lower(state ->> 'email') = lower($1)""",
            email,
        )
        return BY_TYPE["user"].model.model_validate(doc) if doc is not None else None

    async def add_api_key(self, *, key_id: UUID, user_id: UUID, secret_hash: str, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO api_keys VALUES (app_tenant(), $1, $2, $3, $4, NULL)", key_id, user_id, secret_hash, at
        )

    async def api_key(self, key_id: UUID) -> tuple[UUID, str] | None:
        row = await self._conn.fetchrow(
            "SELECT user_id, secret_hash FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id
        )
        return (row["user_id"], row["secret_hash"]) if row else None

    async def revoke_api_keys(self, user_id: UUID, at: datetime) -> int:
        done = await self._conn.fetch(
            "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1", user_id, at
        )
        return len(done)

    # -- the clock ------------------------------------------------------------------------------------
    async def clock_now(self, tenant_id: UUID, *, lock: bool = False) -> datetime | None:
        sql = "SELECT now FROM tenant_clocks WHERE tenant_id = $1" + (" FOR UPDATE" if lock else "")
        value: datetime | None = await self._conn.fetchval(sql, tenant_id)
        return value

    async def clock(self, tenant_id: UUID) -> tuple[datetime | None, str | None]:
        """The tenant's billing time and whether it follows the wall or a test clock (None, None: no time yet)."""
        row = await self._conn.fetchrow("SELECT now, mode FROM tenant_clocks WHERE tenant_id = $1", tenant_id)
        return (row["now"], row["mode"]) if row is not None else (None, None)

    async def set_clock(self, tenant_id: UUID, now: datetime, mode: str) -> None:
        await self._conn.execute(
            """
            INSERT INTO tenant_clocks (tenant_id, now, mode) VALUES ($1, $2, $3)
            ON CONFLICT (tenant_id) DO UPDATE SET now = $2, mode = $3
            """,
            tenant_id,
            now,
            mode,
        )

    async def live_tenants(self) -> list[UUID]:
        return [r["tenant_id"] for r in await self._conn.fetch("SELECT tenant_id FROM live_tenants()")]
