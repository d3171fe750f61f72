"""The invoice lifecycle after it is built: retry, cancel, sent / viewed / disputed, void, overdue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.adapters import documents
from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain import links
from services.invoicing.use_cases.build import requote
from services.invoicing.use_cases.common import (
    CREDIT_NOTE_DRAFT_LIFETIME,
    ISSUED,
    PAYABLE,
    NotFound,
    Refused,
    billing_time,
    document_of,
    entry,
    locked_invoice,
    notify,
    publish_event,
    restated,
)
from shared import audit
from shared.auth import Permission, Principal
from shared.contracts.catalog import Role
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import (
    Invoice,
    InvoiceEventType,
)
from shared.contracts.invoicing import NoticeType
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed
from shared.periods import local_date


async def retry_held(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, actor: str, wall: datetime) -> str:
    """Ask tax-currency again for a held invoice (after an operator fixed a rate): a new attempt, new ids.
    (Held for a missing rate, it is also retried by itself when tax-currency announces ``rates.changed``.)"""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await locked_invoice(repo, invoice_id)
        await requote(uow, repo, row, actor=actor, at=await billing_time(repo, wall))
        status: str = await uow.conn.fetchval("SELECT status FROM invoices WHERE invoice_id = $1", invoice_id)
        return status


async def cancel_draft(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, actor: str, wall: datetime) -> None:
    """A draft (held or still being quoted) is abandoned: cancelled, no number spent."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await locked_invoice(repo, invoice_id)
        if row["status"] not in ("draft", "held", "awaiting_conversion", "awaiting_tax"):
            raise Refused(f"invoice {invoice_id} is {row['status']}: only a draft is cancelled (void a finalized one)")
        at = await billing_time(repo, wall)
        await repo.cancel(invoice_id, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="invoice_cancelled",
            entity_type="invoice",
            entity_id=invoice_id,
            at=at,
            before={"status": row["status"]},
            after={"status": "cancelled"},
        )
        notify(
            uow,
            row,
            NoticeType.CANCELLED,
            invoice=None,
            company=await repo.company(row["company_id"]),
            at=at,
            status="cancelled",
        )


async def mark(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    step: str,
    actor: str,
    wall: datetime,
    reason: str | None = None,
) -> Invoice:
    """sent (delivered), viewed (opened by the client), disputed (with a reason)."""
    allowed = {
        "sent": ("finalized", "overdue"),
        "viewed": ("finalized", "sent", "overdue"),
        "disputed": ("finalized", "sent", "viewed", "partially_paid", "overdue"),
    }[step]
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await locked_invoice(repo, invoice_id)
        invoice = document_of(row)
        if row["status"] == step:
            return invoice  # repeated: nothing changes
        at = await billing_time(repo, wall)
        if row["status"] not in allowed:
            if step == "viewed" and row["status"] in ISSUED:
                return invoice  # viewing a paid or disputed invoice changes nothing
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it cannot become {step}")
        # an overdue invoice stays overdue when sent or viewed again
        status = "overdue" if row["status"] == "overdue" and step != "disputed" else step
        invoice = restated(
            invoice, status=status, credits_applied=row["credits_applied"], amount_paid=row["amount_paid"]
        )
        by_step: dict[str, dict[str, object]] = {
            "sent": {"sent_at": at},
            "viewed": {"viewed_at": at},
            "disputed": {"disputed_reason": reason},
        }
        columns = by_step[step]
        await repo.save_state(invoice, status=status, at=at, **columns)
        await audit.record(
            uow,
            actor=actor,
            action=f"invoice_{step}",
            entity_type="invoice",
            entity_id=invoice_id,
            at=at,
            before={"status": row["status"]},
            after={"status": status, "reason": reason},
        )
        notice = {"sent": NoticeType.SENT, "viewed": NoticeType.VIEWED, "disputed": NoticeType.DISPUTED}[step]
        notify(
            uow,
            row,
            notice,
            invoice=invoice,
            company=await repo.company(row["company_id"]),
            at=at,
            detail=reason,
            status=status,
        )
        return invoice


