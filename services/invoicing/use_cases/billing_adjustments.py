"""Billing adjustments for a client's next invoice."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.use_cases.approvals import Gated, record_gated
from services.invoicing.use_cases.common import (
    NotFound,
    Refused,
    billing_time,
)
from shared.contracts.approvals import ApprovalItemType
from shared.db.uow import unit_of_work
from shared.money import round_half_up


async def create_adjustment(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    company_id: UUID,
    adjustment_id: UUID,
    amount: Decimal,
    description: str,
    actor: str,
    wall: datetime,
) -> dict[str, object]:
    """A billing adjustment for the client's next invoice (either sign, in the client's currency); over an
    approval rule (on its absolute value) it waits for the decision."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        if (existing := await repo.adjustment(adjustment_id)) is not None:
            if (existing["company_id"], existing["amount"]) != (company_id, amount):
                raise Refused(f"adjustment {adjustment_id} exists with other content", field="adjustment_id")
            return dict(existing)
        company = await repo.company(company_id)
        if company is None:
            raise NotFound(f"client {company_id} not found")
        if amount == 0 or round_half_up(amount, currency=company.currency) != amount:
            raise Refused(f"amount must be non-zero in {company.currency} minor units", field="amount", conflict=False)
        at = await billing_time(repo, wall)
        item = Gated(
            item_type=ApprovalItemType.BILLING_ADJUSTMENT,
            entity_type="adjustment",
            item_id=adjustment_id,
            amount=abs(amount),
            currency=company.currency,
            company_ref=company.company_ref,
            summary=f"Billing adjustment of {amount} {company.currency} for {company.company_ref}: {description}",
            details={"company_id": str(company_id), "signed_amount": str(amount)},
        )

        async def insert(request_id: UUID | None) -> None:
            await repo.insert_adjustment(
                adjustment_id=adjustment_id,
                company_id=company_id,
                amount=amount,
                currency=company.currency,
                description=description,
                status="awaiting_approval" if request_id else "approved",
                approval_request_id=request_id,
                at=at,
            )

        after = {"company_id": str(company_id), "amount": str(amount), "description": description}
        await record_gated(uow, repo, item, record=insert, actor=actor, action="adjustment_created", at=at, after=after)
        return dict(await repo.adjustment(adjustment_id) or {})


async def adjustments(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID) -> list[dict[str, object]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return [dict(r) for r in await InvoicingRepository(uow.conn).adjustments_of(company_id=company_id)]
