"""Rating's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.rating import handlers, reports
from services.rating.adapters.readiness import READINESS
from services.rating.settings import RatingSettings
from shared import topics
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.rating import ChargeCreated, PeriodCompleted, ThresholdCrossed
from shared.runtime import ServiceRuntime


def create_app(settings: RatingSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Rating",
        description=(
            "Prices accepted usage and time against each client's plans; closes billing periods on the clock."
        ),
    )
    runtime.subscribe(
        purpose="accepted",
        consumer=handlers.ACCEPTED,
        payload=AcceptedUsage | AcceptedTime,
        description="Usage and time accepted by metering (record_type usage or time)",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Catalog changes for rating's read model",
    )
    runtime.subscribe(
        purpose="clock",
        consumer=handlers.CLOCK,
        payload=ClockTick,
        description="Billing-clock ticks: close ended periods",
    )
    runtime.publishes(
        topic=topics.RATING_CHARGES.name,
        schema=ChargeCreated | PeriodCompleted,
        description="Charges and period-complete markers, in order per client",
    )
    runtime.publishes(
        topic=topics.RATING_THRESHOLDS.name,
        schema=ThresholdCrossed,
        description="A bucket's hours or a usage line's included quantity crossed a level (once per level, period)",
    )
    runtime.http_app.include_router(handlers.router)
    runtime.http_app.include_router(reports.router)
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
