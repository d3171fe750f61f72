"""The operator's command line against the running platform."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.services import service
from tests.support.platform import Platform, Tenant

REPO = Path(__file__).resolve().parents[2]


async def msp(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shared.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestBootstrap:
    async def test_creates_a_tenant_and_an_admin_whose_key_signs_in(self, platform: Platform) -> None:
        catalog = platform.stack.url(service("catalog"))

        done = await msp(
            "bootstrap",
            "--name",
            "Contoso MSP",
            "--admin-email",
            "ops@contoso.example",
            "--mode",
            "live",
            "--timezone",
            "America/New_York",
            "--currency",
            "USD",
            "--catalog-url",
            catalog,
            "--operator-token",
            platform.stack.admin_token,
        )

        assert done.returncode == 0, done.stderr
        api_key = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("API key"))
        token = await platform.token_for(api_key)
        me = await platform.catalog.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert [u["email"] for u in me.json()["items"]] == ["ops@contoso.example"]
        assert me.json()["items"][0]["role"] == "admin"

    async def test_refuses_a_wrong_operator_token(self, platform: Platform) -> None:
        done = await msp(
            "bootstrap",
            "--name",
            "X",
            "--admin-email",
            "x@x.example",
            "--catalog-url",
            platform.stack.url(service("catalog")),
            "--operator-token",
            "wrong",
        )

        assert done.returncode != 0
        assert "401" in done.stderr


class TestCatalogLoad:
    async def test_loading_the_same_file_twice_changes_nothing_the_second_time(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        document = {
            "services": [
                {
                    "service_id": "6f1c2d9e-1b7a-4c55-9f0e-2a3b4c5d6e7f",
                    "code": "edr",
                    "name": "EDR",
                    "service_type": "Usage",
                    "default_rate": "4.00",
                    "currency": "GBP",
                    "unit": "device",
                }
            ]
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(document, f)
        args = (
            "catalog",
            "load",
            f.name,
            "--api-key",
            tenant.api_key,
            "--catalog-url",
            platform.stack.url(service("catalog")),
        )

        first, second = await msp(*args), await msp(*args)

        assert first.returncode == 0, first.stdout + first.stderr
        assert "1 changed, 0 unchanged" in first.stdout
        assert "0 changed, 1 unchanged" in second.stdout
