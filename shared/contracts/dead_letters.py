"""Dead letters: a message that can never succeed, with where it came from and why (``<topic>.dlq``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract


class DeadLetter(Contract):
    dead_letter_id: UUID = Field(
        description="Unique id of this dead letter", examples=["5b0f5a52-1d7e-4c8e-9a0c-3d6f2b1e7a11"]
    )
    service: str = Field(description="The service that gave up on the message", examples=["metering"])
    consumer: str = Field(description="The consumer (group purpose) that read it", examples=["usage"])
    topic: str = Field(description="Topic the original message was read from", examples=["billing.usage.v1"])
    partition: int = Field(description="Its partition", examples=[3])
    offset: int = Field(description="Its offset in that partition", examples=[1042])
    key: str | None = Field(description="The original message key, if any", examples=["<tenant>:acme"])
    tenant_id: UUID | None = Field(
        description="The tenant, when it could be read from the message",
        examples=["0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b"],
    )
    error_class: str = Field(
        description="Machine-readable class: invalid_json, validation_error, conflict, unknown_tenant, "
        "unexpected_error, …",
        examples=["validation_error"],
    )
    reason: str = Field(
        description="Specific, human-readable reason",
        examples=["quantity: Input should be greater than or equal to 0"],
    )
    field: str | None = Field(description="The offending field, when one is to blame", examples=["quantity"])
    payload: str = Field(
        description="The original payload as received (UTF-8; undecodable bytes escaped), whole when it is at most "
        "16 KiB once escaped, else its first 16 KiB (payload_truncated): a dead letter always fits its topic",
        examples=['{"event_id": "e-1", "quantity": "-1"}'],
    )
    payload_bytes: int | None = Field(default=None, description="Size of the original payload in bytes", examples=[38])
    payload_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the original payload's bytes (hex), to match it with the sender's copy",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    payload_truncated: bool = Field(
        default=False, description="True when payload is only the first part of the original", examples=[False]
    )
    received_at: datetime = Field(
        description="When the service dead-lettered it (wall clock; infrastructure metadata)",
        examples=["2026-01-31T23:59:59+00:00"],
    )
