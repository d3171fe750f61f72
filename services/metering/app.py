"""Metering's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.metering import handlers, use_cases
from services.metering.adapters.readiness import READINESS
from services.metering.settings import MeteringSettings
from shared import topics
from shared.contracts.approvals import ApprovalDecision, ApprovalRequest, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedRecord
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord
from shared.runtime import ServiceRuntime


def create_app(settings: MeteringSettings) -> FastAPI:
    use_cases.configure(days_back=settings.accept_days_back, days_ahead=settings.accept_days_ahead)
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Metering",
        description=(
            "Takes usage and time entries from RMM / PSA tools exactly once (Kafka and HTTP batches), maps them "
            "to the catalog, holds what crosses an approval rule, and forwards accepted records to rating."
        ),
    )
    runtime.subscribe(
        purpose="usage",
        consumer=handlers.USAGE,
        payload=UsageRecord,
        description="Usage records from upstream tools (public contract)",
    )
    runtime.subscribe(
        purpose="time",
        consumer=handlers.TIME,
        payload=TimeEntry,
        description="Technicians' time entries from the PSA (public contract)",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Catalog changes: tenants, clients, services, assignments and users to map records with",
    )
    runtime.subscribe(
        purpose="rules",
        consumer=handlers.RULES,
        payload=ApprovalRuleSet,
        description="Each tenant's approval rules (state-carrying): time and usage above a threshold are held",
    )
    runtime.subscribe(
        purpose="decisions",
        consumer=handlers.DECISIONS,
        payload=ApprovalDecision,
        description="Final approval decisions: a held record is released to rating or recorded as rejected",
    )
    runtime.subscribe(
        purpose="clock",
        consumer=handlers.CLOCK,
        payload=ClockTick,
        description="Billing-clock ticks: records are accepted within a window around the tenant's billing time",
    )
    runtime.publishes(
        topic=topics.METERING_ACCEPTED.name,
        schema=AcceptedRecord,
        description="Usage records and time entries accepted (and approved when held), mapped to catalog ids, "
        "keyed by client; record_type tells them apart",
    )
    runtime.publishes(
        topic=topics.APPROVAL_REQUESTS.name,
        schema=ApprovalRequest,
        description="Time entries and usage reports that crossed an approval rule, held until a decision",
    )
    app = runtime.http_app
    app.state.runtime = runtime
    app.include_router(handlers.router)
    return app
