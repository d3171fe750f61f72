from __future__ import annotations

from pydantic import Field

from shared.services import service
from shared.settings import ServiceSettings

_OUTBOX = "Base URL of {}'s HTTP API: the test clock reads its outbox backlog at /health/outbox"


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    admin_token: str = Field(description="The platform operator's bearer token: creates tenants and their admin")
    auth_private_key: str = Field(description="Ed25519 private key (PEM) that signs bearer tokens")
    auth_key_id: str = Field(description="Key id written into tokens; its public key is in AUTH_PUBLIC_KEYS")
    token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    signin_limit_per_client: str = Field(
        default="60/minute", description="API-key exchanges a client address may attempt (limits syntax)"
    )
    signin_limit_per_key: str = Field(
        default="10/minute", description="Failed exchanges after which an API key id is refused for the window"
    )
    clock_tick_seconds: float = Field(default=60.0, gt=0, description="Wall-clock tick interval, live tenants")
    clock_advance_timeout_s: float = Field(default=120.0, gt=0)
    close_grace_seconds: float = Field(
        default=900.0, ge=0, description="Live close: how long after a local midnight records stamped before it "
        "may still arrive from upstream tools; the close waits that long, then for the close barrier"
    )  # fmt: skip
    close_max_wait_seconds: float = Field(
        default=3600.0, ge=0, description="Live close: after midnight + grace, how long the close waits for the "
        "barrier (a stuck consumer) before it goes ahead anyway (late records are rated into the open period)"
    )  # fmt: skip
    wall_clock_offset_seconds: float = Field(
        default=0.0, description="Local stacks and specs only: shift the wall clock the scheduler ticks live "
        "tenants by (a spec reaches a midnight in seconds). Never set it in production."
    )  # fmt: skip
    # The test clock waits for every service's outbox to be relayed (docs/architecture.md §7): where to ask.
    metering_url: str = Field(default=service("metering").local_url, description=_OUTBOX.format("metering"))
    rating_url: str = Field(default=service("rating").local_url, description=_OUTBOX.format("rating"))
    tax_currency_url: str = Field(default=service("tax_currency").local_url, description=_OUTBOX.format("tax-currency"))
    invoicing_url: str = Field(default=service("invoicing").local_url, description=_OUTBOX.format("invoicing"))
    approvals_url: str = Field(default=service("approvals").local_url, description=_OUTBOX.format("approvals"))
    notification_url: str = Field(default=service("notification").local_url, description=_OUTBOX.format("notification"))

    def other_services(self) -> dict[str, str]:
        """Every other service's base URL, by service name."""
        return {
            "metering": self.metering_url,
            "rating": self.rating_url,
            "tax_currency": self.tax_currency_url,
            "invoicing": self.invoicing_url,
            "approvals": self.approvals_url,
            "notification": self.notification_url,
        }
