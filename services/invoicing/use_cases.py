"""Invoicing use cases, each inside the kernel's batch transaction."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError

from services.invoicing.adapters import documents
from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.approval import approval_request, approval_request_id, crossed_rule
from services.invoicing.domain.building import Draft, build, check, invoice_id_for, invoice_number
from services.invoicing.domain.credit_notes import (
    PLACEHOLDER_NUMBER,
    CannotCredit,
    credit_note,
    credit_note_number,
    split_credit,
)
from services.invoicing.domain.ledger import Entry, entry_id, split_payment, split_refund, status_after_payment
from services.invoicing.domain.pricing import (
    CannotInvoice,
    adjustment_line,
    amounts_to_convert,
    apply_discounts,
    converted,
    draft_lines,
    lines_to_tax,
)
from services.invoicing.domain.quoting import Work, conversion_request_id, tax_request_id
from shared import audit, topics
from shared.auth import Permission, Principal
from shared.contracts.approvals import ApprovalDecision, ApprovalItemType, ApprovalOutcome, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent, CompanyState, Role
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import (
    CreditNote,
    CreditNoteReason,
    Invoice,
    InvoiceEvent,
    InvoiceEventType,
    InvoiceStatus,
    Payment,
    Refund,
)
from shared.contracts.invoicing import Attachment, InvoiceNotice, NoticeType
from shared.contracts.rating import ChargeCreated, PeriodCompleted, RatingEvent
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    QuoteFailed,
    TaxQuoted,
    TaxRequested,
    TaxResult,
    quote_key,
)
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections, Retry
from shared.messaging.envelope import Parsed
from shared.money import round_half_up
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
    open_adjustments = [a for a in await repo.adjustments_of(company_id=done.company_id) if a["status"] == "approved"]
    if not charges and done.charge_count == 0 and not open_adjustments:
        return  # nothing was used or due: no invoice
    company = await repo.company(done.company_id)
    timezone = await repo.timezone(done.tenant_id)
    if company is None or timezone is None:
        # Catalog events travel on another topic; they are on their way (the client was billed by rating).
        raise Retry(f"client {done.company_id} not yet in invoicing's catalog view")
    invoice_id = invoice_id_for(done.tenant_id, done.company_id, done.period_start, done.period_end)
    issue_date = local_date(done.closed_at, tz=timezone)  # the tenant's calendar, not UTC
    work = Work(issue_date=issue_date, lines=draft_lines(invoice_id, charges), charge_count=done.charge_count)
    if not await repo.claim_invoice(invoice_id, done, work=work, currency=company.currency):
        return  # already invoiced: a repeated or concurrent run changes nothing
    await repo.save_line_charges(invoice_id, work.lines)
    adjustments = await repo.take_adjustments(done.company_id, invoice_id, at=done.closed_at)
    if adjustments:  # approved billing adjustments land on this invoice, one line each
        extra = [
            adjustment_line(
                invoice_id,
                adjustment_id=a["adjustment_id"],
                amount=a["amount"],
                currency=a["currency"],
                description=a["description"],
                day=done.period_start,
            )
            for a in adjustments
        ]
        work = work.model_copy(update={"lines": [*work.lines, *extra]})
        await repo.save_work(invoice_id, status="draft", work=work, attempt=0, at=done.closed_at)
    if len(charges) < done.charge_count:
        # Charges precede their period's completion on the same partition, so this means a charge was
        # dead-lettered here: hold the invoice visibly rather than issue it short or stall the partition.
        reason = f"{done.charge_count} charges were rated for the period but {len(charges)} arrived"
        await _hold(uow, repo, invoice_id, reason, at=done.closed_at)
        return
    await ask(uow, repo, invoice_id, company=company, work=work, attempt=0, at=done.closed_at)


async def ask(
    uow: UnitOfWork,
    repo: InvoicingRepository,
    invoice_id: UUID,
    *,
    company: CompanyState,
    work: Work,
    attempt: int,
    at: datetime,
) -> None:
    """Ask tax-currency the draft's next question: a conversion per foreign currency, then its taxes."""
    tenant_id = uow.require_tenant()
    key = quote_key(tenant_id, invoice_id)
    try:
        check(_draft(invoice_id, company, work))
        waiting = work.waiting_for(company.currency)
        if waiting:
            for from_currency in waiting:
                request = ConversionRequested(
                    request_id=conversion_request_id(invoice_id, from_currency, attempt),
                    tenant_id=tenant_id,
                    invoice_id=invoice_id,
                    from_currency=from_currency,
                    to_currency=company.currency,
                    on=work.issue_date,
                    amounts=amounts_to_convert(work.lines, from_currency),
                )
                uow.publish(topic=topics.TAX_REQUESTS.name, key=key, message=request, message_id=request.request_id)
            await repo.save_work(invoice_id, status="awaiting_conversion", work=work, attempt=attempt, at=at)
            return
        priced = apply_discounts(
            converted(work.lines, work.conversions, company.currency),
            await repo.discounts(),
            company_id=company.company_id,
            currency=company.currency,
        )
        tax = TaxRequested(
            request_id=tax_request_id(invoice_id, attempt),
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            company_id=company.company_id,
            company_ref=company.company_ref,
            region=company.region,
            invoice_date=work.issue_date,
            currency=company.currency,
            tax_inclusive=False,
            lines=lines_to_tax(priced, await repo.tax_categories()),
        )
    except (CannotInvoice, ValidationError) as exc:
        await _hold(uow, repo, invoice_id, str(exc), at=at)
        return
    work = work.model_copy(update={"priced": priced, "tax": None})
    uow.publish(topic=topics.TAX_REQUESTS.name, key=key, message=tax, message_id=tax.request_id)
    await repo.save_work(invoice_id, status="awaiting_tax", work=work, attempt=attempt, at=at)


