"""A token speaks for its user only while the user is what it says (issue 17, low: a demoted or deactivated
user's token used to keep its old powers until it expired, up to an hour). Catalog refuses it at once; every
other service as soon as the catalog event reaches it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from shared.services import SERVICES, service
from tests.support.platform import Platform, Tenant

OTHERS = [s.name for s in SERVICES if s.name != "catalog"]


async def change_user(platform: Platform, tenant: Tenant, user_id: uuid.UUID, **change: Any) -> None:
    current = (await platform.catalog.get(f"/v1/users/{user_id}", headers=tenant.auth)).json()
    await platform.put(f"/v1/users/{user_id}", current | change, token=tenant.token)


async def answers(platform: Platform, service_name: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.stack.url(service(service_name)), timeout=60.0) as api:
        return await api.get("/v1/readiness", headers={"Authorization": f"Bearer {token}"})


async def refused_everywhere(platform: Platform, token: str) -> dict[str, str]:
    """Each non-catalog service's 401 reason, once every one of them refuses the token."""

    async def probe() -> dict[str, str] | None:
        found = {name: await answers(platform, name, token) for name in OTHERS}
        if all(r.status_code == 401 for r in found.values()):
            return {name: r.json()["detail"] for name, r in found.items()}
        return None

    result: dict[str, str] = await platform.wait_for(probe, timeout_s=30)
    return result


class TestADemotedUsersTokenStopsWorking:
    async def test_catalog_refuses_it_at_once_and_every_service_once_it_hears(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        user_id, token = await platform.add_user(tenant, "billing_manager")
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await platform.catalog.get(f"/v1/users/{user_id}", headers=bearer)).status_code == 200
        for name in OTHERS:
            assert (await answers(platform, name, token)).status_code == 200

        await change_user(platform, tenant, user_id, role="viewer")

        refused = await platform.catalog.get(f"/v1/users/{user_id}", headers=bearer)
        assert refused.status_code == 401
        assert refused.json()["detail"] == (
            "the token's user is now 'viewer', not 'billing_manager': exchange the API key for a new token"
        )
        reasons = await refused_everywhere(platform, token)
        assert set(reasons.values()) == {refused.json()["detail"]}

    async def test_the_key_exchanged_again_gives_the_new_role(self, platform: Platform, tenant: Tenant) -> None:
        user_id, _ = await platform.add_user(tenant, "billing_manager")
        await change_user(platform, tenant, user_id, role="viewer")
        issued = await platform.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
        fresh = await platform.token_for(issued.json()["api_key"])
        assert (await platform.catalog.get(f"/v1/users/{user_id}", headers=_bearer(fresh))).status_code == 200
        write = await platform.catalog.put(
            f"/v1/users/{user_id}", json={}, headers=_bearer(fresh)
        )  # a viewer's token now: 403, not 401
        assert write.status_code == 403


class TestADeactivatedUsersTokenStopsWorking:
    async def test_it_is_refused_by_catalog_and_every_service(self, platform: Platform, tenant: Tenant) -> None:
        user_id, token = await platform.add_user(tenant, "viewer")
        await change_user(platform, tenant, user_id, active=False)
        refused = await platform.catalog.get("/v1/services", headers=_bearer(token))
        assert refused.status_code == 401
        assert refused.json()["detail"] == "the token's user has been deactivated or removed since it was issued"
        assert set((await refused_everywhere(platform, token)).values()) == {refused.json()["detail"]}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
