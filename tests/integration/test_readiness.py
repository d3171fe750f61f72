"""Per-tenant readiness on every service (GET /v1/readiness, issue 16): a new tenant and its clients reach the
other services a moment after catalog answers, and an integrator waits on this instead of sleeping or
retrying a 409 / 422."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from shared.services import service
from tests.support.platform import Platform


async def a_client(platform: Platform, token: str) -> tuple[uuid.UUID, str]:
    company_id = uuid.uuid4()
    ref = f"birch-{company_id.hex[:6]}"
    await platform.put(
        f"/v1/companies/{company_id}",
        {
            "company_id": str(company_id),
            "company_ref": ref,
            "name": "Birch & Co",
            "billing_email": "ap@birch.example",
            "region": "GB",
            "currency": "GBP",
            "billing_anchor": "2026-01-01",
        },
        token=token,
    )
    return company_id, ref


async def exempt(platform: Platform, token: str, company_id: uuid.UUID) -> httpx.Response:
    exemption_id = uuid.uuid4()
    async with httpx.AsyncClient(base_url=platform.stack.url(service("tax_currency")), timeout=60.0) as api:
        return await api.put(
            f"/v1/exemptions/{exemption_id}",
            json={
                "exemption_id": str(exemption_id),
                "company_id": str(company_id),
                "reason": "registered charity",
                "valid_from": "2026-01-01",
            },
            headers={"Authorization": f"Bearer {token}"},
        )


def missing_items(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["item"], m["key"]) for m in answer["missing"]]


class TestAFreshTenant:
    async def test_tax_currency_answers_ready_for_the_new_client_and_its_api_then_accepts_it(
        self, platform: Platform
    ) -> None:
        tenant_id, _, token = await platform.new_tenant()  # through the operator API
        company_id, _ = await a_client(platform, token)

        answer = await platform.readiness(token, "tax_currency", wait_s=10, company_id=str(company_id))
        exemption = await exempt(platform, token, company_id)  # no sleep: ready means its view holds the client

        assert answer["ready"] is True, answer
        assert (answer["service"], answer["tenant_id"]) == ("tax_currency", str(tenant_id))
        assert answer["missing"] == []
        assert answer["checked"] == ["tenant", "company"]
        assert answer["waited_s"] <= 10
        assert exemption.status_code == 200, exemption.text

    async def test_rating_answers_ready_for_the_client_by_its_ref(self, platform: Platform) -> None:
        _, _, token = await platform.new_tenant()
        _, ref = await a_client(platform, token)

        answer = await platform.readiness(token, "rating", wait_s=10, company_ref=ref)

        assert (answer["ready"], answer["checked"]) == (True, ["tenant", "company"]), answer

    async def test_catalog_metering_and_invoicing_also_wait_for_the_tenants_approval_rules(
        self, platform: Platform
    ) -> None:
        _, _, token = await platform.new_tenant()

        answers = [await platform.readiness(token, name, wait_s=10) for name in ("catalog", "metering", "invoicing")]

        assert [(a["ready"], a["checked"]) for a in answers] == [(True, ["tenant", "approval_rules"])] * 3, answers

    async def test_the_platform_helper_waits_for_every_service(self, platform: Platform) -> None:
        _, _, token = await platform.new_tenant()
        company_id, _ = await a_client(platform, token)

        await platform.wait_ready(token, wait_s=15, company_id=str(company_id))


class TestWhatIsNotThereYet:
    async def test_an_unknown_client_answers_not_ready_naming_it_after_waiting_the_time_asked(
        self, platform: Platform
    ) -> None:
        _, _, token = await platform.new_tenant()
        await platform.readiness(token, "tax_currency", wait_s=10)  # the tenant itself has arrived
        unknown = uuid.uuid4()

        answer = await platform.readiness(token, "tax_currency", wait_s=1, company_id=str(unknown))

        assert answer["ready"] is False
        assert missing_items(answer) == [("company", f"company_id={unknown}")]
        assert answer["missing"][0]["reason"] == "not in tax_currency's catalog view yet"
        assert 1 <= answer["waited_s"] < 5

    async def test_approvals_keeps_no_clients_so_a_client_is_ready_there_and_not_claimed_as_checked(
        self, platform: Platform
    ) -> None:
        _, _, token = await platform.new_tenant()

        answer = await platform.readiness(token, "approvals", wait_s=10, company_id=str(uuid.uuid4()))

        assert (answer["ready"], answer["checked"]) == (True, ["tenant", "approval_rules"]), answer
