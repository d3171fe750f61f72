"""Approval gating of discounts, pure: which approval rule a discount crosses, the status the catalog
gives it, and the `ApprovalRequest` it sends.

- The trigger field is ``percentage`` for percentage discounts and ``amount`` for fixed amounts; a rule
  with a money threshold in another currency does not apply to a fixed amount.
- A discount crossing an active ``discount`` rule (value strictly above its threshold,
  `ApprovalRule.requires_approval`) is saved ``pending`` with a new request; otherwise ``approved`` at once.
- Before the catalog has received any rule set for the tenant (approvals publishes a new tenant's defaults
  a moment after the tenant is created), a discount is saved ``pending`` and asked about anyway: approvals
  decides it under its rules, releasing it at once when none holds it. The gate fails closed.
- Saving again with the same terms (type, value, currency) keeps the status and request it had (renaming
  or re-dating a discount needs no new approval; a rejected one stays rejected); changing them evaluates
  afresh, under the rules the catalog holds then.
- The request id is derived from the tenant, discount and the version being saved, so retrying the same
  save repeats it, and a decision on an older request never decides a newer value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.contracts.approvals import ApprovalItemType, ApprovalRequest, ApprovalRule, ApprovalRuleSet
from shared.contracts.catalog import ApprovalStatus, DiscountState, DiscountType

TRIGGER_FIELD = {DiscountType.PERCENTAGE: "percentage", DiscountType.FIXED_AMOUNT: "amount"}


def crossed_rule(discount: DiscountState, rules: ApprovalRuleSet | None) -> ApprovalRule | None:
    """The first active discount rule this discount crosses, if any."""
    if rules is None:
        return None
    field = TRIGGER_FIELD[discount.discount_type]
    for rule in rules.active_rules(ApprovalItemType.DISCOUNT):
        if rule.threshold_field != field:
            continue
        if field == "amount" and rule.currency is not None and rule.currency != discount.currency:
            continue
        if rule.requires_approval(discount.value):
            return rule
    return None


def request_id_for(tenant_id: UUID, discount_id: UUID, version: int) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"catalog:discount:{tenant_id}:{discount_id}:{version}")


def _same_terms(a: DiscountState, b: DiscountState) -> bool:
    return (a.discount_type, a.value, a.currency) == (b.discount_type, b.value, b.currency)


class NoRulesYet:
    """The catalog holds no rule set for the tenant yet: ask approvals rather than assume none applies."""


NO_RULES_YET = NoRulesYet()


def gated(
    state: DiscountState, before: DiscountState | None, rules: ApprovalRuleSet | None, *, version: int
) -> tuple[DiscountState, ApprovalRule | NoRulesYet | None]:
    """The state to save (its approval fields set by the catalog) and, when it needs a new approval
    request, the rule it crossed (or `NO_RULES_YET`)."""
    if before is not None and _same_terms(state, before):
        kept = {"approval_status": before.approval_status, "approval_request_id": before.approval_request_id}
        return state.model_copy(update=kept), None
    rule: ApprovalRule | NoRulesYet | None = NO_RULES_YET if rules is None else crossed_rule(state, rules)
    if rule is None:
        return state.model_copy(update={"approval_status": ApprovalStatus.APPROVED, "approval_request_id": None}), None
    request_id = request_id_for(state.tenant_id, state.discount_id, version)
    return state.model_copy(update={"approval_status": ApprovalStatus.PENDING, "approval_request_id": request_id}), rule


def approval_request(
    discount: DiscountState,
    rule: ApprovalRule | NoRulesYet,
    *,
    requested_by: str | None,
    company_ref: str | None,
    at: datetime,
) -> ApprovalRequest:
    """The request for a pending discount (its ``approval_request_id`` is the request's id)."""
    assert discount.approval_request_id is not None, "only a pending discount is requested"
    field = TRIGGER_FIELD[discount.discount_type]
    shown = f"{discount.value}%" if field == "percentage" else f"{discount.value} {discount.currency}"
    target = (
        f"plan {discount.plan_id}"
        if discount.plan_id is not None
        else f"service {discount.service_id}"
        if discount.service_id is not None
        else "the client"
    )
    for_client = f" for {company_ref or discount.company_id}" if discount.company_id is not None else ""
    known = isinstance(rule, ApprovalRule)
    threshold = f" (threshold {rule.threshold})" if isinstance(rule, ApprovalRule) else ""
    return ApprovalRequest(
        request_id=discount.approval_request_id,
        tenant_id=discount.tenant_id,
        item_type=ApprovalItemType.DISCOUNT,
        item_id=str(discount.discount_id),
        company_ref=company_ref,
        requesting_service="catalog",
        requested_by=requested_by,
        trigger_field=field,
        trigger_value=discount.value,
        currency=discount.currency if field == "amount" else None,
        summary=f"Discount {discount.name!r}: {shown} on {target}{for_client}{threshold}",
        requested_at=at,
        details={
            "discount_type": discount.discount_type.value,
            "rule_id": str(rule.rule_id) if isinstance(rule, ApprovalRule) else None,
            "rule_version": rule.version if isinstance(rule, ApprovalRule) else None,
            "threshold": str(rule.threshold) if isinstance(rule, ApprovalRule) else None,
            "rules_known": known,
            "plan_id": str(discount.plan_id) if discount.plan_id else None,
            "service_id": str(discount.service_id) if discount.service_id else None,
            "company_id": str(discount.company_id) if discount.company_id else None,
            "valid_from": str(discount.valid_from) if discount.valid_from else None,
            "valid_to": str(discount.valid_to) if discount.valid_to else None,
        },
    )


def decided(discount: DiscountState, *, request_id: UUID, approved: bool) -> DiscountState | None:
    """The discount after a final decision on ``request_id``, or None when the decision is not for what
    it waits on (a stale request of an earlier value, or the discount is not pending)."""
    if discount.approval_status is not ApprovalStatus.PENDING or discount.approval_request_id != request_id:
        return None
    status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
    return discount.model_copy(update={"approval_status": status})


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """A discount saved pending approval, and why: the rule it crossed, or the request it still waits on."""

    discount: DiscountState
    reason: str
    rule: ApprovalRule | None
    requested_now: bool


def why_pending(discount: DiscountState, crossed: ApprovalRule | NoRulesYet | None) -> PendingApproval | None:
    """For a discount as saved (``crossed``: what `gated` returned for that save), why it waits for approval;
    None when it does not wait (approved or rejected)."""
    if discount.approval_status is not ApprovalStatus.PENDING:
        return None
    field = TRIGGER_FIELD[discount.discount_type]
    if isinstance(crossed, ApprovalRule):
        unit = f" {crossed.currency}" if field == "amount" and crossed.currency else ""
        shown = f"{discount.value}{' ' + str(discount.currency) if field == 'amount' else ''}"
        reason = (
            f"{field} {shown} is above the threshold {crossed.threshold}{unit} of approval rule "
            f"{crossed.rule_id} (version {crossed.version})"
        )
        return PendingApproval(discount, reason, crossed, requested_now=True)
    if isinstance(crossed, NoRulesYet):
        reason = (
            "no approval rules had reached the catalog for this tenant yet, so the discount was sent to approvals, "
            "which releases it at once if no rule holds it (GET /v1/readiness shows when the rules have arrived)"
        )
        return PendingApproval(discount, reason, None, requested_now=True)
    reason = f"still waiting for a decision on approval request {discount.approval_request_id} (terms unchanged)"
    return PendingApproval(discount, reason, None, requested_now=False)
