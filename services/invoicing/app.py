"""Invoicing's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.invoicing import handlers, reports
from services.invoicing.adapters.readiness import READINESS
from services.invoicing.settings import InvoicingSettings
from shared import topics
from shared.contracts.approvals import ApprovalDecision, ApprovalRequest, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import InvoiceEvent
from shared.contracts.invoicing import InvoiceNotice
from shared.contracts.rating import ChargeCreated, PeriodCompleted
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    QuoteFailed,
    RatesChanged,
    TaxQuoted,
    TaxRequested,
)
from shared.runtime import ServiceRuntime


def create_app(settings: InvoicingSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
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
    runtime.subscribe(
        purpose="tax",
        consumer=handlers.TAX,
        payload=ConversionQuoted | TaxQuoted | QuoteFailed | RatesChanged,
        description="Tax-currency's answers: conversions and taxes for drafts, or why they cannot be quoted; "
        "rates.changed retries drafts held for a missing rate",
    )
    runtime.subscribe(
        purpose="clock",
        consumer=handlers.CLOCK,
        payload=ClockTick,
        description="Billing-clock ticks: invoices past due become overdue",
    )
    runtime.subscribe(
        purpose="rules",
        consumer=handlers.RULES,
        payload=ApprovalRuleSet,
        description="Each tenant's approval rules: refunds and credits over a rule wait for a decision",
    )
    runtime.subscribe(
        purpose="decisions",
        consumer=handlers.DECISIONS,
        payload=ApprovalDecision,
        description="Final approval decisions: a waiting refund, credit note or adjustment is applied or dropped; "
        "a draft invoice waiting for approval is finalized or stays a draft",
    )
    runtime.publishes(
        topic=topics.APPROVAL_REQUESTS.name,
        schema=ApprovalRequest,
        description="Refunds, credit notes, billing adjustments and whole invoices over an approval rule, held until "
        "decided",
    )
    runtime.publishes(
        topic=topics.TAX_REQUESTS.name,
        schema=ConversionRequested | TaxRequested,
        description="Conversion and tax questions for draft invoices (request / reply, key tenant:invoice)",
    )
    runtime.publishes(
        topic=topics.INVOICES.name,
        schema=InvoiceEvent,
        description="Invoice events for downstream accounting (public contract)",
    )
    runtime.publishes(
        topic=topics.INVOICE_LIFECYCLE.name,
        schema=InvoiceNotice,
        description="Invoice lifecycle events for the notification service",
    )
    runtime.http_app.state.runtime = runtime
    runtime.http_app.include_router(handlers.router)
    runtime.http_app.include_router(reports.router)
    return runtime.http_app
