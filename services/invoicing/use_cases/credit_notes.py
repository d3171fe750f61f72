"""Credit notes: drafted, issued (through approval when over a rule), applied, cancelled."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.adapters import documents
from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.credit_notes import (
    CannotCredit,
    credit_note,
    credit_note_number,
    credited_nets,
    split_credit,
)
from services.invoicing.domain.ledger import status_after_payment
from services.invoicing.use_cases.approvals import Gated, record_gated
from services.invoicing.use_cases.common import (
    ISSUED,
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
from shared.contracts.approvals import ApprovalItemType
from shared.contracts.invoices import (
    CreditNote,
    CreditNoteReason,
    InvoiceEventType,
)
from shared.contracts.invoicing import Attachment, NoticeType
from shared.db.uow import UnitOfWork, unit_of_work

STANDING_CREDIT_NOTES = ("draft", "awaiting_approval", "approved", "applied")
"""Credit notes that count against what an invoice may still be credited (as `credited_total` counts)."""


async def create_credit_note(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    credit_note_id: UUID,
    reason: CreditNoteReason,
    line_ids: list[UUID] | None,
    amount: Decimal | None,
    memo: str | None,
    actor: str,
    wall: datetime,
    parts: dict[UUID, Decimal] | None = None,
) -> dict[str, object]:
    """A draft credit note against a finalized invoice: whole lines, parts of lines (with their taxes in
    proportion) or an untaxed amount. Issue it with `issue_credit_note`."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        if (existing := await repo.credit_note_row(credit_note_id)) is not None:
            return dict(existing)
        row = await locked_invoice(repo, invoice_id)
        invoice = document_of(row)
        if row["status"] not in ISSUED:
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it cannot be credited")
        standing = [
            CreditNote.model_validate(c["document"])
            for c in await repo.credit_notes_of(invoice_id)
            if c["status"] in STANDING_CREDIT_NOTES
        ]
        try:
            note = credit_note(
                invoice,
                credit_note_id=credit_note_id,
                reason=reason,
                line_ids=line_ids,
                amount=amount,
                description=memo or f"Credit: {reason.value.replace('_', ' ')}",
                already_credited=await repo.credited_total(invoice_id),
                parts=parts,
                credited_before=credited_nets(invoice, standing),
            )
        except CannotCredit as exc:
            raise Refused(str(exc), field=exc.field, conflict=False) from exc
        at = await billing_time(repo, wall)
        await repo.insert_credit_note(note, company_id=row["company_id"], memo=memo, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="credit_note_drafted",
            entity_type="credit_note",
            entity_id=credit_note_id,
            at=at,
            after=note,
        )
        return dict(await repo.credit_note_row(credit_note_id) or {})


