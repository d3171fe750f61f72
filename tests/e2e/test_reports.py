"""Reports on the real stack, for a two-currency tenant (base GBP; one client billed in GBP, one in EUR).

Invoicing answers billed amounts, currency totals and receivables from its own tables; rating answers bucket
usage from its own; every service answers its audit trail with the verification of its chain. Every figure
below is computed by hand from the January the fixture builds:

- Acme Dental (GBP, 30 days): 4 devices x 12.50 = 50.00, plan discount 10 % = 5.00, net 45.00, VAT 9.00;
  a 10 h bucket worked 6 + 6 = 12 h: 2 h x 110.00 = 220.00 overage, VAT 44.00. Total 318.00. Paid 100.00.
- Bistro Ltd (EUR, 14 days): 7 devices x 12.50 = 87.50 GBP x 1.17 = 102.375 -> 102.38 EUR; 10 % off exact
  10.2375, net 92.1375 -> 92.14, so the discount is 102.38 - 92.14 = 10.24; VAT 20 % of 92.14 = 18.428 ->
  18.43. Total 92.14 + 18.43 = 110.57 EUR, pinned row EUR 1.17 per GBP.
- Issued 2026-02-01: Acme due 2026-03-03, Bistro due 2026-02-15.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.services import SERVICES, service
from tests.integration.tax_support import activate, actor_of, import_rates, known_to_tax_currency, tax_api
from tests.support.platform import Platform, Tenant

JANUARY = {"from": "2026-01-01", "to": "2026-02-01"}


@dataclass
class January:
    tenant: Tenant
    bistro_id: uuid.UUID
    category_id: uuid.UUID
    acme_invoice: dict[str, Any]
    bistro_invoice: dict[str, Any]
    payment_id: uuid.UUID


def api(platform: Platform, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.stack.url(service(name)), timeout=60.0)


async def get(platform: Platform, name: str, path: str, token: str, **params: Any) -> httpx.Response:
    async with api(platform, name) as http:
        return await http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


async def ok(platform: Platform, name: str, path: str, token: str, **params: Any) -> Any:
    response = await get(platform, name, path, token, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def send_time(platform: Platform, tenant: Tenant, service_id: uuid.UUID, day: str, hours: str) -> None:
    """An AcceptedTime straight onto metering.accepted.v1 (as rating's own specs send it)."""
    record_id = uuid.uuid4()
    entry = {
        "record_type": "time",
        "record_id": str(record_id),
        "tenant_id": str(tenant.tenant_id),
        "source": "connectwise",
        "entry_id": f"cw-{record_id.hex[:8]}",
        "company_id": str(tenant.company_id),
        "company_ref": tenant.company_ref,
        "service_id": str(service_id),
        "service_ref": "onsite",
        "user_ref": "tech.jane",
        "start_time": f"{day}T09:00:00+00:00",
        "end_time": f"{day}T15:00:00+00:00",
        "hours": hours,
        "billable": True,
    }
    await platform.publish("metering.accepted.v1", entry, key=f"{tenant.tenant_id}:{tenant.company_ref}")


async def build_january(platform: Platform) -> January:
    tenant = await platform.sandbox_tenant()  # base GBP; Acme in GBP; managed-device at 12.50 on a usage plan

    async def rules_reached_catalog() -> bool:
        return bool(await platform.value_as_tenant("catalog", tenant, "SELECT version FROM approval_rules"))

    await platform.wait_for(rules_reached_catalog, timeout_s=60)
    await platform.tax_rate(tenant, region="GB", name="VAT", rate="20")
    async with tax_api(platform) as tax:
        await known_to_tax_currency(platform, tenant)
        await activate(tax, tenant, "EUR")
        imported = await import_rates(tax, tenant, "rate_date,currency,rate,source\n2026-01-30,EUR,1.17,ECB\n")
        assert imported.status_code == 200, imported.text

    category_id = uuid.uuid4()
    await platform.put(
        f"/v1/categories/{category_id}",
        {"category_id": str(category_id), "name": "Managed endpoints"},
        token=tenant.token,
    )
    [device] = (await platform.catalog.get("/v1/services", headers=tenant.auth)).json()["items"]
    await platform.put(
        f"/v1/services/{device['service_id']}", device | {"category_id": str(category_id)}, token=tenant.token
    )
    [usage_plan] = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"]

    bistro_id, bistro_ref = uuid.uuid4(), f"bistro-{uuid.uuid4().hex[:6]}"
    bistro = {
        "company_id": str(bistro_id),
        "company_ref": bistro_ref,
        "name": "Bistro Ltd",
        "billing_email": "ap@bistro.example",
        "region": "GB",
        "currency": "EUR",
        "payment_terms_days": 14,
        "billing_anchor": "2026-01-01",
    }
    await platform.put(f"/v1/companies/{bistro_id}", bistro, token=tenant.token)
    assignment = uuid.uuid4()
    await platform.put(
        f"/v1/assignments/{assignment}",
        {
            "assignment_id": str(assignment),
            "company_id": str(bistro_id),
            "plan_id": usage_plan["plan_id"],
            "start_date": "2026-01-01",
        },
        token=tenant.token,
    )

    onsite, retainer, retained = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await platform.put(
        f"/v1/services/{onsite}",
        {
            "service_id": str(onsite),
            "code": "onsite",
            "name": "Onsite",
            "service_type": "Time",
            "default_rate": "90.00",
            "currency": "GBP",
            "unit": "hour",
        },
        token=tenant.token,
    )
    await platform.put(
        f"/v1/plans/{retainer}",
        {"plan_id": str(retainer), "name": "Retainer", "plan_type": "bucket", "billing_frequency": "monthly",
         "currency": "GBP", "lines": [{"service_id": str(onsite)}],
         "bucket": {"hours": "10", "period": "monthly", "overage_rate": "110.00", "rollover": {"policy": "none"}}},
        token=tenant.token,
    )  # fmt: skip
    await platform.put(
        f"/v1/assignments/{retained}",
        {
            "assignment_id": str(retained),
            "company_id": str(tenant.company_id),
            "plan_id": str(retainer),
            "start_date": "2026-01-01",
        },
        token=tenant.token,
    )
    discount_id = uuid.uuid4()
    discount = await platform.put(
        f"/v1/discounts/{discount_id}",
        {
            "discount_id": str(discount_id),
            "name": "Launch 10%",
            "discount_type": "percentage",
            "value": "10",
            "plan_id": usage_plan["plan_id"],
        },
        token=tenant.token,
    )
    assert discount["event"]["state"]["approval_status"] == "approved"

    await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))
    await platform.publish(
        "billing.usage.v1",
        platform.usage(tenant, quantity="7", company_ref=bistro_ref),
        key=f"{tenant.tenant_id}:{bistro_ref}",
    )
    await send_time(platform, tenant, onsite, "2026-01-05", "6")
    await send_time(platform, tenant, onsite, "2026-01-12", "6")

    await platform.advance_clock(tenant, "2026-02-01T00:00:00+00:00")
    events = await platform.invoices(tenant, count=2, timeout_s=120)
    by_currency = {e["invoice"]["currency"]: e["invoice"] for e in events}
    acme, eur = by_currency["GBP"], by_currency["EUR"]
    # the invoices are what the module docstring computes; the reports are checked against the same figures
    assert (acme["subtotal"], acme["discount_total"], acme["tax_total"], acme["total"]) == (
        "270.00",  # 50.00 + 220.00
        "5.00",
        "53.00",  # 9.00 + 44.00
        "318.00",
    )
    assert (eur["subtotal"], eur["discount_total"], eur["tax_total"], eur["total"]) == (
        "102.38",
        "10.24",
        "18.43",
        "110.57",
    )
    assert (acme["due_date"], eur["due_date"]) == ("2026-03-03", "2026-02-15")

    payment_id = uuid.uuid4()
    async with platform.invoicing_api() as invoicing:
        paid = await invoicing.put(
            f"/v1/invoices/{acme['invoice_id']}/payments/{payment_id}",
            json={"amount": "100.00", "method": "bank_transfer", "status": "confirmed"},
            headers=tenant.auth,
        )
    assert paid.status_code == 200, paid.text
    return January(tenant, bistro_id, category_id, acme, eur, payment_id)


