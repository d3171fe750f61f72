"""Building invoices: charges and period completions in, questions to tax-currency, finalization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.building import Draft, build, check, invoice_id_for, invoice_number
from services.invoicing.domain.credit_notes import (
    PLACEHOLDER_NUMBER,
)
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
from services.invoicing.use_cases.approvals import Gated, record_gated
from services.invoicing.use_cases.common import (
    Refused,
    entry,
    hold,
    invoice_pdf,
    notify,
    publish_event,
)
from services.invoicing.use_cases.credit_notes import apply_credit_note
from shared import audit, principals, topics
from shared.contracts.approvals import ApprovalItemType
from shared.contracts.catalog import CatalogEvent, CompanyState
from shared.contracts.invoices import (
    CreditNote,
    CreditNoteReason,
    Invoice,
    InvoiceEventType,
)
from shared.contracts.invoicing import NoticeType
from shared.contracts.rating import ChargeCreated, PeriodCompleted, RatingEvent
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    FailureReason,
    QuoteFailed,
    RatesChanged,
    TaxQuoted,
    TaxRequested,
    TaxResult,
    quote_key,
)
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Rejections, Retry
from shared.messaging.envelope import Parsed
from shared.periods import local_date

log = structlog.get_logger(__name__)


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
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
    lines = draft_lines(invoice_id, charges, discounts=await repo.discounts(), company_id=company.company_id)
    work = Work(issue_date=issue_date, lines=lines, charge_count=done.charge_count)
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
        await hold(uow, repo, invoice_id, reason, at=done.closed_at)
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
        check(draft_of(invoice_id, company, work))
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
            tax_inclusive=await repo.tax_inclusive(company.company_id),  # gross lines: tax-currency splits them
            lines=lines_to_tax(priced, await repo.tax_categories()),
        )
    except (CannotInvoice, ValidationError) as exc:
        await hold(uow, repo, invoice_id, str(exc), at=at)
        return
    work = work.model_copy(update={"priced": priced, "tax": None})
    uow.publish(topic=topics.TAX_REQUESTS.name, key=key, message=tax, message_id=tax.request_id)
    await repo.save_work(invoice_id, status="awaiting_tax", work=work, attempt=attempt, at=at)


def draft_of(invoice_id: UUID, company: CompanyState, work: Work, row: asyncpg.Record | None = None) -> Draft:
    first = work.lines[0] if work.lines else None
    return Draft(
        invoice_id=invoice_id,
        company=company,
        period_start=row["period_start"] if row else (first.first_day if first else work.issue_date),
        period_end=row["period_end"] if row else work.issue_date,
        issue_date=work.issue_date,
    )


# -- tax-currency's answers ------------------------------------------------------------------------------


async def take_tax_results(uow: UnitOfWork, items: Sequence[Parsed[TaxResult]]) -> Rejections[TaxResult]:
    """Continue each draft whose pending question this answers; answers to older attempts change nothing."""
    repo = InvoicingRepository(uow.conn)
    for item in items:
        answer = item.body
        if isinstance(answer, RatesChanged):
            await retry_for_rates(uow, repo, answer)
            continue
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
            await hold(uow, repo, answer.invoice_id, f"{answer.reason.value}: {answer.message}", at=at)
    return []


RETRIED_WHEN_RATES_CHANGE = (
    FailureReason.MISSING_TAX_RATE,
    FailureReason.MISSING_EXCHANGE_RATE,
    FailureReason.INACTIVE_CURRENCY,
)
"""Holds a rate (or currency) added in tax-currency may lift: retried on ``rates.changed``."""


async def retry_for_rates(uow: UnitOfWork, repo: InvoicingRepository, change: RatesChanged) -> None:
    """Tax-currency added a rate: every draft it held for a missing rate is asked again (a new attempt). One
    the change does not help is held again with the same reason, until the next change or an operator."""
    for row in await repo.held_for(tuple(f"{r.value}:" for r in RETRIED_WHEN_RATES_CHANGE)):
        try:
            await requote(uow, repo, row, actor="system:invoicing", at=row["updated_at"] or change.occurred_at)
        except Refused as exc:
            log.info("held_invoice_not_retried", invoice_id=str(row["invoice_id"]), reason=str(exc))


async def requote(uow: UnitOfWork, repo: InvoicingRepository, row: asyncpg.Record, *, actor: str, at: datetime) -> None:
    """A held invoice (``row`` locked) asks its questions again with the next attempt (new request ids:
    tax-currency keeps every answer per id). Audited as ``invoice_retried``."""
    invoice_id: UUID = row["invoice_id"]
    if row["status"] != "held":
        raise Refused(f"invoice {invoice_id} is {row['status']}: only a held invoice is retried")
    company = await repo.company(row["company_id"])
    if company is None:
        raise Refused(f"client {row['company_id']} is unknown to invoicing")
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


async def finalize(
    uow: UnitOfWork,
    repo: InvoicingRepository,
    row: asyncpg.Record,
    *,
    company: CompanyState,
    work: Work,
    approved: bool = False,
) -> None:
    """Number the invoice (gap-free: the counter row is locked until commit), apply available credit,
    pin the rate rows, write the ledger and publish it. A total crossing an active ``invoice`` approval rule
    first waits for the decision (still a draft, no number spent), unless ``approved`` already."""
    invoice_id: UUID = row["invoice_id"]
    at: datetime = row["closed_at"]
    draft = draft_of(invoice_id, company, work, row)
    assert work.tax is not None
    credit = await repo.credit_available(company.company_id)
    try:
        trial = build(
            draft, number="INV-0000-00000", priced=work.priced, tax=work.tax, fx=work.fx(), credit_available=credit
        )
    except CannotInvoice as exc:
        await hold(uow, repo, invoice_id, str(exc), at=at)
        return
    if trial.total < 0:
        await credit_negative_period(uow, repo, row, company=company, work=work, trial=trial)
        return
    if not approved and await _waits_for_approval(uow, repo, row, company=company, work=work, trial=trial):
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
    event = publish_event(
        uow,
        row,
        InvoiceEventType.INVOICE_FINALIZED,
        about=invoice_id,
        at=at,
        company_ref=company.company_ref,
        invoice=invoice,
    )
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


async def _waits_for_approval(
    uow: UnitOfWork,
    repo: InvoicingRepository,
    row: asyncpg.Record,
    *,
    company: CompanyState,
    work: Work,
    trial: Invoice,
) -> bool:
    """Ask approvals about the whole invoice when its total crosses an active ``invoice`` rule (or the tenant's
    rules have not arrived yet: the gate fails closed and approvals releases it at once if no rule holds it).
    Waiting, the draft keeps its quoted work and status ``draft`` with reason ``awaiting_approval``."""
    invoice_id: UUID = row["invoice_id"]
    at: datetime = row["closed_at"]
    item = Gated(
        item_type=ApprovalItemType.INVOICE,
        entity_type="invoice",
        item_id=invoice_id,
        amount=trial.total,
        currency=trial.currency,
        company_ref=company.company_ref,
        summary=f"Invoice of {trial.total} {trial.currency} for {company.company_ref}, "
        f"{row['period_start']} to {row['period_end']}",
        details={"company_id": str(company.company_id), "period_start": str(row["period_start"])},
    )

    async def wait(request_id: UUID | None) -> None:
        if request_id is not None:
            await repo.save_work(invoice_id, status="draft", work=work, attempt=row["attempt"], at=at)
            reason = f"awaiting_approval: the total {trial.total} {trial.currency} needs approval"
            await repo.wait_for_approval(invoice_id, reason, request_id, at=at)

    return await record_gated(
        uow,
        repo,
        item,
        record=wait,
        actor="system:invoicing",
        action="invoice_submitted_for_approval",
        at=at,
        after={"total": str(trial.total), "currency": trial.currency},
        audit_released=False,  # an invoice no rule holds is simply finalized (audited as such)
    )


async def decide_invoice(
    uow: UnitOfWork, repo: InvoicingRepository, invoice_id: UUID, *, approved: bool, reason: str | None
) -> bool:
    """Approvals' final decision on a waiting draft: approved, it is finalized and numbered now; rejected, it
    stays a draft with the reason (cancel it, or correct and re-issue through a credit or adjustment)."""
    row = await repo.invoice_row(invoice_id, lock=True)
    if row is None or row["status"] != "draft" or row["approval_request_id"] is None or row["work"] is None:
        return False
    company = await repo.company(row["company_id"])
    if company is None:
        raise Retry(f"client {row['company_id']} not in invoicing's catalog view")
    if approved:
        await finalize(uow, repo, row, company=company, work=Work.model_validate(row["work"]), approved=True)
    else:
        await repo.set_draft_reason(invoice_id, f"rejected: {reason or 'no reason given'}", at=row["updated_at"])
    return True


async def credit_negative_period(
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
        await hold(
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
    await apply_credit_note(uow, repo, note_id, at=at)
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
