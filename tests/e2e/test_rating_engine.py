"""Rating end to end: tiers at the period's close, late usage as adjustments, time entries, buckets with
overage and rollover, thresholds, fixed fees with proration, suspension and advance billing, and two plans
of different frequencies on one client, driven by the sandbox test clock. Every amount is hand-computed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from shared.services import service
from tests.support.platform import Platform, Tenant

D = Decimal


@dataclass
class Client:
    tenant: Tenant
    services: dict[str, uuid.UUID] = field(default_factory=dict)
    plans: dict[str, uuid.UUID] = field(default_factory=dict)
    assignments: dict[str, uuid.UUID] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)


async def a_client(platform: Platform, *, anchor: str = "2026-01-01") -> Client:
    t, api_key, token = await platform.new_tenant()
    c = uuid.uuid4()
    ref = f"acme-{c.hex[:6]}"
    company = {
        "company_id": str(c),
        "company_ref": ref,
        "name": "Acme Dental",
        "billing_email": "ap@acme.example",
        "region": "GB",
        "currency": "GBP",
        "payment_terms_days": 30,
        "billing_anchor": anchor,
    }
    await platform.put(f"/v1/companies/{c}", company, token=token)
    tenant = Tenant(t, c, ref, "", "0", token=token, api_key=api_key)
    await platform.tax_rate(tenant, region="GB", rate="20")  # invoicing holds invoices it cannot tax
    return Client(tenant)


async def add_service(
    platform: Platform, client: Client, code: str, service_type: str, rate: str, unit: str
) -> uuid.UUID:
    s = uuid.uuid4()
    body = {
        "service_id": str(s),
        "code": code,
        "name": code.replace("-", " ").capitalize(),
        "service_type": service_type,
        "default_rate": rate,
        "currency": "GBP",
        "unit": unit,
    }
    await platform.put(f"/v1/services/{s}", body, token=client.tenant.token)
    client.services[code] = s
    client.units[code] = unit
    return s


async def add_plan(
    platform: Platform, client: Client, name: str, lines: list[dict[str, Any]], *, start: str, **plan: Any
) -> uuid.UUID:
    p, a = uuid.uuid4(), uuid.uuid4()
    body = {
        "plan_id": str(p),
        "name": name,
        "plan_type": plan.pop("plan_type", "hybrid"),
        "billing_frequency": plan.pop("billing_frequency", "monthly"),
        "currency": "GBP",
        "lines": lines,
    } | plan
    await platform.put(f"/v1/plans/{p}", body, token=client.tenant.token)
    assignment = {
        "assignment_id": str(a),
        "company_id": str(client.tenant.company_id),
        "plan_id": str(p),
        "start_date": start,
    }
    await platform.put(f"/v1/assignments/{a}", assignment, token=client.tenant.token)
    client.plans[name], client.assignments[name] = p, a
    return p


def usage(client: Client, code: str, quantity: str, occurred_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:12]}",
        "source": "ninjaone",
        "tenant_id": str(client.tenant.tenant_id),
        "company_ref": client.tenant.company_ref,
        "service_ref": code,
        "quantity": quantity,
        "unit": client.units[code],
        "occurred_at": occurred_at,
    } | extra


async def send_time(
    platform: Platform,
    client: Client,
    code: str,
    start: str,
    end: str,
    hours: str,
    *,
    billable: bool = True,
    record_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An AcceptedTime straight onto metering.accepted.v1 (metering's time path is built elsewhere); the same
    ``record_id`` again is a redelivery."""
    record_id = record_id or uuid.uuid4()
    entry = {
        "record_type": "time",
        "record_id": str(record_id),
        "tenant_id": str(client.tenant.tenant_id),
        "source": "connectwise",
        "entry_id": f"cw-{record_id.hex[:8]}",
        "company_id": str(client.tenant.company_id),
        "company_ref": client.tenant.company_ref,
        "service_id": str(client.services[code]),
        "service_ref": code,
        "user_ref": "tech.jane",
        "start_time": start,
        "end_time": end,
        "hours": hours,
        "billable": billable,
    }
    key = f"{client.tenant.tenant_id}:{client.tenant.company_ref}"
    await platform.publish("metering.accepted.v1", entry, key=key)
    return record_id


