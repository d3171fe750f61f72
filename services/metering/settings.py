from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    service_name: str = "metering"
    batch_max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Larger than the kernel's 500: a batch's fixed costs (inbox claim, catalog context, audit "
        "row, commit) are shared by more records; a quiet topic still gets small batches after BATCH_TIMEOUT_MS",
    )
    accept_days_back: int = Field(
        default=730,
        ge=1,
        le=3650,
        description="Records dated more than this many days before the tenant's "
        "billing time are rejected (out_of_window)",
    )
    accept_days_ahead: int = Field(
        default=35,
        ge=1,
        le=366,
        description="Records dated more than this many days after the tenant's billing "
        "time are rejected (out_of_window)",
    )
