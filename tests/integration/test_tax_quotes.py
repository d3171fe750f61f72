"""Seed 000 "Taxation Details Tests" and the conversion / currency-code bullets of "Currency Management Tests",
on the running stack: rates and exchange rates set through tax-currency's API, quotes asked on
tax.requests.v1 and answered on tax.results.v1 (real Postgres, real broker). Amounts worked out by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from shared import topics
from tests.integration.tax_support import (
    activate,
    answer_to,
    answers,
    ask,
    conversion_request,
    import_rates,
    known_to_tax_currency,
    put_tax_rate,
    tax_api,
    tax_rate,
    tax_request,
)
from tests.support.platform import Platform, Tenant


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with tax_api(platform) as client:
        yield client


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    t = await platform.sandbox_tenant()  # base GBP, one client in region GB
    await known_to_tax_currency(platform, t)
    return t


def taxes_of(line: dict[str, object]) -> list[tuple[object, ...]]:
    return [(t["name"], t["rate"], t["amount"], t["exemption_reason"]) for t in line["taxes"]]  # type: ignore[index, attr-defined]


class TestTaxationDetails:
    async def test_the_correct_tax_rate_is_applied_based_on_the_clients_region(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        gb = await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        await put_tax_rate(api, tenant, tax_rate("DE", "MwSt", "19"))
        ny = await put_tax_rate(api, tenant, tax_rate("US-NY", "NY State Sales Tax", "4"))
        await put_tax_rate(api, tenant, tax_rate("US-TX", "TX State Sales Tax", "6.25"))
        await activate(api, tenant, "USD")

        british = await answer_to(platform, tax_request(tenant, ("19.99", None)))
        new_yorker = await answer_to(platform, tax_request(tenant, ("80.00", None), region="US-NY", currency="USD"))

        # GB: 19.99 x 20 % = 3.998 → 4.00; US-NY: 80.00 x 4 % = 3.20 (not Texas' 6.25 %, not a country's VAT)
        assert taxes_of(british["lines"][0]) == [("VAT", "20", "4.00", None)]
        assert british["lines"][0]["taxes"][0]["tax_rate_id"] == gb["tax_rate_id"]
        assert taxes_of(new_yorker["lines"][0]) == [("NY State Sales Tax", "4", "3.20", None)]
        assert new_yorker["lines"][0]["taxes"][0]["tax_rate_id"] == ny["tax_rate_id"]

    async def test_tax_exemptions_for_certain_clients_or_services(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        exemption = {
            "exemption_id": str(uuid.uuid4()),
            "company_id": str(tenant.company_id),
            "tax_category": "training",
            "reason": "Education exemption, certificate 2291",
            "valid_from": "2026-01-01",
        }
        saved = await api.put(f"/v1/exemptions/{exemption['exemption_id']}", json=exemption, headers=tenant.auth)
        assert saved.status_code == 200, saved.text

        answer = await answer_to(platform, tax_request(tenant, ("100.00", "training"), ("100.00", "hosting")))
        other_client = await answer_to(
            platform, tax_request(tenant, ("100.00", "training"), company_id=str(uuid.uuid4()))
        )

        # the exempt service's line: VAT at 0 with the reason; the other service: 100.00 x 20 % = 20.00
        assert taxes_of(answer["lines"][0]) == [("VAT", "0", "0.00", "Education exemption, certificate 2291")]
        assert taxes_of(answer["lines"][1]) == [("VAT", "20", "20.00", None)]
        assert answer["tax_total"] == "20.00"
        assert other_client["tax_total"] == "20.00"

    async def test_an_exemption_for_an_unknown_client_is_refused(self, api: httpx.AsyncClient, tenant: Tenant) -> None:
        body = {
            "exemption_id": str(uuid.uuid4()),
            "company_id": str(uuid.uuid4()),
            "reason": "x",
            "valid_from": "2026-01-01",
        }

        response = await api.put(f"/v1/exemptions/{body['exemption_id']}", json=body, headers=tenant.auth)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "company_id"]

    async def test_tax_calculations_are_accurate_on_invoice_items(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "5", tax_category="energy"))

        answer = await answer_to(
            platform, tax_request(tenant, ("19.99", None), ("0.03", None), ("2.50", "energy"), ("-10.00", None))
        )

        # 19.99 x 20 % = 3.998 → 4.00 · 0.03 x 20 % = 0.006 → 0.01 · 2.50 x 5 % = 0.125 → 0.13 (half-up)
        # a credit line: -10.00 x 20 % = -2.00. Invoice tax = 4.00 + 0.01 + 0.13 - 2.00 = 2.14
        assert [line["tax_amount"] for line in answer["lines"]] == ["4.00", "0.01", "0.13", "-2.00"]
        assert [line["total"] for line in answer["lines"]] == ["23.99", "0.04", "2.63", "-12.00"]
        assert answer["tax_total"] == "2.14"

    async def test_an_inclusive_price_is_split_so_net_and_tax_add_up_to_it(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))

        answer = await answer_to(platform, tax_request(tenant, ("9.99", None), tax_inclusive=True))

        # 9.99 x 20/120 = 1.665 → 1.67 tax; net 9.99 - 1.67 = 8.32
        line = answer["lines"][0]
        assert (line["net_amount"], line["tax_amount"], line["total"]) == ("8.32", "1.67", "9.99")

    async def test_tax_rates_are_correctly_updated_when_tax_laws_change(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        old = await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "17.5", valid_from="2008-12-01"))
        before_change = tax_request(tenant, ("100.00", None), invoice_date="2026-01-31")
        first = await answer_to(platform, before_change)

        new = await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20", valid_from="2026-02-01"))
        after_change = await answer_to(platform, tax_request(tenant, ("100.00", None), invoice_date="2026-02-01"))
        old_invoice_again = await answer_to(platform, tax_request(tenant, ("100.00", None), invoice_date="2026-01-31"))

        # 100.00 x 17.5 % = 17.50 before the change; 100.00 x 20 % = 20.00 from its effective date
        assert (first["tax_total"], first["lines"][0]["taxes"][0]["tax_rate_id"]) == ("17.50", old["tax_rate_id"])
        assert (after_change["tax_total"], after_change["lines"][0]["taxes"][0]["tax_rate_id"]) == (
            "20.00",
            new["tax_rate_id"],
        )
        assert old_invoice_again["lines"][0]["taxes"] == first["lines"][0]["taxes"]

    async def test_history_is_never_edited_a_row_with_other_content_is_refused(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        row = await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        retry = await api.put(
            f"/v1/tax-rates/{row['tax_rate_id']}", json=row | {"recorded_at": None}, headers=tenant.auth
        )

        edit = await api.put(
            f"/v1/tax-rates/{row['tax_rate_id']}",
            json={k: v for k, v in row.items() if k != "recorded_at"} | {"rate": "21"},
            headers=tenant.auth,
        )

        assert retry.status_code == 200, retry.text  # the same row again is a safe retry
        assert edit.status_code == 409
        assert "never edited" in edit.json()["detail"][0]["msg"]

    async def test_a_region_without_a_rate_holds_the_invoice_with_the_reason(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        await activate(api, tenant, "EUR")
        request = tax_request(tenant, ("100.00", None), region="FR", currency="EUR")

        answer = await answer_to(platform, request)

        assert (answer["type"], answer["reason"], answer["request_type"]) == (
            "quote.failed",
            "missing_tax_rate",
            "tax.requested",
        )
        assert answer["invoice_id"] == request["invoice_id"]
        assert "region FR" in answer["message"]
        assert "2026-02-01" in answer["message"]


class TestCurrencyManagement:
    async def test_currency_conversion_calculations_use_current_exchange_rates(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await activate(api, tenant, "USD", "EUR")
        imported = await import_rates(
            api,
            tenant,
            "rate_date,currency,rate,source\n"
            "2026-01-15,USD,1.20,ECB\n"
            "2026-01-30,USD,1.25,ECB\n"
            "2026-02-02,USD,1.40,ECB\n"
            "2026-01-30,EUR,1.15,ECB\n",
        )
        assert imported.status_code == 200, imported.text

        to_base = await answer_to(platform, conversion_request(tenant, "100.00", "12.3456"))
        from_base = await answer_to(
            platform, conversion_request(tenant, "80.00", from_currency="GBP", to_currency="USD")
        )
        cross = await answer_to(platform, conversion_request(tenant, "100.00", to_currency="EUR"))

        # in force on 2026-02-01: USD 1.25 per GBP (30 Jan; 2 Feb is later). USD → GBP: 1 / 1.25 = 0.8
        # 100.00 x 0.8 = 80.00; 12.3456 x 0.8 = 9.87648 (full precision: invoicing rounds the net)
        assert (to_base["rate"], to_base["rate_date"]) == ("0.8", "2026-01-30")
        assert [a["converted"] for a in to_base["amounts"]] == ["80", "9.87648"]
        assert [(r["currency"], r["rate"], r["source"]) for r in to_base["exchange_rates"]] == [("USD", "1.25", "ECB")]
        # GBP → USD: the stored rate itself: 80.00 x 1.25 = 100
        assert (from_base["rate"], from_base["amounts"][0]["converted"]) == ("1.25", "100")
        # USD → EUR through GBP: 1.15 / 1.25 = 0.92; 100.00 x 0.92 = 92; both rows pinned
        assert (cross["rate"], cross["amounts"][0]["converted"]) == ("0.92", "92")
        assert sorted(r["currency"] for r in cross["exchange_rates"]) == ["EUR", "USD"]

    async def test_monetary_amounts_carry_their_correct_currency_codes(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await activate(api, tenant, "JPY")
        await put_tax_rate(api, tenant, tax_rate("JP", "JCT", "10"))
        set_rate = await api.put(
            "/v1/exchange-rates/JPY/2026-01-30", json={"rate": "190", "source": "BoE"}, headers=tenant.auth
        )
        assert set_rate.status_code == 200, set_rate.text

        taxed = await answer_to(platform, tax_request(tenant, ("1999", None), region="JP", currency="JPY"))
        converted = await answer_to(
            platform, conversion_request(tenant, "10.00", from_currency="GBP", to_currency="JPY")
        )
        unknown = await answer_to(platform, tax_request(tenant, ("10.00", None), currency="XYZ"))
        stored = await platform.fetch_as_tenant(
            "tax_currency", tenant, "SELECT currency, base_currency, rate FROM exchange_rates"
        )

        # JPY has no minor unit: 1999 x 10 % = 199.9 → 200; GBP 10.00 x 190 = 1900 JPY
        assert (taxed["currency"], taxed["tax_total"], taxed["lines"][0]["total"]) == ("JPY", "200", "2199")
        assert (converted["from_currency"], converted["to_currency"], converted["amounts"][0]["converted"]) == (
            "GBP",
            "JPY",
            "1900",
        )
        assert (unknown["type"], unknown["reason"]) == ("quote.failed", "unknown_currency")
        assert [(r["currency"], r["base_currency"], str(r["rate"])) for r in stored] == [("JPY", "GBP", "190")]

    async def test_a_missing_exchange_rate_is_an_explicit_failure_naming_the_currency(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await activate(api, tenant, "CHF")

        answer = await answer_to(platform, conversion_request(tenant, "10.00", from_currency="CHF"))

        assert (answer["type"], answer["reason"]) == ("quote.failed", "missing_exchange_rate")
        assert "CHF" in answer["message"]

    async def test_an_inactive_currency_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        answer = await answer_to(platform, conversion_request(tenant, "10.00", from_currency="SEK"))

        assert (answer["type"], answer["reason"]) == ("quote.failed", "inactive_currency")


class TestAnsweredOncePerRequest:
    async def test_a_redelivered_request_gets_one_identical_answer(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        request = tax_request(tenant, ("19.99", None))
        await ask(platform, request)
        first = await answers(platform, request["request_id"])
        # a correction recorded later for the same date would change a recomputation; the stored answer stands
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "25", valid_from="2020-01-01"))

        await ask(platform, request)
        both = await answers(platform, request["request_id"], count=2)

        assert len(both) == 2
        assert both[0].payload == both[1].payload == first[0].payload
        assert both[0].message_id == both[1].message_id  # the asker's inbox sees one message
        assert both[0].key == f"{tenant.tenant_id}:{request['invoice_id']}"
        assert both[1].body["tax_total"] == "4.00"
        rows = await platform.fetch_as_tenant(
            "tax_currency",
            tenant,
            "SELECT count(*) AS n FROM quotes WHERE request_id = $1",
            uuid.UUID(request["request_id"]),
        )
        assert rows[0]["n"] == 1

    async def test_a_request_id_reused_for_another_request_is_dead_lettered(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        request = tax_request(tenant, ("19.99", None))
        await answer_to(platform, request)

        await ask(
            platform, request | {"lines": [{"line_id": str(uuid.uuid4()), "amount": "5.00", "tax_category": None}]}
        )
        letters = await platform.dead_letters(topics.TAX_REQUESTS.name, tenant)

        assert letters[0]["error_class"] == "request_id_reused"
        assert letters[0]["field"] == "request_id"

    async def test_a_malformed_request_is_dead_lettered_with_the_field(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        request = tax_request(tenant, ("19.99", None))
        request["lines"][0]["amount"] = 19.99  # a JSON number: floats lose money

        await ask(platform, request)
        letters = await platform.dead_letters(topics.TAX_REQUESTS.name, tenant)

        assert letters[0]["error_class"] == "validation_error"
        assert letters[0]["field"] == "lines.0.amount"
