"""Tax-currency's composition root: the catalog read model, quote requests answered over topics, and the
operator API for tax rates, exemptions, currencies and exchange rates."""

from __future__ import annotations

from fastapi import FastAPI

from services.tax_currency import handlers
from services.tax_currency.adapters.readiness import READINESS
from services.tax_currency.settings import TaxCurrencySettings
from shared import topics
from shared.contracts.catalog import CatalogEvent
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    QuoteFailed,
    RatesChanged,
    TaxQuoted,
    TaxRequested,
)
from shared.runtime import ServiceRuntime


def create_app(settings: TaxCurrencySettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Tax-currency",
        description=(
            "Tax rates by region with history, exemptions, currencies and exchange rates; exact tax and "
            "conversion for draft invoices, answered on tax.results.v1 and pinned to the rate rows used."
        ),
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Catalog changes: each tenant's base currency and its clients (for exemptions)",
    )
    runtime.subscribe(
        purpose="requests",
        consumer=handlers.REQUESTS,
        payload=ConversionRequested | TaxRequested,
        description="Conversion and tax quotes asked for draft invoices (request / reply, key tenant:invoice)",
    )
    runtime.publishes(
        topic=topics.TAX_RESULTS.name,
        schema=ConversionQuoted | TaxQuoted | QuoteFailed | RatesChanged,
        description="One answer per request id, re-published unchanged if asked again; pinned to the rate rows "
        "used. And rates.changed when a tax rate, exchange rates or a currency are added (held drafts retry)",
    )
    runtime.http_app.state.runtime = runtime
    runtime.http_app.include_router(handlers.router)
    return runtime.http_app
