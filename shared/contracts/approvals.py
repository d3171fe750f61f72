"""Approval contracts (internal): `approvals.rules.v1`, `approvals.requests.v1`, `approvals.decisions.v1`,
`approvals.pending.v1`.

The approvals service owns the rules and publishes them state-carrying: an `ApprovalRuleSet` keyed by
tenant is the whole set for that tenant, so a consumer replaces its local copy atomically. A requesting
service holds an item whose value is strictly greater than an active rule's threshold, sends an
`ApprovalRequest`, and releases or drops the item on the final `ApprovalDecision`. Requests and decisions
share the key ``"<tenant_id>:<item_type>:<item_id>"`` so they stay in order per item. Each time a step starts
waiting for someone (a new request, the next step, an escalation) approvals publishes an `ApprovalPending`
with the same key, so notification can tell the people whose role the step names.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Self
from uuid import UUID

from pydantic import Field, model_validator

from shared.contracts.base import (
    Contract,
    CurrencyCode,
    DecimalStr,
    NonEmptyStr,
    NonNegativeDecimalStr,
    TenantId,
    Timestamp,
)

__all__ = [
    "SYSTEM_TIMEOUT",
    "ApprovalDecision",
    "ApprovalItemType",
    "ApprovalOutcome",
    "ApprovalPending",
    "ApprovalRequest",
    "ApprovalRule",
    "ApprovalRuleSet",
    "ApprovalStep",
    "PendingReason",
    "TimeoutAction",
    "approval_key",
]

SYSTEM_TIMEOUT = "system:timeout"
"""`ApprovalDecision.decided_by` when a step timed out and its `on_timeout` decided."""

_TENANT_EXAMPLE = "0f8fad5b-d9cb-469f-a165-70867728950e"


class ApprovalItemType(StrEnum):
    TIME_ENTRY = "time_entry"
    USAGE_REPORT = "usage_report"
    DISCOUNT = "discount"
    BILLING_ADJUSTMENT = "billing_adjustment"
    CREDIT = "credit"
    REFUND = "refund"
    INVOICE = "invoice"


class TimeoutAction(StrEnum):
    REJECT = "reject"
    APPROVE = "approve"
    ESCALATE = "escalate"
    REMIND = "remind"  # the step stays with its deciders, who are reminded every timeout_hours until one decides


class ApprovalOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


def approval_key(tenant_id: UUID, item_type: ApprovalItemType, item_id: str) -> str:
    """Partition key of requests and decisions: ``"<tenant_id>:<item_type>:<item_id>"``."""
    return f"{tenant_id}:{item_type.value}:{item_id}"


class ApprovalStep(Contract):
    step: int = Field(ge=1, description="Position of the step, 1-based, in order.", examples=[1, 2])
    roles: list[NonEmptyStr] = Field(
        min_length=1, description="Roles allowed to decide this step.", examples=[["billing_manager"]]
    )
    timeout_hours: int | None = Field(
        default=None,
        ge=1,
        description="Hours of billing-clock time before on_timeout applies.",
        examples=[48],
    )
    on_timeout: TimeoutAction = Field(
        default=TimeoutAction.REJECT,
        description="What happens when timeout_hours pass undecided.",
        examples=["reject", "approve", "escalate"],
    )
    escalate_to_role: NonEmptyStr | None = Field(
        default=None,
        description="Role that decides after escalation; required for `escalate`.",
        examples=["owner"],
    )

    after_escalation: TimeoutAction = Field(
        default=TimeoutAction.REJECT,
        description="What an escalated step that times out again does: reject, approve, or remind the escalation "
        "role every timeout_hours until it decides (never escalate again).",
        examples=["remind"],
    )

    @model_validator(mode="after")
    def _escalation_has_role(self) -> Self:
        if self.on_timeout is TimeoutAction.ESCALATE and self.escalate_to_role is None:
            raise ValueError("escalate_to_role is required when on_timeout is 'escalate'")
        if self.after_escalation is TimeoutAction.ESCALATE:
            raise ValueError("after_escalation is reject, approve or remind: a step escalates once")
        return self


class ApprovalRule(Contract):
    """One version of a rule: an `item_type` item whose `threshold_field` exceeds `threshold` is held."""

    rule_id: UUID = Field(
        description="Id of the rule (stable across versions).",
        examples=["d9428888-122b-41e5-a6e8-b6f1c9b3c2a1"],
    )
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    item_type: ApprovalItemType = Field(description="Kind of item the rule holds.", examples=["time_entry"])
    threshold_field: NonEmptyStr = Field(
        description="The item's value compared to the threshold.",
        examples=["hours", "quantity", "amount", "percentage"],
    )
    threshold: NonNegativeDecimalStr = Field(
        description="The item needs approval when its value is strictly greater.", examples=["8", "500.00"]
    )
    currency: CurrencyCode | None = Field(
        default=None, description="Currency of a money threshold.", examples=["USD", None]
    )
    steps: list[ApprovalStep] = Field(
        min_length=1,
        description="Decision steps, in order; every step must approve.",
        examples=[[{"step": 1, "roles": ["billing_manager"], "timeout_hours": 48, "on_timeout": "reject"}]],
    )
    service_codes: list[NonEmptyStr] | None = Field(
        default=None,
        description="Usage-report rules only: the catalog service codes the rule holds (a quantity means something "
        "only in its service's unit); null holds usage of every service.",
        examples=[["m365-seats"], None],
    )
    active: bool = Field(default=True, description="Inactive rules hold nothing.", examples=[True])
    version: int = Field(ge=1, description="Version of this rule, increasing.", examples=[3])
    updated_at: Timestamp = Field(description="When this version was made.", examples=["2025-01-15T12:00:00Z"])

    def covers(self, service_code: str | None) -> bool:
        """Whether the rule applies to an item of this service (rules without ``service_codes`` apply to any)."""
        return self.service_codes is None or service_code in self.service_codes

    @model_validator(mode="after")
    def _steps_in_order(self) -> Self:
        numbers = [s.step for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"steps must be numbered 1..{len(numbers)} in order, got {numbers}")
        return self

    def requires_approval(self, value: Decimal) -> bool:
        """True when the rule is active and `value` is strictly greater than the threshold."""
        return self.active and value > self.threshold


class ApprovalRuleSet(Contract):
    """All approval rules of one tenant (on `approvals.rules.v1`, keyed by tenant_id)."""

    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    rules: list[ApprovalRule] = Field(description="The tenant's rules, current versions.", examples=[[]])
    version: int = Field(ge=1, description="Version of the set, increasing per tenant.", examples=[12])
    occurred_at: Timestamp = Field(description="When the set changed.", examples=["2025-01-15T12:00:00Z"])

    @model_validator(mode="after")
    def _one_tenant(self) -> Self:
        if any(r.tenant_id != self.tenant_id for r in self.rules):
            raise ValueError("every rule in rules must have the set's tenant_id")
        return self

    def key(self) -> str:
        return str(self.tenant_id)

    def active_rules(self, item_type: ApprovalItemType) -> list[ApprovalRule]:
        return [r for r in self.rules if r.active and r.item_type is item_type]


class ApprovalRequest(Contract):
    """A requesting service asks for an item to be approved; it holds the item until a decision."""

    request_id: UUID = Field(
        description="Id of the request; the requester derives it deterministically so retries repeat it.",
        examples=["3b241101-e2bb-4255-8caf-4136c566a962"],
    )
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    item_type: ApprovalItemType = Field(description="Kind of item held.", examples=["time_entry"])
    item_id: NonEmptyStr = Field(description="The item's id in the requesting service.", examples=["cw-time-884213"])
    company_ref: NonEmptyStr | None = Field(
        default=None, description="The client the item concerns, if any.", examples=["ACME-001"]
    )
    requesting_service: NonEmptyStr = Field(
        description="Service that holds the item.", examples=["metering", "catalog", "invoicing"]
    )
    requested_by: NonEmptyStr | None = Field(
        default=None,
        description="Who submitted the item: `user:<id>` of an API caller, else the sending system "
        "(`source:<name>`); approvals refuses a decision by that person.",
        examples=["user:8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "source:halopsa"],
    )
    requested_for: NonEmptyStr | None = Field(
        default=None,
        description="The person the item is for, when it is someone's (the technician of a time entry: `user:<id>` "
        "or their PSA user_ref); approvals refuses a decision by them too, so nobody approves their own time.",
        examples=["tech.jane", None],
    )
    trigger_field: NonEmptyStr = Field(description="The value compared to the rule.", examples=["hours"])
    service_code: NonEmptyStr | None = Field(
        default=None,
        description="The catalog service of a usage report (a rule with service_codes holds only its own).",
        examples=["backup-storage", None],
    )
    trigger_value: DecimalStr = Field(description="Its value, which exceeded the threshold.", examples=["9.5"])
    currency: CurrencyCode | None = Field(
        default=None, description="Currency of a money trigger_value.", examples=[None, "USD"]
    )
    summary: NonEmptyStr = Field(
        description="One line shown to the approver.", examples=["9.5 h by tech.jane on T-20931 (ACME-001)"]
    )
    requested_at: Timestamp = Field(description="When it was requested.", examples=["2025-01-31T10:31:00Z"])
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form detail for the approver.",
        examples=[{"ticket": "T-20931"}],
    )

    def key(self) -> str:
        return approval_key(self.tenant_id, self.item_type, self.item_id)


class ApprovalDecision(Contract):
    """The final outcome of a request, published once all steps decided (or one rejected / timed out)."""

    decision_id: UUID = Field(description="Id of the decision.", examples=["9c5b94b1-35ad-49bb-b118-8e8fc24abf80"])
    request_id: UUID = Field(description="The request decided.", examples=["3b241101-e2bb-4255-8caf-4136c566a962"])
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    item_type: ApprovalItemType = Field(description="Kind of item.", examples=["time_entry"])
    item_id: NonEmptyStr = Field(description="The item's id in the requesting service.", examples=["cw-time-884213"])
    outcome: ApprovalOutcome = Field(description="approved or rejected.", examples=["approved", "rejected"])
    decided_by: NonEmptyStr = Field(
        description="User ref of the last decider, or `system:timeout`.",
        examples=["mgr.omar", SYSTEM_TIMEOUT],
    )
    reason: str | None = Field(default=None, description="Reason or comment given.", examples=["Onsite day"])
    decided_at: Timestamp = Field(description="When it was decided.", examples=["2025-02-01T08:15:00Z"])
    final: bool = Field(default=True, description="Always true for published decisions.", examples=[True])
    step: int = Field(ge=1, description="The step at which it was decided.", examples=[1])

    def key(self) -> str:
        return approval_key(self.tenant_id, self.item_type, self.item_id)


class PendingReason(StrEnum):
    REQUESTED = "requested"
    NEXT_STEP = "next_step"
    ESCALATED = "escalated"
    REMINDER = "reminder"  # still undecided after timeout_hours (a step that reminds rather than drops the item)


class ApprovalPending(Contract):
    """A step of a request now waits for a decision by one of ``roles`` (for notification to tell them)."""

    notice_id: UUID = Field(
        description="Id of this notice, one per request, step and reason.",
        examples=["7d444840-9dc0-11d1-b245-5ffdce74fad2"],
    )
    request_id: UUID = Field(description="The request waiting.", examples=["3b241101-e2bb-4255-8caf-4136c566a962"])
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    item_type: ApprovalItemType = Field(description="Kind of item held.", examples=["time_entry"])
    item_id: NonEmptyStr = Field(description="The item's id in the requesting service.", examples=["cw-time-884213"])
    company_ref: NonEmptyStr | None = Field(default=None, description="The client, if any.", examples=["ACME-001"])
    reason: PendingReason = Field(
        description="Why it waits now: a new request, the next step, or an escalation after a timeout.",
        examples=["requested", "next_step", "escalated"],
    )
    step: int = Field(ge=1, description="The step waiting.", examples=[1])
    of_steps: int = Field(ge=1, description="How many steps the request has.", examples=[2])
    roles: list[NonEmptyStr] = Field(
        min_length=1, description="Roles that may decide this step.", examples=[["billing_manager"]]
    )
    summary: NonEmptyStr = Field(
        description="One line for the approver.", examples=["9.5 h by tech.jane on T-20931 (ACME-001)"]
    )
    requested_by: NonEmptyStr | None = Field(
        default=None, description="Who caused the request (they may not decide it).", examples=["tech.jane", None]
    )
    due_at: Timestamp | None = Field(
        default=None,
        description="Billing time at which the step's on_timeout applies; null when it has no timeout.",
        examples=["2025-02-02T10:31:00Z", None],
    )
    occurred_at: Timestamp = Field(
        description="Billing time the step began waiting.", examples=["2025-01-31T10:31:00Z"]
    )

    def key(self) -> str:
        return approval_key(self.tenant_id, self.item_type, self.item_id)
