"""Rating's bucket-usage report, pure (no I/O, no clock): one row per settled bucket period.

The hours are the period's settlement as recorded in ``bucket_usage`` (``domain/buckets.py``): ``allocated``
the period's grant, ``rolled_in`` carried in from earlier periods, ``used`` hours met by the bucket,
``overage`` hours beyond it, ``rolled_over`` hours carried into the next period, ``expired`` carried hours
that lapsed, ``remaining`` unused at the end. ``overage_amount`` is the sum of the charges rating sent for
the period's bucket rule (the overage charge and any late adjustment of it), rounded half-up to the
currency's minor units here: the named boundary (charges travel at full precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.money import round_half_up


@dataclass(frozen=True, slots=True)
class SettledBucket:
    company_id: UUID
    company_name: str | None
    assignment_id: UUID
    plan_id: UUID | None
    plan_name: str | None
    period_start: date
    period_end: date
    allocation: Decimal
    rolled_in: Decimal
    used: Decimal
    overage: Decimal
    remaining: Decimal
    rolled_out: Decimal
    expired: Decimal
    charged: Decimal | None  # sum of the bucket rule's charges; None when nothing was charged
    currency: str | None  # the plan's currency (the charges')


def row(b: SettledBucket) -> dict[str, Any]:
    amount = b.charged if b.charged is not None else Decimal(0)
    return {
        "company_id": str(b.company_id),
        "company_name": b.company_name,
        "assignment_id": str(b.assignment_id),
        "plan_id": str(b.plan_id) if b.plan_id else None,
        "bucket": b.plan_name,
        "period_start": b.period_start.isoformat(),
        "period_end": b.period_end.isoformat(),
        "allocated_hours": str(b.allocation),
        "rolled_in_hours": str(b.rolled_in),
        "used_hours": str(b.used),
        "overage_hours": str(b.overage),
        "rolled_over_hours": str(b.rolled_out),
        "expired_hours": str(b.expired),
        "remaining_hours": str(b.remaining),
        "overage_amount": str(round_half_up(amount, currency=b.currency)) if b.currency else str(amount),
        "currency": b.currency,
    }


def report(settled: list[SettledBucket]) -> list[dict[str, Any]]:
    ordered = sorted(settled, key=lambda b: (b.company_name or "", str(b.company_id), b.plan_name or "",
                                             str(b.assignment_id), b.period_start))  # fmt: skip
    return [row(b) for b in ordered]
