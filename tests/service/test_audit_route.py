"""GET /v1/audit (shared/audit_api.py) at the HTTP edge, before any database is read: the fuzz tier (issue 17) sent
`after=45464960596928628085474983936` and every service answered 500 (the seq overflowed Postgres's bigint)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from shared.audit_api import audit_router
from shared.auth import Principal, TokenIssuer, TokenVerifier, generate_key_pair
from shared.contracts.catalog import Role

PRIVATE, PUBLIC = generate_key_pair()


def no_database() -> object:
    raise AssertionError("this request should have been answered before reading anything")


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier({"k1": PUBLIC})
    app.include_router(audit_router("rating", no_database))  # type: ignore[arg-type]
    admin = Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=Role.ADMIN)
    token = TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(admin, now=datetime.now(UTC), ttl=timedelta(1))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc", headers=headers
    ) as client:
        yield client


async def test_a_paging_seq_beyond_a_bigint_is_a_422_naming_after(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/audit", params={"after": "45464960596928628085474983936"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "after"]
