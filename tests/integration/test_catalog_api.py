"""The catalog's generic entity API: every kind is put, read, listed and deleted the same way, under the catalog's
rules, per tenant, by the roles allowed to, and every change is audited.

Runs against the session stack (real Postgres and broker); each test works in a fresh sandbox tenant.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.test_authorization import add_user
from tests.support.platform import Platform, Tenant

NO_TOKEN = {"Authorization": ""}
ADMIN_EMAIL = "it@northwind.example"  # the admin `Platform.new_tenant` bootstraps
COLLECTIONS = ("users", "companies", "categories", "services", "bundles", "plans", "assignments", "discounts")
ID_FIELD = {
    "users": "user_id",
    "bundles": "bundle_id",
    "categories": "category_id",
    "companies": "company_id",
    "services": "service_id",
    "plans": "plan_id",
    "assignments": "assignment_id",
    "discounts": "discount_id",
}
ENTITY_TYPE = {
    "users": "user",
    "bundles": "bundle",
    "categories": "category",
    "companies": "company",
    "services": "service",
    "plans": "plan",
    "assignments": "assignment",
    "discounts": "discount",
}
CHANGE = {
    "users": {"name": "Sam Renamed"},
    "bundles": {"name": "Security pack plus"},
    "categories": {"name": "Renamed category"},
    "companies": {"name": "Globex Corporation"},
    "services": {"default_rate": "14.00"},
    "plans": {"name": "Gold"},
    "assignments": {"end_date": "2026-07-01"},
    "discounts": {"name": "Spring promotion"},
}


# -- bodies ------------------------------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def user_body(**changes: Any) -> dict[str, Any]:
    user_id = new_id()
    return {
        "user_id": user_id,
        "email": f"sam-{user_id[:8]}@msp.example",
        "name": "Sam Tech",
        "role": "technician",
        "kind": "staff",
        "user_ref": f"tech-{user_id[:4]}",
        "hourly_rate": "95.00",
        "currency": "GBP",
    } | changes


def company_body(**changes: Any) -> dict[str, Any]:
    company_id = new_id()
    return {
        "company_id": company_id,
        "company_ref": f"globex-{company_id[:8]}",
        "refs": [{"source": "ninjaone", "ref": f"ninja-{company_id[:8]}"}],
        "name": "Globex",
        "billing_email": "ap@globex.example",
        "region": "US-NY",
        "currency": "USD",
        "payment_terms_days": 14,
        "billing_anchor": "2026-01-01",
    } | changes


def service_body(**changes: Any) -> dict[str, Any]:
    service_id = new_id()
    return {
        "service_id": service_id,
        "code": f"backup-{service_id[:8]}",
        "name": "Cloud backup",
        "service_type": "Usage",
        "default_rate": "3.20",
        "currency": "GBP",
        "unit": "GB",
    } | changes


def plan_body(*service_ids: str, **changes: Any) -> dict[str, Any]:
    return {
        "plan_id": new_id(),
        "name": "Backup plan",
        "plan_type": "usage-based",
        "billing_frequency": "monthly",
        "currency": "GBP",
        "lines": [{"service_id": s, "custom_rate": None} for s in service_ids],
    } | changes


def assignment_body(company_id: str, plan_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "assignment_id": new_id(),
        "company_id": company_id,
        "plan_id": plan_id,
        "start_date": "2026-01-01",
    } | changes


# -- calls -------------------------------------------------------------------------------------------------


def operator(platform: Platform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.stack.admin_token}"}


def path_of(collection: str, body: dict[str, Any]) -> str:
    return f"/v1/{collection}/{body[ID_FIELD[collection]]}"


async def put(platform: Platform, tenant: Tenant, collection: str, body: dict[str, Any]) -> httpx.Response:
    return await platform.catalog.put(path_of(collection, body), json=body, headers=tenant.auth)


async def saved(platform: Platform, tenant: Tenant, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    """Put ``body`` as the tenant's admin (asserting 200); the `Saved` answer."""
    return await platform.put(path_of(collection, body), body, token=tenant.token)


async def listed(platform: Platform, tenant: Tenant, collection: str, **query: Any) -> dict[str, Any]:
    response = await platform.catalog.get(f"/v1/{collection}", params=query, headers=tenant.auth)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def only(platform: Platform, tenant: Tenant, collection: str, **filters: Any) -> dict[str, Any]:
    items: list[dict[str, Any]] = (await listed(platform, tenant, collection, **filters))["items"]
    assert len(items) == 1, items
    return items[0]


