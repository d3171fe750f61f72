"""Invoicing use cases, each inside the kernel's batch transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.building import (
    CannotInvoice,
    Draft,
    build,
    check,
    invoice_id_for,
    invoice_number,
)
from shared import audit, topics
from shared.contracts.catalog import CatalogEvent
from shared.contracts.invoices import InvoiceEvent, InvoiceEventType
from shared.contracts.rating import ChargeCreated, PeriodCompleted, RatingEvent
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Rejections, Retry
from shared.messaging.envelope import Parsed
from shared.periods import local_date

log = structlog.get_logger(__name__)


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    repo = InvoicingRepository(uow.conn)
    for item in items:
        await repo.save_catalog(item.body)
    return []


async def take_rating_events(uow: UnitOfWork, items: Sequence[Parsed[RatingEvent]]) -> Rejections[RatingEvent]:
    """Store charges; when a period completes, build, number and finalize its invoice (once)."""
    repo = InvoicingRepository(uow.conn)
    pending: list[ChargeCreated] = []
    for item in items:  # in partition order: a period's charges come before its completion
        event = item.body
        if isinstance(event, ChargeCreated):
            pending.append(event)
            continue
        if pending:
            await repo.save_charges(pending)
            pending = []
        await invoice_period(uow, repo, event)
    if pending:
        await repo.save_charges(pending)
    return []


async def invoice_period(uow: UnitOfWork, repo: InvoicingRepository, done: PeriodCompleted) -> None:
    charges = await repo.charges_of(done.company_id, done.period_start, done.period_end)
    if not charges and done.charge_count == 0:
        return  # nothing was used or due: no invoice
    company = await repo.company(done.company_id)
    timezone = await repo.timezone(done.tenant_id)
    if company is None or timezone is None:
        # Catalog events travel on another topic; they are on their way (the client was billed by rating).
        raise Retry(f"client {done.company_id} not yet in invoicing's catalog view")
    invoice_id = invoice_id_for(done.tenant_id, done.company_id, done.period_start, done.period_end)
    if not await repo.claim_invoice(invoice_id, done.company_id, done.period_start, done.period_end):
        return  # already invoiced: a repeated or concurrent run changes nothing
    if len(charges) < done.charge_count:
        # Charges precede their period's completion on the same partition, so this means a charge was
        # dead-lettered here: hold the invoice visibly rather than issue it short or stall the partition.
        reason = f"{done.charge_count} charges were rated for the period but {len(charges)} arrived"
        await repo.hold(invoice_id, reason)
        log.warning("invoice_held", invoice_id=str(invoice_id), reason=reason)
        return
    issue_date = local_date(done.closed_at, tz=timezone)  # the tenant's calendar, not UTC
    draft = Draft(
        invoice_id=invoice_id,
        company=company,
        period_start=done.period_start,
        period_end=done.period_end,
        issue_date=issue_date,
        charges=charges,
    )
    try:
        check(draft)
    except CannotInvoice as exc:
        await repo.hold(invoice_id, str(exc))
        log.warning("invoice_held", invoice_id=str(invoice_id), reason=str(exc))
        return
    number = invoice_number(issue_date, await repo.next_number(f"{issue_date:%y%m}"))
    invoice = build(draft, number=number)
    await repo.finalize(invoice)
    event = InvoiceEvent(
        event_id=uuid.uuid5(invoice_id, "invoice.finalized"),
        event_type=InvoiceEventType.INVOICE_FINALIZED,
        occurred_at=done.closed_at,
        tenant_id=done.tenant_id,
        company_ref=company.company_ref,
        livemode=done.livemode,
        invoice=invoice,
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
    uow.publish(topic=topics.INVOICE_LIFECYCLE.name, key=event.key(), message=event)
    await audit.record(
        uow,
        actor="system:invoicing",
        action="invoice_finalized",
        entity_type="invoice",
        entity_id=invoice_id,
        at=done.closed_at,
        after={"invoice_number": number, "total": str(invoice.total)},
    )
