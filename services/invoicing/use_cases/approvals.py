"""The approval gate: record a refund, credit note or adjustment, and ask approvals when it crosses a rule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.invoicing.adapters.repository import InvoicingRepository
from services.invoicing.domain.approval import approval_request, crossed_rule
from shared import audit, topics
from shared.contracts.approvals import ApprovalItemType, ApprovalRuleSet
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed


async def keep_rule_sets(uow: UnitOfWork, items: Sequence[Parsed[ApprovalRuleSet]]) -> Rejections[ApprovalRuleSet]:
    repo = InvoicingRepository(uow.conn)
    for item in items:
        await repo.save_rule_set(item.body)
    return []


@dataclass(frozen=True)
class Gated:
    """An item that may need approval: what approvals is told about it."""

    item_type: ApprovalItemType
    entity_type: str  # as audited: refund, credit_note, adjustment, invoice
    item_id: UUID
    amount: Decimal  # compared with the rule's threshold (non-negative)
    currency: str
    company_ref: str
    summary: str
    details: dict[str, Any]


async def record_gated(
    uow: UnitOfWork,
    repo: InvoicingRepository,
    item: Gated,
    *,
    record: Callable[[UUID | None], Awaitable[None]],
    actor: str,
    action: str,
    at: datetime,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    audit_released: bool = True,
) -> bool:
    """Record the item and ask for approval if a rule is crossed; True when it waits for the decision.

    ``record(request_id)`` writes the item (``request_id`` is None when no rule holds it); the audit row
    (``action``, ``after`` + ``awaiting_approval``; only when it waits unless ``audit_released``) and the
    approval request go in the same transaction.
    """
    rule = crossed_rule(await repo.rule_set(), item.item_type, item.amount, item.currency)
    request = (
        approval_request(
            tenant_id=uow.require_tenant(),
            item_type=item.item_type,
            item_id=item.item_id,
            amount=item.amount,
            currency=item.currency,
            company_ref=item.company_ref,
            requested_by=actor,
            summary=item.summary,
            rule=rule,
            at=at,
            details=item.details,
        )
        if rule
        else None
    )
    await record(request.request_id if request else None)
    if request is None and not audit_released:
        return False
    await audit.record(
        uow,
        actor=actor,
        action=action,
        entity_type=item.entity_type,
        entity_id=item.item_id,
        at=at,
        before=before,
        after=after | {"awaiting_approval": request is not None},
    )
    if request is not None:
        uow.publish(
            topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id
        )
    return request is not None
