"""Every service's outbox backlog, for the lag probe: each service answers its own count at
``GET /health/outbox`` (``outbox_backlog()``, run as its schema's owner), so no service reads another's schema.

The service that asks (catalog, for the test clock) counts its own outbox through its pool and asks the others
over HTTP, concurrently. A service that does not answer in time counts as not settled (None), never as empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import asyncpg
import httpx
import structlog

log = structlog.get_logger(__name__)


class ServiceOutboxes:
    """`shared.clock.lag.OutboxBacklog` over the services' health routes, plus the caller's own pool."""

    def __init__(
        self,
        *,
        urls: Mapping[str, str],
        own: tuple[str, Callable[[], asyncpg.Pool]] | None = None,
        timeout_s: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._urls = dict(urls)
        self._own = own
        self._timeout = timeout_s
        self._transport = transport

    async def pending(self) -> dict[str, int | None]:
        names = ([self._own[0]] if self._own else []) + list(self._urls)
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            counts = await asyncio.gather(
                *([self._own_count()] if self._own else []),
                *(self._remote_count(client, name, url) for name, url in self._urls.items()),
            )
        return dict(zip(names, counts, strict=True))

    async def marks(self) -> dict[str, tuple[int, int] | None]:
        """Each service's (allocated, relayed_through) outbox seqs (`outbox_marks()`); None where unreadable."""
        names = ([self._own[0]] if self._own else []) + list(self._urls)
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            found = await asyncio.gather(
                *([self._own_marks()] if self._own else []),
                *(self._remote_marks(client, name, url) for name, url in self._urls.items()),
            )
        return dict(zip(names, found, strict=True))

    async def _own_marks(self) -> tuple[int, int] | None:
        assert self._own is not None
        try:
            row = await self._own[1]().fetchrow("SELECT * FROM outbox_marks()")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("outbox_marks_unreadable", service=self._own[0], exc_info=True)
            return None
        return None if row is None else (int(row["allocated"]), int(row["relayed_through"]))

    async def _remote_marks(self, client: httpx.AsyncClient, name: str, url: str) -> tuple[int, int] | None:
        try:
            response = await client.get(f"{url.rstrip('/')}/health/outbox")
            response.raise_for_status()
            body = response.json()
            return int(body["allocated"]), int(body["relayed_through"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("outbox_marks_unreadable", service=name, url=url, error=str(exc))
            return None

    async def _own_count(self) -> int | None:
        assert self._own is not None
        try:
            count: int = await self._own[1]().fetchval("SELECT outbox_backlog()")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("outbox_backlog_unreadable", service=self._own[0], exc_info=True)
            return None
        return count

    async def _remote_count(self, client: httpx.AsyncClient, name: str, url: str) -> int | None:
        try:
            response = await client.get(f"{url.rstrip('/')}/health/outbox")
            response.raise_for_status()
            pending = response.json()["pending"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("outbox_backlog_unreadable", service=name, url=url, error=str(exc))
            return None
        return int(pending) if isinstance(pending, int) else None
