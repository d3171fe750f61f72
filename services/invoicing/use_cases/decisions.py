"""Final approval decisions: a waiting refund, credit note or billing adjustment is applied or dropped."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.use_cases.build import decide_invoice
from services.invoicing.use_cases.common import billing_time
from services.invoicing.use_cases.credit_notes import apply_credit_note
from services.invoicing.use_cases.payments import apply_refund
from shared import audit
from shared.contracts.approvals import ApprovalDecision, ApprovalItemType, ApprovalOutcome
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed


async def apply_decisions(uow: UnitOfWork, items: Sequence[Parsed[ApprovalDecision]]) -> Rejections[ApprovalDecision]:
    """A final decision releases (applies) or drops a waiting refund, credit note or billing adjustment, and
    finalizes or leaves in draft (with the reason) an invoice waiting for approval; others change nothing."""
    repo = InvoicingRepository(uow.conn)
    for item in items:
        d = item.body
        held = (
            ApprovalItemType.REFUND,
            ApprovalItemType.CREDIT,
            ApprovalItemType.BILLING_ADJUSTMENT,
            ApprovalItemType.INVOICE,
        )
        if d.item_type not in held or not d.final:
            continue
        try:
            item_id = UUID(d.item_id)
        except ValueError:
            continue
        approved = d.outcome is ApprovalOutcome.APPROVED
        if d.item_type is ApprovalItemType.INVOICE:
            row = await repo.invoice_row(item_id)
            if row is None or row["approval_request_id"] != d.request_id:
                continue
            if not await decide_invoice(uow, repo, item_id, approved=approved, reason=d.reason):
                continue
            at = row["closed_at"]
        elif d.item_type is ApprovalItemType.BILLING_ADJUSTMENT:
            adj = await repo.adjustment(item_id, lock=True)
            if adj is None or adj["status"] != "awaiting_approval" or adj["approval_request_id"] != d.request_id:
                continue
            at = await billing_time(repo, d.decided_at)
            await repo.set_adjustment_status(item_id, "approved" if approved else "rejected", at=at)
        elif d.item_type is ApprovalItemType.REFUND:
            refund = await repo.refund(item_id, lock=True)
            if (
                refund is None
                or refund["status"] != "awaiting_approval"
                or refund["approval_request_id"] != d.request_id
            ):
                continue
            at = await billing_time(repo, d.decided_at)  # the tenant's billing time, not the wall clock
            if approved:
                await apply_refund(uow, repo, item_id, at=at)
            else:
                await repo.set_refund_status(item_id, "rejected", at=None)
        else:
            cn = await repo.credit_note_row(item_id, lock=True)
            if cn is None or cn["status"] != "awaiting_approval" or cn["approval_request_id"] != d.request_id:
                continue
            at = await billing_time(repo, d.decided_at)
            if approved:
                await apply_credit_note(uow, repo, item_id, at=at)
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