def _draft(invoice_id: UUID, company: CompanyState, work: Work, row: asyncpg.Record | None = None) -> Draft:
    first = work.lines[0] if work.lines else None
    return Draft(
        invoice_id=invoice_id,
        company=company,
        period_start=row["period_start"] if row else (first.first_day if first else work.issue_date),
        period_end=row["period_end"] if row else work.issue_date,
        issue_date=work.issue_date,
    )


async def _hold(uow: UnitOfWork, repo: InvoicingRepository, invoice_id: UUID, reason: str, *, at: datetime) -> None:
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


# -- tax-currency's answers ------------------------------------------------------------------------------


async def take_tax_results(uow: UnitOfWork, items: Sequence[Parsed[TaxResult]]) -> Rejections[TaxResult]:
    """Continue each draft whose pending question this answers; answers to older attempts change nothing."""
    repo = InvoicingRepository(uow.conn)
    for item in items:
        answer = item.body
        row = await repo.invoice_row(answer.invoice_id, lock=True)
        if row is None or row["work"] is None:
            log.info("tax_answer_for_unknown_invoice", invoice_id=str(answer.invoice_id))
            continue
        work = Work.model_validate(row["work"])
        attempt: int = row["attempt"]
        status: str = row["status"]
        company = await repo.company(row["company_id"])
        if company is None:
            raise Retry(f"client {row['company_id']} not in invoicing's catalog view")
        at: datetime = row["updated_at"] or row["closed_at"]  # billing time of the draft's last step
        if isinstance(answer, ConversionQuoted):
            expected = conversion_request_id(answer.invoice_id, answer.from_currency, attempt)
            if status != "awaiting_conversion" or answer.request_id != expected:
                continue
            work = work.model_copy(update={"conversions": {**work.conversions, answer.from_currency: answer}})
            if work.waiting_for(company.currency):
                await repo.save_work(answer.invoice_id, status=status, work=work, attempt=attempt, at=at)
            else:
                await ask(uow, repo, answer.invoice_id, company=company, work=work, attempt=attempt, at=at)
        elif isinstance(answer, TaxQuoted):
            if status != "awaiting_tax" or answer.request_id != tax_request_id(answer.invoice_id, attempt):
                continue
            await finalize(uow, repo, row, company=company, work=work.model_copy(update={"tax": answer}))
        elif isinstance(answer, QuoteFailed):
            asked = {tax_request_id(answer.invoice_id, attempt)} | {
                conversion_request_id(answer.invoice_id, x.currency, attempt) for x in work.lines
            }
            if status not in ("awaiting_conversion", "awaiting_tax") or answer.request_id not in asked:
                continue
            await _hold(uow, repo, answer.invoice_id, f"{answer.reason.value}: {answer.message}", at=at)
    return []


