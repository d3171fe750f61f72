"""Each service's wiring, read from its app without starting it: consumers, AsyncAPI document, HTTP routes.

The subscriber attributes are FastStream 0.7's (faststream/kafka/subscriber/usecase.py and config.py):
``BatchSubscriber`` for ``batch=True``, ``group_id``, ``ack_policy`` (resolved from the subscriber config),
``max_records`` / ``batch_timeout_ms``, and the aiokafka consumer arguments in ``_connection_args``
(``auto_offset_reset``; ``enable_auto_commit`` is derived from the ack policy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.middlewares import AckPolicy
from pydantic import BaseModel
from starlette.routing import Match, Mount

from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.invoicing.app import create_app as create_invoicing
from services.invoicing.settings import InvoicingSettings
from services.metering.app import create_app as create_metering
from services.metering.settings import MeteringSettings
from services.rating.app import create_app as create_rating
from services.rating.settings import RatingSettings
from services.tax_currency.app import create_app as create_tax_currency
from services.tax_currency.settings import TaxCurrencySettings
from shared import topics
from shared.auth import generate_key_pair
from shared.contracts.approvals import ApprovalDecision, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.rating import ChargeCreated, PeriodCompleted
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    QuoteFailed,
    RatesChanged,
    TaxQuoted,
    TaxRequested,
)
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.topology import of_service

UNREACHABLE = {"database_url": "postgresql://x@127.0.0.1:1/x", "kafka_bootstrap_servers": "127.0.0.1:1"}
FACTORIES: dict[str, tuple[Callable[[Any], FastAPI], Callable[[], ServiceSettings]]] = {
    "metering": (create_metering, lambda: MeteringSettings(**UNREACHABLE)),
    "rating": (create_rating, lambda: RatingSettings(**UNREACHABLE)),
    "invoicing": (create_invoicing, lambda: InvoicingSettings(**UNREACHABLE)),
    "tax_currency": (create_tax_currency, lambda: TaxCurrencySettings(**UNREACHABLE)),
    "catalog": (
        create_catalog,
        lambda: CatalogSettings(
            **UNREACHABLE, admin_token="t", auth_private_key=generate_key_pair()[0], auth_key_id="k"
        ),
    ),
}
PUBLISHES = {
    "metering": [topics.METERING_ACCEPTED, topics.APPROVAL_REQUESTS],
    "rating": [topics.RATING_CHARGES, topics.RATING_THRESHOLDS],
    "invoicing": [topics.INVOICES, topics.INVOICE_LIFECYCLE, topics.TAX_REQUESTS, topics.APPROVAL_REQUESTS],
    "tax_currency": [topics.TAX_RESULTS],
    "catalog": [topics.CATALOG_EVENTS, topics.CLOCK_TICKS, topics.APPROVAL_REQUESTS],
}
CONSUMED_CONTRACTS: dict[str, list[type[BaseModel]]] = {
    topics.USAGE.name: [UsageRecord],
    topics.TIME_ENTRIES.name: [TimeEntry],
    topics.CATALOG_EVENTS.name: [CatalogEvent],
    topics.METERING_ACCEPTED.name: [AcceptedUsage, AcceptedTime],
    topics.CLOCK_TICKS.name: [ClockTick],
    topics.RATING_CHARGES.name: [ChargeCreated, PeriodCompleted],
    topics.APPROVAL_RULES.name: [ApprovalRuleSet],
    topics.APPROVAL_DECISIONS.name: [ApprovalDecision],
    topics.TAX_REQUESTS.name: [ConversionRequested, TaxRequested],
    topics.TAX_RESULTS.name: [ConversionQuoted, TaxQuoted, QuoteFailed, RatesChanged],
}
SERVICES = sorted(FACTORIES)
CONSUMING = [s for s in SERVICES if of_service(s)]


@cache
def app_of(service: str) -> FastAPI:
    create_app, settings = FACTORIES[service]
    return create_app(settings())


def runtime_of(service: str) -> ServiceRuntime:
    runtime: ServiceRuntime = app_of(service).state.runtime
    return runtime


@cache
def asyncapi_of(service: str) -> dict[str, Any]:
    return runtime_of(service).asyncapi()


def addresses(doc: dict[str, Any], action: str) -> set[str]:
    channels = doc["channels"]
    return {
        channels[op["channel"]["$ref"].removeprefix("#/channels/")]["address"]
        for op in doc["operations"].values()
        if op["action"] == action
    }


def payloads(doc: dict[str, Any], action: str) -> dict[str, Any]:
    """The payload schema of every message of the operations with this action, by channel address."""
    found: dict[str, Any] = {}
    for op in doc["operations"].values():
        if op["action"] != action:
            continue
        channel = doc["channels"][op["channel"]["$ref"].removeprefix("#/channels/")]
        for message in channel["messages"].values():
            name = message["$ref"].removeprefix("#/components/messages/")
            payload = doc["components"]["messages"][name]["payload"]
            if "$ref" in payload:
                payload = doc["components"]["schemas"][payload["$ref"].removeprefix("#/components/schemas/")]
            found[channel["address"]] = payload
    assert found, f"no {action} operations"
    return found


def undescribed_properties(node: Any, doc: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of object properties without a description, following refs into components/schemas."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from undescribed_properties(item, doc, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.removeprefix("#/components/schemas/")
        yield from undescribed_properties(doc["components"]["schemas"][name], doc, f"{path}<{name}>")
    for name, prop in node.get("properties", {}).items():
        if "description" not in prop:
            yield f"{path}.{name}"
    for key, value in node.items():
        if key not in {"examples", "default", "const", "discriminator"}:
            yield from undescribed_properties(value, doc, f"{path}/{key}" if key != "properties" else path)


class TestSubscribers:
    @pytest.mark.parametrize("service", SERVICES)
    def test_are_exactly_the_topologys_subscriptions(self, service: str) -> None:
        subscribers = runtime_of(service).broker.subscribers

        declared = {(s.topic.name, s.group) for s in of_service(service)}
        assert {(t.name, sub.group_id) for sub in subscribers for t in sub.topics} == declared
        assert len(subscribers) == len(declared)

    @pytest.mark.parametrize("service", CONSUMING)
    def test_consume_in_batches_of_the_configured_size(self, service: str) -> None:
        settings = runtime_of(service).settings

        for sub in runtime_of(service).broker.subscribers:
            assert isinstance(sub, BatchSubscriber), sub.group_id
            assert sub.max_records == settings.batch_max_records
            assert sub.batch_timeout_ms == settings.batch_timeout_ms

    @pytest.mark.parametrize("service", CONSUMING)
    def test_commit_offsets_only_after_the_batch_succeeds(self, service: str) -> None:
        for sub in runtime_of(service).broker.subscribers:
            assert sub.ack_policy is AckPolicy.NACK_ON_ERROR, sub.group_id
            assert sub.ack_policy is not AckPolicy.ACK_FIRST
            assert sub._connection_args["enable_auto_commit"] is False

    @pytest.mark.parametrize("service", CONSUMING)
    def test_start_a_new_group_from_the_earliest_offset(self, service: str) -> None:
        for sub in runtime_of(service).broker.subscribers:
            assert sub._connection_args["auto_offset_reset"] == "earliest", sub.group_id

    def test_of_every_consuming_service_are_covered(self) -> None:
        assert CONSUMING == ["catalog", "invoicing", "metering", "rating", "tax_currency"]


class TestAsyncApiDocument:
    @pytest.mark.parametrize("service", SERVICES)
    def test_lists_every_consumed_topic(self, service: str) -> None:
        received = addresses(asyncapi_of(service), "receive")

        assert received == {s.topic.name for s in of_service(service)}

    @pytest.mark.parametrize("service", SERVICES)
    def test_lists_the_dead_letter_topic_of_every_consumed_topic(self, service: str) -> None:
        sent = addresses(asyncapi_of(service), "send")

        assert {s.topic.dlq for s in of_service(service)} <= sent

    @pytest.mark.parametrize("service", SERVICES)
    def test_lists_every_published_topic_and_nothing_else(self, service: str) -> None:
        sent = addresses(asyncapi_of(service), "send")

        expected = {t.name for t in PUBLISHES[service]} | {s.topic.dlq for s in of_service(service)}
        assert sent == expected

    @pytest.mark.parametrize("service", SERVICES)
    def test_describes_every_channel(self, service: str) -> None:
        for name, channel in asyncapi_of(service)["channels"].items():
            assert channel.get("description"), name

    @pytest.mark.parametrize("service", SERVICES)
    def test_describes_every_field_of_every_published_payload(self, service: str) -> None:
        doc = asyncapi_of(service)

        for name, payload in payloads(doc, "send").items():
            assert list(undescribed_properties(payload, doc)) == [], name

    @pytest.mark.parametrize("service", CONSUMING)
    def test_documents_each_consumed_contract_as_a_batch_of_its_messages(self, service: str) -> None:
        for address, payload in payloads(asyncapi_of(service), "receive").items():
            documented = payload["items"].get("anyOf", [payload["items"]])

            assert payload["type"] == "array", address
            assert [set(c["properties"]) for c in documented] == [
                set(model.model_fields) for model in CONSUMED_CONTRACTS[address]
            ], address

    @pytest.mark.parametrize("service", CONSUMING)
    def test_describes_every_field_of_every_consumed_payload(self, service: str) -> None:
        doc = asyncapi_of(service)

        for name, payload in payloads(doc, "receive").items():
            assert list(undescribed_properties(payload, doc)) == [], name

    @pytest.mark.parametrize("service", SERVICES)
    def test_is_asyncapi_3_titled_after_the_service(self, service: str) -> None:
        doc = asyncapi_of(service)

        assert doc["asyncapi"] == "3.0.0"
        assert doc["info"]["title"] == f"{service} events"


def matches(app: FastAPI, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": [], "query_string": b""}
    return any(route.matches(scope)[0] is Match.FULL for route in app.routes)


class TestHttpApp:
    @pytest.mark.parametrize("service", SERVICES)
    @pytest.mark.parametrize(
        "path", ["/health/live", "/health/ready", "/health/outbox", "/asyncapi.json", "/metrics/", "/v1/readiness"]
    )
    def test_routes_the_operations_endpoints(self, service: str, path: str) -> None:
        assert matches(app_of(service), path)

    @pytest.mark.parametrize("service", SERVICES)
    def test_mounts_the_prometheus_exporter_at_metrics(self, service: str) -> None:
        assert any(isinstance(r, Mount) and r.path == "/metrics" for r in app_of(service).routes)

    @pytest.mark.parametrize("service", SERVICES)
    async def test_answers_liveness_and_metrics_without_a_database_or_broker(self, service: str) -> None:
        transport = httpx.ASGITransport(app=app_of(service))  # no lifespan: nothing is started
        async with httpx.AsyncClient(transport=transport, base_url="http://test", follow_redirects=True) as client:
            live = await client.get("/health/live")
            metrics = await client.get("/metrics")

        assert (live.status_code, live.json()) == (200, {"status": "ok", "service": service})
        assert metrics.status_code == 200
        assert "consumer_records_total" in metrics.text

    @pytest.mark.parametrize("service", SERVICES)
    async def test_answers_its_outbox_backlog_as_unknown_before_it_has_a_database(self, service: str) -> None:
        transport = httpx.ASGITransport(app=app_of(service))  # no lifespan: nothing is started
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            outbox = await client.get("/health/outbox")

        assert (outbox.status_code, outbox.json()) == (503, {"service": service, "pending": None})
