"""Rating's output (``rating.charges.v1``): charges and period-complete markers on one topic.

Both are keyed ``tenant_id:company_ref`` and written through one outbox, so a consumer sees every charge of
a period before the period's ``period.completed``; ``charge_count`` lets it check that it has them all.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, CurrencyCode, DecimalStr, Timestamp
from shared.contracts.catalog import ID_EXAMPLE, TENANT_EXAMPLE


class PriceRule(Contract):
    plan_id: UUID | None = Field(description="Plan whose line priced it", examples=[ID_EXAMPLE])
    model: str = Field(description="Pricing model used: flat, graduated, volume, package, …", examples=["flat"])
    rate: DecimalStr = Field(description="Unit rate applied", examples=["12.50"])
    rate_source: str = Field(
        description="plan_line_custom_rate, service_default_rate, …", examples=["service_default_rate"]
    )


class ChargeCreated(Contract):
    type: Literal["charge.created"] = Field(
        default="charge.created", description="Discriminator", examples=["charge.created"]
    )
    charge_id: UUID = Field(description="Deterministic per source record and price rule", examples=[ID_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference", examples=["acme"])
    period_start: date = Field(
        description="Billing period the charge belongs to, [start, end)", examples=["2026-01-01"]
    )
    period_end: date = Field(description="Exclusive end of that period", examples=["2026-02-01"])
    kind: str = Field(description="fixed, time, usage, bucket_overage, …", examples=["usage"])
    service_id: UUID = Field(description="Catalog service", examples=[ID_EXAMPLE])
    service_ref: str = Field(description="Service code", examples=["managed-device"])
    description: str = Field(description="Line text", examples=["Managed device"])
    quantity: DecimalStr = Field(description="Billable quantity", examples=["3"])
    unit: str = Field(description="Unit of measure", examples=["device"])
    unit_price: DecimalStr = Field(description="Price per unit", examples=["12.50"])
    amount: DecimalStr = Field(description="quantity * unit_price at full precision (not rounded)", examples=["37.50"])
    currency: CurrencyCode = Field(description="Currency of unit_price and amount", examples=["GBP"])
    source_records: list[UUID] = Field(description="Metering record ids that produced it", examples=[[ID_EXAMPLE]])
    price_rule: PriceRule = Field(description="How it was priced")
    late: bool = Field(default=False, description="The record's own period was already closed", examples=[False])


class PeriodCompleted(Contract):
    type: Literal["period.completed"] = Field(
        default="period.completed", description="Discriminator", examples=["period.completed"]
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference", examples=["acme"])
    period_start: date = Field(description="Closed period, [start, end)", examples=["2026-01-01"])
    period_end: date = Field(description="Exclusive end", examples=["2026-02-01"])
    charge_count: int = Field(ge=0, description="Charges rated into this period", examples=[42])
    closed_at: Timestamp = Field(
        description="Billing time of the tick that closed it", examples=["2026-02-01T00:00:00+00:00"]
    )
    livemode: bool = Field(description="False for sandbox tenants", examples=[False])


RatingEvent = Annotated[ChargeCreated | PeriodCompleted, Field(discriminator="type")]
