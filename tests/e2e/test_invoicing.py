"""Invoicing on the real stack: usage → rating → invoicing ⇄ tax-currency → billing.invoices.v1, and the
operator's lifecycle (payments, refunds, credit notes, void, ledger). Every figure is hand-computed here."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from decimal import Decimal
from typing import Any

import httpx
from pypdf import PdfReader

from services.invoicing.domain import links
from shared.services import service
from tests.integration.tax_support import activate, import_rates, known_to_tax_currency, tax_api
from tests.support.platform import Platform, Tenant

MONTH_END = "2026-02-01T00:00:00+00:00"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def rules_reached_catalog(platform: Platform, tenant: Tenant) -> None:
    async def held() -> bool:
        return bool(await platform.value_as_tenant("catalog", tenant, "SELECT version FROM approval_rules"))

    await platform.wait_for(held, timeout_s=60)


async def plan_id_of(platform: Platform, tenant: Tenant) -> str:
    plan_id: str = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"][0]["plan_id"]
    return plan_id


async def a_discount(platform: Platform, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    discount_id = str(uuid.uuid4())
    return await platform.put(f"/v1/discounts/{discount_id}", {"discount_id": discount_id} | fields, token=tenant.token)


async def invoice_row(platform: Platform, tenant: Tenant, status: str) -> Any:
    async def found() -> Any:
        rows = await platform.fetch_as_tenant("invoicing", tenant, "SELECT * FROM invoices WHERE status = $1", status)
        return rows[0] if rows else None

    return await platform.wait_for(found, timeout_s=90)


async def finalized(platform: Platform, tenant: Tenant) -> dict[str, Any]:
    [event] = await platform.invoices(tenant, timeout_s=90)
    assert event["event_type"] == "invoice.finalized"
    invoice: dict[str, Any] = event["invoice"]
    return invoice


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


class TestInvoicedInTheClientsCurrencyWithDiscountsAndTaxes:
    async def test_a_plan_with_a_discount_is_invoiced_in_euros_with_vat_and_the_rate_rows_pinned(
        self, platform: Platform
    ) -> None:
        tenant = await platform.sandbox_tenant()  # base GBP; plan and service priced in GBP at 12.50 a device
        await rules_reached_catalog(platform, tenant)
        company = (await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)).json()
        await platform.put(f"/v1/companies/{tenant.company_id}", company | {"currency": "EUR"}, token=tenant.token)
        async with tax_api(platform) as api:
            await known_to_tax_currency(platform, tenant)
            await activate(api, tenant, "EUR")
            imported = await import_rates(api, tenant, "rate_date,currency,rate,source\n2026-01-30,EUR,1.15,ECB\n")
            assert imported.status_code == 200, imported.text
        vat = await platform.tax_rate(tenant, region="GB", name="VAT", rate="20")
        discount = await a_discount(
            platform,
            tenant,
            name="Launch 10%",
            discount_type="percentage",
            value="10",
            plan_id=await plan_id_of(platform, tenant),
        )
        assert discount["event"]["state"]["approval_status"] == "approved"  # 10 % is under the 20 % rule
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4", occurred_at="2026-01-15T10:00:00+00:00"))

        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)

        # 4 x 12.50 = 50.00 GBP -> x 1.15 = 57.50 EUR; 10 % off = 5.75 -> net 51.75; VAT 20 % = 10.35
        assert (invoice["currency"], invoice["invoice_number"]) == ("EUR", "INV-2602-00001")
        [line] = invoice["lines"]
        assert (line["unit_price"], line["amount"], line["discount_amount"], line["net_amount"]) == (
            "14.3750",  # 12.50 x 1.15, exact
            "57.50",
            "5.75",
            "51.75",
        )
        assert [(t["name"], t["rate"], t["amount"]) for t in line["taxes"]] == [("VAT", "20", "10.35")]
        assert (invoice["subtotal"], invoice["discount_total"], invoice["tax_total"], invoice["total"]) == (
            "57.50",
            "5.75",
            "10.35",
            "62.10",  # 57.50 - 5.75 + 10.35
        )
        assert invoice["fx"] == [
            {"from_currency": "GBP", "to_currency": "EUR", "rate": "1.15", "rate_date": "2026-01-30"}
        ]
        async with platform.invoicing_api() as api:
            detail = await ok(await api.get(f"/v1/invoices/{invoice['invoice_id']}", headers=tenant.auth))
        assert [r["currency"] for r in detail["pinned"]["exchange_rates"]] == ["EUR"]
        assert [t["tax_rate_id"] for t in detail["pinned"]["tax_rates"][line["line_id"]]] == [vat["tax_rate_id"]]
        [charge] = detail["lines"][0]["charges"]
        assert charge["amount"] == "50.00"
        assert len(charge["source_records"]) == 1  # drill-down: line -> charge -> the metering record
        assert [d["name"] for d in detail["lines"][0]["discounts"]] == ["Launch 10%"]
        # amounts are stored with their currency code: the invoice and its ledger entry in EUR
        stored = await platform.fetch_as_tenant(
            "invoicing",
            tenant,
            "SELECT i.currency, i.total, t.currency AS ledger FROM invoices i "
            "JOIN transactions t ON t.invoice_id = i.invoice_id AND t.kind = 'invoice'",
        )
        assert [(r["currency"], f"{r['total']}", r["ledger"]) for r in stored] == [("EUR", "62.10", "EUR")]

    async def test_a_client_discount_overrides_the_plans_and_an_expired_one_does_not_apply(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await rules_reached_catalog(platform, tenant)
        plan_id = await plan_id_of(platform, tenant)
        await a_discount(platform, tenant, name="Plan 10%", discount_type="percentage", value="10", plan_id=plan_id)
        await a_discount(
            platform,
            tenant,
            name="Acme 15%",
            discount_type="percentage",
            value="15",
            plan_id=plan_id,
            company_id=str(tenant.company_id),
        )
        await a_discount(
            platform,
            tenant,
            name="Old 5.00",
            discount_type="fixed_amount",
            value="5.00",
            currency="GBP",
            plan_id=plan_id,
            company_id=str(tenant.company_id),
            valid_to="2026-01-01",
        )
        await platform.send_usage(tenant, platform.usage(tenant, quantity="8"))

        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)

        # 8 x 12.50 = 100.00; the client's 15 % replaces the plan's 10 %; the fixed 5.00 ended before January
        [line] = invoice["lines"]
        assert (line["amount"], line["discount_amount"], line["net_amount"], line["tax_amount"]) == (
            "100.00",
            "15.00",
            "85.00",
            "17.00",  # VAT 20 % of 85.00
        )
        assert invoice["total"] == "102.00"  # 100.00 - 15.00 + 17.00

    async def test_a_fixed_amount_on_one_service_comes_off_that_service_and_one_on_the_plan_is_taken_once(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await rules_reached_catalog(platform, tenant)
        plan = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"][0]
        device = plan["lines"][0]["service_id"]
        await a_discount(
            platform,
            tenant,
            name="Device 7.50 off",
            discount_type="fixed_amount",
            value="7.50",
            currency="GBP",
            service_id=device,
        )
        await a_discount(
            platform,
            tenant,
            name="Plan 2.50 off",
            discount_type="fixed_amount",
            value="2.50",
            currency="GBP",
            plan_id=plan["plan_id"],
        )
        await platform.send_usage(tenant, platform.usage(tenant, quantity="8"))

        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)

        # 8 x 12.50 = 100.00; 7.50 off the device service and 2.50 off the plan, each once: net 90.00, VAT 18.00
        [line] = invoice["lines"]
        assert (line["amount"], line["discount_amount"], line["net_amount"], line["tax_amount"]) == (
            "100.00",
            "10.00",
            "90.00",
            "18.00",
        )
        assert invoice["total"] == "108.00"  # 100.00 - 10.00 + 18.00


class TestTaxInclusivePrices:
    async def test_a_tenant_whose_prices_include_tax_gets_the_net_backed_out_per_line_and_totals_the_prices(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        async with platform.invoicing_api() as api:
            await ok(await api.put("/v1/invoice-settings", headers=tenant.auth, json={"tax_inclusive": True}))
            settings = await ok(
                await api.get(f"/v1/companies/{tenant.company_id}/invoice-settings", headers=tenant.auth)
            )
        assert (settings["tax_inclusive"], settings["effective_tax_inclusive"]) == (None, True)
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))

        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)

        # 4 x 12.50 = 50.00 including VAT 20 %: VAT = 50.00 x 20 / 120 = 8.333.. -> 8.33 (half-up), net 41.67
        [line] = invoice["lines"]
        assert (line["amount"], line["net_amount"], line["tax_amount"], line["total"]) == (
            "41.67",
            "41.67",
            "8.33",
            "50.00",
        )
        assert line["unit_price"] == "10.417500"  # 41.67 / 4, shown net of tax
        assert (invoice["tax_inclusive"], invoice["subtotal"], invoice["tax_total"], invoice["total"]) == (
            True,
            "41.67",
            "8.33",
            "50.00",  # exactly what the client was quoted
        )


class TestHeldInvoices:
    async def test_an_invoice_without_a_tax_rate_is_held_then_issued_by_itself_once_the_rate_is_added(
        self, platform: Platform
    ) -> None:
        tenant = await platform.sandbox_tenant()  # no tax rate for GB at all
        await platform.send_usage(tenant, platform.usage(tenant, quantity="2"))

        await platform.advance_clock(tenant, MONTH_END)
        held = await invoice_row(platform, tenant, "held")

        assert held["held_reason"].startswith("missing_tax_rate: ")
        assert held["invoice_number"] is None  # no number is spent on a held invoice
        await platform.tax_rate(tenant, region="GB", rate="20")  # tax-currency announces rates.changed
        invoice = await finalized(platform, tenant)  # no operator retry: the held draft asked again by itself
        assert (invoice["invoice_number"], invoice["total"]) == ("INV-2602-00001", "30.00")  # 25.00 + 5.00 VAT
        retried = await platform.fetch_as_tenant(
            "invoicing", tenant, "SELECT actor, after FROM audit_log WHERE action = 'invoice_retried'"
        )
        assert [r["actor"] for r in retried] == ["system:invoicing"]
        async with platform.invoicing_api() as api:  # the operator's retry stays, for a draft held again
            again = await api.post(f"/v1/invoices/{held['invoice_id']}/retry", headers=tenant.auth)
        assert again.status_code == 409  # it is finalized now: nothing to retry


class TestPaymentsRefundsAndCredits:
    async def test_partial_then_over_payment_leaves_credit_applied_to_the_next_invoice_and_the_ledger_balances(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))
        await platform.advance_clock(tenant, MONTH_END)
        january = await finalized(platform, tenant)  # 4 x 12.50 = 50.00 + VAT 10.00 = 60.00
        invoice_id = january["invoice_id"]
        async with platform.invoicing_api() as api:
            first = uuid.uuid4()
            await ok(
                await api.put(
                    f"/v1/invoices/{invoice_id}/payments/{first}",
                    headers=tenant.auth,
                    json={"amount": "20.00", "method": "card"},
                )
            )
            second = uuid.uuid4()
            await ok(
                await api.put(
                    f"/v1/invoices/{invoice_id}/payments/{second}",
                    headers=tenant.auth,
                    json={"amount": "50.00", "method": "bank_transfer"},
                )
            )
            detail = await ok(await api.get(f"/v1/invoices/{invoice_id}", headers=tenant.auth))
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))

            # 60.00 - 20.00 = 40.00 due; 50.00 pays it and 10.00 is over-paid -> credit
            assert (detail["status"], detail["document"]["amount_paid"], detail["document"]["amount_due"]) == (
                "paid",
                "60.00",
                "0.00",
            )
            assert (account["balance"], account["credit_available"]) == ("-10.00", "10.00")  # 60 - 20 - 50
            assert [t["kind"] for t in account["transactions"]] == ["invoice", "payment", "payment"]

            refund_id = uuid.uuid4()
            refunded = await ok(
                await api.put(
                    f"/v1/payments/{first}/refunds/{refund_id}",
                    headers=tenant.auth,
                    json={"amount": "5.00", "reason": "Card fee returned"},
                )
            )
            assert refunded["status"] == "refunded"
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            # balance = invoices 60 - payments 70 - credits 0 + refunds 5 = -5.00; the refund came from the credit
            assert (account["balance"], account["credit_available"]) == ("-5.00", "5.00")

        await platform.send_usage(tenant, platform.usage(tenant, quantity="2", occurred_at="2026-02-10T10:00:00+00:00"))
        await platform.advance_clock(tenant, "2026-03-01T00:00:00+00:00")
        events = await platform.invoices(tenant, count=5, timeout_s=90)  # finalized, 2 payments, refund, finalized
        [february] = [
            e["invoice"]
            for e in events
            if e["event_type"] == "invoice.finalized" and e["invoice"]["period_start"] == "2026-02-01"
        ]
        # 2 x 12.50 = 25.00 + VAT 5.00 = 30.00; 5.00 credit applied -> 25.00 due
        assert (february["total"], february["credits_applied"], february["amount_due"]) == ("30.00", "5.00", "25.00")
        assert february["invoice_number"] == "INV-2603-00001"

    async def test_a_credit_note_over_the_rule_waits_for_two_approvals_then_is_numbered_and_credits_the_account(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="50"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)  # 50 x 12.50 = 625.00 + VAT 125.00 = 750.00
        assert invoice["total"] == "750.00"
        _, manager = await platform.add_user(tenant, "billing_manager")
        _, second_admin = await platform.add_user(tenant, "admin")
        note_id = uuid.uuid4()
        async with platform.invoicing_api() as api:
            await platform.wait_for(
                lambda: platform.value_as_tenant("invoicing", tenant, "SELECT version FROM approval_rule_sets")
            )
            draft = await ok(
                await api.put(
                    f"/v1/invoices/{invoice['invoice_id']}/credit-notes/{note_id}",
                    headers=tenant.auth,
                    json={"reason": "service_issue", "line_ids": [invoice["lines"][0]["line_id"]]},
                )
            )
            assert (draft["status"], draft["total"]) == ("draft", "750.00")
            issued = await ok(await api.post(f"/v1/credit-notes/{note_id}/issue", headers=tenant.auth))
            assert issued["status"] == "awaiting_approval"  # credits over 500 need a billing manager, then an admin

            request_id = issued["approval_request_id"]
            for token in (manager, second_admin):

                async def waiting_for(t: str = token) -> bool:
                    r = await platform.approvals.get("/v1/approvals/pending", headers=bearer(t))
                    return any(p["request_id"] == request_id for p in r.json())

                await platform.wait_for(waiting_for, timeout_s=60)
                decided = await platform.approvals.post(
                    f"/v1/approvals/{request_id}/approve", json={"comment": "ok"}, headers=bearer(token)
                )
                assert decided.status_code == 200, decided.text

            async def applied() -> Any:
                r = await api.get(f"/v1/invoices/{invoice['invoice_id']}", headers=tenant.auth)
                notes = r.json()["credit_notes"]
                return notes if notes and notes[0]["status"] == "applied" else None

            [note] = await platform.wait_for(applied, timeout_s=60)
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))

        assert note["credit_note_number"] == "CN-2602-00001"
        # invoices 750.00 - credits 750.00 = 0.00; the unpaid invoice took the whole credit
        assert (account["balance"], account["credit_available"]) == ("0.00", "0.00")
        [issued_event] = await platform.messages(
            "billing.invoices.v1",
            where=lambda d: d["event_type"] == "credit_note.issued" and d["tenant_id"] == str(tenant.tenant_id),
        )
        assert issued_event["credit_note"]["total"] == "750.00"
        [notice] = await platform.messages(
            "invoicing.lifecycle.v1",
            where=lambda d: d["notice_type"] == "credit_note.issued" and d["tenant_id"] == str(tenant.tenant_id),
        )
        text = PdfReader(io.BytesIO(base64.b64decode(notice["attachment"]["content_base64"]))).pages[0].extract_text()
        assert "CN-2602-00001" in text
        assert "750.00" in text


class TestDocumentsAndLifecycle:
    async def test_the_pdf_carries_the_number_and_totals_and_void_keeps_the_number_and_reverses_the_balance(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)  # 37.50 + 7.50 = 45.00
        async with platform.invoicing_api() as api:
            pdf = await api.get(f"/v1/invoices/{invoice['invoice_id']}/pdf", headers=tenant.auth)
            assert pdf.status_code == 200
            text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
            assert "INV-2602-00001" in text
            assert "Total 45.00 GBP" in text
            assert "Amount due 45.00 GBP" in text

            voided = await ok(
                await api.post(
                    f"/v1/invoices/{invoice['invoice_id']}/void",
                    headers=tenant.auth,
                    json={"reason": "Issued to the wrong client"},
                )
            )
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            again = await api.post(
                f"/v1/invoices/{invoice['invoice_id']}/void", headers=tenant.auth, json={"reason": "twice"}
            )

        assert (voided["status"], voided["invoice_number"]) == ("void", "INV-2602-00001")
        assert account["balance"] == "0.00"  # 45.00 invoiced - 45.00 voided
        assert again.status_code == 409
        events = await platform.invoices(tenant, count=2)
        assert [e["event_type"] for e in events] == ["invoice.finalized", "invoice.voided"]

    async def test_an_unpaid_invoice_becomes_overdue_and_a_forgotten_draft_credit_note_expires_on_the_billing_clock(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="1"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)  # due 2026-03-03 (30 days)
        note = uuid.uuid4()

        async def ticked() -> bool:  # the draft is dated by the tenant's billing time, once invoicing has it
            now = await platform.value_as_tenant("invoicing", tenant, "SELECT now FROM clocks")
            return now is not None and now.isoformat() == MONTH_END

        await platform.wait_for(ticked)
        async with platform.invoicing_api() as api:
            await ok(
                await api.put(
                    f"/v1/invoices/{invoice['invoice_id']}/credit-notes/{note}",
                    headers=tenant.auth,
                    json={"reason": "goodwill", "amount": "1.00"},
                )
            )  # drafted at 2026-02-01, never issued

        await platform.advance_clock(tenant, "2026-03-03T12:00:00+00:00")  # due today: not yet overdue
        await platform.advance_clock(tenant, "2026-03-04T00:00:00+00:00")  # waits until the tick above is consumed

        overdue = await invoice_row(platform, tenant, "overdue")
        assert str(overdue["invoice_id"]) == invoice["invoice_id"]
        assert overdue["updated_at"].isoformat() == "2026-03-04T00:00:00+00:00"  # the tick past the due date
        [expired] = await platform.fetch_as_tenant("invoicing", tenant, "SELECT status, updated_at FROM credit_notes")
        # 30 days after 2026-02-01 is 2026-03-03: the tick at 2026-03-03 12:00 expires it
        assert (expired["status"], expired["updated_at"].isoformat()) == ("expired", "2026-03-03T12:00:00+00:00")


class TestConcurrency:
    async def test_concurrent_payments_on_one_invoice_pay_it_exactly_and_the_excess_is_credit(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="8"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)  # 100.00 + 20.00 = 120.00
        async with platform.invoicing_api() as api:

            async def pay() -> httpx.Response:
                return await api.put(
                    f"/v1/invoices/{invoice['invoice_id']}/payments/{uuid.uuid4()}",
                    headers=tenant.auth,
                    json={"amount": "25.00", "method": "card"},
                )

            results = await asyncio.gather(*(pay() for _ in range(6)))  # 6 x 25.00 = 150.00
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            detail = await ok(await api.get(f"/v1/invoices/{invoice['invoice_id']}", headers=tenant.auth))

        assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
        assert sum(Decimal(p["applied"]) for p in detail["payments"]) == Decimal("120.00")
        assert (detail["status"], account["balance"], account["credit_available"]) == ("paid", "-30.00", "30.00")


class TestAdjustmentsAndCorrections:
    async def test_adjustments_land_on_the_next_invoice_and_one_over_the_rule_waits_for_a_manager(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        _, manager = await platform.add_user(tenant, "billing_manager")
        big, small = uuid.uuid4(), uuid.uuid4()
        base = f"/v1/companies/{tenant.company_id}/adjustments"
        async with platform.invoicing_api() as api:
            await platform.wait_for(
                lambda: platform.value_as_tenant("invoicing", tenant, "SELECT version FROM approval_rule_sets")
            )
            held = await ok(
                await api.put(
                    f"{base}/{big}", headers=tenant.auth, json={"amount": "600.00", "description": "Onboarding project"}
                )
            )
            credit = await ok(
                await api.put(
                    f"{base}/{small}", headers=tenant.auth, json={"amount": "-25.00", "description": "SLA credit"}
                )
            )
            assert (held["status"], credit["status"]) == ("awaiting_approval", "approved")  # adjustments > 500 wait

            async def waiting() -> bool:
                r = await platform.approvals.get("/v1/approvals/pending", headers=bearer(manager))
                return any(p["request_id"] == held["approval_request_id"] for p in r.json())

            await platform.wait_for(waiting, timeout_s=60)
            decided = await platform.approvals.post(
                f"/v1/approvals/{held['approval_request_id']}/approve",
                json={"comment": "agreed"},
                headers=bearer(manager),
            )
            assert decided.status_code == 200, decided.text

            async def approved() -> bool:
                rows = (await api.get(base, headers=tenant.auth)).json()
                return all(a["status"] == "approved" for a in rows)

            await platform.wait_for(approved, timeout_s=60)

        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)

        lines = sorted((x["kind"], x["net_amount"], x["tax_amount"]) for x in invoice["lines"])
        # each line taxed at 20 %: 50.00 -> 10.00, 600.00 -> 120.00, -25.00 -> -5.00
        assert lines == [
            ("adjustment", "-25.00", "-5.00"),
            ("adjustment", "600.00", "120.00"),
            ("usage", "50.00", "10.00"),
        ]
        assert (invoice["subtotal"], invoice["tax_total"], invoice["total"]) == ("625.00", "125.00", "750.00")

    async def test_a_period_of_corrections_below_zero_is_credited_on_the_invoice_it_corrects(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))
        await platform.advance_clock(tenant, MONTH_END)
        january = await finalized(platform, tenant)  # 50.00 + 10.00 VAT = 60.00
        async with platform.invoicing_api() as api:
            detail = await ok(await api.get(f"/v1/invoices/{january['invoice_id']}", headers=tenant.auth))
        [charge] = detail["lines"][0]["charges"]
        # rating's late correction of January, in the open period (a test producer stands in for rating here)
        correction = charge | {
            "charge_id": str(uuid.uuid4()),
            "period_start": "2026-02-01",
            "period_end": "2026-03-01",
            "quantity": "-1",
            "amount": "-12.50",
            "corrects_charge_ids": [charge["charge_id"]],
            "late": True,
        }
        key = f"{tenant.tenant_id}:{tenant.company_ref}"
        await platform.publish("rating.charges.v1", correction, key=key)
        await platform.publish(
            "rating.charges.v1",
            {
                "type": "period.completed",
                "tenant_id": str(tenant.tenant_id),
                "company_id": str(tenant.company_id),
                "company_ref": tenant.company_ref,
                "period_start": "2026-02-01",
                "period_end": "2026-03-01",
                "charge_count": 1,
                "closed_at": "2026-03-01T00:00:00+00:00",
                "livemode": False,
            },
            key=key,
        )

        [event] = await platform.messages(
            "billing.invoices.v1",
            where=lambda d: d["event_type"] == "credit_note.issued" and d["tenant_id"] == str(tenant.tenant_id),
            timeout_s=90,
        )
        note = event["credit_note"]
        # -12.50 with VAT -2.50 = -15.00: credited as 15.00 on January's invoice, which then owes 45.00
        assert (note["invoice_id"], note["total"], note["credit_note_number"]) == (
            january["invoice_id"],
            "15.00",
            "CN-2603-00001",
        )
        async with platform.invoicing_api() as api:
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            after = await ok(await api.get(f"/v1/invoices/{january['invoice_id']}", headers=tenant.auth))
        assert account["balance"] == "45.00"  # invoices 60.00 - credits 15.00
        assert after["document"]["amount_due"] == "45.00"
        credited = await invoice_row(platform, tenant, "credited")  # the February period: no invoice, no number
        assert credited["invoice_number"] is None


AUDITED = {
    "POST /v1/invoices/{invoice_id}/retry": "invoice_retried",
    "POST /v1/invoices/{invoice_id}/cancel": "invoice_cancelled",
    "POST /v1/invoices/{invoice_id}/void": "invoice_voided",
    "POST /v1/invoices/{invoice_id}/{step}": "invoice_sent",  # and invoice_viewed, invoice_disputed
    "PUT /v1/invoices/{invoice_id}/payments/{payment_id}": "payment_recorded",
    "POST /v1/payments/{payment_id}/{outcome}": "payment_failed",  # and payment_confirmed
    "PUT /v1/payments/{payment_id}/refunds/{refund_id}": "refund_requested",
    "PUT /v1/invoices/{invoice_id}/credit-notes/{credit_note_id}": "credit_note_drafted",
    "POST /v1/credit-notes/{credit_note_id}/{action}": "credit_note_issued",  # and credit_note_cancelled
    "PUT /v1/companies/{company_id}/adjustments/{adjustment_id}": "adjustment_created",
    "POST /v1/invoices/{invoice_id}/link": "invoice_link_issued",
    "PUT /v1/invoice-settings": "invoice_settings_changed",
    "PUT /v1/companies/{company_id}/invoice-settings": "invoice_settings_changed",
}


class TestEveryChangeIsAudited:
    async def test_every_mutating_route_is_known_and_writes_an_audit_row_naming_the_caller(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        untaxed = await platform.sandbox_tenant()  # its invoices are held (no tax rate): retried, then cancelled
        for t in (tenant, untaxed):
            await platform.send_usage(t, platform.usage(t, quantity="4"))
            await platform.advance_clock(t, MONTH_END)
        invoice = await finalized(platform, tenant)  # 60.00
        held = await invoice_row(platform, untaxed, "held")
        i = f"/v1/invoices/{invoice['invoice_id']}"
        pay, failed, refund, cn1, cn2 = (uuid.uuid4() for _ in range(5))
        async with platform.invoicing_api() as api:
            routes = {
                f"{m.upper()} {p}"
                for p, ops in (await ok(await api.get("/openapi.json")))["paths"].items()
                for m in ops
                if m in ("put", "post", "delete", "patch")
            }
            assert routes == set(AUDITED)  # a new mutating route must be added here (and audited)
            h = untaxed.auth
            await ok(await api.post(f"/v1/invoices/{held['invoice_id']}/retry", headers=h))
            await invoice_row(platform, untaxed, "held")  # held again: still no rate
            await ok(await api.post(f"/v1/invoices/{held['invoice_id']}/cancel", headers=h))
            a = tenant.auth
            for step in ("sent", "viewed"):
                await ok(await api.post(f"{i}/{step}", headers=a))
            await ok(await api.post(f"{i}/link", headers=a))
            await ok(await api.put("/v1/invoice-settings", headers=a, json={"tax_inclusive": False}))
            await ok(
                await api.put(
                    f"/v1/companies/{tenant.company_id}/invoice-settings", headers=a, json={"tax_inclusive": None}
                )
            )
            await ok(
                await api.put(
                    f"{i}/payments/{failed}", headers=a, json={"amount": "5.00", "method": "card", "status": "pending"}
                )
            )
            await ok(await api.post(f"/v1/payments/{failed}/failed", headers=a))
            await ok(await api.put(f"{i}/payments/{pay}", headers=a, json={"amount": "10.00", "method": "card"}))
            await ok(
                await api.put(
                    f"/v1/payments/{pay}/refunds/{refund}", headers=a, json={"amount": "10.00", "reason": "dup"}
                )
            )
            await ok(await api.put(f"{i}/credit-notes/{cn1}", headers=a, json={"reason": "goodwill", "amount": "5.00"}))
            await ok(await api.post(f"/v1/credit-notes/{cn1}/cancel", headers=a))
            await ok(await api.put(f"{i}/credit-notes/{cn2}", headers=a, json={"reason": "other", "amount": "6.00"}))
            await ok(await api.post(f"/v1/credit-notes/{cn2}/issue", headers=a))
            await ok(await api.post(f"{i}/disputed", headers=a, json={"reason": "Wrong device count"}))
            await ok(
                await api.put(
                    f"/v1/companies/{tenant.company_id}/adjustments/{uuid.uuid4()}",
                    headers=a,
                    json={"amount": "3.00", "description": "Travel"},
                )
            )
            voided = await ok(await api.post(f"{i}/void", headers=a, json={"reason": "Reissued"}))

        assert (voided["status"], voided["credits_applied"], voided["amount_paid"]) == ("void", "6.00", "0.00")
        query = "SELECT action, actor FROM audit_log WHERE actor LIKE 'user:%' ORDER BY occurred_at, action"
        mine = {(r["action"], r["actor"]) for r in await platform.fetch_as_tenant("invoicing", tenant, query)}
        theirs = {r["action"] for r in await platform.fetch_as_tenant("invoicing", untaxed, query)}
        actor = (await platform.fetch_as_tenant("invoicing", tenant, query))[0]["actor"]
        expected = set(AUDITED.values()) - {"invoice_retried", "invoice_cancelled"} | {
            "invoice_viewed",
            "invoice_disputed",
            "credit_note_cancelled",
        }
        assert {action for action, _ in mine} == expected
        assert {who for _, who in mine} == {actor}
        assert theirs == {"invoice_retried", "invoice_cancelled"}


class TestPreview:
    async def test_the_open_period_previews_from_the_charges_invoicing_holds_with_discounts_and_no_tax(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await rules_reached_catalog(platform, tenant)
        await a_discount(
            platform,
            tenant,
            name="Plan 10%",
            discount_type="percentage",
            value="10",
            plan_id=await plan_id_of(platform, tenant),
        )
        await platform.send_usage(tenant, platform.usage(tenant, quantity="4"))
        path = f"/v1/companies/{tenant.company_id}/preview"
        async with platform.invoicing_api() as api:

            async def previewed() -> Any:
                found = await ok(await api.get(path, headers=tenant.auth))
                return found if found and found[0]["lines"] else None

            [period] = await platform.wait_for(previewed, timeout_s=60)

        # 4 x 12.50 = 50.00; 10 % off = 5.00; net 45.00; not taxed until the draft is quoted
        assert (period["period_start"], period["subtotal"], period["discount_total"], period["net_total"]) == (
            "2026-01-01",
            "50.00",
            "5.00",
            "45.00",
        )
        assert period["tax"] == "quoted at finalization"


class TestIntegrity:
    async def test_a_period_completed_twice_at_once_is_invoiced_once_and_numbers_stay_gap_free(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="2"))
        await platform.advance_clock(tenant, MONTH_END)
        january = await finalized(platform, tenant)
        done = {
            "type": "period.completed",
            "tenant_id": str(tenant.tenant_id),
            "company_id": str(tenant.company_id),
            "company_ref": tenant.company_ref,
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "charge_count": 1,
            "closed_at": "2026-02-01T00:00:00+00:00",
            "livemode": False,
        }
        key = f"{tenant.tenant_id}:{tenant.company_ref}"

        await asyncio.gather(*(platform.publish("rating.charges.v1", done, key=key) for _ in range(3)))
        events = await platform.invoices(tenant, count=2, timeout_s=15, settle_s=5.0)

        assert [e["invoice"]["invoice_number"] for e in events] == [january["invoice_number"]] == ["INV-2602-00001"]

    async def test_a_refund_waiting_for_approval_changes_nothing_until_approved_and_nothing_when_rejected(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="50"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)  # 625.00 + 125.00 = 750.00
        _, manager = await platform.add_user(tenant, "billing_manager")
        payment = uuid.uuid4()
        async with platform.invoicing_api() as api:
            await platform.wait_for(
                lambda: platform.value_as_tenant("invoicing", tenant, "SELECT version FROM approval_rule_sets")
            )
            await ok(
                await api.put(
                    f"/v1/invoices/{invoice['invoice_id']}/payments/{payment}",
                    headers=tenant.auth,
                    json={"amount": "750.00", "method": "bank_transfer"},
                )
            )
            waiting = await ok(
                await api.put(
                    f"/v1/payments/{payment}/refunds/{uuid.uuid4()}",
                    headers=tenant.auth,
                    json={"amount": "600.00", "reason": "Contract ended"},
                )
            )
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            assert waiting["status"] == "awaiting_approval"  # refunds over 500 wait
            assert account["balance"] == "0.00"  # 750.00 invoiced - 750.00 paid: the refund has no effect yet

            async def pending() -> bool:
                r = await platform.approvals.get("/v1/approvals/pending", headers=bearer(manager))
                return any(p["request_id"] == waiting["approval_request_id"] for p in r.json())

            await platform.wait_for(pending, timeout_s=60)
            rejected = await platform.approvals.post(
                f"/v1/approvals/{waiting['approval_request_id']}/reject",
                json={"comment": "Not in the contract"},
                headers=bearer(manager),
            )
            assert rejected.status_code == 200, rejected.text

            async def dropped() -> bool:
                rows = await platform.fetch_as_tenant("invoicing", tenant, "SELECT status FROM refunds")
                return [r["status"] for r in rows] == ["rejected"]

            await platform.wait_for(dropped, timeout_s=60)
            account = await ok(await api.get(f"/v1/companies/{tenant.company_id}/account", headers=tenant.auth))
            detail = await ok(await api.get(f"/v1/invoices/{invoice['invoice_id']}", headers=tenant.auth))

        assert account["balance"] == "0.00"
        assert [t["kind"] for t in account["transactions"]] == ["invoice", "payment"]
        assert detail["status"] == "paid"


async def a_contact(platform: Platform, tenant: Tenant, company_id: uuid.UUID) -> str:
    """A client contact of ``company_id``; returns its bearer token."""
    user_id = uuid.uuid4()
    await platform.put(
        f"/v1/users/{user_id}",
        {
            "user_id": str(user_id),
            "email": f"c-{user_id.hex[:6]}@client.example",
            "name": "Client Contact",
            "role": "client_contact",
            "kind": "contact",
            "company_id": str(company_id),
        },
        token=tenant.token,
    )
    issued = await platform.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
    assert issued.status_code == 200, issued.text
    return await platform.token_for(issued.json()["api_key"])


class TestViewedByTheClient:
    async def test_the_clients_contact_opening_the_invoice_marks_it_viewed_and_another_clients_contact_cannot(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)
        other_company = uuid.uuid4()
        await platform.put(
            f"/v1/companies/{other_company}",
            {
                "company_id": str(other_company),
                "company_ref": "other",
                "name": "Other",
                "region": "GB",
                "currency": "GBP",
                "billing_anchor": "2026-01-01",
            },
            token=tenant.token,
        )
        mine, theirs = (
            await a_contact(platform, tenant, tenant.company_id),
            await a_contact(platform, tenant, other_company),
        )
        path = f"/v1/invoices/{invoice['invoice_id']}/document"
        async with platform.invoicing_api() as api:
            by_staff = await api.get(path, headers=tenant.auth)
            assert by_staff.status_code == 200
            assert (await invoice_row(platform, tenant, "finalized"))["viewed_at"] is None  # staff reading is no view
            denied = await api.get(path, headers=bearer(theirs))
            opened = await api.get(path, headers=bearer(mine))

        assert denied.status_code == 404
        assert opened.status_code == 200
        assert "INV-2602-00001" in opened.text
        viewed = await invoice_row(platform, tenant, "viewed")
        assert viewed["viewed_at"] is not None
        [notice] = await platform.messages(
            "invoicing.lifecycle.v1",
            where=lambda d: d["notice_type"] == "invoice.viewed" and d["tenant_id"] == str(tenant.tenant_id),
        )
        assert notice["status"] == "viewed"


class TestSignedClientLinks:
    async def test_a_signed_link_opens_the_invoice_without_a_token_marks_it_viewed_once_and_refuses_forgeries(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3"))
        await platform.advance_clock(tenant, MONTH_END)
        invoice = await finalized(platform, tenant)
        async with platform.invoicing_api() as api:
            link = await ok(await api.post(f"/v1/invoices/{invoice['invoice_id']}/link", headers=tenant.auth))
            url, pdf_url = link["url"], link["pdf_url"]
            assert url.startswith(f"/v1/links/{tenant.tenant_id}/invoices/{invoice['invoice_id']}?expires=")
            forged = await api.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
            other_invoice = await api.get(url.replace(invoice["invoice_id"], str(uuid.uuid4())))
            secret = platform.stack.service_env(service("invoicing"))["INVOICE_LINK_SECRET"]
            past = 1_700_000_000  # 2023-11-14: long gone
            stale = links.sign(
                secret, tenant_id=tenant.tenant_id, invoice_id=uuid.UUID(invoice["invoice_id"]), expires=past
            )
            expired = await api.get(
                f"/v1/links/{tenant.tenant_id}/invoices/{invoice['invoice_id']}?expires={past}&signature={stale}"
            )
            assert (await invoice_row(platform, tenant, "finalized"))["viewed_at"] is None  # refused links view nothing
            opened = await api.get(url)  # no Authorization header
            again = await api.get(pdf_url)

        assert (forged.status_code, other_invoice.status_code) == (403, 403)
        assert "signature does not match" in forged.json()["detail"]
        assert expired.status_code == 410
        assert "expired" in expired.json()["detail"]
        assert opened.status_code == 200
        assert invoice["invoice_number"] in opened.text
        assert again.status_code == 200
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(again.content)).pages)
        assert invoice["invoice_number"] in text
        viewed = await invoice_row(platform, tenant, "viewed")
        assert viewed["viewed_at"] is not None
        audited = await platform.fetch_as_tenant(
            "invoicing", tenant, "SELECT actor FROM audit_log WHERE action = 'invoice_viewed'"
        )
        assert [r["actor"] for r in audited] == ["client-link"]  # opened twice, viewed once


class TestInvoiceApproval:
    async def test_an_invoice_over_an_active_invoice_rule_waits_unnumbered_then_is_finalized_or_stays_draft(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        rejecting = await platform.sandbox_tenant()
        await platform.tax_rate(rejecting, region="GB", name="VAT", rate="20")
        rule = {
            "item_type": "invoice",
            "threshold_field": "amount",
            "threshold": "100",
            "steps": [{"step": 1, "roles": ["billing_manager"]}],
        }
        managers = {}
        for t in (tenant, rejecting):
            changed = await platform.approvals.put(f"/v1/approval-rules/{uuid.uuid4()}", json=rule, headers=t.auth)
            assert changed.status_code == 200, changed.text
            _, managers[t.tenant_id] = await platform.add_user(t, "billing_manager")

            async def rule_known(t: Tenant = t) -> bool:
                version = await platform.value_as_tenant("invoicing", t, "SELECT version FROM approval_rule_sets")
                return bool(version and version >= 2)  # the defaults, then this rule

            await platform.wait_for(rule_known, timeout_s=60)
            await platform.send_usage(t, platform.usage(t, quantity="10"))
            await platform.advance_clock(t, MONTH_END)

        waiting = [await invoice_row(platform, t, "draft") for t in (tenant, rejecting)]

        for row in waiting:  # 10 x 12.50 = 125.00 + VAT 25.00 = 150.00 > 100
            assert row["held_reason"] == "awaiting_approval: the total 150.00 GBP needs approval"
            assert row["invoice_number"] is None  # no number spent while it waits
        for t, row, verdict in ((tenant, waiting[0], "approve"), (rejecting, waiting[1], "reject")):

            async def pending(row: Any = row, t: Tenant = t) -> bool:
                r = await platform.approvals.get("/v1/approvals/pending", headers=bearer(managers[t.tenant_id]))
                return any(p["request_id"] == str(row["approval_request_id"]) for p in r.json())

            await platform.wait_for(pending, timeout_s=60)
            decided = await platform.approvals.post(
                f"/v1/approvals/{row['approval_request_id']}/{verdict}",
                json={"comment": "Checked with the client" if verdict == "approve" else "Wrong device count"},
                headers=bearer(managers[t.tenant_id]),
            )
            assert decided.status_code == 200, decided.text

        invoice = await finalized(platform, tenant)
        assert (invoice["invoice_number"], invoice["total"]) == ("INV-2602-00001", "150.00")

        async def rejected() -> Any:
            rows = await platform.fetch_as_tenant("invoicing", rejecting, "SELECT * FROM invoices")
            return rows[0] if rows and rows[0]["held_reason"].startswith("rejected") else None

        row = await platform.wait_for(rejected, timeout_s=60)
        assert (row["status"], row["invoice_number"]) == ("draft", None)
        assert row["held_reason"] == "rejected: Wrong device count"
        assert await platform.invoices(rejecting, timeout_s=3) == []  # nothing published for the rejected draft
