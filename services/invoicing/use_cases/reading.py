"""Reading: lists, the drill-down, PDFs, the account, the preview."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.adapters import documents
from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.building import invoice_id_for
from services.invoicing.domain.pricing import (
    apply_discounts,
    converted,
    draft_lines,
)
from services.invoicing.domain.quoting import Work
from services.invoicing.use_cases.common import (
    NotFound,
    document_of,
)
from shared.contracts.rating import ChargeCreated
from shared.db.uow import unit_of_work
from shared.money import round_half_up


async def list_invoices(
    pool: asyncpg.Pool, *, tenant_id: UUID, status: str | None, company_id: UUID | None, limit: int, after: str | None
) -> list[dict[str, object]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        rows = await InvoicingRepository(uow.conn).invoices(
            status=status, company_id=company_id, limit=limit, after=after
        )
        return [dict(r) for r in rows]


async def invoice_detail(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID) -> dict[str, object]:
    """The invoice with each line's charges and their source records, payments, credit notes, pinned rows."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await repo.invoice_row(invoice_id)
        if row is None:
            raise NotFound(f"invoice {invoice_id} not found")
        charges = await repo.line_charges(invoice_id)
        work = Work.model_validate(row["work"]) if row["work"] else None
        discounts = {
            p.line.line_id: [d.model_dump(mode="json") for d in p.discounts] for p in (work.priced if work else [])
        }
        return {
            "row": dict(row),
            "charges": charges,
            "discounts": discounts,
            "payments": [dict(p) for p in await repo.payments_of(invoice_id)],
            "credit_notes": [dict(c) for c in await repo.credit_notes_of(invoice_id)],
            "adjustments": [dict(a) for a in await repo.adjustments_of(invoice_id=invoice_id)],
        }


async def invoice_pdf_bytes(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID) -> tuple[str, bytes]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        row = await InvoicingRepository(uow.conn).invoice_row(invoice_id)
        if row is None:
            raise NotFound(f"invoice {invoice_id} not found")
        invoice = document_of(row)
        return f"{invoice.invoice_number}.pdf", documents.invoice_pdf(invoice)


async def account(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID) -> dict[str, object]:
    """The client's balance (what it owes), available credit and transaction history."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        owed, credit = await repo.balance(company_id)
        return {
            "balance": owed,
            "credit_available": credit,
            "transactions": [dict(r) for r in await repo.history(company_id)],
        }


async def preview(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID) -> list[dict[str, object]]:
    """What the client's next invoice(s) hold so far, from the charges invoicing already has for periods not
    yet invoiced: lines with their discounts and nets. Not taxed (taxes are quoted by tax-currency for drafts
    only, over topics); lines in another currency than the client's are shown unconverted for the same reason."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        company = await repo.company(company_id)
        if company is None:
            raise NotFound(f"client {company_id} not found")
        charges = await repo.open_charges(company_id)
        discounts = await repo.discounts()
    periods: dict[tuple[date, date], list[ChargeCreated]] = {}
    for c in charges:
        periods.setdefault((c.period_start, c.period_end), []).append(c)
    out: list[dict[str, object]] = []
    for (start, end), group in sorted(periods.items()):
        lines = draft_lines(
            invoice_id_for(tenant_id, company_id, start, end), group, discounts=discounts, company_id=company_id
        )
        same = [x for x in lines if x.currency == company.currency]
        priced = apply_discounts(
            converted(same, {}, company.currency), discounts, company_id=company_id, currency=company.currency
        )
        zero = round_half_up(Decimal(0), currency=company.currency)
        out.append(
            {
                "period_start": start,
                "period_end": end,
                "currency": company.currency,
                "lines": [
                    {
                        "line_id": p.line.line_id,
                        "kind": p.line.kind,
                        "service_ref": p.line.service_ref,
                        "description": p.line.description,
                        "quantity": p.line.quantity,
                        "unit_price": p.unit_price,
                        "amount": p.amount,
                        "discount_amount": p.discount_amount,
                        "net_amount": p.net_amount,
                        "discounts": [d.model_dump(mode="json") for d in p.discounts],
                        "charges": len(p.line.charge_ids),
                    }
                    for p in priced
                ],
                "subtotal": sum((p.amount for p in priced), zero),
                "discount_total": sum((p.discount_amount for p in priced), zero),
                "net_total": sum((p.net_amount for p in priced), zero),
                "tax": "quoted at finalization",
                "unconverted": [
                    {"currency": x.currency, "description": x.description, "amount": x.amount}
                    for x in lines
                    if x.currency != company.currency
                ],
            }
        )
    return out
