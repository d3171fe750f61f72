"""`billing.time-entries.v1`: technicians' time from the PSA. Public, fixed."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import Field, StrictBool, ValidationInfo, field_validator

from shared.contracts.base import (
    Contract,
    NonEmptyStr,
    TenantId,
    Timestamp,
    canonical_fingerprint,
    message_key,
)

__all__ = ["TimeEntry"]

_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)


class TimeEntry(Contract):
    """One time entry. Keyed by ``"<tenant_id>:<company_ref>"`` (see `key`)."""

    entry_id: NonEmptyStr = Field(
        max_length=200,
        description="Unique per (tenant_id, source); same idempotency rule as usage `event_id`.",
        examples=["cw-time-884213"],
    )
    source: NonEmptyStr = Field(description="The sending PSA.", examples=["connectwise", "halopsa"])
    tenant_id: TenantId = Field(
        description="The MSP the entry belongs to.", examples=["0f8fad5b-d9cb-469f-a165-70867728950e"]
    )
    company_ref: NonEmptyStr = Field(
        description="The client, by the external reference the PSA knows it by.", examples=["ACME-001"]
    )
    service_ref: NonEmptyStr = Field(
        description="Code of a `Time` service in the catalog.", examples=["HELPDESK-HOURLY"]
    )
    user_ref: NonEmptyStr = Field(
        description="The technician (a catalog user; their role and rate may price the entry).",
        examples=["tech.jane"],
    )
    ticket_ref: NonEmptyStr | None = Field(
        default=None, description="The PSA ticket the time was spent on.", examples=["T-20931", None]
    )
    start_time: Timestamp = Field(
        description="When the work started (RFC 3339 with offset).", examples=["2025-01-31T09:00:00+01:00"]
    )
    end_time: Timestamp = Field(
        description="When the work ended; must be after start_time.", examples=["2025-01-31T10:30:00+01:00"]
    )
    billable: StrictBool = Field(
        default=True, description="Non-billable entries are recorded, never charged.", examples=[True, False]
    )
    notes: str | None = Field(
        default=None, description="Free-text notes from the technician.", examples=["Replaced failed SSD"]
    )

    @field_validator("end_time")
    @classmethod
    def _end_after_start(cls, end_time: datetime, info: ValidationInfo) -> datetime:
        start_time = info.data.get("start_time")
        if start_time is not None and end_time <= start_time:
            raise ValueError(f"end_time ({end_time.isoformat()}) must be after start_time ({start_time.isoformat()})")
        return end_time

    @property
    def duration(self) -> timedelta:
        return self.end_time - self.start_time

    @property
    def hours(self) -> Decimal:
        """Duration in hours, computed from whole microseconds (no float); recurring fractions (20 minutes)
        carry the default decimal context's 28 significant digits — rounding is the pricer's job."""
        d = self.duration
        micros = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        return Decimal(micros) / _MICROSECONDS_PER_HOUR

    def key(self) -> str:
        """Partition key: ``"<tenant_id>:<company_ref>"``."""
        return message_key(self.tenant_id, self.company_ref)

    def content_fingerprint(self) -> str:
        """sha256 of the canonical content, extras included; timestamps compare by instant (UTC)."""
        return canonical_fingerprint(self)
