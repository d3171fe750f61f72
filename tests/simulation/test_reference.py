"""The reference model itself, on figures worked out by hand from docs/billing-rules.md (no stack needed)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction as F
from typing import Any

from tests.simulation.reference import (
    allocate,
    expected_invoices,
    model_pieces,
    rhu,
    rhu4,
    round_sig,
)
from tests.simulation.scenario import ExchangeRate, Record, Scenario

TENANT = "00000000-0000-4000-8000-000000000001"
CLIENT = "00000000-0000-4000-8000-0000000000c1"


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def scenario(
    months: list[date],
    *,
    services: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    start: str,
    records: list[Record] = (),  # type: ignore[assignment]
    discounts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    region: str = "US-TX",
    currency: str = "USD",
    base: str = "USD",
    plan_currency: str = "USD",
    taxes: tuple[tuple[str, str, str], ...] = (("US-TX", "TX State Sales Tax", "5"),),
    rates: list[ExchangeRate] = (),  # type: ignore[assignment]
    bucket: dict[str, Any] | None = None,
    users: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Scenario:
    plan: dict[str, Any] = {
        "plan_id": _id(10),
        "name": "Plan",
        "plan_type": "hybrid",
        "billing_frequency": "monthly",
        "currency": plan_currency,
        "lines": lines,
    }
    if bucket:
        plan |= {"plan_type": "bucket", "bucket": bucket}
    catalog = {
        "users": list(users),
        "companies": [
            {
                "company_id": CLIENT,
                "company_ref": "acme",
                "name": "Acme",
                "region": region,
                "currency": currency,
                "billing_anchor": "2026-01-01",
            }
        ],
        "services": services,
        "plans": [plan],
        "assignments": [{"assignment_id": _id(20), "company_id": CLIENT, "plan_id": _id(10), "start_date": start}],
        "discounts": list(discounts),
    }
    tax_rates = [
        {"tax_rate_id": _id(30 + n), "region": r, "name": name, "rate": rate, "valid_from": "2020-01-01"}
        for n, (r, name, rate) in enumerate(taxes)
    ]
    return Scenario(
        0,
        TENANT,
        "Hand",
        "UTC",
        base,
        months,
        catalog,
        tax_rates=tax_rates,
        exchange_rates=list(rates),
        records=list(records),
    )


def service(n: int, code: str, kind: str, rate: str = "1.00", **extra: Any) -> dict[str, Any]:
    unit = {"Usage": "device", "Time": "hour", "Fixed": "month"}[kind]
    return {
        "service_id": _id(n),
        "code": code,
        "name": code,
        "service_type": kind,
        "default_rate": rate,
        "currency": "USD",
        "unit": unit,
    } | extra


def snap(code: str, qty: str, at: str, month: int = 0, *, kind: str = "snapshot") -> Record:
    value = {
        "event_id": f"{code}-{at}",
        "source": "rmm",
        "tenant_id": TENANT,
        "company_ref": "acme",
        "service_ref": code,
        "kind": kind,
        "quantity": qty,
        "occurred_at": at,
    }
    return Record("billing.usage.v1", f"{TENANT}:acme", value, month, 1)


def entry(code: str, start: str, end: str, month: int = 0) -> Record:
    value = {
        "entry_id": f"{code}-{start}",
        "source": "psa",
        "tenant_id": TENANT,
        "company_ref": "acme",
        "service_ref": code,
        "user_ref": "tech",
        "start_time": start,
        "end_time": end,
    }
    return Record("billing.time-entries.v1", f"{TENANT}:acme", value, month, 1)


def lines_of(s: Scenario, period: date) -> list[tuple[str, Decimal, Decimal]]:
    invoice = expected_invoices(s)["acme", period]
    return sorted((ln.service_ref, ln.quantity, ln.amount) for ln in invoice.lines)


NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)


def test_rounding_is_half_up_away_from_zero() -> None:
    assert rhu(F("2.345"), "USD") == F("2.35")
    assert rhu(F("-2.345"), "USD") == F("-2.35")
    assert rhu(F("199.5"), "JPY") == 200
    assert rhu4(F(1450, 31)) == F("46.7742")
    assert round_sig(1 / F("1.25")) == F("0.8")
    assert round_sig(F(1, 3)) == F("0.333333333333333")
    assert round_sig(F(1, 1)) == 1


def test_vm_days_averaged_over_the_month_with_zero_before_the_first_count() -> None:
    # 4 VMs on 13 Nov, 4 on 16 Nov, 2 on 22 Nov: 9 days x 4 + 9 days x 2 = 54 VM-days over 30 days = 1.8
    vm = service(1, "vm", "Usage", snapshot_aggregation="time_weighted_average")
    s = scenario(
        [NOV],
        services=[vm],
        lines=[{"service_id": vm["service_id"], "custom_rate": "40.00"}],
        start="2026-11-01",
        records=[
            snap("vm", "4", "2026-11-13T00:00:00+00:00"),
            snap("vm", "4", "2026-11-16T00:00:00+00:00"),
            snap("vm", "2", "2026-11-22T00:00:00+00:00"),
        ],
    )
    assert lines_of(s, NOV) == [("vm", Decimal("1.8"), Decimal("72.00"))]


def test_counts_carried_in_from_before_the_plan_starts() -> None:
    # 50 devices on 28 Nov, the plan from 1 Dec, 45 on 12 Dec: peak 50, last 45,
    # time-weighted (50 x 11 days + 45 x 20 days) / 31 days = 46.7742 (rhu4)
    services = [
        service(n, f"dev-{how}", "Usage", snapshot_aggregation=how)
        for n, how in enumerate(["peak", "last", "time_weighted_average"], 1)
    ]
    records = [
        snap(s["code"], q, at, month)
        for s in services
        for q, at, month in (("50", "2026-11-28T00:00:00+00:00", 0), ("45", "2026-12-12T00:00:00+00:00", 1))
    ]
    s = scenario(
        [NOV, DEC],
        services=services,
        lines=[{"service_id": x["service_id"]} for x in services],
        start="2026-12-01",
        records=records,
    )
    assert lines_of(s, DEC) == [
        ("dev-last", Decimal("45"), Decimal("45.00")),
        ("dev-peak", Decimal("50"), Decimal("50.00")),
        ("dev-time_weighted_average", Decimal("46.7742"), Decimal("46.77")),
    ]
    assert ("acme", NOV) not in expected_invoices(s)  # counted, not billed: no plan in November


def test_a_discount_applies_from_its_first_day_on_the_days_of_each_charge() -> None:
    # 10 % from 16 Nov; 1 h at 160 USD on 20 Nov, US-TX 5 %: 160 - 16 = 144 + 7.20 = 151.20; 10 Nov undiscounted
    support = service(1, "support", "Time")
    ten = {
        "discount_id": _id(40),
        "name": "Ten",
        "discount_type": "percentage",
        "value": "10",
        "company_id": CLIENT,
        "valid_from": "2026-11-16",
    }
    s = scenario(
        [NOV],
        services=[support],
        lines=[{"service_id": support["service_id"], "custom_rate": "160.00"}],
        start="2026-11-01",
        discounts=[ten],
        records=[
            entry("support", "2026-11-20T10:00:00+00:00", "2026-11-20T11:00:00+00:00"),
            entry("support", "2026-11-10T10:00:00+00:00", "2026-11-10T11:00:00+00:00"),
        ],
    )
    invoice = expected_invoices(s)["acme", NOV]
    totals = sorted((ln.amount, ln.discount_amount, ln.tax_amount, ln.total) for ln in invoice.lines)
    assert totals == [
        (Decimal("160.00"), Decimal("0.00"), Decimal("8.00"), Decimal("168.00")),
        (Decimal("160.00"), Decimal("16.00"), Decimal("7.20"), Decimal("151.20")),
    ]


def test_a_prorated_piece_is_converted_first_then_cut_by_the_remainder_rule() -> None:
    # 100.00 GBP a month, invoiced in EUR at 1.1537, from 11 Nov (days [10, 30) of 30):
    # C(30) - C(10) = 115.37 - rhu(115.37 x 10 / 30 = 38.4567) = 115.37 - 38.46 = 76.91 (not 66.67 x 1.1537 = 76.92)
    fee = service(1, "managed", "Fixed", "100.00", currency="GBP")
    s = scenario(
        [NOV],
        services=[fee],
        lines=[{"service_id": fee["service_id"]}],
        start="2026-11-11",
        region="IE",
        currency="EUR",
        base="GBP",
        plan_currency="GBP",
        taxes=(("IE", "VAT", "23"),),
        rates=[ExchangeRate("EUR", date(2026, 11, 30), "1.1537")],
    )
    assert lines_of(s, NOV) == [("managed", Decimal("1"), Decimal("76.91"))]


def test_time_rounded_up_to_the_increment_then_to_the_minimum() -> None:
    support = service(1, "support", "Time", "90.00")
    line = {"service_id": support["service_id"], "rounding_increment_minutes": 15, "minimum_minutes": 30}
    s = scenario(
        [NOV],
        services=[support],
        lines=[line],
        start="2026-11-01",
        records=[
            entry("support", "2026-11-03T09:00:00+00:00", "2026-11-03T09:10:00+00:00"),  # 30 min
            entry("support", "2026-11-04T09:00:00+00:00", "2026-11-04T09:50:00+00:00"),
        ],
    )  # 60 min
    assert lines_of(s, NOV) == [("support", Decimal("1.5"), Decimal("135.00"))]


def test_pricing_models() -> None:
    svc = service(1, "x", "Usage")
    graduated = {
        "pricing": {
            "model": "graduated",
            "tiers": [
                {"up_to": "10", "unit_price": "5.00"},
                {"up_to": None, "unit_price": "4.00", "flat_fee": "20.00"},
            ],
        }
    }
    pieces = model_pieces(graduated, svc, F(15))
    assert [(int(p.quantity), int(p.amount)) for p in pieces] == [(10, 50), (5, 20), (1, 20)]
    volume = {
        "pricing": {
            "model": "volume",
            "tiers": [{"up_to": "10", "unit_price": "5.00"}, {"up_to": None, "unit_price": "4.00"}],
        }
    }
    assert [(int(p.quantity), int(p.amount)) for p in model_pieces(volume, svc, F(15))] == [(15, 60)]
    assert [(int(p.quantity), int(p.amount)) for p in model_pieces(volume, svc, F(10))] == [(10, 50)]
    package = {"pricing": {"model": "package", "package_size": "100", "package_price": "12.00"}}
    assert [(int(p.quantity), int(p.amount)) for p in model_pieces(package, svc, F(201))] == [(3, 36)]
    assert model_pieces(package, svc, F(0)) == []


def test_largest_remainder_allocation_goes_to_the_earlier_line_on_a_tie() -> None:
    assert allocate(F("0.02"), [F("0.05"), F("0.05"), F("0.05")], "USD") == [F("0.01"), F("0.01"), 0]
    assert allocate(F(15), [F("33.33"), F("33.33"), F("33.34")], "USD") == [5, 5, 5]


def test_a_fixed_discount_takes_no_more_than_what_is_left() -> None:
    fee = service(1, "managed", "Fixed", "30.00")
    off = {
        "discount_id": _id(40),
        "name": "Fifty off",
        "discount_type": "fixed_amount",
        "value": "50.00",
        "currency": "USD",
        "company_id": CLIENT,
    }
    s = scenario([NOV], services=[fee], lines=[{"service_id": fee["service_id"]}], start="2026-11-01", discounts=[off])
    invoice = expected_invoices(s)["acme", NOV]
    assert (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == (
        Decimal("30.00"),
        Decimal("30.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )


def test_bucket_hours_carried_up_to_a_cap_then_overage() -> None:
    # 10 h a week (weeks from Sunday 1 Nov), up to 5 h carried; week 1 uses 6 h (4 carried), week 2 uses 16 h:
    # 4 + 10 = 14 available, 2 h over at 110.00
    support = service(1, "support", "Time")
    bucket = {
        "hours": "10",
        "period": "weekly",
        "overage_rate": "110.00",
        "rollover": {"policy": "carry_up_to", "max_hours": "5"},
    }
    records = [
        entry("support", "2026-11-02T09:00:00+00:00", "2026-11-02T15:00:00+00:00"),
        entry("support", "2026-11-09T08:00:00+00:00", "2026-11-09T16:00:00+00:00"),
        entry("support", "2026-11-10T08:00:00+00:00", "2026-11-10T16:00:00+00:00"),
    ]
    s = scenario(
        [NOV],
        services=[support],
        lines=[{"service_id": support["service_id"]}],
        start="2026-11-01",
        bucket=bucket,
        records=records,
    )
    s.catalog["companies"][0]["billing_anchor"] = "2026-11-01"
    assert lines_of(s, NOV) == [("support", Decimal("2"), Decimal("220.00"))]


def test_a_late_snapshot_reprices_the_closed_month_in_the_open_one() -> None:
    # peak 10 devices in November at 3.00; a count of 14 dated 20 Nov arrives in December:
    # December carries an adjustment of (14 - 10) x 3.00 = 12.00, and bills 14 (carried in) x 3.00
    dev = service(1, "dev", "Usage", snapshot_aggregation="peak")
    records = [snap("dev", "10", "2026-11-02T06:00:00+00:00"), snap("dev", "14", "2026-11-20T06:00:00+00:00", 1)]
    s = scenario(
        [NOV, DEC],
        services=[dev],
        lines=[{"service_id": dev["service_id"], "custom_rate": "3.00"}],
        start="2026-11-01",
        records=records,
    )
    assert lines_of(s, NOV) == [("dev", Decimal("10"), Decimal("30.00"))]
    assert lines_of(s, DEC) == [("dev", Decimal("1"), Decimal("12.00")), ("dev", Decimal("14"), Decimal("42.00"))]
