"""GET /v1/readiness (shared/readiness.py) at the HTTP edge: who may ask what, before any database is read.
What it answers from a real read model is specified in tests/integration/test_readiness.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import Principal, TokenIssuer, TokenVerifier, generate_key_pair
from shared.contracts.catalog import Role
from shared.readiness import NOTHING_TO_WAIT_FOR, readiness_router

PRIVATE, PUBLIC = generate_key_pair()
TENANT, CLIENT = uuid.uuid4(), uuid.uuid4()


def no_database() -> object:
    raise AssertionError("this request should have been answered before reading anything")


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier({"k1": PUBLIC})
    app.include_router(readiness_router("tax_currency", no_database, NOTHING_TO_WAIT_FOR))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        yield client


def bearer(role: Role, *, company_id: uuid.UUID | None = None) -> dict[str, str]:
    who = Principal(user_id=uuid.uuid4(), tenant_id=TENANT, role=role, company_id=company_id)
    token = TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(
        who, now=datetime.now(UTC), ttl=timedelta(minutes=5)
    )
    return {"Authorization": f"Bearer {token}"}


class TestWhoMayAskWhat:
    async def test_without_a_token_it_answers_401(self, api: httpx.AsyncClient) -> None:
        assert (await api.get("/v1/readiness")).status_code == 401

    async def test_a_client_contact_may_not_ask_about_another_client(self, api: httpx.AsyncClient) -> None:
        response = await api.get(
            "/v1/readiness",
            params={"company_id": str(uuid.uuid4())},
            headers=bearer(Role.CLIENT_CONTACT, company_id=CLIENT),
        )

        assert response.status_code == 403
        assert "own client" in response.text

    async def test_a_client_is_named_by_id_or_by_ref_not_both(self, api: httpx.AsyncClient) -> None:
        response = await api.get(
            "/v1/readiness", params={"company_id": str(CLIENT), "company_ref": "acme"}, headers=bearer(Role.VIEWER)
        )

        assert response.status_code == 422

    @pytest.mark.parametrize("wait", ["-1", "31"])
    async def test_the_wait_is_bounded_to_thirty_seconds(self, api: httpx.AsyncClient, wait: str) -> None:
        response = await api.get("/v1/readiness", params={"wait": wait}, headers=bearer(Role.VIEWER))

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "wait"]
