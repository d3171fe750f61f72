"""``notification.deliveries.v1``: what became of each notification (internal).

Notification publishes one `DeliveryOutcome` per outcome of a notification: each delivery attempt (``sent``,
``retrying`` with the next attempt, ``failed`` for good), a bounce an MTA or ESP reported for it (``bounced``),
and a message not sent because its address is suppressed after a hard bounce (``suppressed``). Keyed
``"<tenant_id>:<notification_id>"`` so every outcome of one notification is in order. Invoicing's ``sent``
status, dashboards and support tools read it; nothing in the platform has to.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, NonEmptyStr, TenantId, Timestamp

__all__ = ["DeliveryOutcome", "DeliveryStatus"]

_UUID_EXAMPLE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_TENANT_EXAMPLE = "0f8fad5b-d9cb-469f-a165-70867728950e"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"


class DeliveryOutcome(Contract):
    type: Literal["delivery.outcome"] = Field(
        default="delivery.outcome", description="Discriminator", examples=["delivery.outcome"]
    )
    outcome_id: UUID = Field(
        description="Unique per notification and outcome (attempt number, bounce); apply each once",
        examples=[_UUID_EXAMPLE],
    )
    tenant_id: TenantId = Field(description="The MSP", examples=[_TENANT_EXAMPLE])
    notification_id: UUID = Field(
        description="The notification (its id is the idempotency key: triggering event + recipient + channel)",
        examples=[_UUID_EXAMPLE],
    )
    status: DeliveryStatus = Field(
        description="sent, retrying (will be tried again), failed (no more attempts), bounced (reported by the "
        "MTA / ESP after sending), suppressed (not sent: the address hard-bounced before)",
        examples=["sent"],
    )
    notification_type: NonEmptyStr = Field(
        description="invoice_issued, payment_reminder, overdue, overage_alert, bucket_threshold, "
        "upcoming_renewal or approval_requested",
        examples=["invoice_issued"],
    )
    channel: Literal["email", "sms", "webhook"] = Field(description="How it was sent", examples=["email"])
    triggered_by: NonEmptyStr = Field(
        description="The triggering event's id (an invoice event, a threshold, a reminder stage…)",
        examples=["reminder:7c9e6679-7425-40de-944b-e07fc1f90ae7:7"],
    )
    recipient_id: UUID = Field(
        description="The user, or the client's company id for its billing address", examples=[_UUID_EXAMPLE]
    )
    recipient_kind: Literal["company", "contact", "staff"] = Field(
        description="company (a client's billing address), contact (a client contact) or staff", examples=["company"]
    )
    company_id: UUID | None = Field(description="The client, null for staff", examples=[_UUID_EXAMPLE])
    address: str = Field(
        description="Email address, phone number or webhook URL it went to", examples=["ap@acme.example"]
    )
    invoice_id: UUID | None = Field(
        default=None, description="The invoice it was about, when it was about one", examples=[_UUID_EXAMPLE]
    )
    attempt: int = Field(ge=0, description="Delivery attempts so far (0 when none was made)", examples=[1])
    error: str | None = Field(
        default=None,
        description="Why it failed, will be retried, bounced or was suppressed",
        examples=["smtp 127.0.0.1:25: SMTPRecipientsRefused: 550 no such user"],
    )
    next_attempt_at: datetime | None = Field(
        default=None,
        description="retrying: when it is tried again, in the tenant's billing time",
        examples=["2026-02-01T00:10:00Z"],
    )
    occurred_at: Timestamp = Field(
        description="When it happened (wall clock: when the message left or the report came)",
        examples=["2026-02-01T00:05:03Z"],
    )
    livemode: bool = Field(description="False for sandbox tenants", examples=[False])

    def key(self) -> str:
        return f"{self.tenant_id}:{self.notification_id}"
