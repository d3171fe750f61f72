"""Which refunds and credits wait for approval, pure (the same gate as catalog's discounts).

An item (a refund, a credit note) whose ``amount`` is strictly greater than an active rule's threshold for
its item type waits for the approvals service's final decision. A money rule with a currency only holds
items in that currency. Before invoicing has received any rule set for the tenant, the item waits and is
asked about anyway: approvals releases it at once when no rule holds it (the gate fails closed).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.contracts.approvals import ApprovalItemType, ApprovalRequest, ApprovalRule, ApprovalRuleSet


class NoRulesYet:
    """No rule set has arrived for the tenant: ask rather than assume none applies."""


NO_RULES_YET = NoRulesYet()


def crossed_rule(
    rules: ApprovalRuleSet | None, item_type: ApprovalItemType, amount: Decimal, currency: str
) -> ApprovalRule | NoRulesYet | None:
    if rules is None:
        return NO_RULES_YET
    for rule in rules.active_rules(item_type):
        if rule.threshold_field != "amount" or (rule.currency is not None and rule.currency != currency):
            continue
        if rule.requires_approval(amount):
            return rule
    return None


def approval_request_id(tenant_id: UUID, item_type: ApprovalItemType, item_id: UUID) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"invoicing:{item_type.value}:{tenant_id}:{item_id}")


def approval_request(
    *,
    tenant_id: UUID,
    item_type: ApprovalItemType,
    item_id: UUID,
    amount: Decimal,
    currency: str,
    company_ref: str,
    requested_by: str | None,
    summary: str,
    rule: ApprovalRule | NoRulesYet,
    at: datetime,
    details: dict[str, Any],
) -> ApprovalRequest:
    known = isinstance(rule, ApprovalRule)
    return ApprovalRequest(
        request_id=approval_request_id(tenant_id, item_type, item_id),
        tenant_id=tenant_id,
        item_type=item_type,
        item_id=str(item_id),
        company_ref=company_ref,
        requesting_service="invoicing",
        requested_by=requested_by,
        trigger_field="amount",
        trigger_value=amount,
        currency=currency,
        summary=summary + (f" (threshold {rule.threshold})" if isinstance(rule, ApprovalRule) else ""),
        requested_at=at,
        details=details
        | {
            "rules_known": known,
            "rule_id": str(rule.rule_id) if isinstance(rule, ApprovalRule) else None,
        },
    )