async def finalize(
    uow: UnitOfWork, repo: InvoicingRepository, row: asyncpg.Record, *, company: CompanyState, work: Work
) -> None:
    """Number the invoice (gap-free: the counter row is locked until commit), apply available credit,
    pin the rate rows, write the ledger and publish it."""
    invoice_id: UUID = row["invoice_id"]
    at: datetime = row["closed_at"]
    draft = _draft(invoice_id, company, work, row)
    assert work.tax is not None
    credit = await repo.credit_available(company.company_id)
    try:
        trial = build(
            draft, number="INV-0000-00000", priced=work.priced, tax=work.tax, fx=work.fx(), credit_available=credit
        )
    except CannotInvoice as exc:
        await _hold(uow, repo, invoice_id, str(exc), at=at)
        return
    if trial.total < 0:
        await _credit_negative_period(uow, repo, row, company=company, work=work, trial=trial)
        return
    number = invoice_number(draft.issue_date, await repo.next_number(f"{draft.issue_date:%y%m}"))
    invoice = trial.model_copy(update={"invoice_number": number})
    await repo.finalize(invoice, pinned=work.pinned(), at=at)
    await repo.record(
        entry(
            row,
            "invoice",
            invoice.total,
            balance=invoice.total,
            currency=invoice.currency,
            reference=invoice_id,
            description=f"Invoice {number}",
            at=at,
        )
    )
    if invoice.credits_applied > 0:
        await repo.record(
            entry(
                row,
                "credit_applied",
                invoice.credits_applied,
                credit=-invoice.credits_applied,
                currency=invoice.currency,
                reference=invoice_id,
                description=f"Credit applied to {number}",
                at=at,
            )
        )
    event = InvoiceEvent(
        event_id=uuid.uuid5(invoice_id, "invoice.finalized"),
        event_type=InvoiceEventType.INVOICE_FINALIZED,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_ref=company.company_ref,
        livemode=row["livemode"],
        invoice=invoice,
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
    notify(
        uow,
        row,
        NoticeType.FINALIZED,
        invoice=invoice,
        company=company,
        at=at,
        event=event,
        attachment=invoice_pdf(invoice, company),
    )
    await audit.record(
        uow,
        actor="system:invoicing",
        action="invoice_finalized",
        entity_type="invoice",
        entity_id=invoice_id,
        at=at,
        after={"invoice_number": number, "total": str(invoice.total), "credits_applied": str(invoice.credits_applied)},
    )


async def _credit_negative_period(
    uow: UnitOfWork,
    repo: InvoicingRepository,
    row: asyncpg.Record,
    *,
    company: CompanyState,
    work: Work,
    trial: Invoice,
) -> None:
    """A period whose lines come to less than zero (late corrections, credit-back adjustments) is not an
    invoice: it is issued as a credit note on the invoice the corrections are for (the one holding the
    charges they correct, else the client's latest), its lines credited as priced and taxed."""
    corrected = [c for line in work.lines for c in line.charge_ids]
    charges = await repo.charges_of(row["company_id"], row["period_start"], row["period_end"])
    targets = await repo.invoices_holding(
        [x for c in charges if c.charge_id in corrected for x in c.corrects_charge_ids]
    )
    target = targets[0] if targets else await repo.latest_issued(row["company_id"])
    at: datetime = row["closed_at"]
    if target is None:
        await _hold(
            uow,
            repo,
            row["invoice_id"],
            "the period comes to a negative total and the client has no issued invoice to credit",
            at=at,
        )
        return
    credited = [
        line.model_copy(
            update={
                field: -getattr(line, field)
                for field in ("quantity", "amount", "discount_amount", "net_amount", "tax_amount", "total")
            }
            | {"taxes": [t.model_copy(update={"amount": -t.amount}) for t in line.taxes]}
        )
        for line in trial.lines
    ]
    note_id = uuid.uuid5(row["invoice_id"], "negative-period")
    note = CreditNote(
        credit_note_id=note_id,
        credit_note_number=PLACEHOLDER_NUMBER,
        invoice_id=target,
        reason=CreditNoteReason.PRICING_ERROR,
        currency=trial.currency,
        lines=credited,
        total=-trial.total,
    )
    await repo.insert_credit_note(
        note, company_id=row["company_id"], memo=f"Corrections of {row['period_start']} to {row['period_end']}", at=at
    )
    await _apply_credit_note(uow, repo, note_id, at=at)
    applied = await repo.credit_note_row(note_id)
    assert applied is not None
    reason = f"negative period: credit note {applied['credit_note_number']} of {note.total} issued instead"
    await repo.mark_credited(row["invoice_id"], reason, pinned=work.pinned(), at=at)
    await audit.record(
        uow,
        actor="system:invoicing",
        action="period_credited",
        entity_type="invoice",
        entity_id=row["invoice_id"],
        at=at,
        after={"credit_note_id": str(note_id), "credited_invoice_id": str(target), "total": str(note.total)},
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


# -- the operator's actions and the lifecycle ---------------------------------------------------------------


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


async def _locked(repo: InvoicingRepository, invoice_id: UUID) -> asyncpg.Record:
    row = await repo.invoice_row(invoice_id, lock=True)
    if row is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return row


def _document(row: asyncpg.Record) -> Invoice:
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


async def _billing_time(repo: InvoicingRepository, wall: datetime) -> datetime:
    """The tenant's billing time (its last clock tick) when it has one, else the wall clock."""
    return await repo.clock() or wall


async def retry_held(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, actor: str, wall: datetime) -> str:
    """Ask tax-currency again for a held invoice (after an operator fixed a rate): a new attempt, new ids."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await _locked(repo, invoice_id)
        if row["status"] != "held":
            raise Refused(f"invoice {invoice_id} is {row['status']}: only a held invoice is retried")
        company = await repo.company(row["company_id"])
        if company is None:
            raise Refused(f"client {row['company_id']} is unknown to invoicing")
        at = await _billing_time(repo, wall)
        work = Work.model_validate(row["work"]).model_copy(update={"conversions": {}, "priced": [], "tax": None})
        if not work.lines:
            raise Refused("the held invoice has no lines to quote")
        arrived = sum(len(x.charge_ids) for x in work.lines)
        if arrived < work.charge_count:  # never issue a period short: its missing charges were dead-lettered
            raise Refused(f"{work.charge_count} charges were rated for the period but {arrived} arrived")
        attempt = row["attempt"] + 1
        await audit.record(
            uow,
            actor=actor,
            action="invoice_retried",
            entity_type="invoice",
            entity_id=invoice_id,
            at=at,
            before={"status": "held", "held_reason": row["held_reason"]},
            after={"attempt": attempt},
        )
        await ask(uow, repo, invoice_id, company=company, work=work, attempt=attempt, at=at)
        status: str = await uow.conn.fetchval("SELECT status FROM invoices WHERE invoice_id = $1", invoice_id)
        return status


async def cancel_draft(pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, actor: str, wall: datetime) -> None:
    """A draft (held or still being quoted) is abandoned: cancelled, no number spent."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await _locked(repo, invoice_id)
        if row["status"] not in ("draft", "held", "awaiting_conversion", "awaiting_tax"):
            raise Refused(f"invoice {invoice_id} is {row['status']}: only a draft is cancelled (void a finalized one)")
        at = await _billing_time(repo, wall)
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
        row = await _locked(repo, invoice_id)
        invoice = _document(row)
        if row["status"] == step:
            return invoice  # repeated: nothing changes
        at = await _billing_time(repo, wall)
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
        row = await _locked(repo, invoice_id)
        invoice = _document(row)
        if row["status"] not in PAYABLE:
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it cannot be voided")
        if row["amount_paid"] > 0:
            raise Refused(f"invoice {row['invoice_number']} has payments: refund them before voiding it")
        at = await _billing_time(repo, wall)
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
        event = InvoiceEvent(
            event_id=uuid.uuid5(invoice_id, "invoice.voided"),
            event_type=InvoiceEventType.INVOICE_VOIDED,
            occurred_at=at,
            tenant_id=tenant_id,
            company_ref=row["company_ref"],
            livemode=row["livemode"],
            invoice=voided,
        )
        uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
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


async def record_payment(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    invoice_id: UUID,
    payment_id: UUID,
    amount: Decimal,
    method: str,
    status: str,
    actor: str,
    wall: datetime,
) -> dict[str, object]:
    """A payment, ``pending`` (confirmed later) or ``confirmed`` now. The same payment id again is a retry."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        row = await _locked(repo, invoice_id)
        existing = await repo.payment(payment_id)
        if existing is not None:
            if (existing["invoice_id"], existing["amount"]) != (invoice_id, amount):
                raise Refused(f"payment {payment_id} exists with other content", field="payment_id")
            return dict(existing)
        invoice = _document(row)
        if row["status"] not in (*PAYABLE, "paid"):  # a payment on a paid invoice becomes credit
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it takes no payment")
        if round_half_up(amount, currency=invoice.currency) != amount or amount <= 0:
            raise Refused(f"amount must be positive in {invoice.currency} minor units", field="amount", conflict=False)
        at = await _billing_time(repo, wall)
        await repo.insert_payment(
            payment_id=payment_id,
            invoice_id=invoice_id,
            company_id=row["company_id"],
            amount=amount,
            currency=invoice.currency,
            method=method,
            status="pending",
            received_at=at,
        )
        await audit.record(
            uow,
            actor=actor,
            action="payment_recorded",
            entity_type="payment",
            entity_id=payment_id,
            at=at,
            after={"invoice_id": str(invoice_id), "amount": str(amount), "method": method, "status": status},
        )
        if status == "confirmed":
            await _confirm(uow, repo, row, payment_id, at=at)
        return dict(await repo.payment(payment_id) or {})


async def settle_payment(
    pool: asyncpg.Pool, *, tenant_id: UUID, payment_id: UUID, outcome: str, actor: str, wall: datetime
) -> dict[str, object]:
    """A pending payment is confirmed (it pays the invoice) or failed (it never does)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        payment = await repo.payment(payment_id, lock=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        if payment["status"] == outcome:
            return dict(payment)
        if payment["status"] != "pending":
            raise Refused(f"payment {payment_id} is {payment['status']}: only a pending payment is {outcome}")
        row = await _locked(repo, payment["invoice_id"])
        if outcome == "confirmed" and row["status"] not in (*PAYABLE, "paid"):
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: the payment cannot be confirmed")
        at = await _billing_time(repo, wall)
        await audit.record(
            uow,
            actor=actor,
            action=f"payment_{outcome}",
            entity_type="payment",
            entity_id=payment_id,
            at=at,
            before={"status": "pending"},
            after={"status": outcome},
        )
        if outcome == "confirmed":
            await _confirm(uow, repo, row, payment_id, at=at)
        else:
            await repo.update_payment(payment_id, status="failed", applied=Decimal(0), refunded=Decimal(0))
        return dict(await repo.payment(payment_id) or {})


async def _confirm(
    uow: UnitOfWork, repo: InvoicingRepository, row: asyncpg.Record, payment_id: UUID, *, at: datetime
) -> None:
    payment = await repo.payment(payment_id, lock=True)
    assert payment is not None
    invoice = _document(row)
    due = invoice.total - row["credits_applied"] - row["amount_paid"]
    split = split_payment(payment["amount"], due=due)
    paid = row["amount_paid"] + split.applied
    status = status_after_payment(total=invoice.total, credits=row["credits_applied"], paid=paid, credited=Decimal(0))
    if status == "partially_paid" and row["status"] in ("overdue", "disputed"):
        status = row["status"]  # still past due, or still in dispute
    updated = restated(invoice, status=status, credits_applied=row["credits_applied"], amount_paid=paid)
    await repo.update_payment(payment_id, status="confirmed", applied=split.applied, refunded=Decimal(0))
    await repo.save_state(updated, status=status, at=at)
    await repo.record(
        entry(
            row,
            "payment",
            payment["amount"],
            balance=-payment["amount"],
            credit=split.excess,
            currency=invoice.currency,
            reference=payment_id,
            description=f"Payment on {invoice.invoice_number} ({payment['method']})"
            + (f"; {split.excess} over-paid, kept as credit" if split.excess else ""),
            at=at,
        )
    )
    event = InvoiceEvent(
        event_id=uuid.uuid5(payment_id, "invoice.payment_recorded"),
        event_type=InvoiceEventType.INVOICE_PAYMENT_RECORDED,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_ref=row["company_ref"],
        livemode=row["livemode"],
        payment=Payment(
            payment_id=payment_id,
            invoice_id=row["invoice_id"],
            amount=payment["amount"],
            currency=invoice.currency,
            received_at=payment["received_at"],
            method=payment["method"],
            invoice_status="paid" if status == "paid" else "partially_paid",
        ),
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
    company = await repo.company(row["company_id"])
    notify(
        uow,
        row,
        NoticeType.PAYMENT_RECORDED,
        invoice=updated,
        company=company,
        at=at,
        event=event,
        status=status,
        discriminator=str(payment_id),
    )


async def request_refund(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    payment_id: UUID,
    refund_id: UUID,
    amount: Decimal,
    reason: str,
    actor: str,
    wall: datetime,
) -> dict[str, object]:
    """A refund of a confirmed payment; above an approval rule it waits for the decision."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        existing = await repo.refund(refund_id)
        if existing is not None:
            return dict(existing)
        payment = await repo.payment(payment_id, lock=True)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        if payment["status"] != "confirmed":
            raise Refused(f"payment {payment_id} is {payment['status']}: only a confirmed payment is refunded")
        room = payment["amount"] - payment["refunded"] - await repo.pending_refunds(payment_id)
        if amount <= 0 or amount > room or round_half_up(amount, currency=payment["currency"]) != amount:
            raise Refused(
                f"amount must be positive and at most {room} (not yet refunded)", field="amount", conflict=False
            )
        row = await _locked(repo, payment["invoice_id"])
        at = await _billing_time(repo, wall)
        rule = crossed_rule(await repo.rule_set(), ApprovalItemType.REFUND, amount, payment["currency"])
        request_id = approval_request_id(tenant_id, ApprovalItemType.REFUND, refund_id) if rule else None
        await repo.insert_refund(
            refund_id=refund_id,
            payment_id=payment_id,
            invoice_id=payment["invoice_id"],
            amount=amount,
            currency=payment["currency"],
            reason=reason,
            status="awaiting_approval" if rule else "refunded",
            approval_request_id=request_id,
            requested_at=at,
        )
        await audit.record(
            uow,
            actor=actor,
            action="refund_requested",
            entity_type="refund",
            entity_id=refund_id,
            at=at,
            after={
                "payment_id": str(payment_id),
                "amount": str(amount),
                "reason": reason,
                "awaiting_approval": bool(rule),
            },
        )
        if rule:
            request = approval_request(
                tenant_id=tenant_id,
                item_type=ApprovalItemType.REFUND,
                item_id=refund_id,
                amount=amount,
                currency=payment["currency"],
                company_ref=row["company_ref"],
                requested_by=actor,
                summary=f"Refund {amount} {payment['currency']} of a payment on {row['invoice_number']}: {reason}",
                rule=rule,
                at=at,
                details={"payment_id": str(payment_id), "invoice_id": str(row["invoice_id"])},
            )
            uow.publish(
                topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id
            )
        else:
            await _refund(uow, repo, refund_id, at=at)
        return dict(await repo.refund(refund_id) or {})


async def _refund(uow: UnitOfWork, repo: InvoicingRepository, refund_id: UUID, *, at: datetime) -> None:
    refund = await repo.refund(refund_id, lock=True)
    assert refund is not None
    payment = await repo.payment(refund["payment_id"], lock=True)
    assert payment is not None
    row = await _locked(repo, refund["invoice_id"])
    invoice = _document(row)
    split = split_refund(refund["amount"], credit_available=await repo.credit_available(row["company_id"]))
    refunded = payment["refunded"] + refund["amount"]
    await repo.update_payment(
        payment["payment_id"],
        status="refunded" if refunded >= payment["amount"] else "confirmed",
        applied=payment["applied"] - split.from_invoice,
        refunded=refunded,
    )
    await repo.set_refund_status(refund_id, "refunded", at=at)
    paid = row["amount_paid"] - split.from_invoice
    status = row["status"]
    if split.from_invoice > 0 and status in ("paid", "partially_paid"):
        status = status_after_payment(
            total=invoice.total, credits=row["credits_applied"], paid=paid, credited=Decimal(0)
        )
    updated = restated(invoice, status=status, credits_applied=row["credits_applied"], amount_paid=paid)
    await repo.save_state(updated, status=status, at=at)
    await repo.record(
        entry(
            row,
            "refund",
            refund["amount"],
            balance=refund["amount"],
            credit=-split.from_credit,
            currency=refund["currency"],
            reference=refund_id,
            description=f"Refund on {invoice.invoice_number}: {refund['reason']}",
            at=at,
        )
    )
    event = InvoiceEvent(
        event_id=uuid.uuid5(refund_id, "invoice.refund_recorded"),
        event_type=InvoiceEventType.INVOICE_REFUND_RECORDED,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_ref=row["company_ref"],
        livemode=row["livemode"],
        refund=Refund(
            refund_id=refund_id,
            payment_id=payment["payment_id"],
            invoice_id=row["invoice_id"],
            amount=refund["amount"],
            currency=refund["currency"],
            refunded_at=at,
            reason=refund["reason"],
        ),
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
    notify(
        uow,
        row,
        NoticeType.REFUND_RECORDED,
        invoice=updated,
        company=await repo.company(row["company_id"]),
        at=at,
        event=event,
        status=status,
        discriminator=str(refund_id),
    )


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
) -> dict[str, object]:
    """A draft credit note against a finalized invoice. Issue it with `issue_credit_note`."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = InvoicingRepository(uow.conn)
        if (existing := await repo.credit_note_row(credit_note_id)) is not None:
            return dict(existing)
        row = await _locked(repo, invoice_id)
        invoice = _document(row)
        if row["status"] not in ISSUED:
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it cannot be credited")
        try:
            note = credit_note(
                invoice,
                credit_note_id=credit_note_id,
                reason=reason,
                line_ids=line_ids,
                amount=amount,
                description=memo or f"Credit: {reason.value.replace('_', ' ')}",
                already_credited=await repo.credited_total(invoice_id),
            )
        except CannotCredit as exc:
            raise Refused(str(exc), field=exc.field, conflict=False) from exc
        at = await _billing_time(repo, wall)
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
        at = await _billing_time(repo, wall)
        row = await _locked(repo, cn["invoice_id"])
        rule = crossed_rule(await repo.rule_set(), ApprovalItemType.CREDIT, cn["total"], cn["currency"])
        await audit.record(
            uow,
            actor=actor,
            action="credit_note_issued",
            entity_type="credit_note",
            entity_id=credit_note_id,
            at=at,
            before={"status": "draft"},
            after={"status": "awaiting_approval" if rule else "approved"},
        )
        if rule:
            request = approval_request(
                tenant_id=tenant_id,
                item_type=ApprovalItemType.CREDIT,
                item_id=credit_note_id,
                amount=cn["total"],
                currency=cn["currency"],
                company_ref=row["company_ref"],
                requested_by=actor,
                summary=f"Credit note of {cn['total']} {cn['currency']} on {row['invoice_number']} ({cn['reason']})",
                rule=rule,
                at=at,
                details={"invoice_id": str(cn["invoice_id"]), "reason": cn["reason"]},
            )
            await repo.set_credit_note(
                credit_note_id, status="awaiting_approval", at=at, approval_request_id=request.request_id
            )
            uow.publish(
                topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id
            )
        else:
            await _apply_credit_note(uow, repo, credit_note_id, at=at)
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
        at = await _billing_time(repo, wall)
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


async def _apply_credit_note(uow: UnitOfWork, repo: InvoicingRepository, credit_note_id: UUID, *, at: datetime) -> None:
    """Number it (gap-free CN counter), reduce what the invoice owes, the rest becomes credit; publish it."""
    cn = await repo.credit_note_row(credit_note_id, lock=True)
    assert cn is not None
    row = await _locked(repo, cn["invoice_id"])
    invoice = _document(row)
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
    event = InvoiceEvent(
        event_id=uuid.uuid5(credit_note_id, "credit_note.issued"),
        event_type=InvoiceEventType.CREDIT_NOTE_ISSUED,
        occurred_at=at,
        tenant_id=uow.require_tenant(),
        company_ref=row["company_ref"],
        livemode=row["livemode"],
        credit_note=note,
    )
    uow.publish(topic=topics.INVOICES.name, key=event.key(), message=event, message_id=event.event_id)
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
        at = await _billing_time(repo, wall)
        rule = crossed_rule(await repo.rule_set(), ApprovalItemType.BILLING_ADJUSTMENT, abs(amount), company.currency)
        request_id = (
            approval_request_id(tenant_id, ApprovalItemType.BILLING_ADJUSTMENT, adjustment_id) if rule else None
        )
        await repo.insert_adjustment(
            adjustment_id=adjustment_id,
            company_id=company_id,
            amount=amount,
            currency=company.currency,
            description=description,
            status="awaiting_approval" if rule else "approved",
            approval_request_id=request_id,
            at=at,
        )
        await audit.record(
            uow,
            actor=actor,
            action="adjustment_created",
            entity_type="adjustment",
            entity_id=adjustment_id,
            at=at,
            after={
                "company_id": str(company_id),
                "amount": str(amount),
                "description": description,
                "awaiting_approval": bool(rule),
            },
        )
        if rule:
            request = approval_request(
                tenant_id=tenant_id,
                item_type=ApprovalItemType.BILLING_ADJUSTMENT,
                item_id=adjustment_id,
                amount=abs(amount),
                currency=company.currency,
                company_ref=company.company_ref,
                requested_by=actor,
                summary=f"Billing adjustment of {amount} {company.currency} for {company.company_ref}: {description}",
                rule=rule,
                at=at,
                details={"company_id": str(company_id), "signed_amount": str(amount)},
            )
            uow.publish(
                topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id
            )
        return dict(await repo.adjustment(adjustment_id) or {})


async def adjustments(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID) -> list[dict[str, object]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return [dict(r) for r in await InvoicingRepository(uow.conn).adjustments_of(company_id=company_id)]


# -- consumers: clock, approval rules and decisions ------------------------------------------------------


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
            invoice = _document(row)
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


async def keep_rule_sets(uow: UnitOfWork, items: Sequence[Parsed[ApprovalRuleSet]]) -> Rejections[ApprovalRuleSet]:
    repo = InvoicingRepository(uow.conn)
    for item in items:
        await repo.save_rule_set(item.body)
    return []


async def apply_decisions(uow: UnitOfWork, items: Sequence[Parsed[ApprovalDecision]]) -> Rejections[ApprovalDecision]:
    """A final decision releases (applies) or drops a waiting refund or credit note; others change nothing."""
    repo = InvoicingRepository(uow.conn)
    for item in items:
        d = item.body
        held = (ApprovalItemType.REFUND, ApprovalItemType.CREDIT, ApprovalItemType.BILLING_ADJUSTMENT)
        if d.item_type not in held or not d.final:
            continue
        try:
            item_id = UUID(d.item_id)
        except ValueError:
            continue
        approved = d.outcome is ApprovalOutcome.APPROVED
        if d.item_type is ApprovalItemType.BILLING_ADJUSTMENT:
            adj = await repo.adjustment(item_id, lock=True)
            if adj is None or adj["status"] != "awaiting_approval" or adj["approval_request_id"] != d.request_id:
                continue
            at = await _billing_time(repo, d.decided_at)
            await repo.set_adjustment_status(item_id, "approved" if approved else "rejected", at=at)
        elif d.item_type is ApprovalItemType.REFUND:
            refund = await repo.refund(item_id, lock=True)
            if (
                refund is None
                or refund["status"] != "awaiting_approval"
                or refund["approval_request_id"] != d.request_id
            ):
                continue
            at = await _billing_time(repo, d.decided_at)  # the tenant's billing time, not the wall clock
            if approved:
                await _refund(uow, repo, item_id, at=at)
            else:
                await repo.set_refund_status(item_id, "rejected", at=None)
        else:
            cn = await repo.credit_note_row(item_id, lock=True)
            if cn is None or cn["status"] != "awaiting_approval" or cn["approval_request_id"] != d.request_id:
                continue
            at = await _billing_time(repo, d.decided_at)
            if approved:
                await _apply_credit_note(uow, repo, item_id, at=at)
            else:
                await repo.set_credit_note(item_id, status="rejected", at=at)
        await audit.record(
            uow,
            actor=d.decided_by,
            action=f"{d.item_type.value}_{d.outcome.value}",
            entity_type=d.item_type.value,
            entity_id=item_id,
            at=at,
            after={"outcome": d.outcome.value, "reason": d.reason, "request_id": str(d.request_id)},
        )
    return []


# -- reading ------------------------------------------------------------------------------------------------


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
        invoice = _document(row)
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
        lines = draft_lines(invoice_id_for(tenant_id, company_id, start, end), group)
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


async def open_document(
    pool: asyncpg.Pool, *, tenant_id: UUID, invoice_id: UUID, viewer: Principal, wall: datetime
) -> str:
    """The invoice as HTML. Opened by a contact of the invoiced client, it is marked ``viewed`` (audited,
    with a lifecycle notice); another client's contact gets not-found, staff read it without marking it."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        row = await InvoicingRepository(uow.conn).invoice_row(invoice_id)
    if row is None or (viewer.role is Role.CLIENT_CONTACT and viewer.company_id != row["company_id"]):
        raise NotFound(f"invoice {invoice_id} not found")
    invoice = _document(row)
    if viewer.role is Role.CLIENT_CONTACT:
        invoice = await mark(
            pool, tenant_id=tenant_id, invoice_id=invoice_id, step="viewed", actor=viewer.actor, wall=wall
        )
    elif not viewer.may(Permission.CATALOG_READ):
        raise Refused(f"role {viewer.role.value!r} may not read invoices", field="authorization")
    return documents.invoice_html(invoice)