async def charges(platform: Platform, client: Client) -> list[dict[str, Any]]:
    rows = await platform.fetch_as_tenant("rating", client.tenant, "SELECT document FROM charges")
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]


def lines_of(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted((ln["kind"], ln["quantity"], ln["unit_price"], ln["amount"]) for ln in invoice["lines"])


async def invoice_for(platform: Platform, client: Client, start: str, end: str, count: int) -> dict[str, Any]:
    events = await platform.invoices(client.tenant, count=count, timeout_s=90)
    [invoice] = [
        e["invoice"] for e in events if (e["invoice"]["period_start"], e["invoice"]["period_end"]) == (start, end)
    ]
    return invoice


async def rating_get(platform: Platform, client: Client, path: str) -> Any:
    async with httpx.AsyncClient(base_url=platform.stack.url(service("rating")), timeout=60) as http:
        response = await http.get(path, headers=client.tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


class TestUsagePricedAtClose:
    async def test_graduated_tiers_with_an_included_quantity_then_a_late_record_is_charged_as_one_adjustment(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "backup-gb", "Usage", "1.00", "GB")
        tiers = [{"up_to": "10", "unit_price": "12.50"}, {"up_to": None, "unit_price": "10.00"}]
        line = {
            "service_id": str(client.services["backup-gb"]),
            "included_quantity": "2",
            "pricing": {"model": "graduated", "tiers": tiers},
        }
        await add_plan(platform, client, "Backup", [line], start="2026-01-01", plan_type="usage-based")
        await platform.send_usage(client.tenant, usage(client, "backup-gb", "4", "2026-01-05T10:00:00+00:00"))
        await platform.send_usage(client.tenant, usage(client, "backup-gb", "10", "2026-01-20T10:00:00+00:00"))

        await platform.advance_clock(client.tenant, "2026-02-01T00:00:00+00:00")
        january = await invoice_for(platform, client, "2026-01-01", "2026-02-01", 1)

        # 4 + 10 = 14 GB, 2 included: 12 priced. Tier 1: 10 x 12.50 = 125.00; tier 2: 2 x 10.00 = 20.00
        assert lines_of(january) == [("usage", "10", "12.50", "125.00"), ("usage", "2", "10.00", "20.00")]
        assert january["subtotal"] == "145.00"

        late = usage(client, "backup-gb", "3", "2026-01-25T10:00:00+00:00")
        await platform.send_usage(client.tenant, late)
        await platform.send_usage(client.tenant, late)  # a redelivery changes nothing
        await platform.advance_clock(client.tenant, "2026-03-01T00:00:00+00:00")
        february = await invoice_for(platform, client, "2026-02-01", "2026-03-01", 2)

        # January again with the late 3 GB: 17 - 2 = 15 -> 10 x 12.50 + 5 x 10.00 = 175.00; 175 - 145 = 30.00
        assert lines_of(february) == [("usage", "1", "30.00", "30.00")]
        everything = await charges(platform, client)
        [adjustment] = [c for c in everything if c["corrects_charge_ids"]]
        originals = sorted(c["charge_id"] for c in everything if c["period_start"] == "2026-01-01")
        assert sorted(adjustment["corrects_charge_ids"]) == originals
        assert adjustment["late"] is True

        why = await rating_get(platform, client, f"/v1/charges/{adjustment['charge_id']}")
        assert why["rule_total"] == "175.00"  # the re-rated January total the adjustment brings it to
        assert len(why["corrects"]) == 2
        assert "145" in why["explanation"]
        assert "175" in why["explanation"]

    async def test_usage_crossing_80_and_100_percent_of_its_included_quantity_is_announced_once_per_level(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "seats", "Usage", "5.00", "seat")
        line = {"service_id": str(client.services["seats"]), "included_quantity": "10"}
        await add_plan(platform, client, "Seats", [line], start="2026-01-01", plan_type="usage-based")
        for q, day in (("7", "03"), ("2", "04"), ("1", "05"), ("4", "06")):  # 7, 9 (>= 8), 10 (>= 10), 14
            await platform.send_usage(client.tenant, usage(client, "seats", q, f"2026-01-{day}T10:00:00+00:00"))
        await platform.advance_clock(client.tenant, "2026-02-01T00:00:00+00:00")

        crossings = await platform.messages(
            "rating.thresholds.v1",
            where=lambda d: d["tenant_id"] == str(client.tenant.tenant_id),
            count=2,
            settle_s=1.0,
        )
        # once per level, whatever batches the records arrived in; the total is what was used when it crossed
        assert sorted((c["level_percent"], c["limit"], c["unit"]) for c in crossings) == [
            ("100", "10", "seat"),
            ("80", "10", "seat"),
        ]
        assert all(D(c["total"]) >= D(c["limit"]) * D(c["level_percent"]) / 100 for c in crossings)
        january = await invoice_for(platform, client, "2026-01-01", "2026-02-01", 1)
        assert lines_of(january) == [("usage", "4", "5.00", "20.00")]  # 14 - 10 included = 4 x 5.00


class TestSnapshots:
    async def test_a_count_reported_in_march_is_billed_again_in_april_with_no_april_record(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "managed-devices", "Usage", "3.00", "device")
        line = {"service_id": str(client.services["managed-devices"])}
        await add_plan(platform, client, "RMM", [line], start="2026-03-01", plan_type="usage-based")
        march_count = usage(client, "managed-devices", "45", "2026-03-10T10:00:00+00:00", kind="snapshot")
        await platform.send_usage(client.tenant, march_count)

        await platform.advance_clock(client.tenant, "2026-04-01T00:00:00+00:00")
        march = await invoice_for(platform, client, "2026-03-01", "2026-04-01", 1)
        # peak of March's counts: 45 devices x 3.00 = 135.00
        assert lines_of(march) == [("usage", "45", "3.00", "135.00")]

        await platform.advance_clock(client.tenant, "2026-05-01T00:00:00+00:00")  # nothing reported in April
        april = await invoice_for(platform, client, "2026-04-01", "2026-05-01", 2)
        # the 45 counted on March 10 is in force until the next count: April is 45 x 3.00 = 135.00 again
        assert lines_of(april) == [("usage", "45", "3.00", "135.00")]

        everything = await charges(platform, client)
        [in_march] = [c for c in everything if c["period_start"] == "2026-03-01"]
        [in_april] = [c for c in everything if c["period_start"] == "2026-04-01"]
        assert in_april["source_records"] == in_march["source_records"]  # the March record, carried in
        why = await rating_get(platform, client, f"/v1/charges/{in_april['charge_id']}")
        assert "carried in from the snapshot of 2026-03-10T10:00:00+00:00" in why["explanation"]
        [ledger_row] = why["source_records"]
        assert ledger_row["occurred_at"].startswith("2026-03-10")

    async def test_a_late_count_into_a_closed_period_re_rates_the_later_closed_periods_it_was_carried_into(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "managed-devices", "Usage", "3.00", "device")
        line = {"service_id": str(client.services["managed-devices"])}
        await add_plan(platform, client, "RMM", [line], start="2026-03-01", plan_type="usage-based")
        await platform.send_usage(
            client.tenant, usage(client, "managed-devices", "45", "2026-03-10T10:00:00+00:00", kind="snapshot")
        )
        await platform.advance_clock(client.tenant, "2026-05-01T00:00:00+00:00")  # March and April: 45 x 3.00 each
        await invoice_for(platform, client, "2026-04-01", "2026-05-01", 2)

        late = usage(client, "managed-devices", "60", "2026-03-20T10:00:00+00:00", kind="snapshot")
        await platform.send_usage(client.tenant, late)
        await platform.advance_clock(client.tenant, "2026-06-01T00:00:00+00:00")
        may = await invoice_for(platform, client, "2026-05-01", "2026-06-01", 3)
        # March again: peak of 45 and 60 = 60 x 3.00 = 180.00, 135.00 charged: + 45.00
        # April again: 60 carried in (the count since March 20) = 180.00, 135.00 charged: + 45.00
        # May: 60 carried in x 3.00 = 180.00
        assert lines_of(may) == [
            ("usage", "1", "45.00", "45.00"),
            ("usage", "1", "45.00", "45.00"),
            ("usage", "60", "3.00", "180.00"),
        ]
        everything = await charges(platform, client)
        [april] = [c["charge_id"] for c in everything if c["period_start"] == "2026-04-01"]
        [april_fix] = [c for c in everything if c["corrects_charge_ids"] == [april]]
        assert april_fix["late"] is True
        assert "carried in changed by a late snapshot of 2026-03-20T10:00:00+00:00" in april_fix["description"]


class TestTimeEntries:
    async def test_billable_time_is_rounded_to_the_increment_and_minimum_and_non_billable_time_is_not_charged(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "helpdesk", "Time", "80.00", "hour")
        line = {
            "service_id": str(client.services["helpdesk"]),
            "custom_rate": "120.00",
            "rounding_increment_minutes": 15,
            "minimum_minutes": 30,
        }
        await add_plan(platform, client, "Support", [line], start="2026-01-01", plan_type="time-based")
        await send_time(
            platform, client, "helpdesk", "2026-01-05T09:00:00+00:00", "2026-01-05T09:50:00+00:00", "0.8333"
        )
        await send_time(
            platform, client, "helpdesk", "2026-01-06T09:00:00+00:00", "2026-01-06T09:10:00+00:00", "0.1667"
        )
        skipped = await send_time(
            platform, client, "helpdesk", "2026-01-07T09:00:00+00:00", "2026-01-07T11:00:00+00:00", "2", billable=False
        )
        await platform.advance_clock(client.tenant, "2026-02-01T00:00:00+00:00")
        january = await invoice_for(platform, client, "2026-01-01", "2026-02-01", 1)

        # 50 min -> 60 min (4 x 15) = 1 h; 10 min -> 15 min, raised to the 30 min minimum = 0.5 h; 1.5 h x 120.00
        assert lines_of(january) == [("time", "1.5", "120.00", "180.00")]
        [recorded] = await platform.fetch_as_tenant(
            "rating", client.tenant, "SELECT disposition FROM rated_records WHERE record_id = $1", skipped
        )
        assert recorded["disposition"] == "non_billable"


class TestBuckets:
    async def test_hours_beyond_the_bucket_are_overage_and_unused_hours_roll_over_up_to_the_cap(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "onsite", "Time", "90.00", "hour")
        bucket = {
            "hours": "10",
            "period": "monthly",
            "overage_rate": "110.00",
            "rollover": {"policy": "carry_up_to", "max_hours": "5"},
        }
        line = {"service_id": str(client.services["onsite"])}
        await add_plan(platform, client, "Retainer", [line], start="2026-01-01", plan_type="bucket", bucket=bucket)
        await send_time(platform, client, "onsite", "2026-01-05T09:00:00+00:00", "2026-01-05T15:00:00+00:00", "6")
        await send_time(platform, client, "onsite", "2026-01-12T09:00:00+00:00", "2026-01-12T15:00:00+00:00", "6")
        await platform.advance_clock(client.tenant, "2026-02-01T00:00:00+00:00")
        await send_time(platform, client, "onsite", "2026-02-03T09:00:00+00:00", "2026-02-03T12:00:00+00:00", "3")
        await platform.advance_clock(client.tenant, "2026-03-01T00:00:00+00:00")

        january = await invoice_for(platform, client, "2026-01-01", "2026-02-01", 1)
        # 6 + 6 = 12 h against 10: the second entry's last 2 h are overage, 2 x 110.00
        assert lines_of(january) == [("bucket_overage", "2", "110.00", "220.00")]
        usage_rows = await rating_get(platform, client, f"/v1/companies/{client.tenant.company_id}/bucket-usage")
        summary = [(r["period_start"], r["used"], r["overage"], r["remaining"], r["rolled_out"]) for r in usage_rows]
        # February: 3 of 10 used, 7 left, at most 5 carried into March
        assert summary == [("2026-01-01", "10", "2", "0", "0"), ("2026-02-01", "3", "0", "7", "5")]
        crossings = await platform.messages(
            "rating.thresholds.v1",
            where=lambda d: d["tenant_id"] == str(client.tenant.tenant_id),
            count=2,
            settle_s=1.0,
        )
        assert sorted((c["subject"], c["level_percent"]) for c in crossings) == [("bucket", "100"), ("bucket", "80")]

    async def test_a_late_entry_resettles_its_period_and_the_rollover_of_every_later_settled_period_once(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "onsite", "Time", "90.00", "hour")
        bucket = {
            "hours": "10",
            "period": "monthly",
            "overage_rate": "110.00",
            "rollover": {"policy": "carry_up_to", "max_hours": "5"},
        }
        line = {"service_id": str(client.services["onsite"])}
        await add_plan(platform, client, "Retainer", [line], start="2026-01-01", plan_type="bucket", bucket=bucket)
        await send_time(platform, client, "onsite", "2026-01-05T09:00:00+00:00", "2026-01-05T15:00:00+00:00", "6")
        await send_time(platform, client, "onsite", "2026-02-04T08:00:00+00:00", "2026-02-04T20:00:00+00:00", "12")
        await send_time(platform, client, "onsite", "2026-03-04T07:00:00+00:00", "2026-03-04T20:00:00+00:00", "13")
        await platform.advance_clock(client.tenant, "2026-04-01T00:00:00+00:00")
        path = f"/v1/companies/{client.tenant.company_id}/bucket-usage"

        def summary(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
            keys = ("period_start", "rolled_in", "used", "overage", "remaining", "rolled_out", "revision")
            return [tuple(str(r[k]) for k in keys) for r in rows]

        async def settled() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = await rating_get(platform, client, path)
            return rows if len(rows) == 3 else []

        # January: 6 of 10 used, 4 left and carried (cap 5). February: 4 carried + 10 = 14, 12 used, 2 left and
        # carried. March: 2 carried + 10 = 12 against 13 worked: 1 h overage, 1 x 110.00 = 110.00.
        assert summary(await platform.wait_for(settled, timeout_s=60)) == [
            ("2026-01-01", "0", "6", "0", "4", "4", "1"),
            ("2026-02-01", "4", "12", "0", "2", "2", "1"),
            ("2026-03-01", "2", "12", "1", "0", "0", "1"),
        ]
        [march] = [c for c in await charges(platform, client) if c["kind"] == "bucket_overage"]
        assert (march["quantity"], march["amount"]) == ("1", "110.00")

        late = await send_time(
            platform, client, "onsite", "2026-01-20T09:00:00+00:00", "2026-01-20T14:00:00+00:00", "5"
        )
        await send_time(  # the same record again: a redelivery changes nothing
            platform, client, "onsite", "2026-01-20T09:00:00+00:00", "2026-01-20T14:00:00+00:00", "5", record_id=late
        )
        await platform.advance_clock(client.tenant, "2026-04-02T00:00:00+00:00")  # waits for every consumer

        # January again: 6 + 5 = 11 h against 10: 1 h overage (110.00, nothing sent before), nothing carried.
        # February: 0 carried + 10 against 12: 2 h overage (2 x 110.00 = 220.00, nothing sent before).
        # March: 0 carried + 10 against 13: 3 h overage = 330.00; 110.00 sent: 220.00 more, correcting it.
        # In all 110.00 + 220.00 + 220.00 = 550.00 = the late 5 h x 110.00, all billed in the open April.
        adjustments = [c for c in await charges(platform, client) if c["unit"] == "adjustment"]
        got = sorted(
            (c["bucket"]["bucket_period_start"], c["amount"], c["corrects_charge_ids"], c["period_start"])
            for c in adjustments
        )
        assert got == [
            ("2026-01-01", "110.00", [], "2026-04-01"),
            ("2026-02-01", "220.00", [], "2026-04-01"),
            ("2026-03-01", "220.00", [march["charge_id"]], "2026-04-01"),
        ]
        assert all(c["late"] is True for c in adjustments)
        assert summary(await rating_get(platform, client, path)) == [
            ("2026-01-01", "0", "10", "1", "0", "0", "2"),
            ("2026-02-01", "0", "10", "2", "0", "0", "2"),
            ("2026-03-01", "0", "10", "3", "0", "0", "2"),
        ]


class TestFixedFeesOverThreeMonths:
    async def test_advance_monthly_and_arrears_quarterly_plans_with_a_suspension_are_charged_exactly(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform)
        await add_service(platform, client, "firewall", "Fixed", "100.00", "device")
        await add_service(platform, client, "compliance", "Fixed", "90.00", "report")
        firewall = [{"service_id": str(client.services["firewall"])}]
        compliance = [{"service_id": str(client.services["compliance"])}]
        await add_plan(
            platform, client, "Firewall", firewall, start="2026-01-01", plan_type="fixed", billing_timing="advance"
        )
        await add_plan(
            platform,
            client,
            "Compliance",
            compliance,
            start="2026-01-15",
            plan_type="fixed",
            billing_frequency="quarterly",
        )

        await platform.advance_clock(client.tenant, "2026-02-01T00:00:00+00:00")
        january = await invoice_for(platform, client, "2026-01-01", "2026-02-01", 1)
        # the first cycle is charged when it closes, with February's fee in advance: 2 x 100.00
        assert lines_of(january) == [("fixed", "2", "100.00", "200.00")]

        for status, on in (("suspended", "2026-02-10"), ("active", "2026-02-20")):
            response = await platform.catalog.post(
                f"/v1/companies/{client.tenant.company_id}/status",
                json={"status": status, "effective_date": on, "reason": "unpaid invoices"},
                headers=client.tenant.auth,
            )
            assert response.status_code == 200, response.text

        await platform.advance_clock(client.tenant, "2026-03-01T00:00:00+00:00")
        february = await invoice_for(platform, client, "2026-02-01", "2026-03-01", 2)
        # February (28 days) billable Feb 1-10 and Feb 20-Mar 1 (9 + 9 days):
        #   C(9) - C(0) = round(100 x 9/28 = 32.142..) = 32.14;  C(28) - C(19) = 100 - round(67.857..) = 32.14
        #   64.28 billable - 100.00 charged in advance = -35.72; March's fee in advance 100.00
        assert lines_of(february) == [("fixed", "1", "-35.72", "-35.72"), ("fixed", "1", "100.00", "100.00")]
        assert february["subtotal"] == "64.28"

        await platform.advance_clock(client.tenant, "2026-04-01T00:00:00+00:00")
        march = await invoice_for(platform, client, "2026-03-01", "2026-04-01", 4)
        quarter = await invoice_for(platform, client, "2026-01-01", "2026-04-01", 4)
        assert lines_of(march) == [("fixed", "1", "100.00", "100.00")]  # March as charged; April in advance
        # The quarter (90 days) from Jan 15 (day 14), suspended days 40-50: 90 x 26/90 + 90 x 40/90 = 26.00 + 40.00
        assert sorted(ln["amount"] for ln in quarter["lines"]) == ["26.00", "40.00"]
        assert quarter["subtotal"] == "66.00"
