"""Tax-currency's composition root. Its domain arrives with its own issue; the process, schema, roles,
migrations, health, metrics and documents are in place so it runs and scales like every other service."""

from __future__ import annotations

from fastapi import FastAPI

from services.tax_currency.settings import TaxCurrencySettings
from shared.runtime import ServiceRuntime


def create_app(settings: TaxCurrencySettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        title="Tax-currency",
        description=(
            "Tax rates by region with history, exemptions, currencies and exchange rates; "
            "exact tax and conversion for draft invoices."
        ),
    )
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
