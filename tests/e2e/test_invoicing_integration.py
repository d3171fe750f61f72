"""Seed 000's integration test for invoicing, on the real stack: a client onboarded onto a plan with a
bundle, a service that needs another and a discount, billed from usage and time records in its own
currency with VAT; then a credit, a payment, a refund, an adjustment and a cancelled service, all
reflected in the client's account. Every figure is hand-computed here."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.test_invoicing import a_discount, ok
from tests.e2e.test_metering_ingestion import post_batch, time_entry
from tests.integration.tax_support import activate, import_rates, known_to_tax_currency, tax_api
from tests.support.platform import Platform, Tenant

JAN_END, FEB_END = "2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"


async def a_service(platform: Platform, tenant: Tenant, code: str, kind: str, rate: str, **extra: Any) -> str:
    service_id = str(uuid.uuid4())
    body = {
        "service_id": service_id,
        "code": code,
        "name": code,
        "service_type": kind,
        "default_rate": rate,
        "currency": "GBP",
        "unit": "hour" if kind == "Time" else "device",
    } | extra
    await platform.put(f"/v1/services/{service_id}", body, token=tenant.token)
    return service_id


async def metering_knows(platform: Platform, tenant: Tenant, service_id: str) -> None:
    async def known() -> bool:
        query = "SELECT 1 FROM services WHERE service_id = $1"
        return bool(await platform.value_as_tenant("metering", tenant, query, uuid.UUID(service_id)))

    await platform.wait_for(known, timeout_s=60)


class TestAClientOnboardedOntoABundledDiscountedPlan:
    async def test_is_invoiced_in_its_currency_with_vat_and_every_later_change_lands_in_its_account(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        # -- onboarding: the client pays in EUR; its plan has a bundle, a service needing another, a discount
        company = (await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)).json()
        await platform.put(f"/v1/companies/{tenant.company_id}", company | {"currency": "EUR"}, token=tenant.token)
        async with tax_api(platform) as api:
            await known_to_tax_currency(platform, tenant)
            await activate(api, tenant, "EUR")
            imported = await import_rates(api, tenant, "rate_date,currency,rate,source\n2026-01-30,EUR,1.20,ECB\n")
            assert imported.status_code == 200, imported.text
        [plan] = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"]
        device = plan["lines"][0]["service_id"]  # usage, 12.50 a device
        edr = await a_service(platform, tenant, "edr", "Fixed", "10.00")
        agent = await a_service(platform, tenant, "rmm-agent", "Fixed", "5.00")
        backup = await a_service(platform, tenant, "backup", "Fixed", "20.00", requires=[agent])
        helpdesk = await a_service(platform, tenant, "helpdesk", "Time", "90.00")
        bundle_id = str(uuid.uuid4())
        await platform.put(
            f"/v1/bundles/{bundle_id}",
            {
                "bundle_id": bundle_id,
                "name": "Security pack",
                "description": "Devices and EDR",
                "price": "99.00",
                "currency": "GBP",
                "service_ids": [device, edr],
            },
            token=tenant.token,
        )
        saved = await platform.put(
            f"/v1/plans/{plan['plan_id']}",
            plan | {"lines": [{"bundle_id": bundle_id}, {"service_id": backup}, {"service_id": helpdesk}]},
            token=tenant.token,
        )
        lines = saved["event"]["state"]["lines"]
        assert [(x.get("service_id"), x.get("added_as_dependency_of")) for x in lines if x.get("service_id")] == [
            (backup, []),
            (helpdesk, []),
            (agent, [backup]),  # the dependency came along by itself
        ]
        await a_discount(
            platform, tenant, name="Onboarding 10%", discount_type="percentage", value="10", plan_id=plan["plan_id"]
        )
        await metering_knows(platform, tenant, helpdesk)

        # -- January: 3 devices (in the bundle) and 1.5 hours of helpdesk
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))
        [hours] = await post_batch(
            platform,
            tenant,
            "/v1/time-entries:batch",
            [time_entry(tenant, "helpdesk", start="2026-01-15T09:00:00Z", end="2026-01-15T10:30:00Z")],
        )
        assert hours["status"] == "accepted", hours
        await platform.advance_clock(tenant, JAN_END)
        [event] = await platform.invoices(tenant, timeout_s=120)
        jan = event["invoice"]

        # GBP -> EUR at 1.20, then 10 % off each plan line, the net rounded, then VAT 20 % per line:
        #   bundle    99.00 x 1.20 = 118.80 - 11.88 = 106.92  VAT 21.384 -> 21.38  = 128.30 (3 devices inside)
        #   backup    20.00 x 1.20 =  24.00 -  2.40 =  21.60  VAT  4.32            =  25.92
        #   rmm-agent  5.00 x 1.20 =   6.00 -  0.60 =   5.40  VAT  1.08            =   6.48 (backup's dependency)
        #   helpdesk  1.5 h x 90.00 = 135.00 x 1.20 = 162.00 - 16.20 = 145.80 VAT 29.16 = 174.96
        assert by_service(jan) == {
            "bundle:Security pack": ("1", "118.80", "11.88", "106.92", "21.38", "128.30"),
            "backup": ("1", "24.00", "2.40", "21.60", "4.32", "25.92"),
            "rmm-agent": ("1", "6.00", "0.60", "5.40", "1.08", "6.48"),
            "helpdesk": ("1.5", "162.00", "16.20", "145.80", "29.16", "174.96"),
        }
        # 310.80 - 31.08 + 55.94 = 335.66
        assert (jan["currency"], jan["subtotal"], jan["discount_total"], jan["tax_total"], jan["total"]) == (
            "EUR",
            "310.80",
            "31.08",
            "55.94",
            "335.66",
        )
        assert jan["fx"] == [{"from_currency": "GBP", "to_currency": "EUR", "rate": "1.20", "rate_date": "2026-01-30"}]

        # -- after issue: a partial credit, a payment, a refund, an adjustment, a cancelled service
        bundle_line = next(x for x in jan["lines"] if x["kind"] == "bundle")
        invoice_path = f"/v1/invoices/{jan['invoice_id']}"
        note_id, payment_id = uuid.uuid4(), uuid.uuid4()
        async with platform.invoicing_api() as api:
            h = tenant.auth
            drafted = await ok(
                await api.put(
                    f"{invoice_path}/credit-notes/{note_id}",
                    headers=h,
                    json={"reason": "service_issue", "parts": [{"line_id": bundle_line["line_id"], "amount": "50.00"}]},
                )
            )
            issued = await ok(await api.post(f"/v1/credit-notes/{note_id}/issue", headers=h))
            await ok(
                await api.put(
                    f"{invoice_path}/payments/{payment_id}",
                    headers=h,
                    json={"amount": "300.00", "method": "bank_transfer"},
                )
            )
            refund = await ok(
                await api.put(
                    f"/v1/payments/{payment_id}/refunds/{uuid.uuid4()}",
                    headers=h,
                    json={"amount": "30.00", "reason": "Overpaid"},
                )
            )
            adjustment = await ok(
                await api.put(
                    f"/v1/companies/{tenant.company_id}/adjustments/{uuid.uuid4()}",
                    headers=h,
                    json={"amount": "-20.00", "description": "SLA credit, January"},
                )
            )
            after_jan = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=h))
            detail = await ok(await api.get(invoice_path, headers=h))
        cancelled = await platform.catalog.post(
            f"/v1/companies/{tenant.company_id}/status",
            json={"status": "cancelled", "effective_date": "2026-02-01", "reason": "No backups", "service_id": backup},
            headers=tenant.auth,
        )
        assert cancelled.status_code == 200, cancelled.text
        # part of the bundle line: 50.00 of its 106.92 net carries VAT 21.38 x 50.00 / 106.92 = 9.998 -> 10.00
        [credited] = drafted["document"]["lines"]
        assert (credited["net_amount"], credited["tax_amount"], credited["total"]) == ("50.00", "10.00", "60.00")
        assert (issued["status"], issued["credit_note_number"]) == ("applied", "CN-2602-00001")  # under the 500 rule
        # 335.66 - 60.00 credited = 275.66 due; 300.00 paid: 24.34 over-paid is credit; the 30.00 refund takes
        # the 24.34 of credit first, then 5.66 from the invoice, which owes 5.66 again
        assert (refund["status"], adjustment["status"]) == ("refunded", "approved")
        assert (detail["status"], detail["document"]["amount_due"]) == ("partially_paid", "5.66")
        assert (after_jan["balance"], after_jan["credit_available"]) == ("5.66", "0.00")

        await platform.advance_clock(tenant, FEB_END)
        finalized = await platform.messages(
            "billing.invoices.v1",
            where=lambda d: d["tenant_id"] == str(tenant.tenant_id) and d["event_type"] == "invoice.finalized",
            count=2,
            timeout_s=120,
        )
        async with platform.invoicing_api() as api:
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
        feb = finalized[-1]["invoice"]

        # February: no backup (cancelled from 2026-02-01); the adjustment is one line, taxed, never discounted.
        # (Its prerequisite rmm-agent stays: catalog's cancellation ends the service named, not what it needed.)
        assert by_service(feb) == {
            "bundle:Security pack": ("1", "118.80", "11.88", "106.92", "21.38", "128.30"),
            "rmm-agent": ("1", "6.00", "0.60", "5.40", "1.08", "6.48"),
            None: ("1", "-20.00", "0.00", "-20.00", "-4.00", "-24.00"),  # VAT 20 % of -20.00
        }
        # 118.80 + 6.00 - 20.00 = 104.80; discounts 12.48; VAT 21.38 + 1.08 - 4.00 = 18.46; total 110.78
        assert (feb["invoice_number"], feb["subtotal"], feb["discount_total"], feb["tax_total"], feb["total"]) == (
            "INV-2603-00001",
            "104.80",
            "12.48",
            "18.46",
            "110.78",
        )
        # the account: invoices 335.66 + 110.78 - payments 300.00 - credits 60.00 + refunds 30.00 = 116.44
        assert [(x["kind"], x["amount"], x["balance_after"]) for x in account["transactions"]] == [
            ("invoice", "335.66", "335.66"),
            ("credit", "60.00", "275.66"),
            ("payment", "300.00", "-24.34"),
            ("refund", "30.00", "5.66"),
            ("invoice", "110.78", "116.44"),
        ]
        assert (account["balance"], account["credit_available"]) == ("116.44", "0.00")


def by_service(invoice: dict[str, Any]) -> dict[str | None, tuple[str, ...]]:
    fields = ("quantity", "amount", "discount_amount", "net_amount", "tax_amount", "total")
    return {x["service_ref"]: tuple(x[f] for f in fields) for x in invoice["lines"]}
