"""Invoicing's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.invoicing import handlers
from services.invoicing.settings import InvoicingSettings
from shared import topics
from shared.contracts.catalog import CatalogEvent
from shared.contracts.invoices import InvoiceEvent
from shared.contracts.rating import ChargeCreated, PeriodCompleted
from shared.runtime import ServiceRuntime


def create_app(settings: InvoicingSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        title="Invoicing",
        description=(
            "Aggregates charges into invoices, numbers and finalizes them, and publishes billing.invoices.v1."
        ),
    )
    runtime.subscribe(
        purpose="charges",
        consumer=handlers.CHARGES,
        payload=ChargeCreated | PeriodCompleted,
        description="Charges and period-complete markers from rating",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Catalog changes: the client details an invoice snapshots",
    )
    runtime.publishes(
        topic=topics.INVOICES.name,
        schema=InvoiceEvent,
        description="Invoice events for downstream accounting (public contract)",
    )
    runtime.publishes(
        topic=topics.INVOICE_LIFECYCLE.name,
        schema=InvoiceEvent,
        description="Invoice lifecycle events for the notification service",
    )
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