@pytest.fixture(scope="module")
async def january(platform: Platform) -> January:
    return await build_january(platform)


def rows_of(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str, str]]:
    return [
        (r["key"], r["currency"], r["amount"], r["discounts"], r["net"], r["tax"], r["total"]) for r in report["rows"]
    ]


class TestBilledAmounts:
    async def test_by_plan_type_with_and_without_discounts_and_taxes_one_row_per_currency(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        report = await ok(platform, "invoicing", "/v1/reports/billing", t.token, group_by="plan_type", **JANUARY)

        assert (report["group_by"], report["from"], report["to"]) == ("plan_type", "2026-01-01", "2026-02-01")
        assert rows_of(report) == [
            # overage 220.00, no discount (the discount is the usage plan's), VAT 44.00
            ("bucket", "GBP", "220.00", "0.00", "220.00", "44.00", "264.00"),
            # Bistro: 102.38 - 10.24 = 92.14 + 18.43
            ("usage-based", "EUR", "102.38", "10.24", "92.14", "18.43", "110.57"),
            # Acme: 50.00 - 5.00 = 45.00 + 9.00
            ("usage-based", "GBP", "50.00", "5.00", "45.00", "9.00", "54.00"),
        ]

    async def test_by_service_category_and_by_service(self, platform: Platform, january: January) -> None:
        t = january.tenant
        categories = await ok(
            platform, "invoicing", "/v1/reports/billing", t.token, group_by="service_category", **JANUARY
        )
        services = await ok(platform, "invoicing", "/v1/reports/billing", t.token, group_by="service", **JANUARY)

        assert [(r["key"], r["label"], r["currency"], r["total"]) for r in categories["rows"]] == [
            (str(january.category_id), "Managed endpoints", "EUR", "110.57"),
            (str(january.category_id), "Managed endpoints", "GBP", "54.00"),
            ("uncategorized", "Uncategorized", "GBP", "264.00"),  # onsite has no category
        ]
        assert [(r["key"], r["label"], r["currency"], r["net"]) for r in services["rows"]] == [
            ("managed-device", "Managed device", "EUR", "92.14"),
            ("managed-device", "Managed device", "GBP", "45.00"),
            ("onsite", "Onsite", "GBP", "220.00"),
        ]

    async def test_by_client_and_by_period_sum_to_the_invoice_totals(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        clients = await ok(platform, "invoicing", "/v1/reports/billing", t.token, group_by="client", **JANUARY)
        periods = await ok(platform, "invoicing", "/v1/reports/billing", t.token, group_by="period", **JANUARY)

        assert sorted((r["label"], *rows_of({"rows": [r]})[0][1:]) for r in clients["rows"]) == [
            ("Acme Dental", "GBP", "270.00", "5.00", "265.00", "53.00", "318.00"),
            ("Bistro Ltd", "EUR", "102.38", "10.24", "92.14", "18.43", "110.57"),
        ]
        assert {r["key"] for r in clients["rows"]} == {str(t.company_id), str(january.bistro_id)}
        assert [(r["key"], r["currency"], r["total"]) for r in periods["rows"]] == [
            ("2026-01-01/2026-02-01", "EUR", "110.57"),
            ("2026-01-01/2026-02-01", "GBP", "318.00"),
        ]

    async def test_invoices_of_periods_outside_the_range_are_left_out(
        self, platform: Platform, january: January
    ) -> None:
        february = await ok(
            platform, "invoicing", "/v1/reports/billing", january.tenant.token,
            group_by="client", **{"from": "2026-02-01", "to": "2026-03-01"},
        )  # fmt: skip
        assert february["rows"] == []

    async def test_csv_has_a_header_row_and_the_same_columns_and_figures(
        self, platform: Platform, january: January
    ) -> None:
        response = await get(
            platform, "invoicing", "/v1/reports/billing", january.tenant.token,
            group_by="plan_type", format="csv", **JANUARY,
        )  # fmt: skip

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.splitlines() == [
            "key,label,currency,amount,discounts,net,tax,total,invoices",
            "bucket,bucket,GBP,220.00,0.00,220.00,44.00,264.00,1",
            "usage-based,usage-based,EUR,102.38,10.24,92.14,18.43,110.57,1",
            "usage-based,usage-based,GBP,50.00,5.00,45.00,9.00,54.00,1",
        ]

    async def test_an_unknown_grouping_or_an_empty_range_is_refused_naming_the_parameter(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        wrong = await get(platform, "invoicing", "/v1/reports/billing", t.token, group_by="colour", **JANUARY)
        empty = await get(
            platform, "invoicing", "/v1/reports/billing", t.token,
            group_by="client", **{"from": "2026-02-01", "to": "2026-02-01"},
        )  # fmt: skip

        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"] == ["query", "group_by"]
        assert empty.status_code == 422
        assert empty.json()["detail"][0]["loc"] == ["query", "to"]


class TestCurrencyTotals:
    async def test_each_currency_totals_and_converts_to_base_with_the_rate_pinned_on_each_invoice(
        self, platform: Platform, january: January
    ) -> None:
        report = await ok(platform, "invoicing", "/v1/reports/currency-totals", january.tenant.token, **JANUARY)

        assert report["base_currency"] == "GBP"
        assert report["rows"] == [
            # 110.57 EUR / 1.17 EUR per GBP = 94.504273... -> 94.50 GBP (rounded half-up per invoice)
            {"currency": "EUR", "invoices": 1, "total": "110.57", "total_in_base": "94.50", "unconverted": 0},
            {"currency": "GBP", "invoices": 1, "total": "318.00", "total_in_base": "318.00", "unconverted": 0},
        ]
        assert report["total_in_base"] == "412.50"  # 318.00 + 94.50

    async def test_as_csv(self, platform: Platform, january: January) -> None:
        response = await get(
            platform, "invoicing", "/v1/reports/currency-totals", january.tenant.token, format="csv", **JANUARY
        )
        assert list(csv.reader(io.StringIO(response.text))) == [
            ["currency", "invoices", "total", "total_in_base", "unconverted"],
            ["EUR", "1", "110.57", "94.50", "0"],
            ["GBP", "1", "318.00", "318.00", "0"],
        ]


class TestReceivablesAging:
    async def test_outstanding_per_client_and_currency_lands_in_its_days_past_due_bucket(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        # 20 March: Acme is 17 days past 3 March; Bistro 33 days past 15 February
        report = await ok(platform, "invoicing", "/v1/reports/ar-aging", t.token, as_of="2026-03-20")

        buckets = ("current", "1_30", "31_60", "61_90", "over_90", "total")
        assert [(r["company_name"], r["currency"], *(r[b] for b in buckets)) for r in report["rows"]] == [
            ("Acme Dental", "GBP", "0.00", "218.00", "0.00", "0.00", "0.00", "218.00"),  # 318.00 - 100.00 paid
            ("Bistro Ltd", "EUR", "0.00", "0.00", "110.57", "0.00", "0.00", "110.57"),
        ]
        assert [(r["company_name"], r["currency"], r["total"]) for r in report["totals"]] == [
            ("Total", "EUR", "110.57"),
            ("Total", "GBP", "218.00"),
        ]

    async def test_on_the_due_date_it_is_current_and_before_issue_there_is_nothing(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        due_day = await ok(platform, "invoicing", "/v1/reports/ar-aging", t.token, as_of="2026-02-15")
        before = await ok(platform, "invoicing", "/v1/reports/ar-aging", t.token, as_of="2026-01-31")
        over = await ok(platform, "invoicing", "/v1/reports/ar-aging", t.token, as_of="2026-06-02")

        # 15 Feb: Bistro 0 days past due, Acme due in 16 days: both current
        assert [(r["company_name"], r["current"]) for r in due_day["rows"]] == [
            ("Acme Dental", "218.00"),
            ("Bistro Ltd", "110.57"),
        ]
        assert before["rows"] == before["totals"] == []
        # 2 June: Acme 91 days past 3 March (28 + 30 + 31 + 2), Bistro 107 days: both over 90
        assert [(r["company_name"], r["over_90"]) for r in over["rows"]] == [
            ("Acme Dental", "218.00"),
            ("Bistro Ltd", "110.57"),
        ]

    async def test_csv_lists_the_clients_then_a_total_row_per_currency(
        self, platform: Platform, january: January
    ) -> None:
        response = await get(
            platform, "invoicing", "/v1/reports/ar-aging", january.tenant.token, as_of="2026-03-20", format="csv"
        )
        assert response.text.splitlines() == [
            "company_id,company_name,currency,current,1_30,31_60,61_90,over_90,total,invoices",
            f"{january.tenant.company_id},Acme Dental,GBP,0.00,218.00,0.00,0.00,0.00,218.00,1",
            f"{january.bistro_id},Bistro Ltd,EUR,0.00,0.00,110.57,0.00,0.00,110.57,1",
            ",Total,EUR,0.00,0.00,110.57,0.00,0.00,110.57,1",
            ",Total,GBP,0.00,218.00,0.00,0.00,0.00,218.00,1",
        ]


class TestBucketUsage:
    async def test_rating_reports_allocated_used_rolled_over_and_overage_hours_and_amount(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        report = await ok(platform, "rating", "/v1/reports/bucket-usage", t.token, **JANUARY)
        only_bistro = await ok(
            platform, "rating", "/v1/reports/bucket-usage", t.token, company_id=str(january.bistro_id), **JANUARY
        )

        [row] = report["rows"]
        fields = ("company_id", "company_name", "bucket", "period_start", "period_end", "allocated_hours",
                  "rolled_in_hours", "used_hours", "overage_hours", "rolled_over_hours", "overage_amount",
                  "currency")  # fmt: skip
        # 12 h worked against 10: 10 used, 2 over at 110.00 = 220.00; rollover none
        assert tuple(row[f] for f in fields) == (
            str(t.company_id),
            "Acme Dental",
            "Retainer",
            "2026-01-01",
            "2026-02-01",
            "10",
            "0",
            "10",
            "2",
            "0",
            "220.00",
            "GBP",
        )
        assert only_bistro["rows"] == []  # Bistro has no bucket

    async def test_as_csv(self, platform: Platform, january: January) -> None:
        response = await get(
            platform, "rating", "/v1/reports/bucket-usage", january.tenant.token, format="csv", **JANUARY
        )
        [header, row] = list(csv.reader(io.StringIO(response.text)))
        assert dict(zip(header, row, strict=True)) | {"assignment_id": "-", "plan_id": "-"} == {
            "company_id": str(january.tenant.company_id),
            "company_name": "Acme Dental",
            "assignment_id": "-",
            "plan_id": "-",
            "bucket": "Retainer",
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "allocated_hours": "10",
            "rolled_in_hours": "0",
            "used_hours": "10",
            "overage_hours": "2",
            "rolled_over_hours": "0",
            "expired_hours": "0",
            "remaining_hours": "0",
            "overage_amount": "220.00",
            "currency": "GBP",
        }


class TestAuditReports:
    async def test_filters_by_entity_actor_and_time_with_the_chains_verification(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        admin = actor_of(t)
        payment = await ok(
            platform, "invoicing", "/v1/audit", t.token, entity_type="payment", entity_id=str(january.payment_id)
        )
        bistro = await ok(
            platform, "catalog", "/v1/audit", t.token, entity_type="company", entity_id=str(january.bistro_id)
        )
        by_admin = await ok(platform, "catalog", "/v1/audit", t.token, actor=admin, limit=1000)
        by_nobody = await ok(platform, "catalog", "/v1/audit", t.token, actor="user:nobody")
        # invoicing audits on billing time: the payment was recorded at the 1 February tick
        on_the_first = await ok(
            platform,
            "invoicing",
            "/v1/audit",
            t.token,
            entity_type="payment",
            **{"from": "2026-02-01", "to": "2026-02-02"},
        )
        after_it = await ok(
            platform, "invoicing", "/v1/audit", t.token, entity_type="payment", **{"from": "2026-02-02"}
        )

        [paid] = payment["entries"]
        assert (payment["service"], paid["actor"], paid["action"], paid["entity_type"]) == (
            "invoicing",
            admin,
            "payment_recorded",
            "payment",
        )
        assert paid["after"]["amount"] == "100.00"
        assert payment["verification"]["ok"] is True
        assert payment["verification"]["first_broken"] is None
        assert payment["verification"]["checked"] >= paid["seq"]  # the whole chain, not only the page
        assert [(e["action"], e["after"]["name"]) for e in bistro["entries"]] == [("created", "Bistro Ltd")]
        assert bistro["service"] == "catalog"
        assert {e["actor"] for e in by_admin["entries"]} == {admin}
        assert {e["entity_type"] for e in by_admin["entries"]} >= {"company", "service", "plan", "discount", "category"}
        assert by_nobody["entries"] == []
        assert [e["entity_id"] for e in on_the_first["entries"]] == [str(january.payment_id)]
        assert after_it["entries"] == []

    async def test_every_service_answers_for_its_own_trail(self, platform: Platform, january: January) -> None:
        for spec in SERVICES:
            report = await ok(platform, spec.name, "/v1/audit", january.tenant.token, limit=1)
            assert report["service"] == spec.name
            assert report["verification"]["ok"] is True, (spec.name, report["verification"])

    async def test_pages_follow_the_chain_and_csv_has_the_same_columns(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        first = await ok(platform, "catalog", "/v1/audit", t.token, limit=2)
        second = await ok(platform, "catalog", "/v1/audit", t.token, limit=2, after=first["next_after"])
        as_csv = await get(platform, "catalog", "/v1/audit", t.token, limit=2, format="csv")
        blank_filters = await ok(platform, "catalog", "/v1/audit", t.token, limit=2, entity_type="", actor="")

        assert [e["seq"] for e in first["entries"]] == [1, 2]
        assert [e["seq"] for e in second["entries"]] == [3, 4]
        assert blank_filters["entries"] == first["entries"]  # an empty filter is no filter
        [header, *rows] = list(csv.reader(io.StringIO(as_csv.text)))
        assert header == [
            "seq",
            "at",
            "actor",
            "action",
            "entity_type",
            "entity_id",
            "before",
            "after",
            "audit_id",
            "hash",
        ]
        assert [r[0] for r in rows] == ["1", "2"]
        assert [r[5] for r in rows] == [e["entity_id"] for e in first["entries"]]

    async def test_a_tenant_sees_only_its_own_entries(self, platform: Platform, january: January) -> None:
        other = await platform.sandbox_tenant()

        theirs = await ok(
            platform, "catalog", "/v1/audit", other.token, entity_type="company", entity_id=str(january.bistro_id)
        )
        payments = await ok(platform, "invoicing", "/v1/audit", other.token, entity_type="payment")
        billed = await ok(platform, "invoicing", "/v1/reports/billing", other.token, group_by="client", **JANUARY)

        assert theirs["entries"] == payments["entries"] == billed["rows"] == []
        assert theirs["verification"]["ok"] is True

    async def test_a_tampered_row_is_named_as_the_first_broken_link(self, platform: Platform) -> None:
        victim = await platform.sandbox_tenant()  # its catalog trail: company, service, plan, assignment
        admin = await platform.connect("catalog", admin=True)
        try:
            await admin.execute(
                "UPDATE catalog.audit_log SET actor = 'someone else' WHERE tenant_id = $1 AND seq = 2",
                victim.tenant_id,
            )
        finally:
            await admin.close()

        report = await ok(platform, "catalog", "/v1/audit", victim.token)

        assert report["verification"] == {
            "ok": False,
            "checked": 1,
            "first_broken": 2,
            "problem": "row 2 was modified after it was written",
        }
        assert [e["actor"] for e in report["entries"]][1] == "someone else"  # shown as stored, flagged above


class TestPermissions:
    async def test_a_viewer_reads_reports_but_not_audit_and_a_technician_neither(
        self, platform: Platform, january: January
    ) -> None:
        t = january.tenant
        _, viewer = await platform.add_user(t, "viewer")
        _, technician = await platform.add_user(t, "technician")

        assert (await get(platform, "invoicing", "/v1/reports/currency-totals", viewer, **JANUARY)).status_code == 200
        assert (await get(platform, "rating", "/v1/reports/bucket-usage", viewer, **JANUARY)).status_code == 200
        assert (await get(platform, "invoicing", "/v1/audit", viewer)).status_code == 403
        assert (await get(platform, "catalog", "/v1/audit", viewer)).status_code == 403
        for path, params in (
            ("/v1/reports/billing", {"group_by": "client", **JANUARY}),
            ("/v1/reports/currency-totals", JANUARY),
            ("/v1/reports/ar-aging", {"as_of": "2026-03-20"}),
        ):
            assert (await get(platform, "invoicing", path, technician, **params)).status_code == 403
        assert (await get(platform, "rating", "/v1/reports/bucket-usage", technician, **JANUARY)).status_code == 403
        async with api(platform, "invoicing") as http:
            assert (await http.get("/v1/reports/ar-aging", params={"as_of": "2026-03-20"})).status_code == 401
