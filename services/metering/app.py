"""Metering's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.metering import handlers
from services.metering.settings import MeteringSettings
from shared import topics
from shared.contracts.catalog import CatalogEvent
from shared.contracts.metering import AcceptedUsage
from shared.contracts.usage import UsageRecord
from shared.runtime import ServiceRuntime


def create_app(settings: MeteringSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        title="Metering",
        description=(
            "Accepts usage from RMM / PSA tools exactly once, maps it to the catalog and forwards it to rating."
        ),
    )
    runtime.subscribe(
        purpose="usage",
        consumer=handlers.USAGE,
        payload=UsageRecord,
        description="Usage records from upstream tools (public contract)",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Catalog changes: tenants, clients and services to map refs with",
    )
    runtime.publishes(
        topic=topics.METERING_ACCEPTED.name,
        schema=AcceptedUsage,
        description="Usage records accepted and mapped to catalog ids, keyed by client",
    )
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
