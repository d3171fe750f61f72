"""Metering persistence: the catalog read model and the usage records (asyncpg, multi-row SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from services.metering.domain.acceptance import CompanyRef, ServiceRef
from shared.contracts.catalog import CompanyState, ServiceState
from shared.db.pool import DbConnection


@dataclass(frozen=True, slots=True)
class StoredRecord:
    source: str
    event_id: str
    record_id: UUID
    fingerprint: str
    status: str
    reason: str | None
    company_ref: str
    service_ref: str
    quantity: object
    occurred_at: object
    payload: dict[str, object]


class MeteringRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model -------------------------------------------------------------------
    async def tenant_known(self, tenant_id: UUID) -> bool:
        return bool(await self._conn.fetchval("SELECT 1 FROM known_tenants WHERE tenant_id = $1", tenant_id))

    async def save_tenant(self, tenant_id: UUID, version: int) -> None:
        await self._conn.execute(
            """INSERT INTO known_tenants VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE
               SET version = EXCLUDED.version WHERE known_tenants.version < EXCLUDED.version""",
            tenant_id,
            version,
        )

    async def save_company(self, c: CompanyState, version: int) -> None:
        updated = await self._conn.fetchval(
            """INSERT INTO companies VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, company_id) DO UPDATE
               SET company_ref = EXCLUDED.company_ref, version = EXCLUDED.version
               WHERE companies.version < EXCLUDED.version RETURNING 1""",
            c.tenant_id,
            c.company_id,
            c.company_ref,
            version,
        )
        if updated:
            await self._conn.execute(
                "DELETE FROM company_refs WHERE tenant_id = $1 AND company_id = $2", c.tenant_id, c.company_id
            )
            await self._conn.executemany(
                "INSERT INTO company_refs VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                [(c.tenant_id, r.source, r.ref, c.company_id) for r in c.refs],
            )

    async def save_service(self, s: ServiceState, version: int) -> None:
        await self._conn.execute(
            """INSERT INTO services VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, service_id) DO UPDATE
               SET code = EXCLUDED.code, unit = EXCLUDED.unit, service_type = EXCLUDED.service_type,
                   version = EXCLUDED.version WHERE services.version < EXCLUDED.version""",
            s.tenant_id,
            s.service_id,
            s.code,
            s.unit,
            s.service_type.value,
            version,
        )

    async def companies_by_ref(self, tenant_id: UUID, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], CompanyRef]:
        """Map (source, ref) to a client: the source's own ref first, else the client's primary ref."""
        sources = [s for s, _ in pairs]
        refs = [r for _, r in pairs]
        rows = await self._conn.fetch(
            """
            SELECT q.source, q.ref, c.company_id, c.company_ref
            FROM unnest($2::text[], $3::text[]) AS q(source, ref)
            JOIN LATERAL (
                SELECT c.company_id, c.company_ref, 0 AS pref FROM company_refs r
                  JOIN companies c ON c.tenant_id = r.tenant_id AND c.company_id = r.company_id
                 WHERE r.tenant_id = $1 AND r.source = q.source AND r.ref = q.ref
                UNION ALL
                SELECT c.company_id, c.company_ref, 1 FROM companies c
                 WHERE c.tenant_id = $1 AND c.company_ref = q.ref
                ORDER BY pref LIMIT 1
            ) c ON true
            """,
            tenant_id,
            sources,
            refs,
        )
        return {(r["source"], r["ref"]): CompanyRef(r["company_id"], r["company_ref"]) for r in rows}

    async def services_by_code(self, tenant_id: UUID, codes: set[str]) -> dict[str, ServiceRef]:
        rows = await self._conn.fetch(
            "SELECT code, service_id, unit FROM services WHERE tenant_id = $1 AND code = ANY($2::text[])",
            tenant_id,
            list(codes),
        )
        return {r["code"]: ServiceRef(r["service_id"], r["unit"]) for r in rows}

    # -- usage records ------------------------------------------------------------------------
    async def insert_new(self, tenant_id: UUID, rows: Sequence[StoredRecord]) -> set[tuple[str, str]]:
        """Insert records whose (source, event_id) is new; returns the keys that were inserted."""
        inserted = await self._conn.fetch(
            """
            INSERT INTO usage_records (tenant_id, source, event_id, record_id, fingerprint, status, reason,
                                       company_ref, service_ref, quantity, occurred_at, payload)
            SELECT $1, * FROM unnest($2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                                     $8::text[], $9::text[], $10::numeric[], $11::timestamptz[], $12::jsonb[])
            ON CONFLICT (tenant_id, source, event_id) DO NOTHING
            RETURNING source, event_id
            """,
            tenant_id,
            [r.source for r in rows],
            [r.event_id for r in rows],
            [r.record_id for r in rows],
            [r.fingerprint for r in rows],
            [r.status for r in rows],
            [r.reason for r in rows],
            [r.company_ref for r in rows],
            [r.service_ref for r in rows],
            [r.quantity for r in rows],
            [r.occurred_at for r in rows],
            [r.payload for r in rows],
        )
        return {(r["source"], r["event_id"]) for r in inserted}

    async def unmapped(self, tenant_id: UUID, limit: int = 5000) -> list[dict[str, object]]:
        rows = await self._conn.fetch(
            """SELECT payload FROM usage_records WHERE tenant_id = $1 AND status = 'unmapped'
               ORDER BY occurred_at LIMIT $2 FOR UPDATE""",
            tenant_id,
            limit,
        )
        return [r["payload"] for r in rows]

    async def set_status(self, tenant_id: UUID, source: str, event_id: str, status: str, reason: str | None) -> None:
        await self._conn.execute(
            """UPDATE usage_records SET status = $4, reason = $5
               WHERE tenant_id = $1 AND source = $2 AND event_id = $3""",
            tenant_id,
            source,
            event_id,
            status,
            reason,
        )

    async def fingerprints(self, tenant_id: UUID, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        rows = await self._conn.fetch(
            """SELECT u.source, u.event_id, u.fingerprint FROM usage_records u
               JOIN unnest($2::text[], $3::text[]) AS k(source, event_id)
                 ON u.source = k.source AND u.event_id = k.event_id
               WHERE u.tenant_id = $1""",
            tenant_id,
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["source"], r["event_id"]): r["fingerprint"] for r in rows}
