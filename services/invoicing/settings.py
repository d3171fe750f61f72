from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class InvoicingSettings(ServiceSettings):
    service_name: str = "invoicing"
    invoice_link_secret: str = Field(
        default="",
        description="HMAC key of the clients' signed invoice links (a secret; empty: links are not issued)",
    )
    invoice_link_days: int = Field(default=30, ge=1, le=365, description="How long a signed invoice link opens")
    public_base_url: str = Field(
        default="", description="Where clients reach this API (prefixes signed links); empty: links are paths"
    )
