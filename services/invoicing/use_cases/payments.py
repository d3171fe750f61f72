"""Payments and refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.ledger import split_payment, split_refund, status_after_payment
from services.invoicing.use_cases.approvals import Gated, record_gated
from services.invoicing.use_cases.common import (
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
from shared.contracts.approvals import ApprovalItemType
from shared.contracts.invoices import (
    InvoiceEventType,
    Payment,
    Refund,
)
from shared.contracts.invoicing import NoticeType
from shared.db.uow import UnitOfWork, unit_of_work
from shared.money import round_half_up


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
        row = await locked_invoice(repo, invoice_id)
        existing = await repo.payment(payment_id)
        if existing is not None:
            if (existing["invoice_id"], existing["amount"]) != (invoice_id, amount):
                raise Refused(f"payment {payment_id} exists with other content", field="payment_id")
            return dict(existing)
        invoice = document_of(row)
        if row["status"] not in (*PAYABLE, "paid"):  # a payment on a paid invoice becomes credit
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: it takes no payment")
        if round_half_up(amount, currency=invoice.currency) != amount or amount <= 0:
            raise Refused(f"amount must be positive in {invoice.currency} minor units", field="amount", conflict=False)
        at = await billing_time(repo, wall)
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
            await confirm_payment(uow, repo, row, payment_id, at=at)
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
        row = await locked_invoice(repo, payment["invoice_id"])
        if outcome == "confirmed" and row["status"] not in (*PAYABLE, "paid"):
            raise Refused(f"invoice {row['invoice_number']} is {row['status']}: the payment cannot be confirmed")
        at = await billing_time(repo, wall)
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
            await confirm_payment(uow, repo, row, payment_id, at=at)
        else:
            await repo.update_payment(payment_id, status="failed", applied=Decimal(0), refunded=Decimal(0))
        return dict(await repo.payment(payment_id) or {})


async def confirm_payment(
    uow: UnitOfWork, repo: InvoicingRepository, row: asyncpg.Record, payment_id: UUID, *, at: datetime
) -> None:
    payment = await repo.payment(payment_id, lock=True)
    assert payment is not None
    invoice = document_of(row)
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
    event = publish_event(
        uow,
        row,
        InvoiceEventType.INVOICE_PAYMENT_RECORDED,
        about=payment_id,
        at=at,
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
        row = await locked_invoice(repo, payment["invoice_id"])
        at = await billing_time(repo, wall)
        item = Gated(
            item_type=ApprovalItemType.REFUND,
            entity_type="refund",
            item_id=refund_id,
            amount=amount,
            currency=payment["currency"],
            company_ref=row["company_ref"],
            summary=f"Refund {amount} {payment['currency']} of a payment on {row['invoice_number']}: {reason}",
            details={"payment_id": str(payment_id), "invoice_id": str(row["invoice_id"])},
        )

        async def insert(request_id: UUID | None) -> None:
            await repo.insert_refund(
                refund_id=refund_id,
                payment_id=payment_id,
                invoice_id=payment["invoice_id"],
                amount=amount,
                currency=payment["currency"],
                reason=reason,
                status="awaiting_approval" if request_id else "refunded",
                approval_request_id=request_id,
                requested_at=at,
            )

        after = {"payment_id": str(payment_id), "amount": str(amount), "reason": reason}
        if not await record_gated(
            uow, repo, item, record=insert, actor=actor, action="refund_requested", at=at, after=after
        ):
            await apply_refund(uow, repo, refund_id, at=at)
        return dict(await repo.refund(refund_id) or {})


async def apply_refund(uow: UnitOfWork, repo: InvoicingRepository, refund_id: UUID, *, at: datetime) -> None:
    refund = await repo.refund(refund_id, lock=True)
    assert refund is not None
    payment = await repo.payment(refund["payment_id"], lock=True)
    assert payment is not None
    row = await locked_invoice(repo, refund["invoice_id"])
    invoice = document_of(row)
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
    event = publish_event(
        uow,
        row,
        InvoiceEventType.INVOICE_REFUND_RECORDED,
        about=refund_id,
        at=at,
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
