from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    admin_token: str = Field(description="The platform operator's bearer token: creates tenants and their admin")
    auth_private_key: str = Field(description="Ed25519 private key (PEM) that signs bearer tokens")
    auth_key_id: str = Field(description="Key id written into tokens; its public key is in AUTH_PUBLIC_KEYS")
    token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    clock_tick_seconds: float = Field(default=60.0, gt=0, description="Wall-clock tick interval, live tenants")
    clock_advance_timeout_s: float = Field(default=120.0, gt=0)
