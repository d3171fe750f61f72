"""Deciding what happens to a usage record or a time entry: pure, no I/O.

A record is **accepted** (mapped to catalog ids, forwarded to rating), **unmapped** (its tenant, client or
service is not in metering's copy of the catalog yet: kept and decided again when the catalog changes),
**held** (mapped, but it crosses an approval rule: forwarded only once approved) or **rejected** (it can
never succeed as sent: a unit that is not the service's, time booked on a service that is not a `Time`
service). Every verdict that is not accepted carries a machine-readable `code` and a reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from uuid import UUID

from services.metering.domain.approval import crossed_rule
from services.metering.domain.window import Window
from shared.contracts.approvals import ApprovalItemType, ApprovalRule, ApprovalRuleSet
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    UNMAPPED = "unmapped"
    HELD = "held"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ServiceRef:
    service_id: UUID
    unit: str
    service_type: str = "Usage"


@dataclass(frozen=True, slots=True)
class CompanyRef:
    company_id: UUID
    company_ref: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str | None = None
    field: str | None = None
    code: str | None = None
    accepted: AcceptedUsage | AcceptedTime | None = None
    rule: ApprovalRule | None = None  # the rule a held record crossed

    @property
    def company_id(self) -> UUID | None:
        return self.accepted.company_id if self.accepted is not None else None

    @property
    def service_id(self) -> UUID | None:
        return self.accepted.service_id if self.accepted is not None else None


def _json_strings(*parts: str) -> str:
    """``json.dumps(list(parts))`` for strings, byte for byte (default separators, ASCII escapes), without
    the encoder's per-call set-up: ids are derived for every record."""
    return "[" + ", ".join(map(encode_basestring_ascii, parts)) + "]"


def record_id(tenant_id: UUID, source: str, event_id: str) -> UUID:
    """Stable per idempotency key, so every service can name the record the same way."""
    # JSON, not a joined string: ("psa:eu", "e-1") and ("psa", "eu:e-1") must not collide.
    return uuid.uuid5(uuid.NAMESPACE_URL, "usage:" + _json_strings(str(tenant_id), source, event_id))


def time_record_id(tenant_id: UUID, source: str, entry_id: str) -> UUID:
    """Stable per (tenant, source, entry_id); never equal to a usage record's id with the same parts."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "time:" + _json_strings(str(tenant_id), source, entry_id))


def _unmapped(
    tenant_id: UUID, company_ref: str, service_ref: str, company: object, service: object, *, tenant_known: bool
) -> Decision | None:
    if not tenant_known:
        return Decision(
            Verdict.UNMAPPED, f"tenant {tenant_id} is not in the catalog yet", "tenant_id", "unknown_tenant"
        )
    if company is None:
        return Decision(
            Verdict.UNMAPPED, f"company_ref {company_ref!r} is not in the catalog yet", "company_ref", "unknown_company"
        )
    if service is None:
        return Decision(
            Verdict.UNMAPPED, f"service_ref {service_ref!r} is not in the catalog yet", "service_ref", "unknown_service"
        )
    return None


def decide(
    record: UsageRecord,
    company: CompanyRef | None,
    service: ServiceRef | None,
    *,
    tenant_known: bool = True,
    rules: ApprovalRuleSet | None = None,
    rid: UUID | None = None,
    window: Window | None = None,
) -> Decision:
    """``rid``: the record's `record_id`, when the caller has it already (it is derived from the record).
    ``window``: the times accepted (`window.accepted_window`); a record outside it is rejected."""
    if window is not None and (why := window.refusal(record.occurred_at)) is not None:
        return Decision(Verdict.REJECTED, f"occurred_at: {why}", field="occurred_at", code="out_of_window")
    if tenant_known and service is not None and record.unit is not None and record.unit != service.unit:
        return Decision(
            Verdict.REJECTED,
            f"unit {record.unit!r} does not match the service's unit {service.unit!r}",
            field="unit",
            code="unit_mismatch",
        )
    waiting = _unmapped(
        record.tenant_id, record.company_ref, record.service_ref, company, service, tenant_known=tenant_known
    )
    if waiting is not None:
        return waiting
    assert company is not None
    assert service is not None
    accepted = AcceptedUsage(
        record_id=rid or record_id(record.tenant_id, record.source, record.event_id),
        tenant_id=record.tenant_id,
        source=record.source,
        event_id=record.event_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        service_id=service.service_id,
        service_ref=record.service_ref,
        kind=record.kind.value,
        quantity=record.quantity,
        unit=service.unit,
        occurred_at=record.occurred_at,
        attributes=record.attributes,
    )
    rule = crossed_rule(
        rules, ApprovalItemType.USAGE_REPORT, "quantity", record.quantity, service_code=record.service_ref
    )
    if rule is not None:
        return Decision(
            Verdict.HELD,
            f"quantity {record.quantity} is above the approval threshold {rule.threshold}",
            field="quantity",
            code="approval_required",
            accepted=accepted,
            rule=rule,
        )
    return Decision(Verdict.ACCEPTED, accepted=accepted)


def decide_time(
    entry: TimeEntry,
    company: CompanyRef | None,
    service: ServiceRef | None,
    *,
    user_id: UUID | None = None,
    tenant_known: bool = True,
    rules: ApprovalRuleSet | None = None,
    rid: UUID | None = None,
    window: Window | None = None,
) -> Decision:
    """As `decide`, for a time entry (both its start and its end must be in ``window``). An unknown technician
    is no reason to wait (user_id stays None).
    Non-billable entries are never charged, so they are never held for approval either."""
    for name, at in (("start_time", entry.start_time), ("end_time", entry.end_time)):
        if window is not None and (why := window.refusal(at)) is not None:
            return Decision(Verdict.REJECTED, f"{name}: {why}", field=name, code="out_of_window")
    if tenant_known and service is not None and service.service_type != "Time":
        return Decision(
            Verdict.REJECTED,
            f"service_ref {entry.service_ref!r} is a {service.service_type} service; time needs a Time service",
            field="service_ref",
            code="not_a_time_service",
        )
    waiting = _unmapped(
        entry.tenant_id, entry.company_ref, entry.service_ref, company, service, tenant_known=tenant_known
    )
    if waiting is not None:
        return waiting
    assert company is not None
    assert service is not None
    accepted = AcceptedTime(
        record_id=rid or time_record_id(entry.tenant_id, entry.source, entry.entry_id),
        tenant_id=entry.tenant_id,
        source=entry.source,
        entry_id=entry.entry_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        service_id=service.service_id,
        service_ref=entry.service_ref,
        user_ref=entry.user_ref,
        user_id=user_id,
        ticket_ref=entry.ticket_ref,
        start_time=entry.start_time,
        end_time=entry.end_time,
        hours=entry.hours,
        billable=entry.billable,
        notes=entry.notes,
        attributes=dict(entry.model_extra or {}),
    )
    rule = crossed_rule(rules, ApprovalItemType.TIME_ENTRY, "hours", entry.hours) if entry.billable else None
    if rule is not None:
        return Decision(
            Verdict.HELD,
            f"{entry.hours.normalize():f} h is above the approval threshold of {rule.threshold} h",
            field="hours",
            code="approval_required",
            accepted=accepted,
            rule=rule,
        )
    return Decision(Verdict.ACCEPTED, accepted=accepted)


def plan_in_force(assignments: Iterable[tuple[date, date | None]], day: date) -> bool:
    """Whether any assignment [start_date, end_date) covers ``day``."""
    return any(start <= day and (end is None or day < end) for start, end in assignments)
