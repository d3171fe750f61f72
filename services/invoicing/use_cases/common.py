"""What the invoicing use cases share: errors, the locked invoice row, notices, ledger entries, holds."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.invoicing.adapters import documents
from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.ledger import Entry, entry_id
from shared import audit, topics
from shared.contracts.catalog import CompanyState
from shared.contracts.invoices import (
    Invoice,
    InvoiceEvent,
    InvoiceEventType,
    InvoiceStatus,
)
from shared.contracts.invoicing import Attachment, InvoiceNotice, NoticeType
from shared.db.uow import UnitOfWork
from shared.money import round_half_up

log = structlog.get_logger(__name__)


async def hold(uow: UnitOfWork, repo: InvoicingRepository, invoice_id: UUID, reason: str, *, at: datetime) -> None:
    await repo.hold(invoice_id, reason, at=at)
    log.warning("invoice_held", invoice_id=str(invoice_id), reason=reason)
    await audit.record(
        uow,
        actor="system:invoicing",
        action="invoice_held",
        entity_type="invoice",
        entity_id=invoice_id,
        at=at,
        after={"status": "held", "held_reason": reason},
    )


def invoice_pdf(invoice: Invoice, company: CompanyState) -> Attachment:
    return Attachment(
        file_name=f"{invoice.invoice_number}.pdf",
        content_type="application/pdf",
        content_base64=base64.b64encode(documents.invoice_pdf(invoice, company_ref=company.company_ref)).decode(),
    )


def notify(
    uow: UnitOfWork,
    row: asyncpg.Record,
    notice_type: NoticeType,
    *,
    invoice: Invoice | None,
    company: CompanyState | None,
    at: datetime,
    event: InvoiceEvent | None = None,
    attachment: Attachment | None = None,
    detail: str | None = None,
    status: str | None = None,
    discriminator: str = "",
) -> None:
    """One lifecycle notice on invoicing.lifecycle.v1 (for notification)."""
    invoice_id: UUID = row["invoice_id"]
    notice = InvoiceNotice(
        notice_id=uuid.uuid5(invoice_id, f"notice:{notice_type.value}:{discriminator}"),
        notice_type=notice_type,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_id=row["company_id"],
        company_ref=row["company_ref"] or (company.company_ref if company else "unknown"),
        livemode=bool(row["livemode"]),
        invoice_id=invoice_id,
        invoice_number=invoice.invoice_number if invoice else row["invoice_number"],
        status=status or (invoice.status.value if invoice else row["status"]),
        billing_email=company.billing_email if company else None,
        currency=invoice.currency if invoice else None,
        amount_due=invoice.amount_due if invoice else None,
        detail=detail,
        event=event,
        attachment=attachment,
    )
    uow.publish(topic=topics.INVOICE_LIFECYCLE.name, key=notice.key(), message=notice, message_id=notice.notice_id)


def entry(
    row: asyncpg.Record,
    kind: str,
    amount: Decimal,
    *,
    currency: str,
    reference: UUID,
    description: str,
    at: datetime,
    balance: Decimal = Decimal(0),
    credit: Decimal = Decimal(0),
) -> Entry:
    """A ledger entry of the invoice ``row``'s client; its id is derived from the event it records."""
    return Entry(
        transaction_id=entry_id(reference, kind),
        company_id=row["company_id"],
        kind=kind,
        amount=amount,
        balance_effect=balance,
        credit_effect=credit,
        currency=currency,
        invoice_id=row["invoice_id"],
        reference_id=reference,
        description=description,
        occurred_at=at,
    )


class NotFound(LookupError):
    pass


class Refused(ValueError):
    """The action is not allowed now (409) or the input is wrong (422, naming ``field``)."""

    def __init__(self, message: str, *, field: str | None = None, conflict: bool = True) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


CREDIT_NOTE_DRAFT_LIFETIME = timedelta(days=30)
"""A credit note drafted and not issued within this much billing time expires."""
ISSUED = ("finalized", "sent", "viewed", "partially_paid", "paid", "overdue", "disputed")
PAYABLE = ("finalized", "sent", "viewed", "partially_paid", "overdue", "disputed")


async def locked_invoice(repo: InvoicingRepository, invoice_id: UUID) -> asyncpg.Record:
    row = await repo.invoice_row(invoice_id, lock=True)
    if row is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return row


def document_of(row: asyncpg.Record) -> Invoice:
    if row["document"] is None:
        raise Refused(f"invoice {row['invoice_id']} is {row['status']}: it has no document yet")
    return Invoice.model_validate(row["document"])


def restated(invoice: Invoice, *, status: str, credits_applied: Decimal, amount_paid: Decimal) -> Invoice:
    """The invoice document after a lifecycle step: its sums as issued, what was credited, paid and is due."""
    document_status = status if status in {s.value for s in InvoiceStatus} else invoice.status.value
    # amounts are already in minor units: this only gives every one the currency's scale ("0" -> "0.00")
    credits_applied = round_half_up(credits_applied, currency=invoice.currency)
    amount_paid = round_half_up(amount_paid, currency=invoice.currency)
    return invoice.model_copy(
        update={
            "status": InvoiceStatus(document_status),
            "credits_applied": credits_applied,
            "amount_paid": amount_paid,
            "amount_due": invoice.total - credits_applied - amount_paid,
        }
    )


async def billing_time(repo: InvoicingRepository, wall: datetime) -> datetime:
    """The tenant's billing time (its last clock tick) when it has one, else the wall clock."""
    return await repo.clock() or wall


def publish_event(
    uow: UnitOfWork,
    row: asyncpg.Record,
    event_type: InvoiceEventType,
    *,
    about: UUID,
    at: datetime,
    company_ref: str | None = None,
    **payload: Any,
) -> InvoiceEvent:
    """One ``billing.invoices.v1`` event through the outbox; its id derives from what it is ``about`` (the
    invoice, payment, refund or credit note) and its type, so a repeated effect publishes the same id."""
    event = InvoiceEvent(
        event_id=uuid.uuid5(about, event_type.value),
        event_type=event_type,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_ref=company_ref or row["company_ref"],
        livemode=row["livemode"],
        **payload,
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
    return event
