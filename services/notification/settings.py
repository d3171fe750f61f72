from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    service_name: str = "notification"
    delivery_idle_ms: int = Field(
        default=250, ge=10, description="How long the delivery worker waits before looking again when idle"
    )
    delivery_batch: int = Field(default=50, ge=1, le=1000, description="Notifications one worker pass sends")
    secrets_keys: str = Field(
        default="",
        description="Comma-separated Fernet keys, newest first, that encrypt tenant secrets at rest (SMTP passwords, "
        "SMS tokens, webhook secrets); without them no secret can be stored",
    )
    outbound_allow_hosts: str = Field(
        default="",
        description="Comma-separated hosts notification may connect to even though they are not public (loopback, "
        "private): for local development only (the local stack sets 127.0.0.1,localhost)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8107",
        description="Where recipients reach this service from outside (the base of unsubscribe links in emails)",
    )
