from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class RatingSettings(ServiceSettings):
    service_name: str = "rating"
    batch_max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="Larger than the kernel's 500: a batch's fixed costs (inbox claim, lock, catalog slice, audit "
        "row, commit) are shared by more records; a quiet topic still gets small batches after BATCH_TIMEOUT_MS",
    )
