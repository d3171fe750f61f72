"""One httpx client per service API. Every call carries the signed-in user's bearer token; the services
decide what that user may see and do, and their refusals come back as `ApiError` with the service's text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class ApiError(Exception):
    """A service answered with an error (or did not answer); ``message`` is the service's own words."""

    def __init__(self, service: str, status: int, message: str) -> None:
        super().__init__(f"{service} answered {status}: {message}")
        self.service = service
        self.status = status
        self.message = message


def _message(response: httpx.Response) -> str:
    """The service's explanation: FastAPI's ``detail`` (a string, or a list of {loc, msg} problems)."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:500] or response.reason_phrase
    if isinstance(detail, list):
        parts = []
        for problem in detail:
            if isinstance(problem, dict):
                where = ".".join(str(p) for p in problem.get("loc", []) if p != "body")
                parts.append(f"{where}: {problem.get('msg')}" if where else str(problem.get("msg")))
            else:
                parts.append(str(problem))
        return "; ".join(parts)
    return str(detail)


class TokenRefused(Exception):
    """A service refused the signed-in user's token (401): it expired, or the user was demoted, moved or
    deactivated since signing in (issue 17). The app signs the session out and asks for a new sign-in."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service} refused the session's token: {message}")
        self.message = message


@dataclass
class Binary:
    content: bytes
    media_type: str
    disposition: str | None


class ServiceApi:
    def __init__(
        self, name: str, base_url: str, *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = name
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def _send(
        self, method: str, path: str, token: str | None, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._client.request(method, path, params=query, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(self.name, 503, f"{self.name} did not answer ({type(exc).__name__})") from exc
        if response.status_code == 401 and token:
            raise TokenRefused(self.name, _message(response))
        if response.status_code >= 400:
            raise ApiError(self.name, response.status_code, _message(response))
        return response

    async def get(self, path: str, token: str | None, **params: Any) -> Any:
        return (await self._send("GET", path, token, params=params)).json()

    async def post(self, path: str, token: str | None, body: Any = None) -> Any:
        return (await self._send("POST", path, token, json=body if body is not None else {})).json()

    async def put(self, path: str, token: str | None, body: Any) -> Any:
        return (await self._send("PUT", path, token, json=body)).json()

    async def delete(self, path: str, token: str | None) -> Any:
        return (await self._send("DELETE", path, token)).json()

    async def raw(self, path: str, token: str | None, **params: Any) -> Binary:
        """A non-JSON answer (a PDF, a CSV) passed through as it came."""
        response = await self._send("GET", path, token, params=params)
        return Binary(
            response.content,
            response.headers.get("content-type", "application/octet-stream"),
            response.headers.get("content-disposition"),
        )


class Apis:
    """The services' APIs by name: catalog, metering, rating, tax_currency, invoicing, approvals, notification."""

    def __init__(
        self, urls: dict[str, str], *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """``transport`` replaces the network (tests answer for the services in-process)."""
        self._apis = {n: ServiceApi(n, url, timeout_s=timeout_s, transport=transport) for n, url in urls.items()}

    def __getattr__(self, name: str) -> ServiceApi:
        try:
            return self._apis[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def by_name(self, name: str) -> ServiceApi:
        return self._apis[name]

    async def close(self) -> None:
        for api in self._apis.values():
            await api.close()
