"""Who may do what: tokens from catalog, checked locally, tenant from the credential only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Principal, TokenIssuer, generate_key_pair
from shared.contracts.catalog import Role
from tests.support.platform import Platform, Tenant


async def add_user(platform: Platform, tenant: Tenant, role: str) -> str:
    """A user of ``role`` in ``tenant``, created by its admin; returns a bearer token for them."""
    user_id = uuid.uuid4()
    await platform.put(
        f"/v1/users/{user_id}",
        {
            "user_id": str(user_id),
            "email": f"{role}-{user_id.hex[:6]}@msp.example",
            "name": role,
            "role": role,
            "kind": "staff",
        },
        token=tenant.token,
    )
    issued = await platform.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
    assert issued.status_code == 200, issued.text
    return await platform.token_for(issued.json()["api_key"])


def company(tenant: Tenant, **changes: str) -> dict[str, str]:
    return {
        "company_id": str(tenant.company_id),
        "company_ref": tenant.company_ref,
        "name": "Acme Dental",
        "region": "GB",
        "currency": tenant.currency,
        "billing_anchor": "2026-01-01",
    } | changes


class TestCredentials:
    async def test_an_api_key_is_exchanged_for_a_token_that_names_its_tenant(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        response = await platform.catalog.post("/v1/auth/token", json={"api_key": tenant.api_key})

        assert response.status_code == 200
        assert response.json()["token_type"] == "bearer"
        assert response.json()["expires_in"] > 0

    @pytest.mark.parametrize("api_key", ["nonsense", "msp_00_00_x"])
    async def test_a_malformed_key_is_refused(self, platform: Platform, api_key: str) -> None:
        response = await platform.catalog.post("/v1/auth/token", json={"api_key": api_key})

        assert response.status_code == 401

    async def test_a_key_with_the_wrong_secret_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        forged = tenant.api_key.rsplit("_", 1)[0] + "_not-the-secret"

        response = await platform.catalog.post("/v1/auth/token", json={"api_key": forged})

        assert response.status_code == 401

    async def test_a_request_without_a_token_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers={"Authorization": ""})

        assert response.status_code == 401

    async def test_a_token_signed_by_another_key_is_refused(self, platform: Platform, tenant: Tenant) -> None:
        private, _ = generate_key_pair()
        forged = TokenIssuer(private_key_pem=private, key_id="local-1").issue(
            Principal(user_id=uuid.uuid4(), tenant_id=tenant.tenant_id, role=Role.ADMIN),
            now=datetime.now(UTC),
            ttl=timedelta(minutes=5),
        )

        response = await platform.catalog.get(
            f"/v1/companies/{tenant.company_id}", headers={"Authorization": f"Bearer {forged}"}
        )

        assert response.status_code == 401

    async def test_only_the_platform_operator_creates_tenants(self, platform: Platform, tenant: Tenant) -> None:
        other = uuid.uuid4()
        response = await platform.catalog.put(
            f"/v1/tenants/{other}",
            headers=tenant.auth,
            json={"tenant_id": str(other), "name": "X", "mode": "live", "timezone": "UTC", "base_currency": "USD"},
        )

        assert response.status_code == 401


class TestRoles:
    async def test_a_viewer_reads_but_cannot_write(self, platform: Platform, tenant: Tenant) -> None:
        viewer = await add_user(platform, tenant, "viewer")
        headers = {"Authorization": f"Bearer {viewer}"}

        read = await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=headers)
        write = await platform.catalog.put(f"/v1/companies/{tenant.company_id}", json=company(tenant), headers=headers)

        assert read.status_code == 200
        assert write.status_code == 403
        assert "viewer" in write.json()["detail"]

    async def test_a_billing_manager_writes_the_catalog_but_cannot_manage_users(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        manager = await add_user(platform, tenant, "billing_manager")
        headers = {"Authorization": f"Bearer {manager}"}
        new_user = uuid.uuid4()

        write = await platform.catalog.put(
            f"/v1/companies/{tenant.company_id}", json=company(tenant, name="Acme"), headers=headers
        )
        users = await platform.catalog.put(
            f"/v1/users/{new_user}",
            headers=headers,
            json={"user_id": str(new_user), "email": "x@msp.example", "name": "X", "role": "admin", "kind": "staff"},
        )

        assert write.status_code == 200
        assert users.status_code == 403

    async def test_every_write_records_who_made_it(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.put(
            f"/v1/companies/{tenant.company_id}", json=company(tenant, name="B"), headers=tenant.auth
        )

        assert response.status_code == 200
        actor = await platform.value_as_tenant(
            "catalog", tenant, "SELECT actor FROM audit_log ORDER BY seq DESC LIMIT 1"
        )
        assert actor.startswith("user:")


class TestTenancyComesFromTheCredential:
    async def test_a_user_of_tenant_a_cannot_see_tenant_bs_client(self, platform: Platform, tenant: Tenant) -> None:
        other = await platform.sandbox_tenant()

        response = await platform.catalog.get(f"/v1/companies/{other.company_id}", headers=tenant.auth)
        listing = await platform.catalog.get("/v1/companies", headers=tenant.auth)

        assert response.status_code == 404
        assert [c["company_id"] for c in listing.json()["items"]] == [str(tenant.company_id)]

    async def test_a_body_cannot_name_a_tenant(self, platform: Platform, tenant: Tenant) -> None:
        other = await platform.sandbox_tenant()
        body = company(tenant) | {"tenant_id": str(other.tenant_id)}

        await platform.put(f"/v1/companies/{tenant.company_id}", body, token=tenant.token)
        theirs = await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=other.auth)
        ours = await platform.catalog.get(f"/v1/companies/{tenant.company_id}", headers=tenant.auth)

        assert theirs.status_code == 404
        assert ours.json()["tenant_id"] == str(tenant.tenant_id)

    async def test_a_validation_error_names_the_field(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.put(
            f"/v1/companies/{tenant.company_id}", headers=tenant.auth, json=company(tenant, currency="pounds")
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "currency"]

    async def test_the_path_and_the_body_must_name_the_same_entity(self, platform: Platform, tenant: Tenant) -> None:
        response = await platform.catalog.put(
            f"/v1/companies/{uuid.uuid4()}", headers=tenant.auth, json=company(tenant)
        )

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "company_id"]
