"""API-key guessing (issue 17, item 8), against the running catalog: a key id with too many wrong secrets is
refused with 429 and Retry-After, even with its right secret; an unknown key id costs a scrypt check like a
known one, so timing does not tell which ids exist."""

from __future__ import annotations

import uuid

import pytest

from services.catalog import use_cases
from services.catalog.domain import credentials
from shared.db.pool import create_pool
from shared.services import service
from tests.support.platform import Platform, Tenant


class TestGuessingOneKeysSecret:
    async def test_eleven_wrong_secrets_lock_the_key_id_for_the_window_even_for_the_right_one(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        prefix, secret = tenant.api_key.rsplit("_", 1)
        for _ in range(10):
            wrong = await platform.catalog.post("/v1/auth/token", json={"api_key": f"{prefix}_guess{uuid.uuid4().hex}"})
            assert wrong.status_code == 401
        locked = await platform.catalog.post("/v1/auth/token", json={"api_key": f"{prefix}_{secret}"})
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["Retry-After"]) <= 60
        assert "too many sign-in attempts for this API key" in locked.text


class TestTimingDoesNotTellWhichKeyIdsExist:
    async def test_an_unknown_key_id_is_checked_with_scrypt_like_a_known_one(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        pool = await create_pool(platform.stack.dsn(service("catalog")), max_size=2)
        checked: list[str] = []
        real = credentials.secret_matches

        def counting(secret: str, stored: str) -> bool:
            checked.append(stored)
            return real(secret, stored)

        setattr(use_cases, "secret_matches", counting)  # noqa: B010 (instrumenting the real check)
        try:
            unknown = f"msp_{tenant.tenant_id.hex}_{uuid.uuid4().hex}_whatever"
            with pytest.raises(use_cases.InvalidCredential):
                await use_cases.authenticate(pool, api_key=unknown)
        finally:
            setattr(use_cases, "secret_matches", real)  # noqa: B010
            await pool.close()
        assert checked == [credentials.DECOY_HASH]
