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


class TierLine(Contract):
    """One priced piece of a model's calculation (a tier reached, a package count, a flat rate)."""

    quantity: DecimalStr = Field(description="Units in this piece", examples=["40"])
    unit_price: DecimalStr = Field(description="Price of each", examples=["10.00"])
    amount: DecimalStr = Field(description="quantity * unit_price, full precision", examples=["400.00"])
    unit: str = Field(default="unit", description="unit, flat_fee or package", examples=["unit"])
    tier: int | None = Field(default=None, description="Index of the tier in the price terms", examples=[1])
    tier_from: DecimalStr | None = Field(default=None, description="Tier's exclusive lower bound", examples=["10"])
    tier_up_to: DecimalStr | None = Field(
        default=None, description="Tier's inclusive upper bound (null: unbounded)", examples=["50"]
    )


class Proration(Contract):
    """How a fixed fee was prorated by days. The charge's ``amount`` is the exact share ``full_price x days /
    cycle_days``; the invoice line bills ``C(b) - C(a)`` in the invoice currency (docs/billing-rules.md §7)."""

    days: int = Field(ge=0, description="Billable days charged", examples=[17])
    cycle_days: int = Field(ge=1, description="Days in the service cycle", examples=[31])
    full_price: DecimalStr = Field(description="The fee for the whole cycle", examples=["100.00"])
    first_day: date = Field(description="First day charged", examples=["2026-01-15"])
    end_day: date = Field(description="First day not charged (exclusive)", examples=["2026-02-01"])
    rule: str = Field(
        default="cumulative_half_up",
        description="Applied at the invoice line, after conversion: C(k) = round_half_up(full_price x rate x k / "
        "cycle_days); the piece for days [a, b) of the cycle is C(b) - C(a)",
        examples=["cumulative_half_up"],
    )


class BucketDetail(Contract):
    """A bucket period's settlement, on its overage charge."""

    bucket_period_start: date = Field(description="Bucket period, [start, end)", examples=["2026-01-01"])
    bucket_period_end: date = Field(description="Exclusive end", examples=["2026-02-01"])
    allocation: DecimalStr = Field(description="Hours the period grants", examples=["20"])
    rolled_in: DecimalStr = Field(description="Hours carried in from earlier periods", examples=["5"])
    used: DecimalStr = Field(description="Hours met by the bucket", examples=["25"])
    overage: DecimalStr = Field(description="Hours beyond it (charged)", examples=["3.5"])
    remaining: DecimalStr = Field(description="Hours left at the period end", examples=["0"])
    rolled_out: DecimalStr = Field(description="Hours carried into the next period", examples=["0"])


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
    # -- explanation (rating issue); optional so earlier consumers and documents stay valid ----------
    assignment_id: UUID | None = Field(
        default=None, description="The client's plan assignment that priced it", examples=[ID_EXAMPLE]
    )
    plan_line: int | None = Field(
        default=None, description="Index of the plan line that priced it (lines have no ids)", examples=[0]
    )
    tiers: list[TierLine] = Field(
        default_factory=list,
        description="The model's whole calculation for the period (every piece, this charge's included)",
        examples=[[{"quantity": "10", "unit_price": "12.50", "amount": "125.00", "tier": 0}]],
    )
    included_quantity: DecimalStr | None = Field(
        default=None, description="Units of the period the line includes free (deducted before pricing)", examples=["5"]
    )
    total_quantity: DecimalStr | None = Field(
        default=None,
        description="Period-priced models: the period's whole quantity the model priced (before included)",
        examples=["60"],
    )
    service_period_start: date | None = Field(
        default=None,
        description="The service days the charge is for, [start, end): a fixed fee's cycle (differs from the billing "
        "period in advance; a prorated fee's own days are in `proration`), a record's day, a period-priced line's "
        "covered span, a bucket overage's bucket period. Discount windows are judged on these days",
        examples=["2026-02-01"],
    )
    service_period_end: date | None = Field(default=None, description="Exclusive end of it", examples=["2026-03-01"])
    proration: Proration | None = Field(default=None, description="Fixed fees charged for part of a cycle")
    prorated_pieces: list[Proration] = Field(
        default_factory=list,
        description="A fixed fee's settlement adjustment: the prorated shares inside its amount (the cycle's final "
        "pieces, and those it corrects with a negative full_price), each rounded again at the invoice line by the "
        "remainder rule so a cycle billed in advance and settled comes to what it would in arrears",
        examples=[[]],
    )
    bucket: BucketDetail | None = Field(default=None, description="Bucket overage: the period's settlement")
    corrects_charge_ids: list[UUID] = Field(
        default_factory=list,
        description="Adjustments: the charges (already sent, never rewritten) whose total this one corrects",
        examples=[[ID_EXAMPLE]],
    )
    explanation: str | None = Field(
        default=None,
        description="The arithmetic in words",
        examples=["10 x 12.50 (tier 1, 0-10] + 40 x 10.00 (tier 2, 10-50]"],
    )


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


class ThresholdCrossed(Contract):
    """A bucket's hours or a usage service's included quantity reached a level in a period (once per level)."""

    type: Literal["threshold.crossed"] = Field(
        default="threshold.crossed", description="Discriminator", examples=["threshold.crossed"]
    )
    event_id: UUID = Field(description="Deterministic per subject, period and level", examples=[ID_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference", examples=["acme"])
    subject: Literal["bucket", "usage"] = Field(
        description="bucket (hours of a bucket plan) or usage (a usage line's included quantity)", examples=["bucket"]
    )
    assignment_id: UUID = Field(description="The client's plan assignment", examples=[ID_EXAMPLE])
    plan_id: UUID = Field(description="The plan", examples=[ID_EXAMPLE])
    service_id: UUID | None = Field(default=None, description="Usage subjects: the service", examples=[None])
    period_start: date = Field(description="The bucket or billing period, [start, end)", examples=["2026-01-01"])
    period_end: date = Field(description="Exclusive end", examples=["2026-02-01"])
    level_percent: DecimalStr = Field(description="The level crossed, percent of the limit", examples=["80"])
    limit: DecimalStr = Field(description="Hours available or quantity included", examples=["20"])
    total: DecimalStr = Field(description="Used so far when the level was crossed", examples=["16.5"])
    unit: str = Field(description="hour, or the service's unit", examples=["hour"])
    livemode: bool = Field(description="False for sandbox tenants", examples=[False])

    def key(self) -> str:
        return f"{self.tenant_id}:{self.company_ref}"
