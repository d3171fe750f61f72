"""Billing-clock ticks (``billing.clock.v1``): the only way time reaches domain code."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, Timestamp


class ClockMode(StrEnum):
    WALL = "wall"
    TEST = "test"


class ClockTick(Contract):
    """The tenant's billing time is now ``now``; everything due at or before it may happen."""

    tick_id: UUID = Field(description="Unique id of this tick", examples=["3fa85f64-5717-4562-b3fc-2c963f66afa6"])
    tenant_id: UUID = Field(
        description="The tenant whose clock ticked", examples=["0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b"]
    )
    now: Timestamp = Field(
        description="The tenant's billing time after this tick", examples=["2026-02-01T00:00:00+00:00"]
    )
    previous: Timestamp | None = Field(
        description="The billing time of the tick before, if any", examples=["2026-01-31T00:00:00+00:00"]
    )
    mode: ClockMode = Field(
        description="wall: scheduler from the wall clock; test: a sandbox test clock", examples=["test"]
    )
    livemode: bool = Field(description="False for sandbox tenants on a test clock", examples=[False])

    def key(self) -> str:
        return str(self.tenant_id)
