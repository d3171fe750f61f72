"""Invoicing persistence (asyncpg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from shared.contracts.catalog import CatalogEvent, CompanyState, TenantState
from shared.contracts.invoices import Invoice
from shared.contracts.rating import ChargeCreated
from shared.db.pool import DbConnection


class InvoicingRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def save_catalog(self, event: CatalogEvent) -> None:
        state = event.state
        if isinstance(state, TenantState):
            await self._conn.execute(
                """INSERT INTO tenants VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE
                   SET livemode = EXCLUDED.livemode, timezone = EXCLUDED.timezone, version = EXCLUDED.version
                   WHERE tenants.version < EXCLUDED.version""",
                state.tenant_id,
                state.mode == "live",
                state.timezone,
                event.version,
            )
        elif isinstance(state, CompanyState):
            await self._conn.execute(
                """INSERT INTO companies VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, company_id) DO UPDATE
                   SET state = EXCLUDED.state, version = EXCLUDED.version
                   WHERE companies.version < EXCLUDED.version""",
                state.tenant_id,
                state.company_id,
                state.model_dump(mode="json"),
                event.version,
            )

    async def livemode(self, tenant_id: UUID) -> bool | None:
        value: bool | None = await self._conn.fetchval("SELECT livemode FROM tenants WHERE tenant_id = $1", tenant_id)
        return value

    async def timezone(self, tenant_id: UUID) -> str | None:
        value: str | None = await self._conn.fetchval("SELECT timezone FROM tenants WHERE tenant_id = $1", tenant_id)
        return value

    async def company(self, company_id: UUID) -> CompanyState | None:
        doc = await self._conn.fetchval("SELECT state FROM companies WHERE company_id = $1", company_id)
        return CompanyState.model_validate(doc) if doc else None

    async def save_charges(self, charges: Sequence[ChargeCreated]) -> None:
        await self._conn.execute(
            """INSERT INTO charges SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[],
                                                       $5::date[], $6::jsonb[])
               ON CONFLICT DO NOTHING""",
            [c.tenant_id for c in charges],
            [c.charge_id for c in charges],
            [c.company_id for c in charges],
            [c.period_start for c in charges],
            [c.period_end for c in charges],
            [c.model_dump(mode="json") for c in charges],
        )

    async def charges_of(self, company_id: UUID, start: date, end: date) -> list[ChargeCreated]:
        rows = await self._conn.fetch(
            """SELECT document FROM charges WHERE company_id = $1 AND period_start = $2 AND period_end = $3
               ORDER BY charge_id""",
            company_id,
            start,
            end,
        )
        return [ChargeCreated.model_validate(r["document"]) for r in rows]

    async def claim_invoice(self, invoice_id: UUID, company_id: UUID, start: date, end: date) -> bool:
        """Reserve the client's invoice for the period; False if it already exists (a repeated run)."""
        claimed = await self._conn.fetchval(
            """INSERT INTO invoices (tenant_id, invoice_id, company_id, period_start, period_end, status)
               VALUES (app_tenant(), $1, $2, $3, $4, 'held')
               ON CONFLICT (tenant_id, company_id, period_start, period_end) DO NOTHING RETURNING 1""",
            invoice_id,
            company_id,
            start,
            end,
        )
        return bool(claimed)

    async def next_number(self, yymm: str) -> int:
        value: int = await self._conn.fetchval(
            """INSERT INTO invoice_numbers VALUES (app_tenant(), $1, 1) ON CONFLICT (tenant_id, yymm)
               DO UPDATE SET last = invoice_numbers.last + 1 RETURNING last""",
            yymm,
        )
        return value

    async def finalize(self, invoice: Invoice) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = 'finalized', invoice_number = $2, document = $3, held_reason = NULL
               WHERE invoice_id = $1""",
            invoice.invoice_id,
            invoice.invoice_number,
            invoice.model_dump(mode="json"),
        )

    async def hold(self, invoice_id: UUID, reason: str) -> None:
        await self._conn.execute(
            "UPDATE invoices SET status = 'held', held_reason = $2 WHERE invoice_id = $1", invoice_id, reason
        )
