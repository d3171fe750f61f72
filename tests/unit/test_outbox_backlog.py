"""The outbox backlog the test clock reads (shared/clock/outboxes.py): each service's GET /health/outbox,
without a network (the HTTP transport is given its answers)."""

from __future__ import annotations

import httpx

from services.catalog.settings import CatalogSettings
from shared.clock.outboxes import ServiceOutboxes
from shared.services import SERVICES


def health(counts: dict[str, int | str]) -> httpx.MockTransport:
    """Each service's GET /health/outbox; a count of "down" refuses the connection, "broken" answers 500."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = request.url.host
        if counts[name] == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if counts[name] == "broken":
            return httpx.Response(500, json={"detail": "database down"})
        assert request.url.path == "/health/outbox"
        return httpx.Response(200, json={"service": name, "pending": counts[name]})

    return httpx.MockTransport(answer)


class TestServiceOutboxes:
    async def test_reads_each_services_unrelayed_rows(self) -> None:
        outboxes = ServiceOutboxes(
            urls={"rating": "http://rating:8000", "invoicing": "http://invoicing:8000/"},
            transport=health({"rating": 0, "invoicing": 3}),
        )

        assert await outboxes.pending() == {"rating": 0, "invoicing": 3}

    async def test_a_service_that_does_not_answer_is_unknown_never_empty(self) -> None:
        outboxes = ServiceOutboxes(
            urls={"rating": "http://rating:8000", "invoicing": "http://invoicing:8000"},
            transport=health({"rating": "down", "invoicing": "broken"}),
        )

        assert await outboxes.pending() == {"rating": None, "invoicing": None}


class TestCatalogSettings:
    def test_catalog_knows_where_every_other_service_answers_defaulting_to_the_local_stack(self) -> None:
        settings = CatalogSettings(  # type: ignore[call-arg]
            database_url="postgresql://x", admin_token="t", auth_private_key="k", auth_key_id="id"
        )

        assert settings.other_services() == {s.name: s.local_url for s in SERVICES if s.name != "catalog"}
