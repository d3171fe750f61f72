"""Tax-currency's operator API on the running stack: exchange-rate import and corrections, currencies,
previews, who may change what, and an audit row for every mutating route of its OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.tax_support import (
    activate,
    actor_of,
    import_rates,
    known_to_tax_currency,
    put_tax_rate,
    tax_api,
    tax_rate,
)
from tests.support.platform import Platform, Tenant

HEADER = "rate_date,currency,rate,source\n"


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with tax_api(platform) as client:
        yield client


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    t = await platform.sandbox_tenant()
    await known_to_tax_currency(platform, t)
    return t


async def rates_in_force(api: httpx.AsyncClient, tenant: Tenant, on: str) -> dict[str, str]:
    response = await api.get("/v1/exchange-rates", params={"on": on}, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return {r["currency"]: r["rate"] for r in response.json()}


class TestExchangeRateImport:
    async def test_importing_the_same_file_twice_changes_nothing_the_second_time(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        text = HEADER + "2026-01-30,USD,1.25,ECB\n2026-01-30,EUR,1.15,ECB\n"

        first = await import_rates(api, tenant, text)
        second = await import_rates(api, tenant, text)

        assert first.json() == {"inserted": 2, "corrected": 0, "unchanged": 0}
        assert second.json() == {"inserted": 0, "corrected": 0, "unchanged": 2}

    async def test_a_correction_for_a_date_is_a_new_row_that_wins_for_new_quotes(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await import_rates(api, tenant, HEADER + "2026-01-30,USD,1.52,ECB\n")

        corrected = await api.put(
            "/v1/exchange-rates/USD/2026-01-30", json={"rate": "1.25", "source": "ECB"}, headers=tenant.auth
        )
        history = await api.get("/v1/exchange-rates", params={"currency": "USD"}, headers=tenant.auth)

        assert corrected.json()["outcome"] == "corrected"
        assert [r["rate"] for r in history.json()] == ["1.52", "1.25"]  # both kept: quoted invoices pin theirs
        assert await rates_in_force(api, tenant, "2026-02-01") == {"USD": "1.25"}

    async def test_a_bad_file_is_refused_whole_naming_each_row_and_field(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        text = HEADER + "2026-01-30,USD,1.25,ECB\n2026-02-30,EUR,1.15,ECB\n2026-01-30,XYZ,-1,\n2026-01-30,GBP,1,ECB\n"

        response = await import_rates(api, tenant, text)

        assert response.status_code == 422
        problems = {(d["loc"][1], d["loc"][2]) for d in response.json()["detail"]}
        assert problems == {(3, "rate_date"), (4, "currency"), (4, "rate"), (4, "source"), (5, "currency")}
        assert await rates_in_force(api, tenant, "2026-02-01") == {}  # row 2 was fine, but nothing is half-imported

    async def test_the_file_must_be_csv(self, api: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await api.post("/v1/exchange-rates/import", json={"rates": []}, headers=tenant.auth)

        assert response.status_code == 415


class TestCurrencies:
    async def test_lists_iso_4217_with_minor_units_and_the_base_currency_active(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await activate(api, tenant, "USD")

        listed = {c["code"]: c for c in (await api.get("/v1/currencies", headers=tenant.auth)).json()}

        assert (listed["GBP"]["active"], listed["GBP"]["base"], listed["GBP"]["minor_units"]) == (True, True, 2)
        assert (listed["USD"]["active"], listed["JPY"]["active"]) == (True, False)
        assert (listed["JPY"]["minor_units"], listed["BHD"]["minor_units"]) == (0, 3)

    async def test_the_base_currency_cannot_be_deactivated(self, api: httpx.AsyncClient, tenant: Tenant) -> None:
        response = await api.put("/v1/currencies/GBP", json={"active": False}, headers=tenant.auth)

        assert response.status_code == 422


class TestPreviews:
    async def test_the_http_quote_is_the_same_calculation_as_over_topics(
        self, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        body = {
            "region": "GB",
            "invoice_date": "2026-02-01",
            "currency": "GBP",
            "lines": [{"line_id": str(uuid.uuid4()), "amount": "19.99", "tax_category": None}],
        }

        response = await api.post("/v1/quotes/tax", json=body, headers=tenant.auth)

        # 19.99 x 20 % = 3.998 → 4.00
        assert response.status_code == 200, response.text
        assert response.json()["tax_total"] == "4.00"

    async def test_a_missing_rate_is_a_422_with_the_reason(self, api: httpx.AsyncClient, tenant: Tenant) -> None:
        body = {
            "from_currency": "GBP",
            "to_currency": "USD",
            "on": "2026-02-01",
            "amounts": [{"line_id": str(uuid.uuid4()), "amount": "1"}],
        }
        await activate(api, tenant, "USD")

        response = await api.post("/v1/quotes/conversion", json=body, headers=tenant.auth)

        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "missing_exchange_rate"


class TestWhoMayChangeWhat:
    async def test_a_caller_without_a_token_is_refused(self, api: httpx.AsyncClient) -> None:
        response = await api.put(f"/v1/tax-rates/{uuid.uuid4()}", json=tax_rate())

        assert response.status_code == 401

    async def test_a_viewer_may_read_but_not_change_tax_tables(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        viewer = await _user_token(platform, tenant, role="viewer")

        read = await api.get("/v1/tax-rates", headers={"Authorization": f"Bearer {viewer}"})
        write = await api.put(
            "/v1/currencies/USD", json={"active": True}, headers={"Authorization": f"Bearer {viewer}"}
        )

        assert read.status_code == 200
        assert write.status_code == 403


async def _user_token(platform: Platform, tenant: Tenant, *, role: str) -> str:
    user_id = str(uuid.uuid4())
    await platform.put(
        f"/v1/users/{user_id}",
        {
            "user_id": user_id,
            "email": f"val-{user_id[:8]}@msp.example",
            "name": "Val Viewer",
            "role": role,
            "kind": "staff",
            "user_ref": f"val-{user_id[:4]}",
        },
        token=tenant.token,
    )
    issued = await platform.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
    assert issued.status_code == 200, issued.text
    return await platform.token_for(issued.json()["api_key"])


# -- audit ------------------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    body: Any = None
    content: bytes | None = None
    content_type: str | None = None


Prepare = Callable[[httpx.AsyncClient, Tenant], Awaitable[Call]]


async def add_tax_rate(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    body = tax_rate("GB", "VAT", "20")
    return Call("PUT", f"/v1/tax-rates/{body['tax_rate_id']}", body)


def _exemption(tenant: Tenant) -> dict[str, Any]:
    return {
        "exemption_id": str(uuid.uuid4()),
        "company_id": str(tenant.company_id),
        "reason": "Charity",
        "valid_from": "2026-01-01",
    }


async def save_exemption(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    body = _exemption(tenant)
    return Call("PUT", f"/v1/exemptions/{body['exemption_id']}", body)


async def delete_exemption(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    body = _exemption(tenant)
    saved = await api.put(f"/v1/exemptions/{body['exemption_id']}", json=body, headers=tenant.auth)
    assert saved.status_code == 200, saved.text
    return Call("DELETE", f"/v1/exemptions/{body['exemption_id']}")


async def set_currency(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    return Call("PUT", "/v1/currencies/USD", {"active": True})


async def set_exchange_rate(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    return Call("PUT", "/v1/exchange-rates/USD/2026-01-30", {"rate": "1.25", "source": "ECB"})


async def import_exchange_rates(api: httpx.AsyncClient, tenant: Tenant) -> Call:
    return Call(
        "POST",
        "/v1/exchange-rates/import",
        content=(HEADER + "2026-01-30,USD,1.25,ECB\n").encode(),
        content_type="text/csv",
    )


MUTATING_ROUTES: dict[str, Prepare] = {
    "PUT /v1/tax-rates/{tax_rate_id}": add_tax_rate,
    "PUT /v1/exemptions/{exemption_id}": save_exemption,
    "DELETE /v1/exemptions/{exemption_id}": delete_exemption,
    "PUT /v1/currencies/{code}": set_currency,
    "PUT /v1/exchange-rates/{currency}/{rate_date}": set_exchange_rate,
    "POST /v1/exchange-rates/import": import_exchange_rates,
}
CHANGES_NOTHING = {"POST /v1/quotes/tax", "POST /v1/quotes/conversion"}  # previews: computed, not stored


async def mutating_routes(api: httpx.AsyncClient) -> set[str]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200, response.text
    return {
        f"{method.upper()} {path}"
        for path, operations in response.json()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in ("put", "post", "delete", "patch")
    }


async def audit_rows(platform: Platform, tenant: Tenant) -> list[Any]:
    return await platform.fetch_as_tenant(
        "tax_currency", tenant, "SELECT seq, actor, action FROM audit_log ORDER BY seq"
    )


class TestEveryMutatingRouteIsAudited:
    async def test_every_mutating_route_is_one_this_spec_knows_how_to_call(self, api: httpx.AsyncClient) -> None:
        routes = await mutating_routes(api)

        unknown = routes - set(MUTATING_ROUTES) - CHANGES_NOTHING
        stale = (set(MUTATING_ROUTES) | CHANGES_NOTHING) - routes

        assert not unknown, f"new mutating route(s) without an audit spec: add them to MUTATING_ROUTES: {unknown}"
        assert not stale, f"MUTATING_ROUTES names route(s) the API no longer has: {stale}"

    @pytest.mark.parametrize("route", sorted(MUTATING_ROUTES))
    async def test_records_a_row_whose_actor_is_the_caller(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant, route: str
    ) -> None:
        call = await MUTATING_ROUTES[route](api, tenant)
        before = await audit_rows(platform, tenant)
        headers = tenant.auth | ({"Content-Type": call.content_type} if call.content_type else {})

        response = await api.request(call.method, call.url, json=call.body, content=call.content, headers=headers)

        assert response.status_code == 200, response.text
        after = await audit_rows(platform, tenant)
        assert [r["actor"] for r in after[len(before) :]] == [actor_of(tenant)]

    @pytest.mark.parametrize("route", sorted(CHANGES_NOTHING))
    async def test_previews_write_nothing(
        self, platform: Platform, api: httpx.AsyncClient, tenant: Tenant, route: str
    ) -> None:
        await put_tax_rate(api, tenant, tax_rate("GB", "VAT", "20"))
        before = await audit_rows(platform, tenant)
        body: dict[str, Any] = (
            {"region": "GB", "invoice_date": "2026-02-01", "currency": "GBP",
             "lines": [{"line_id": str(uuid.uuid4()), "amount": "1.00", "tax_category": None}]}
            if route.endswith("/tax")
            else {"from_currency": "GBP", "to_currency": "GBP", "on": "2026-02-01",
                  "amounts": [{"line_id": str(uuid.uuid4()), "amount": "1"}]}
        )  # fmt: skip

        response = await api.post(route.split(" ")[1], json=body, headers=tenant.auth)

        assert response.status_code == 200, response.text
        assert await audit_rows(platform, tenant) == before
        quotes = await platform.value_as_tenant("tax_currency", tenant, "SELECT count(*) FROM quotes")
        assert quotes == 0
