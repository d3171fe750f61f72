"""Rating's bucket-usage report rows, pure: hours as settled, the overage charged rounded at the report."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from services.rating.domain.reports import SettledBucket, report

D = Decimal
ACME, BISTRO = uuid.uuid4(), uuid.uuid4()


RETAINER = uuid.uuid4()


def settled(company: uuid.UUID, name: str | None, start: date, charged: str | None, **hours: str) -> SettledBucket:
    h = {"allocation": "10", "rolled_in": "0", "used": "10", "overage": "0", "remaining": "0", "rolled_out": "0",
         "expired": "0"} | hours  # fmt: skip
    return SettledBucket(
        company_id=company,
        company_name=name,
        assignment_id=RETAINER,
        plan_id=uuid.uuid4(),
        plan_name="Retainer",
        period_start=start,
        period_end=date(start.year, start.month + 1, 1),
        allocation=D(h["allocation"]),
        rolled_in=D(h["rolled_in"]),
        used=D(h["used"]),
        overage=D(h["overage"]),
        remaining=D(h["remaining"]),
        rolled_out=D(h["rolled_out"]),
        expired=D(h["expired"]),
        charged=D(charged) if charged is not None else None,
        currency="GBP",
    )


def test_a_row_carries_the_settlement_hours_and_the_overage_charged_rounded_half_up() -> None:
    # 2.5 h x 110.005 = 275.0125 at full precision -> 275.01
    [row] = report([settled(ACME, "Acme Dental", date(2026, 1, 1), "275.0125", overage="2.5")])

    assert {k: row[k] for k in ("allocated_hours", "used_hours", "overage_hours", "overage_amount", "currency")} == {
        "allocated_hours": "10",
        "used_hours": "10",
        "overage_hours": "2.5",
        "overage_amount": "275.01",
        "currency": "GBP",
    }


def test_a_period_without_overage_reports_zero_charged_and_its_rollover() -> None:
    [row] = report([settled(ACME, "Acme Dental", date(2026, 2, 1), None, used="3", remaining="7", rolled_out="5")])

    assert (row["used_hours"], row["remaining_hours"], row["rolled_over_hours"], row["overage_amount"]) == (
        "3",
        "7",
        "5",
        "0.00",
    )


def test_rows_are_ordered_by_client_name_then_period() -> None:
    rows = report(
        [
            settled(BISTRO, "Bistro Ltd", date(2026, 1, 1), None),
            settled(ACME, "Acme Dental", date(2026, 2, 1), None),
            settled(ACME, "Acme Dental", date(2026, 1, 1), None),
        ]
    )
    assert [(r["company_name"], r["period_start"]) for r in rows] == [
        ("Acme Dental", "2026-01-01"),
        ("Acme Dental", "2026-02-01"),
        ("Bistro Ltd", "2026-01-01"),
    ]
