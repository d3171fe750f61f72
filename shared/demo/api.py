"""The platform as the demo reaches it: each service's HTTP API (as a tenant user), waiting, and failing clearly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step did not complete; the message says which and where to look."""


@dataclass(frozen=True)
class Endpoints:
    """Where the platform answers: each service's base URL, the Kafka bootstrap, the operator token."""

    urls: dict[str, str]
    bootstrap: str
    operator_token: str


async def until(probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 120.0) -> T:
    """``probe()`` until it returns something truthy, or a `DemoError` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.3)


class Api:
    """One HTTP client per service; calls carry the demo admin's bearer token unless told otherwise."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.http = {name: httpx.AsyncClient(base_url=url, timeout=180.0) for name, url in endpoints.urls.items()}
        self.admin: dict[str, str] = {}

    async def close(self) -> None:
        for client in self.http.values():
            await client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        auth: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The call, which must answer 200."""
        response = await self.http[service].request(method, path, headers=auth or self.admin, **kwargs)
        if response.status_code != 200:
            raise DemoError(f"{service}: {method} {path} answered {response.status_code}: {response.text[:300]}")
        return response

    async def json(self, service: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(service, "GET", path, **kwargs)).json()

    async def eventually(self, service: str, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """The call until it answers 200: a service learns of a new tenant from catalog events, a moment later."""

        async def attempt() -> httpx.Response | None:
            response = await self.http[service].request(method, path, headers=self.admin, **kwargs)
            return response if response.status_code == 200 else None

        return await until(attempt, what=what, timeout_s=90)

    async def token(self, api_key: str) -> dict[str, str]:
        issued = await self.call("catalog", "POST", "/v1/auth/token", json={"api_key": api_key})
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}
