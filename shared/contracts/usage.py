"""`billing.usage.v1`: usage reported by upstream tools (RMM, licence portals, PSA). Public, fixed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from shared.contracts.base import (
    Contract,
    NonEmptyStr,
    NonNegativeDecimalStr,
    TenantId,
    Timestamp,
    canonical_fingerprint,
    message_key,
)

__all__ = ["UsageKind", "UsageRecord"]


class UsageKind(StrEnum):
    DELTA = "delta"
    """Consumption to add (GB transferred, tickets)."""
    SNAPSHOT = "snapshot"
    """The count in force from `occurred_at` until the next snapshot for the same client and service."""


class UsageRecord(Contract):
    """One usage report. Keyed by ``"<tenant_id>:<company_ref>"`` (see `key`)."""

    event_id: NonEmptyStr = Field(
        max_length=200,
        description="Unique per (tenant_id, source). The same id with the same content again is a no-op; "
        "with different content it is a conflict and goes to the dead-letter topic (reason `conflict`).",
        examples=["ninja-7f3a9c21-2025-01-31T09:00"],
    )
    source: NonEmptyStr = Field(description="The sending system.", examples=["ninjaone", "datto-rmm", "m365"])
    tenant_id: TenantId = Field(
        description="The MSP the usage belongs to.", examples=["0f8fad5b-d9cb-469f-a165-70867728950e"]
    )
    company_ref: NonEmptyStr = Field(
        description="The client, by the external reference the source knows it by.", examples=["ACME-001"]
    )
    service_ref: NonEmptyStr = Field(description="The catalog service's code.", examples=["RMM-DEVICE", "M365-E3"])
    kind: UsageKind = Field(
        default=UsageKind.DELTA,
        description="`delta`: consumption to add. `snapshot`: the count in force from `occurred_at` on "
        "until the next snapshot for the same client and service.",
        examples=["delta", "snapshot"],
    )
    quantity: NonNegativeDecimalStr = Field(
        description="Amount consumed (delta) or counted (snapshot), a decimal string >= 0.",
        examples=["42", "12.50"],
    )
    unit: NonEmptyStr | None = Field(
        default=None,
        description="Unit of measure; if given it must match the service's unit.",
        examples=["device", "GB", None],
    )
    occurred_at: Timestamp = Field(
        description="When it was consumed or counted (RFC 3339 with offset).",
        examples=["2025-01-31T09:00:00Z"],
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form detail; kept and shown where a charge is explained.",
        examples=[{"device_id": "WS-0042", "sku": "O365_E3"}],
    )

    def key(self) -> str:
        """Partition key: ``"<tenant_id>:<company_ref>"``."""
        return message_key(self.tenant_id, self.company_ref)

    def content_fingerprint(self) -> str:
        """sha256 of the canonical content, extras included: detects "same id, different content".

        Quantities compare by numeric value ("1.0" == "1"), timestamps by instant (normalised to UTC).
        """
        return canonical_fingerprint(self)
