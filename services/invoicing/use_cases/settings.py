"""Invoicing settings: whether catalog prices include tax, for the tenant and per client."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.invoicing.adapters.repository import TENANT_DEFAULT, InvoicingRepository
from services.invoicing.use_cases.common import NotFound, Refused, billing_time
from shared import audit
from shared.db.uow import unit_of_work


async def set_tax_inclusive(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    company_id: UUID | None,
    tax_inclusive: bool | None,
    actor: str,
    wall: datetime,
) -> dict[str, object]:
    """The tenant's default (``company_id`` None) or a client's own setting (None: follow the tenant's).
    It applies to drafts asking for their taxes from now on; issued invoices never change."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        if company_id is None and tax_inclusive is None:
            raise Refused("the tenant's default is true or false", field="tax_inclusive", conflict=False)
        if company_id is not None and await repo.company(company_id) is None:
            raise NotFound(f"client {company_id} not found")
        at = await billing_time(repo, wall)
        key = company_id or TENANT_DEFAULT
        before = await repo.save_tax_inclusive(tenant_id, key, tax_inclusive, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="invoice_settings_changed",
            entity_type="company" if company_id else "tenant",
            entity_id=company_id or tenant_id,
            at=at,
            before={"tax_inclusive": before},
            after={"tax_inclusive": tax_inclusive},
        )
        effective = await repo.tax_inclusive(key)
    return {"company_id": company_id, "tax_inclusive": tax_inclusive, "effective_tax_inclusive": effective}


async def tax_settings(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID) -> dict[str, object]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        own: bool | None = await uow.conn.fetchval(
            "SELECT tax_inclusive FROM invoice_settings WHERE company_id = $1", company_id
        )
        return {
            "company_id": company_id,
            "tax_inclusive": own,
            "effective_tax_inclusive": await repo.tax_inclusive(company_id),
        }
