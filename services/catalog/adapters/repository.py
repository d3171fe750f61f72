"""Catalog persistence (asyncpg). Every statement runs inside a tenant-scoped unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts.catalog import (
    AssignmentState,
    CompanyState,
    PlanState,
    ServiceState,
    TenantState,
    UserState,
)
from shared.db.pool import DbConnection

State = TenantState | CompanyState | ServiceState | PlanState | AssignmentState | UserState
_MODELS: dict[str, Any] = {
    "companies": CompanyState,
    "services": ServiceState,
    "plans": PlanState,
    "assignments": AssignmentState,
    "users": UserState,
}


class CatalogRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def upsert(self, state: State) -> tuple[int, dict[str, Any] | None]:
        """Store the entity's state; returns its new version and its state before."""
        data = state.model_dump(mode="json")
        if isinstance(state, TenantState):
            before = await self._conn.fetchrow("SELECT * FROM tenants WHERE tenant_id = $1 FOR UPDATE", state.tenant_id)
            version = await self._conn.fetchval(
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
            return version, dict(before) if before else None
        table, id_col, entity_id, extra = _placement(state)
        before = await self._conn.fetchval(
            f"SELECT state FROM {table} WHERE tenant_id = $1 AND {id_col} = $2 FOR UPDATE",
            state.tenant_id,
            entity_id,
        )
        cols = ", ".join(extra)
        params = ", ".join(f"${i + 4}" for i in range(len(extra)))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in extra)
        version = await self._conn.fetchval(
            f"""
            INSERT INTO {table} (tenant_id, {id_col}, state{", " + cols if cols else ""})
            VALUES ($1, $2, $3{", " + params if params else ""})
            ON CONFLICT (tenant_id, {id_col}) DO UPDATE SET state = EXCLUDED.state,
                {updates + "," if updates else ""} version = {table}.version + 1
            RETURNING version
            """,
            state.tenant_id,
            entity_id,
            data,
            *extra.values(),
        )
        return version, before

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

    async def clock_now(self, tenant_id: UUID, *, lock: bool = False) -> datetime | None:
        sql = "SELECT now FROM tenant_clocks WHERE tenant_id = $1" + (" FOR UPDATE" if lock else "")
        value: datetime | None = await self._conn.fetchval(sql, tenant_id)
        return value

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

    async def get(self, table: str, id_col: str, entity_id: UUID) -> Any | None:
        """One entity's state (``table`` and ``id_col`` come from the fixed routes, never from input)."""
        doc = await self._conn.fetchval(f"SELECT state FROM {table} WHERE {id_col} = $1", entity_id)
        return _MODELS[table].model_validate(doc) if doc is not None else None

    async def page(self, table: str, id_col: str, *, after: UUID | None, limit: int) -> list[Any]:
        """Entities in id order after a cursor (keyset pagination: stable under concurrent inserts)."""
        rows = await self._conn.fetch(
            f"SELECT state FROM {table} WHERE $1::uuid IS NULL OR {id_col} > $1 ORDER BY {id_col} LIMIT $2",
            after,
            limit,
        )
        return [_MODELS[table].model_validate(r["state"]) for r in rows]

    async def user_by_email(self, email: str) -> UserState | None:
        doc = await self._conn.fetchval("SELECT state FROM users WHERE lower(email) = lower($1)", email)
        return UserState.model_validate(doc) if doc is not None else None

    async def add_api_key(self, *, key_id: UUID, user_id: UUID, secret_hash: str, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO api_keys VALUES (app_tenant(), $1, $2, $3, $4, NULL)", key_id, user_id, secret_hash, at
        )

    async def api_key(self, key_id: UUID) -> tuple[UUID, str] | None:
        row = await self._conn.fetchrow(
            "SELECT user_id, secret_hash FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id
        )
        return (row["user_id"], row["secret_hash"]) if row else None

    async def live_tenants(self) -> list[UUID]:
        return [r["tenant_id"] for r in await self._conn.fetch("SELECT tenant_id FROM live_tenants()")]


def _placement(state: State) -> tuple[str, str, UUID, dict[str, Any]]:
    if isinstance(state, CompanyState):
        return "companies", "company_id", state.company_id, {"company_ref": state.company_ref}
    if isinstance(state, ServiceState):
        return "services", "service_id", state.service_id, {"code": state.code}
    if isinstance(state, PlanState):
        return "plans", "plan_id", state.plan_id, {}
    if isinstance(state, UserState):
        return "users", "user_id", state.user_id, {"email": state.email}
    if isinstance(state, AssignmentState):
        return (
            "assignments",
            "assignment_id",
            state.assignment_id,
            {"company_id": state.company_id, "plan_id": state.plan_id},
        )
    raise TypeError(type(state))


def entity_id_of(state: State) -> UUID:
    if isinstance(state, TenantState):
        return state.tenant_id
    return _placement(state)[2]