async def everything(platform: Platform, tenant: Tenant, collection: str, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await listed(platform, tenant, collection, limit=500, **filters, **({"after": after} if after else {}))
        items += page["items"]
        after = page["next_after"]
        if after is None:
            return items


def contains(got: Any, sent: Any) -> bool:
    """What was sent is in what came back (which may add defaults), at every depth."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(k in got and contains(got[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(contains, got, sent))
    return bool(got == sent)


async def fresh_body(platform: Platform, tenant: Tenant, collection: str) -> dict[str, Any]:
    """A valid new entity of ``collection`` for the tenant (plans and assignments use its existing ones)."""
    if collection == "users":
        return user_body()
    if collection == "companies":
        return company_body()
    if collection == "services":
        return service_body()
    if collection == "categories":
        return {"category_id": str(uuid.uuid4()), "name": "Managed services", "description": "Per-device care"}
    if collection == "plans":
        return plan_body((await only(platform, tenant, "services", code="managed-device"))["service_id"])
    if collection == "assignments":
        return assignment_body(str(tenant.company_id), (await only(platform, tenant, "plans"))["plan_id"])
    if collection == "bundles":
        device = (await only(platform, tenant, "services", code="managed-device"))["service_id"]
        backup = service_body()
        await saved(platform, tenant, "services", backup)
        return {
            "bundle_id": new_id(),
            "name": "Security pack",
            "price": "99.00",
            "currency": "GBP",
            "service_ids": [device, backup["service_id"]],
        }
    if collection == "discounts":
        plan_id = (await only(platform, tenant, "plans"))["plan_id"]
        return {
            "discount_id": new_id(),
            "name": "Loyalty",
            "discount_type": "percentage",
            "value": "10",
            "plan_id": plan_id,
        }
    raise AssertionError(f"no fresh {collection} known to this spec")


def fields_named(response: httpx.Response) -> list[str]:
    """The fields a 4xx detail names, as dotted paths after their location ("lines.0.service_id")."""
    return [".".join(str(part) for part in error["loc"][1:]) for error in response.json()["detail"]]


def messages_of(response: httpx.Response) -> str:
    return " ".join(error["msg"] for error in response.json()["detail"])


# -- CRUD --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("collection", COLLECTIONS)
class TestEachKind:
    async def test_is_created_by_a_put_at_version_one(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)

        result = await saved(platform, tenant, collection, body)

        assert result["changed"] is True
        event = result["event"]
        assert event["version"] == 1
        assert event["deleted"] is False
        assert (event["tenant_id"], event["entity_type"]) == (str(tenant.tenant_id), ENTITY_TYPE[collection])
        assert event["entity_id"] == body[ID_FIELD[collection]]
        assert contains(event["state"], body)

    async def test_put_again_with_the_same_body_changes_nothing_and_publishes_nothing(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)

        again = await saved(platform, tenant, collection, body)

        assert again == {"changed": False, "event": None}

    async def test_put_with_a_change_bumps_the_version(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)

        changed = await saved(platform, tenant, collection, body | CHANGE[collection])

        assert changed["changed"] is True
        assert changed["event"]["version"] == 2
        assert changed["event"]["state"] | CHANGE[collection] == changed["event"]["state"]

    async def test_get_returns_the_saved_state_in_the_callers_tenant(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)

        response = await platform.catalog.get(path_of(collection, body), headers=tenant.auth)

        assert response.status_code == 200
        got = response.json()
        assert contains(got, body)
        assert (got["tenant_id"], got["entity_type"]) == (str(tenant.tenant_id), ENTITY_TYPE[collection])

    async def test_is_listed_once_saved(self, platform: Platform, tenant: Tenant, collection: str) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)

        items = await everything(platform, tenant, collection)

        assert body[ID_FIELD[collection]] in [i[ID_FIELD[collection]] for i in items]

    async def test_delete_removes_it_and_publishes_a_deletion(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)

        deleted = await platform.catalog.delete(path_of(collection, body), headers=tenant.auth)

        assert deleted.status_code == 200, deleted.text
        event = deleted.json()
        assert (event["deleted"], event["version"]) == (True, 2)
        assert event["entity_id"] == body[ID_FIELD[collection]]
        gone = await platform.catalog.get(path_of(collection, body), headers=tenant.auth)
        assert gone.status_code == 404
        assert body[ID_FIELD[collection]] not in [
            i[ID_FIELD[collection]] for i in await everything(platform, tenant, collection)
        ]
        [published] = await platform.messages("catalog.events.v1", where=lambda d: d["event_id"] == event["event_id"])
        assert (published["deleted"], published["version"], published["entity_id"]) == (
            True,
            2,
            body[ID_FIELD[collection]],
        )

    async def test_delete_of_what_does_not_exist_is_404(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        response = await platform.catalog.delete(f"/v1/{collection}/{uuid.uuid4()}", headers=tenant.auth)

        assert response.status_code == 404

    async def test_put_after_a_delete_brings_it_back_at_the_next_version(
        self, platform: Platform, tenant: Tenant, collection: str
    ) -> None:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)
        await platform.catalog.delete(path_of(collection, body), headers=tenant.auth)

        again = await saved(platform, tenant, collection, body)

        assert (again["changed"], again["event"]["version"], again["event"]["deleted"]) == (True, 3, False)
        assert (await platform.catalog.get(path_of(collection, body), headers=tenant.auth)).status_code == 200


class TestConcurrentPuts:
    async def test_of_one_new_entity_all_succeed_with_distinct_versions(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        rounds: list[tuple[list[int], list[int]]] = []

        for _ in range(10):
            body = service_body()
            responses = await asyncio.gather(
                *(put(platform, tenant, "services", body | {"name": f"Backup {n}"}) for n in range(3))
            )
            statuses = [r.status_code for r in responses]
            versions = sorted(r.json()["event"]["version"] for r in responses if r.status_code == 200)
            rounds.append((statuses, versions))

        assert all(outcome == ([200, 200, 200], [1, 2, 3]) for outcome in rounds), rounds


# -- listing -----------------------------------------------------------------------------------------------


class TestListing:
    async def test_returns_keyset_pages_in_id_order_until_next_after_is_null(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        for _ in range(4):
            await saved(platform, tenant, "services", service_body())
        expected = sorted(s["service_id"] for s in await everything(platform, tenant, "services"))
        assert len(expected) == 5

        pages: list[dict[str, Any]] = [await listed(platform, tenant, "services", limit=2)]
        while pages[-1]["next_after"] is not None:
            pages.append(await listed(platform, tenant, "services", limit=2, after=pages[-1]["next_after"]))

        assert [len(p["items"]) for p in pages] == [2, 2, 1]
        assert [s["service_id"] for p in pages for s in p["items"]] == expected
        assert [p["next_after"] for p in pages] == [expected[1], expected[3], None]

    async def test_a_page_starts_after_the_cursor(self, platform: Platform, tenant: Tenant) -> None:
        for _ in range(2):
            await saved(platform, tenant, "services", service_body())
        ids = sorted(s["service_id"] for s in await everything(platform, tenant, "services"))

        page = await listed(platform, tenant, "services", after=ids[0])

        assert [s["service_id"] for s in page["items"]] == ids[1:]
        assert page["next_after"] is None

    async def test_filters_on_equality_of_a_top_level_field(self, platform: Platform, tenant: Tenant) -> None:
        await saved(platform, tenant, "services", service_body())

        page = await listed(platform, tenant, "services", code="managed-device")

        assert [s["code"] for s in page["items"]] == ["managed-device"]

    async def test_reads_true_and_false_as_booleans(self, platform: Platform, tenant: Tenant) -> None:
        retired = service_body(active=False)
        await saved(platform, tenant, "services", retired)

        inactive = await listed(platform, tenant, "services", active="false")
        active = await listed(platform, tenant, "services", active="true")

        assert [s["service_id"] for s in inactive["items"]] == [retired["service_id"]]
        assert [s["code"] for s in active["items"]] == ["managed-device"]

    async def test_filters_assignments_by_their_client(self, platform: Platform, tenant: Tenant) -> None:
        other = company_body()
        await saved(platform, tenant, "companies", other)
        plan = await only(platform, tenant, "plans")
        theirs = assignment_body(other["company_id"], plan["plan_id"])
        await saved(platform, tenant, "assignments", theirs)

        page = await listed(platform, tenant, "assignments", company_id=other["company_id"])

        assert [a["assignment_id"] for a in page["items"]] == [theirs["assignment_id"]]

    async def test_combines_several_filters(self, platform: Platform, tenant: Tenant) -> None:
        await saved(platform, tenant, "services", service_body(service_type="Fixed", active=False))
        wanted = service_body(service_type="Fixed")
        await saved(platform, tenant, "services", wanted)

        page = await listed(platform, tenant, "services", service_type="Fixed", active="true")

        assert [s["service_id"] for s in page["items"]] == [wanted["service_id"]]

    async def test_a_filter_matching_nothing_is_an_empty_page(self, platform: Platform, tenant: Tenant) -> None:
        page = await listed(platform, tenant, "services", code="no-such-code")

        assert page == {"items": [], "next_after": None}

    async def test_reads_a_number_as_a_number(self, platform: Platform, tenant: Tenant) -> None:
        net_14 = company_body(payment_terms_days=14)
        await saved(platform, tenant, "companies", net_14)

        page = await listed(platform, tenant, "companies", payment_terms_days="14")

        assert [c["company_id"] for c in page["items"]] == [net_14["company_id"]]

    async def test_an_unknown_filter_field_is_422_naming_it(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.get("/v1/services?colour=blue", headers=tenant.auth)

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["query", "colour"]]
        assert "colour" in messages_of(response)

    @pytest.mark.parametrize("limit", ["0", "501", "ten"])
    async def test_a_limit_outside_1_to_500_is_422(self, platform: Platform, tenant: Tenant, limit: str) -> None:
        response = await platform.catalog.get(f"/v1/services?limit={limit}", headers=tenant.auth)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]

    async def test_shows_only_the_callers_tenant(self, platform: Platform, tenant: Tenant) -> None:
        other = await platform.sandbox_tenant()

        mine = await listed(platform, tenant, "services", code="managed-device")
        theirs = await listed(platform, other, "services", code="managed-device")

        assert {s["tenant_id"] for s in mine["items"]} == {str(tenant.tenant_id)}
        assert {s["tenant_id"] for s in theirs["items"]} == {str(other.tenant_id)}


# -- validation --------------------------------------------------------------------------------------------


class TestValidationNamesTheField:
    async def test_an_unknown_service_type(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "services", service_body(service_type="Hourly"))

        assert response.status_code == 422
        assert fields_named(response) == ["service_type"]

    async def test_a_currency_that_is_not_an_iso_code(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "companies", company_body(currency="pounds"))

        assert response.status_code == 422
        assert fields_named(response) == ["currency"]

    async def test_a_rate_sent_as_a_json_number(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "services", service_body(default_rate=12.5))

        assert response.status_code == 422
        assert fields_named(response) == ["default_rate"]

    async def test_a_missing_required_field(self, platform: Platform, tenant: Tenant) -> None:
        body = service_body()
        del body["code"]

        response = await put(platform, tenant, "services", body)

        assert response.status_code == 422
        assert fields_named(response) == ["code"]

    async def test_a_nested_field(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "plans", plan_body(str(uuid.uuid4()), lines=[{"service_id": "x"}]))

        assert response.status_code == 422
        assert fields_named(response) == ["lines.0.service_id"]

    @pytest.mark.parametrize("collection", COLLECTIONS)
    async def test_a_path_id_that_is_not_the_body_id(self, platform: Platform, tenant: Tenant, collection: str) -> None:
        body = await fresh_body(platform, tenant, collection)

        response = await platform.catalog.put(f"/v1/{collection}/{uuid.uuid4()}", json=body, headers=tenant.auth)

        assert response.status_code == 422
        assert fields_named(response) == [ID_FIELD[collection]]
        assert (await platform.catalog.get(path_of(collection, body), headers=tenant.auth)).status_code == 404


# -- uniqueness --------------------------------------------------------------------------------------------


class TestUniquenessPerTenant:
    async def test_two_services_cannot_share_a_code(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "services", service_body(code="managed-device"))

        assert response.status_code == 409
        assert fields_named(response) == ["code"]

    async def test_two_clients_cannot_share_a_company_ref(self, platform: Platform, tenant: Tenant) -> None:
        response = await put(platform, tenant, "companies", company_body(company_ref=tenant.company_ref))

        assert response.status_code == 409
        assert fields_named(response) == ["company_ref"]

    async def test_two_clients_cannot_claim_the_same_source_and_ref(self, platform: Platform, tenant: Tenant) -> None:
        claimed = [{"source": "ninjaone", "ref": f"ninja-{tenant.company_ref}"}]

        response = await put(platform, tenant, "companies", company_body(refs=claimed))

        assert response.status_code == 409
        assert fields_named(response) == ["refs"]

    async def test_the_same_ref_from_another_source_is_fine(self, platform: Platform, tenant: Tenant) -> None:
        other_source = [{"source": "connectwise", "ref": f"ninja-{tenant.company_ref}"}]

        response = await put(platform, tenant, "companies", company_body(refs=other_source))

        assert response.status_code == 200

    async def test_two_users_cannot_share_an_email_whatever_its_case(self, platform: Platform, tenant: Tenant) -> None:
        first = user_body(email="Sam@MSP.example")
        await saved(platform, tenant, "users", first)

        response = await put(platform, tenant, "users", user_body(email="sam@msp.example"))

        assert response.status_code == 409
        assert fields_named(response) == ["email"]

    async def test_a_refused_duplicate_saves_nothing(self, platform: Platform, tenant: Tenant) -> None:
        duplicate = service_body(code="managed-device")

        await put(platform, tenant, "services", duplicate)

        assert (await platform.catalog.get(path_of("services", duplicate), headers=tenant.auth)).status_code == 404

    async def test_the_same_code_in_another_tenant_is_fine(self, platform: Platform, tenant: Tenant) -> None:
        other = await platform.sandbox_tenant()
        code = f"shared-{uuid.uuid4().hex[:8]}"
        await saved(platform, tenant, "services", service_body(code=code))

        response = await put(platform, other, "services", service_body(code=code))

        assert response.status_code == 200, response.text

    async def test_the_same_company_ref_and_refs_in_another_tenant_are_fine(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        other = await platform.sandbox_tenant()
        mine = await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)

        response = await put(
            platform, other, "companies", company_body(company_ref=tenant.company_ref, refs=mine.json()["refs"])
        )

        assert response.status_code == 200, response.text

    async def test_a_deleted_services_code_is_free_again(self, platform: Platform, tenant: Tenant) -> None:
        first = service_body()
        await saved(platform, tenant, "services", first)
        await platform.catalog.delete(path_of("services", first), headers=tenant.auth)

        response = await put(platform, tenant, "services", service_body(code=first["code"]))

        assert response.status_code == 200, response.text


# -- rules -------------------------------------------------------------------------------------------------


class TestRules:
    async def test_an_assignment_naming_a_missing_client_is_422_naming_company_id(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        plan = await only(platform, tenant, "plans")

        response = await put(platform, tenant, "assignments", assignment_body(new_id(), plan["plan_id"]))

        assert response.status_code == 422
        assert fields_named(response) == ["company_id"]

    async def test_an_assignment_naming_a_missing_plan_is_422_naming_plan_id(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        response = await put(platform, tenant, "assignments", assignment_body(str(tenant.company_id), new_id()))

        assert response.status_code == 422
        assert fields_named(response) == ["plan_id"]

    @pytest.mark.parametrize("end_date", ["2026-01-01", "2025-12-31"])
    async def test_an_assignment_ending_on_or_before_its_start_is_422_naming_end_date(
        self, platform: Platform, tenant: Tenant, end_date: str
    ) -> None:
        plan = await only(platform, tenant, "plans")
        body = assignment_body(str(tenant.company_id), plan["plan_id"], end_date=end_date)

        response = await put(platform, tenant, "assignments", body)

        assert response.status_code == 422
        assert fields_named(response) == ["end_date"]
        assert (await platform.catalog.get(path_of("assignments", body), headers=tenant.auth)).status_code == 404

    async def test_a_plan_line_naming_a_missing_service_is_422_naming_that_line(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        response = await put(platform, tenant, "plans", plan_body(new_id()))

        assert response.status_code == 422
        assert fields_named(response) == ["lines.0.service_id"]

    async def test_deleting_a_service_on_a_plan_is_409_saying_to_retire_it(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        service = await only(platform, tenant, "services", code="managed-device")

        response = await platform.catalog.delete(f"/v1/services/{service['service_id']}", headers=tenant.auth)

        assert response.status_code == 409
        assert fields_named(response) == ["service_id"]
        assert "retire it (active=false)" in messages_of(response)

    async def test_retiring_a_service_on_a_plan_by_put_works(self, platform: Platform, tenant: Tenant) -> None:
        service = await only(platform, tenant, "services", code="managed-device")

        retired = await saved(platform, tenant, "services", service | {"active": False})

        assert (retired["changed"], retired["event"]["state"]["active"]) == (True, False)
        assert (await only(platform, tenant, "services", active="false"))["service_id"] == service["service_id"]

    async def test_deleting_an_assigned_plan_is_409(self, platform: Platform, tenant: Tenant) -> None:
        plan = await only(platform, tenant, "plans")

        response = await platform.catalog.delete(f"/v1/plans/{plan['plan_id']}", headers=tenant.auth)

        assert response.status_code == 409
        assert fields_named(response) == ["plan_id"]

    async def test_deleting_a_client_with_assignments_is_409(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.delete(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)

        assert response.status_code == 409
        assert fields_named(response) == ["company_id"]

    async def test_a_refused_delete_keeps_the_entity(self, platform: Platform, tenant: Tenant) -> None:
        await platform.catalog.delete(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)

        assert (
            await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)
        ).status_code == 200

    async def test_once_the_assignment_is_deleted_the_plan_the_client_and_the_service_can_be(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        assignment = await only(platform, tenant, "assignments")
        plan = await only(platform, tenant, "plans")
        service = await only(platform, tenant, "services")
        deletions = [
            f"/v1/assignments/{assignment['assignment_id']}",
            f"/v1/plans/{plan['plan_id']}",
            f"/v1/companies/{tenant.company_id}",
            f"/v1/services/{service['service_id']}",
        ]

        statuses = [(await platform.catalog.delete(path, headers=tenant.auth)).status_code for path in deletions]

        assert statuses == [200, 200, 200, 200]
        for collection in ("assignments", "plans", "companies", "services"):
            assert await everything(platform, tenant, collection) == []


# -- authorization -----------------------------------------------------------------------------------------


class TestAuthorization:
    async def test_a_viewer_reads_but_cannot_put_or_delete(self, platform: Platform, tenant: Tenant) -> None:
        viewer = {"Authorization": f"Bearer {await add_user(platform, tenant, 'viewer')}"}
        service = await only(platform, tenant, "services")
        path = f"/v1/services/{service['service_id']}"

        read = await platform.catalog.get(path, headers=viewer)
        listing = await platform.catalog.get("/v1/services", headers=viewer)
        write = await platform.catalog.put(path, json=service | {"name": "Renamed"}, headers=viewer)
        delete = await platform.catalog.delete(path, headers=viewer)

        assert (read.status_code, listing.status_code) == (200, 200)
        assert (write.status_code, delete.status_code) == (403, 403)
        assert (await only(platform, tenant, "services"))["name"] == service["name"]

    async def test_a_billing_manager_writes_the_catalog_but_not_users(self, platform: Platform, tenant: Tenant) -> None:
        manager = {"Authorization": f"Bearer {await add_user(platform, tenant, 'billing_manager')}"}
        admin = await only(platform, tenant, "users", email=ADMIN_EMAIL)
        body = service_body()

        service = await platform.catalog.put(path_of("services", body), json=body, headers=manager)
        new_user = user_body()
        create_user = await platform.catalog.put(path_of("users", new_user), json=new_user, headers=manager)
        delete_user = await platform.catalog.delete(f"/v1/users/{admin['user_id']}", headers=manager)

        assert service.status_code == 200
        assert (create_user.status_code, delete_user.status_code) == (403, 403)
        assert "users:manage" in create_user.json()["detail"]

    @pytest.mark.parametrize("role", ["technician", "approver", "client_contact"])
    async def test_roles_without_catalog_write_cannot_put(self, platform: Platform, tenant: Tenant, role: str) -> None:
        token = await add_user(platform, tenant, role)
        body = service_body()

        response = await platform.catalog.put(
            path_of("services", body), json=body, headers={"Authorization": f"Bearer {token}"}
        )

        assert response.status_code == 403

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_without_a_token_an_entity_route_is_401(
        self, platform: Platform, tenant: Tenant, method: str
    ) -> None:
        body = service_body()

        response = await platform.catalog.request(
            method, path_of("services", body), json=body if method == "PUT" else None, headers=NO_TOKEN
        )

        assert response.status_code == 401

    async def test_without_a_token_a_listing_is_401(self, platform: Platform) -> None:
        response = await platform.catalog.get("/v1/services", headers=NO_TOKEN)

        assert response.status_code == 401


# -- audit -------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One request to a mutating route, and who the audit log should say made it."""

    method: str
    url: str
    actor: str
    headers: dict[str, str]
    body: Any = None


Prepare = Callable[[Platform, Tenant], Awaitable[Call]]


async def admin_call(platform: Platform, tenant: Tenant, method: str, url: str, body: Any = None) -> Call:
    admin = await only(platform, tenant, "users", email=ADMIN_EMAIL)
    return Call(method, url, f"user:{admin['user_id']}", tenant.auth, body)


def put_entity(collection: str) -> Prepare:
    async def prepare(platform: Platform, tenant: Tenant) -> Call:
        body = await fresh_body(platform, tenant, collection)
        return await admin_call(platform, tenant, "PUT", path_of(collection, body), body)

    return prepare


def delete_entity(collection: str) -> Prepare:
    async def prepare(platform: Platform, tenant: Tenant) -> Call:
        body = await fresh_body(platform, tenant, collection)
        await saved(platform, tenant, collection, body)
        return await admin_call(platform, tenant, "DELETE", path_of(collection, body))

    return prepare


async def put_tenant(platform: Platform, tenant: Tenant) -> Call:
    body = {
        "tenant_id": str(tenant.tenant_id),
        "name": "Northwind IT Ltd",
        "mode": "sandbox",
        "timezone": "Europe/London",
        "base_currency": tenant.currency,
    }
    return Call("PUT", f"/v1/tenants/{tenant.tenant_id}", "platform-operator", operator(platform), body)


async def admin_keys(platform: Platform, tenant: Tenant) -> Call:
    body = {"email": ADMIN_EMAIL, "name": "Pat Admin"}
    return Call("POST", f"/v1/tenants/{tenant.tenant_id}/admin-keys", "platform-operator", operator(platform), body)


async def user_api_key(platform: Platform, tenant: Tenant) -> Call:
    admin = await only(platform, tenant, "users", email=ADMIN_EMAIL)
    return await admin_call(platform, tenant, "POST", f"/v1/users/{admin['user_id']}/api-keys")


async def republish(platform: Platform, tenant: Tenant) -> Call:
    return await admin_call(platform, tenant, "POST", "/v1/catalog/republish")


async def import_catalog(platform: Platform, tenant: Tenant) -> Call:
    document = {"services": [service_body()]}
    return await admin_call(platform, tenant, "POST", "/v1/catalog/import", document)


async def record_status(platform: Platform, tenant: Tenant) -> Call:
    body = {"status": "suspended", "effective_date": "2026-02-01", "reason": "unpaid invoice"}
    return await admin_call(platform, tenant, "POST", f"/v1/companies/{tenant.company_id}/status", body)


async def advance_clock(platform: Platform, tenant: Tenant) -> Call:
    return await admin_call(platform, tenant, "POST", "/v1/test-clock/advance", {"to": "2026-02-01T00:00:00+00:00"})


ENTITY_PATHS = {
    "users": "/v1/users/{entity_id}",
    "bundles": "/v1/bundles/{entity_id}",
    "categories": "/v1/categories/{entity_id}",
    "companies": "/v1/companies/{entity_id}",
    "services": "/v1/services/{entity_id}",
    "plans": "/v1/plans/{entity_id}",
    "assignments": "/v1/assignments/{entity_id}",
    "discounts": "/v1/discounts/{entity_id}",
}


MUTATING_ROUTES: dict[str, Prepare] = {
    **{f"PUT {path}": put_entity(collection) for collection, path in ENTITY_PATHS.items()},
    **{f"DELETE {path}": delete_entity(collection) for collection, path in ENTITY_PATHS.items()},
    "PUT /v1/tenants/{tenant_id}": put_tenant,
    "POST /v1/tenants/{tenant_id}/admin-keys": admin_keys,
    "POST /v1/users/{user_id}/api-keys": user_api_key,
    "POST /v1/catalog/republish": republish,
    "POST /v1/catalog/import": import_catalog,
    "POST /v1/test-clock/advance": advance_clock,
    "POST /v1/companies/{company_id}/status": record_status,
}
CHANGES_NOTHING = {"POST /v1/auth/token"}  # exchanges a credential; nothing to audit


async def mutating_routes(platform: Platform) -> set[str]:
    """Every PUT / POST / DELETE route under /v1 in the catalog's OpenAPI document."""
    response = await platform.catalog.get("/openapi.json", headers=NO_TOKEN)
    assert response.status_code == 200, response.text
    return {
        f"{method.upper()} {path}"
        for path, operations in response.json()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in ("put", "post", "delete")
    }


async def audit_head(platform: Platform, tenant: Tenant) -> int:
    return int(await audit_value(platform, tenant, "SELECT coalesce(max(seq), 0) FROM audit_log"))


async def audit_actors_after(platform: Platform, tenant: Tenant, seq: int) -> list[str]:
    query = "SELECT actor FROM audit_log WHERE seq > $1 ORDER BY seq"
    return [r["actor"] for r in await platform.fetch_as_tenant("catalog", tenant, query, seq)]


async def audit_value(platform: Platform, tenant: Tenant, query: str) -> Any:
    return await platform.value_as_tenant("catalog", tenant, query)


class TestEveryMutatingRouteIsAudited:
    async def test_every_mutating_route_of_the_api_is_one_this_spec_knows_how_to_call(self, platform: Platform) -> None:
        routes = await mutating_routes(platform)

        unknown = routes - set(MUTATING_ROUTES) - CHANGES_NOTHING
        stale = set(MUTATING_ROUTES) - routes

        assert not unknown, f"new mutating route(s) without an audit spec: add them to MUTATING_ROUTES: {unknown}"
        assert not stale, f"MUTATING_ROUTES names route(s) the API no longer has: {stale}"

    @pytest.mark.parametrize("route", sorted(MUTATING_ROUTES))
    async def test_records_a_row_whose_actor_is_the_caller(self, platform: Platform, route: str) -> None:
        assert route in await mutating_routes(platform)
        tenant = await platform.sandbox_tenant()
        call = await MUTATING_ROUTES[route](platform, tenant)
        head = await audit_head(platform, tenant)

        response = await platform.catalog.request(call.method, call.url, json=call.body, headers=call.headers)

        assert response.status_code == 200, response.text
        assert call.actor in await audit_actors_after(platform, tenant, head)


# -- import ------------------------------------------------------------------------------------------------


def catalog_document() -> dict[str, list[dict[str, Any]]]:
    """A whole small catalog, without tenant ids: 6 entities."""
    device, backup = service_body(), service_body(service_type="Fixed", unit="month")
    client = company_body()
    plan = plan_body(device["service_id"], backup["service_id"])
    plan["lines"][1]["custom_rate"] = "2.75"
    return {
        "users": [user_body()],
        "companies": [client],
        "services": [device, backup],
        "plans": [plan],
        "assignments": [assignment_body(client["company_id"], plan["plan_id"])],
    }


async def load(
    platform: Platform, tenant: Tenant, document: Any, *, as_yaml: bool = False, raw: bytes | None = None
) -> httpx.Response:
    if raw is None:
        raw = yaml.safe_dump(document).encode() if as_yaml else json.dumps(document).encode()
    content_type = "application/yaml" if as_yaml else "application/json"
    return await platform.catalog.post(
        "/v1/catalog/import", content=raw, headers=tenant.auth | {"Content-Type": content_type}
    )


async def status_of_every_entity(platform: Platform, tenant: Tenant, document: dict[str, Any]) -> list[int]:
    return [
        (await platform.catalog.get(path_of(collection, item), headers=tenant.auth)).status_code
        for collection, items in document.items()
        if collection in ID_FIELD
        for item in items
        if isinstance(item, dict) and ID_FIELD[collection] in item
    ]


class TestImportingACatalogDocument:
    async def test_a_json_document_saves_every_entity(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()

        response = await load(platform, tenant, document)

        assert response.status_code == 200, response.text
        assert response.json() == {"changed": 6, "unchanged": 0, "pending_approval": []}
        assert await status_of_every_entity(platform, tenant, document) == [200] * 6
        plan = (await platform.catalog.get(path_of("plans", document["plans"][0]), headers=tenant.auth)).json()
        assert plan["tenant_id"] == str(tenant.tenant_id)
        assert plan["lines"][1]["custom_rate"] == "2.75"

    async def test_the_same_document_again_changes_nothing(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        await load(platform, tenant, document)

        again = await load(platform, tenant, document)

        assert again.status_code == 200, again.text
        assert again.json() == {"changed": 0, "unchanged": 6, "pending_approval": []}

    async def test_the_same_document_as_yaml_changes_nothing(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        await load(platform, tenant, document)

        as_yaml = await load(platform, tenant, document, as_yaml=True)

        assert as_yaml.status_code == 200, as_yaml.text
        assert as_yaml.json() == {"changed": 0, "unchanged": 6, "pending_approval": []}

    async def test_a_yaml_document_loads_on_its_own(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()

        response = await load(platform, tenant, document, as_yaml=True)

        assert response.json() == {"changed": 6, "unchanged": 0, "pending_approval": []}
        assert (await load(platform, tenant, document)).json() == {"changed": 0, "unchanged": 6, "pending_approval": []}

    async def test_a_changed_item_is_the_only_one_changed(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        await load(platform, tenant, document)
        document["services"][0]["default_rate"] = "4.00"

        response = await load(platform, tenant, document)

        assert response.json() == {"changed": 1, "unchanged": 5, "pending_approval": []}

    async def test_an_invalid_item_is_located_and_nothing_is_saved(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        del document["services"][1]["code"]

        response = await load(platform, tenant, document)

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "services", 1, "code"]]
        assert await status_of_every_entity(platform, tenant, document) == [404] * 6

    async def test_every_invalid_item_is_reported_at_once(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        document["companies"][0]["currency"] = "pounds"
        document["services"][0]["service_type"] = "Hourly"

        response = await load(platform, tenant, document)

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [
            ["body", "companies", 0, "currency"],
            ["body", "services", 0, "service_type"],
        ]
        assert await status_of_every_entity(platform, tenant, document) == [404] * 6

    async def test_an_unknown_collection_is_422(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document() | {"widgets": [{"widget_id": new_id()}]}

        response = await load(platform, tenant, document)

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "widgets"]]
        assert await status_of_every_entity(platform, tenant, document) == [404] * 6

    async def test_an_item_carrying_a_tenant_id_is_422(self, platform: Platform, tenant: Tenant) -> None:
        document = catalog_document()
        document["services"][0]["tenant_id"] = str(tenant.tenant_id)

        response = await load(platform, tenant, document)

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "services", 0, "tenant_id"]]
        assert await status_of_every_entity(platform, tenant, document) == [404] * 6

    async def test_a_collection_that_is_not_a_list_is_422(self, platform: Platform, tenant: Tenant) -> None:
        response = await load(platform, tenant, {"services": {"code": "x"}})

        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "services"]]

    @pytest.mark.parametrize(
        ("raw", "as_yaml"), [(b"[1, 2]", False), (b"{not json", False), (b"- a\n- b\n", True), (b"a: [", True)]
    )
    async def test_a_body_that_is_not_a_document_is_422(
        self, platform: Platform, tenant: Tenant, raw: bytes, as_yaml: bool
    ) -> None:
        response = await load(platform, tenant, None, raw=raw, as_yaml=as_yaml)

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body"]

    async def test_an_item_that_is_not_an_object_is_422_locating_it(self, platform: Platform, tenant: Tenant) -> None:
        response = await load(platform, tenant, {"services": ["managed-device"]})

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][:3] == ["body", "services", 0]

    async def test_a_rule_refusal_is_reported_like_a_put(self, platform: Platform, tenant: Tenant) -> None:
        document = {"plans": [plan_body(new_id())]}

        response = await load(platform, tenant, document)

        assert response.status_code == 422
        assert fields_named(response) == ["lines.0.service_id"]

    async def test_a_viewer_cannot_import(self, platform: Platform, tenant: Tenant) -> None:
        viewer = await add_user(platform, tenant, "viewer")
        document = catalog_document()

        response = await platform.catalog.post(
            "/v1/catalog/import", json=document, headers={"Authorization": f"Bearer {viewer}"}
        )

        assert response.status_code == 403
        assert await status_of_every_entity(platform, tenant, document) == [404] * 6
