from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    admin_token: str = Field(
        description="Bearer token for the operator API until catalog credentials land (issue: catalog)"
    )
    clock_tick_seconds: float = Field(default=60.0, gt=0, description="Wall-clock tick interval, live tenants")
    clock_advance_timeout_s: float = Field(default=120.0, gt=0)
