"""Records metering accepted (``metering.accepted.v1``), mapped to catalog ids, keyed by client.

Usage and time share the topic so a client's records stay in one order; ``record_type`` tells them apart
(`AcceptedRecord`). Both keep the sender's timestamps: rating, which knows which periods are closed,
decides what is late.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, DecimalStr, NonNegativeDecimalStr, Timestamp
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
    approved_by: str | None = Field(
        default=None,
        description="Who approved it, when it crossed an approval rule (a user ref or system:timeout)",
        examples=[None, "user:3b241101-e2bb-4255-8caf-4136c566a962"],
    )

    def key(self) -> str:
        return f"{self.tenant_id}:{self.company_ref}"


class AcceptedTime(Contract):
    """A technician's time entry metering accepted (and, when it crossed an approval rule, that was approved)."""

    record_type: Literal["time"] = Field(default="time", description="Discriminator", examples=["time"])
    record_id: UUID = Field(
        description="Metering's id for the entry (stable per tenant, source, entry_id)", examples=[ID_EXAMPLE]
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    source: str = Field(description="Sending PSA", examples=["connectwise"])
    entry_id: str = Field(description="The PSA's entry id", examples=["cw-time-884213"])
    company_id: UUID = Field(description="Catalog client the company_ref mapped to", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference", examples=["acme"])
    service_id: UUID = Field(description="Catalog `Time` service the service_ref mapped to", examples=[ID_EXAMPLE])
    service_ref: str = Field(description="The service code", examples=["helpdesk-hourly"])
    user_ref: str = Field(description="The technician as the PSA names them", examples=["tech.jane"])
    user_id: UUID | None = Field(
        default=None,
        description="Catalog user whose user_ref it is, when known (their role and rate may price it)",
        examples=[ID_EXAMPLE, None],
    )
    ticket_ref: str | None = Field(default=None, description="PSA ticket", examples=["T-20931", None])
    start_time: Timestamp = Field(description="Work started", examples=["2026-01-15T09:00:00+00:00"])
    end_time: Timestamp = Field(description="Work ended (after start_time)", examples=["2026-01-15T10:30:00+00:00"])
    hours: DecimalStr = Field(
        description="end_time - start_time in hours, unrounded (rounding increments are the plan's)", examples=["1.5"]
    )
    billable: bool = Field(description="Non-billable entries are recorded, never charged", examples=[True])
    notes: str | None = Field(default=None, description="Technician's notes", examples=["Replaced failed SSD"])
    approved_by: str | None = Field(
        default=None,
        description="Who approved it, when it crossed an approval rule (a user ref or system:timeout)",
        examples=[None, "user:3b241101-e2bb-4255-8caf-4136c566a962"],
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Fields the PSA sent beyond the contract, kept", examples=[{}]
    )

    @property
    def occurred_at(self) -> datetime:
        """Time is billed in the period its work started in."""
        return self.start_time

    def key(self) -> str:
        return f"{self.tenant_id}:{self.company_ref}"


AcceptedRecord = Annotated[AcceptedUsage | AcceptedTime, Field(discriminator="record_type")]
