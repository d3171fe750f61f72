"""Records metering accepted (``metering.accepted.v1``), mapped to catalog ids, keyed by client."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, NonNegativeDecimalStr, Timestamp
from shared.contracts.catalog import ID_EXAMPLE, TENANT_EXAMPLE


class AcceptedUsage(Contract):
    record_type: Literal["usage"] = Field(default="usage", description="Discriminator", examples=["usage"])
    record_id: UUID = Field(
        description="Metering's id for the record (stable per tenant, source, event_id)",
        examples=[ID_EXAMPLE],
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    source: str = Field(description="Sending system", examples=["ninjaone"])
    event_id: str = Field(description="The sender's event id", examples=["evt-000123"])
    company_id: UUID = Field(description="Catalog client the company_ref mapped to", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference", examples=["acme"])
    service_id: UUID = Field(description="Catalog service the service_ref mapped to", examples=[ID_EXAMPLE])
    service_ref: str = Field(description="The service code", examples=["managed-device"])
    kind: str = Field(description="delta or snapshot", examples=["delta"])
    quantity: NonNegativeDecimalStr = Field(description="Quantity as sent", examples=["3"])
    unit: str = Field(description="The service's unit of measure", examples=["device"])
    occurred_at: Timestamp = Field(
        description="When it was consumed or counted", examples=["2026-01-15T10:00:00+00:00"]
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Free-form detail, kept", examples=[{"device_id": "dev-42"}]
    )

    def key(self) -> str:
        return f"{self.tenant_id}:{self.company_ref}"
