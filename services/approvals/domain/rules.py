"""Approval rules, pure: what each item type may be measured by, the defaults every tenant starts with, and
which rule a request falls under.

- A rule holds an item when its ``threshold_field`` value is strictly greater than ``threshold``
  (`ApprovalRule.requires_approval`). A money rule with a ``currency`` applies only to requests in that
  currency; one without a currency applies to any.
- When several active rules of the item type are crossed, the one with the highest threshold governs (the
  stricter workflow for the bigger item); equal thresholds go to the one with more steps.
- Defaults (`default_rules`) are created the first time approvals hears of a tenant, from catalog's tenant
  event or from a request, whichever comes first. Their ids are derived from the tenant and the rule's name,
  so creating them twice creates them once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from shared.contracts.approvals import (
    ApprovalItemType,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
    TimeoutAction,
)
from shared.contracts.catalog import Role

FIELDS: dict[ApprovalItemType, frozenset[str]] = {
    ApprovalItemType.TIME_ENTRY: frozenset({"hours"}),
    ApprovalItemType.USAGE_REPORT: frozenset({"quantity", "amount"}),
    ApprovalItemType.DISCOUNT: frozenset({"percentage", "amount"}),
    ApprovalItemType.BILLING_ADJUSTMENT: frozenset({"amount"}),
    ApprovalItemType.CREDIT: frozenset({"amount"}),
    ApprovalItemType.REFUND: frozenset({"amount"}),
    ApprovalItemType.INVOICE: frozenset({"amount"}),
}
"""The values a rule of each item type may compare; requesters send the same names as ``trigger_field``."""

DECIDING_ROLES = frozenset({Role.ADMIN, Role.BILLING_MANAGER, Role.APPROVER})
"""Roles a step may name. Technicians, viewers and client contacts never decide."""


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


def problems(rule: ApprovalRule) -> list[Problem]:
    """What is wrong with a rule an operator submitted (the contract already checked the shapes)."""
    found: list[Problem] = []
    allowed = FIELDS[rule.item_type]
    if rule.threshold_field not in allowed:
        found.append(
            Problem(
                "threshold_field",
                f"a {rule.item_type.value} rule compares one of {sorted(allowed)}, not {rule.threshold_field!r}",
            )
        )
    if rule.currency is not None and rule.threshold_field != "amount":
        found.append(Problem("currency", "only an amount threshold has a currency"))
    if rule.service_codes is not None and rule.item_type is not ApprovalItemType.USAGE_REPORT:
        found.append(Problem("service_codes", "only a usage_report rule is scoped to services"))
    names = {r.value for r in DECIDING_ROLES}
    for i, step in enumerate(rule.steps):
        for role in step.roles:
            if role not in names:
                found.append(Problem(f"steps.{i}.roles", f"{role!r} cannot decide; use one of {sorted(names)}"))
        if step.escalate_to_role is not None and step.escalate_to_role not in names:
            found.append(
                Problem(
                    f"steps.{i}.escalate_to_role",
                    f"{step.escalate_to_role!r} cannot decide; use one of {sorted(names)}",
                )
            )
        if step.on_timeout is not TimeoutAction.REJECT and step.timeout_hours is None:
            found.append(
                Problem(f"steps.{i}.timeout_hours", f"on_timeout {step.on_timeout.value!r} needs timeout_hours")
            )
    return found


def governing_rule(rules: list[ApprovalRule], request: ApprovalRequest) -> ApprovalRule | None:
    """The active rule the request's value crosses, if any (highest threshold, then most steps)."""
    crossed = [
        r
        for r in rules
        if r.active
        and r.item_type is request.item_type
        and r.threshold_field == request.trigger_field
        and (r.currency is None or r.currency == request.currency)
        and r.covers(request.service_code)
        and r.requires_approval(request.trigger_value)
    ]
    return max(crossed, key=lambda r: (r.threshold, len(r.steps)), default=None)


def _step(
    step: int,
    *roles: Role,
    hours: int | None = None,
    on_timeout: TimeoutAction = TimeoutAction.REJECT,
    escalate_to: Role | None = None,
    after_escalation: TimeoutAction = TimeoutAction.REJECT,
) -> ApprovalStep:
    return ApprovalStep(
        step=step,
        roles=[r.value for r in roles],
        timeout_hours=hours,
        on_timeout=on_timeout,
        escalate_to_role=escalate_to.value if escalate_to else None,
        after_escalation=after_escalation,
    )


def _escalate_then_remind(*roles: Role, hours: int) -> ApprovalStep:
    """Billable work is never dropped by a timeout (issue 18): after ``hours`` the step goes to an admin, who
    is then reminded every ``hours`` until someone decides."""
    return _step(
        1, *roles, hours=hours, on_timeout=TimeoutAction.ESCALATE, escalate_to=Role.ADMIN,
        after_escalation=TimeoutAction.REMIND,
    )  # fmt: skip


_MANAGERS = (Role.BILLING_MANAGER, Role.APPROVER)

_DEFAULTS: tuple[tuple[str, ApprovalItemType, str, Decimal, bool, tuple[ApprovalStep, ...]], ...] = (
    # name, item type, field, threshold, active, steps
    (
        "long-time-entries",
        ApprovalItemType.TIME_ENTRY,
        "hours",
        Decimal("8"),
        True,
        (_escalate_then_remind(*_MANAGERS, hours=72),),
    ),
    # off until an admin scopes it to services (service_codes) and sets a threshold in their unit: 10,000 means
    # nothing across devices, seats and gigabytes alike
    (
        "large-usage-reports",
        ApprovalItemType.USAGE_REPORT,
        "quantity",
        Decimal("10000"),
        False,
        (_escalate_then_remind(*_MANAGERS, hours=72),),
    ),
    (
        "percentage-discounts",
        ApprovalItemType.DISCOUNT,
        "percentage",
        Decimal("20"),
        True,
        (_step(1, Role.BILLING_MANAGER),),
    ),
    ("amount-discounts", ApprovalItemType.DISCOUNT, "amount", Decimal("500"), True, (_step(1, Role.BILLING_MANAGER),)),
    (
        "adjustments",
        ApprovalItemType.BILLING_ADJUSTMENT,
        "amount",
        Decimal("500"),
        True,
        (_escalate_then_remind(Role.BILLING_MANAGER, hours=120),),
    ),
    (
        "credits",
        ApprovalItemType.CREDIT,
        "amount",
        Decimal("500"),
        True,
        (_step(1, Role.BILLING_MANAGER), _step(2, Role.ADMIN)),
    ),
    (
        "refunds",
        ApprovalItemType.REFUND,
        "amount",
        Decimal("500"),
        True,
        (_step(1, Role.BILLING_MANAGER), _step(2, Role.ADMIN)),
    ),
    ("large-invoices", ApprovalItemType.INVOICE, "amount", Decimal("50000"), False, (_step(1, Role.BILLING_MANAGER),)),
)


def default_rule_id(tenant_id: UUID, name: str) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"approvals:default-rule:{tenant_id}:{name}")


def default_rules(tenant_id: UUID, *, at: datetime) -> list[ApprovalRule]:
    """The rules a tenant starts with (documented in services/approvals/README.md)."""
    return [
        ApprovalRule(
            rule_id=default_rule_id(tenant_id, name),
            tenant_id=tenant_id,
            item_type=item_type,
            threshold_field=field,
            threshold=threshold,
            steps=list(steps),
            active=active,
            version=1,
            updated_at=at,
        )
        for name, item_type, field, threshold, active, steps in _DEFAULTS
    ]
