"""Approval gating of usage reports and time entries, pure (the pattern of catalog's discount approval).

- A billable time entry whose ``hours`` (or a usage report whose ``quantity``) is strictly greater than an
  active rule's threshold (`ApprovalRule.requires_approval`) is held, and an `ApprovalRequest` is sent.
- The request id is derived from the tenant, item type and record id, so a retried batch repeats it and a
  decision is matched to exactly the record it was asked for.
- A final decision releases (approved) or refuses (rejected) a held record; a decision for an unknown or
  already-decided record changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.contracts.approvals import ApprovalItemType, ApprovalRequest, ApprovalRule, ApprovalRuleSet

ITEM_TYPE = {"usage": ApprovalItemType.USAGE_REPORT, "time": ApprovalItemType.TIME_ENTRY}
TRIGGER_FIELD = {"usage": "quantity", "time": "hours"}


def crossed_rule(
    rules: ApprovalRuleSet | None,
    item_type: ApprovalItemType,
    field: str,
    value: Decimal,
    *,
    service_code: str | None = None,
) -> ApprovalRule | None:
    """The first active rule of ``item_type`` on ``field`` that ``value`` crosses, if any (a usage rule with
    ``service_codes`` only for those services: a quantity means something only in its own unit)."""
    if rules is None:
        return None
    for rule in rules.active_rules(item_type):
        if rule.threshold_field == field and rule.covers(service_code) and rule.requires_approval(value):
            return rule
    return None


def request_id_for(tenant_id: UUID, record_type: str, record_id: UUID) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"metering:{ITEM_TYPE[record_type].value}:{tenant_id}:{record_id}")


def approval_request(
    *,
    tenant_id: UUID,
    record_type: str,
    record_id: UUID,
    company_ref: str,
    value: Decimal,
    rule: ApprovalRule,
    summary: str,
    details: dict[str, Any],
    at: datetime,
    requested_by: str,
    requested_for: str | None,
    service_code: str | None = None,
) -> ApprovalRequest:
    """``requested_by``: who submitted the record (an API caller, or the sending system); ``requested_for``: whose
    it is (a time entry's technician). Approvals lets neither decide it."""
    return ApprovalRequest(
        request_id=request_id_for(tenant_id, record_type, record_id),
        tenant_id=tenant_id,
        item_type=ITEM_TYPE[record_type],
        item_id=str(record_id),
        company_ref=company_ref,
        requesting_service="metering",
        requested_by=requested_by,
        requested_for=requested_for,
        trigger_field=TRIGGER_FIELD[record_type],
        trigger_value=value,
        service_code=service_code,
        summary=f"{summary} (threshold {rule.threshold})",
        requested_at=at,
        details=details
        | {"rule_id": str(rule.rule_id), "rule_version": rule.version, "threshold": str(rule.threshold)},
    )