async def issue_credit_note(
    pool: asyncpg.Pool, *, tenant_id: UUID, credit_note_id: UUID, actor: str, wall: datetime
) -> dict[str, object]:
    """A draft is approved and applied at once, or waits for approval when its total crosses a credit rule."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        cn = await repo.credit_note_row(credit_note_id, lock=True)
        if cn is None:
            raise NotFound(f"credit note {credit_note_id} not found")
        if cn["status"] in ("awaiting_approval", "applied"):
            return dict(cn)
        if cn["status"] != "draft":
            raise Refused(f"credit note {credit_note_id} is {cn['status']}: only a draft is issued")
        at = await billing_time(repo, wall)
        row = await locked_invoice(repo, cn["invoice_id"])
        item = Gated(
            item_type=ApprovalItemType.CREDIT,
            entity_type="credit_note",
            item_id=credit_note_id,
            amount=cn["total"],
            currency=cn["currency"],
            company_ref=row["company_ref"],
            summary=f"Credit note of {cn['total']} {cn['currency']} on {row['invoice_number']} ({cn['reason']})",
            details={"invoice_id": str(cn["invoice_id"]), "reason": cn["reason"]},
        )

        async def wait(request_id: UUID | None) -> None:
            if request_id is not None:  # else it is approved and applied below
                await repo.set_credit_note(
                    credit_note_id, status="awaiting_approval", at=at, approval_request_id=request_id
                )

        after = {"total": str(cn["total"])}
        before = {"status": "draft"}
        if not await record_gated(
            uow, repo, item, record=wait, actor=actor, action="credit_note_issued", at=at, after=after, before=before
        ):
            await apply_credit_note(uow, repo, credit_note_id, at=at)
        return dict(await repo.credit_note_row(credit_note_id) or {})


async def cancel_credit_note(
    pool: asyncpg.Pool, *, tenant_id: UUID, credit_note_id: UUID, actor: str, wall: datetime
) -> dict[str, object]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        cn = await repo.credit_note_row(credit_note_id, lock=True)
        if cn is None:
            raise NotFound(f"credit note {credit_note_id} not found")
        if cn["status"] not in ("draft", "awaiting_approval"):
            raise Refused(f"credit note {credit_note_id} is {cn['status']}: only a draft or waiting one is cancelled")
        at = await billing_time(repo, wall)
        await repo.set_credit_note(credit_note_id, status="cancelled", at=at)
        await audit.record(
            uow,
            actor=actor,
            action="credit_note_cancelled",
            entity_type="credit_note",
            entity_id=credit_note_id,
            at=at,
            before={"status": cn["status"]},
            after={"status": "cancelled"},
        )
        return dict(await repo.credit_note_row(credit_note_id) or {})


async def apply_credit_note(uow: UnitOfWork, repo: InvoicingRepository, credit_note_id: UUID, *, at: datetime) -> None:
    """Number it (gap-free CN counter), reduce what the invoice owes, the rest becomes credit; publish it."""
    cn = await repo.credit_note_row(credit_note_id, lock=True)
    assert cn is not None
    row = await locked_invoice(repo, cn["invoice_id"])
    invoice = document_of(row)
    yymm = f"{at:%y%m}"
    note = CreditNote.model_validate(cn["document"])
    note = note.model_copy(
        update={
            "credit_note_number": credit_note_number(yymm, await repo.next_number(yymm, table="credit_note_numbers"))
        }
    )
    due = invoice.total - row["credits_applied"] - row["amount_paid"]
    on_invoice, to_credit = (
        split_credit(note.total, invoice_due=due) if row["status"] != "void" else (Decimal(0), note.total)
    )
    credits = row["credits_applied"] + on_invoice
    status = row["status"]
    if on_invoice > 0:
        status = status_after_payment(
            total=invoice.total, credits=credits, paid=row["amount_paid"], credited=Decimal(0)
        )
        if status != "paid":
            status = row["status"]
    updated = restated(invoice, status=status, credits_applied=credits, amount_paid=row["amount_paid"])
    await repo.save_state(updated, status=status, at=at, amount_credited=row["amount_credited"] + note.total)
    await repo.set_credit_note(credit_note_id, status="applied", at=at, document=note)
    await repo.record(
        entry(
            row,
            "credit",
            note.total,
            balance=-note.total,
            credit=to_credit,
            currency=note.currency,
            reference=credit_note_id,
            description=f"Credit note {note.credit_note_number} on {invoice.invoice_number} ({note.reason.value})",
            at=at,
        )
    )
    event = publish_event(
        uow,
        row,
        InvoiceEventType.CREDIT_NOTE_ISSUED,
        about=credit_note_id,
        at=at,
        credit_note=note,
    )
    pdf = Attachment(
        file_name=f"{note.credit_note_number}.pdf",
        content_type="application/pdf",
        content_base64=base64.b64encode(documents.credit_note_pdf(note, invoice)).decode(),
    )
    notify(
        uow,
        row,
        NoticeType.CREDIT_NOTE_ISSUED,
        invoice=updated,
        company=await repo.company(row["company_id"]),
        at=at,
        event=event,
        attachment=pdf,
        status=status,
        discriminator=str(credit_note_id),
    )