async def void(
    pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, actor: str, reason: str, wall: datetime
) -> Invoice:
    """Annul a finalized invoice: it keeps its number, its total leaves the balance, applied credit returns."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await locked_invoice(repo, invoice_id)
        invoice = document_of(row)
        if row["status"] not in PAYABLE:
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it cannot be voided")
        if row["amount_paid"] > 0:
            raise Refused(f"invoice {row['invoice_number']} has payments: refund them before voiding it")
        at = await billing_time(repo, wall)
        credits = invoice.credits_applied
        voided = restated(invoice, status="void", credits_applied=invoice.credits_applied, amount_paid=Decimal(0))
        await repo.save_state(voided, status="void", at=at)
        await repo.record(
            entry(
                row,
                "void",
                invoice.total,
                balance=-invoice.total,
                credit=credits,
                currency=invoice.currency,
                reference=invoice_id,
                description=f"Void {invoice.invoice_number}: {reason}",
                at=at,
            )
        )
        event = publish_event(
            uow,
            row,
            InvoiceEventType.INVOICE_VOIDED,
            about=invoice_id,
            at=at,
            invoice=voided,
        )
        notify(
            uow,
            row,
            NoticeType.VOIDED,
            invoice=voided,
            company=await repo.company(row["company_id"]),
            at=at,
            event=event,
            detail=reason,
            status="void",
        )
        await audit.record(
            uow,
            actor=actor,
            action="invoice_voided",
            entity_type="invoice",
            entity_id=invoice_id,
            at=at,
            before={"status": row["status"]},
            after={"status": "void", "reason": reason, "credit_returned": str(credits)},
        )
        return voided


async def take_ticks(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """Invoices past their due date on the tenant's billing clock become overdue (once); credit notes left
    in draft for `CREDIT_NOTE_DRAFT_LIFETIME` expire."""
    repo = InvoicingRepository(uow.conn)
    for item in items:
        tick = item.body
        await repo.save_clock(tick.tenant_id, tick.now)
        timezone = await repo.timezone(tick.tenant_id)
        if timezone is None:
            continue  # no invoice can exist before the tenant is known
        today = local_date(tick.now, tz=timezone)
        for note in await repo.expire_credit_notes(tick.now - CREDIT_NOTE_DRAFT_LIFETIME, at=tick.now):
            await audit.record(
                uow,
                actor="system:invoicing",
                action="credit_note_expired",
                entity_type="credit_note",
                entity_id=note["credit_note_id"],
                at=tick.now,
                before={"status": "draft"},
                after={"status": "expired", "total": str(note["total"])},
            )
        for row in await repo.past_due(today):
            invoice = document_of(row)
            updated = restated(
                invoice, status="overdue", credits_applied=row["credits_applied"], amount_paid=row["amount_paid"]
            )
            await repo.save_state(updated, status="overdue", at=tick.now)
            await audit.record(
                uow,
                actor="system:invoicing",
                action="invoice_overdue",
                entity_type="invoice",
                entity_id=row["invoice_id"],
                at=tick.now,
                before={"status": row["status"]},
                after={"status": "overdue", "due_date": str(row["due_date"])},
            )
            notify(
                uow,
                row,
                NoticeType.OVERDUE,
                invoice=updated,
                company=await repo.company(row["company_id"]),
                at=tick.now,
                status="overdue",
            )
    return []


async def open_document(
    pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, viewer: Principal, wall: datetime
) -> str:
    """The invoice as HTML. Opened by a contact of the invoiced client, it is marked ``viewed`` (audited,
    with a lifecycle notice); another client's contact gets not-found, staff read it without marking it."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        row = await InvoicingRepository(uow.conn).invoice_row(invoice_id)
    if row is None or (viewer.role is Role.CLIENT_CONTACT and viewer.company_id != row["company_id"]):
        raise NotFound(f"invoice {invoice_id} not found")
    invoice = document_of(row)
    if viewer.role is Role.CLIENT_CONTACT:
        invoice = await mark(
            pool, tenant_id=tenant_id, invoice_id=invoice_id, step="viewed", actor=viewer.actor, wall=wall
        )
    elif not viewer.may(Permission.INVOICES_READ):
        raise Refused(f"role {viewer.role.value!r} may not read invoices", field="authorization")
    return documents.invoice_html(invoice)


async def issue_link(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    actor: str,
    wall: datetime,
    secret: str,
    days: int,
    base_url: str = "",
) -> dict[str, object]:
    """A signed link to an issued invoice that its client opens without a platform user, expiring after
    ``days`` of wall-clock time (a credential's lifetime, not billing time). Audited; nothing else stored."""
    if not secret:
        raise Refused("signed invoice links are not configured (INVOICE_LINK_SECRET)")
    expires_at = (wall + timedelta(days=days)).replace(microsecond=0)
    expires = int(expires_at.timestamp())
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await locked_invoice(repo, invoice_id)
        if row["status"] not in ISSUED:
            raise Refused(f"invoice {invoice_id} is {row['status']}: only an issued invoice has a client link")
        signature = links.sign(secret, tenant_id=tenant_id, invoice_id=invoice_id, expires=expires)
        await audit.record(
            uow,
            actor=actor,
            action="invoice_link_issued",
            entity_type="invoice",
            entity_id=invoice_id,
            at=await billing_time(repo, wall),
            after={"expires_at": expires_at.isoformat()},
        )
    base = f"{base_url.rstrip('/')}/v1/links/{tenant_id}/invoices/{invoice_id}"
    query = f"?expires={expires}&signature={signature}"
    return {"invoice_id": invoice_id, "url": base + query, "pdf_url": f"{base}/pdf{query}", "expires_at": expires_at}


async def open_link(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    expires: int,
    signature: str,
    secret: str,
    wall: datetime,
    pdf: bool,
) -> tuple[Invoice, bytes | str]:
    """The invoice behind a signed link, as HTML or PDF. The first opening marks it ``viewed`` (audited as
    ``client-link``, with a notice); raises `links.BadLink` (403) or `links.ExpiredLink` (410)."""
    if not secret:
        raise Refused("signed invoice links are not configured (INVOICE_LINK_SECRET)")
    links.verify(secret, tenant_id=tenant_id, invoice_id=invoice_id, expires=expires, signature=signature, now=wall)
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        row = await InvoicingRepository(uow.conn).invoice_row(invoice_id)
    if row is None or row["status"] not in (*ISSUED, "void"):
        raise NotFound(f"invoice {invoice_id} not found")
    invoice = document_of(row)
    if row["status"] in ISSUED:
        invoice = await mark(
            pool, tenant_id=tenant_id, invoice_id=invoice_id, step="viewed", actor="client-link", wall=wall
        )
    if pdf:
        return invoice, documents.invoice_pdf(invoice, company_ref=row["company_ref"])
    return invoice, documents.invoice_html(invoice)
