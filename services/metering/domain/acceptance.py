"""Deciding what happens to a usage record: pure, no I/O."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from shared.contracts.metering import AcceptedUsage
from shared.contracts.usage import UsageRecord


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    UNMAPPED = "unmapped"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ServiceRef:
    service_id: UUID
    unit: str


@dataclass(frozen=True, slots=True)
class CompanyRef:
    company_id: UUID
    company_ref: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str | None = None
    field: str | None = None
    accepted: AcceptedUsage | None = None


def record_id(tenant_id: UUID, source: str, event_id: str) -> UUID:
    """Stable per idempotency key, so every service can name the record the same way."""
    # JSON, not a joined string: ("psa:eu", "e-1") and ("psa", "eu:e-1") must not collide.
    return uuid.uuid5(uuid.NAMESPACE_URL, "usage:" + json.dumps([str(tenant_id), source, event_id]))


def decide(
    record: UsageRecord, company: CompanyRef | None, service: ServiceRef | None, *, tenant_known: bool = True
) -> Decision:
    if not tenant_known:
        return Decision(Verdict.UNMAPPED, f"tenant {record.tenant_id} is not in the catalog yet")
    if service is not None and record.unit is not None and record.unit != service.unit:
        return Decision(
            Verdict.REJECTED,
            f"unit {record.unit!r} does not match the service's unit {service.unit!r}",
            field="unit",
        )
    if company is None:
        return Decision(Verdict.UNMAPPED, f"company_ref {record.company_ref!r} is not in the catalog yet")
    if service is None:
        return Decision(Verdict.UNMAPPED, f"service_ref {record.service_ref!r} is not in the catalog yet")
    accepted = AcceptedUsage(
        record_id=record_id(record.tenant_id, record.source, record.event_id),
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
    return Decision(Verdict.ACCEPTED, accepted=accepted)
