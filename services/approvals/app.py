"""Approvals' composition root: settings, runtime (pool, broker, relay, HTTP), consumers and routes."""

from __future__ import annotations

from fastapi import FastAPI

from services.approvals import handlers
from services.approvals.adapters.readiness import READINESS
from services.approvals.settings import ApprovalsSettings
from shared import topics
from shared.contracts.approvals import ApprovalDecision, ApprovalPending, ApprovalRequest, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.runtime import ServiceRuntime


def create_app(settings: ApprovalsSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Approvals",
        description=(
            "Approval rules, requests and multi-step decisions that keep unapproved data out of billing. "
            "Consumes approvals.requests.v1 from any service, billing.clock.v1 (timeouts) and catalog.events.v1 "
            "(tenants and users); publishes approvals.rules.v1, approvals.decisions.v1 and approvals.pending.v1."
        ),
    )
    runtime.subscribe(
        purpose="requests",
        consumer=handlers.REQUESTS,
        payload=ApprovalRequest,
        description="Items a service holds until approved; the same request twice is one request",
    )
    runtime.subscribe(
        purpose="clock",
        consumer=handlers.CLOCK,
        payload=ClockTick,
        description="Billing-clock ticks: steps whose timeout has passed get their on_timeout",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Tenants (a new one gets the default rules) and users (who requested what)",
    )
    runtime.publishes(
        topic=topics.APPROVAL_RULES.name,
        schema=ApprovalRuleSet,
        description="Each tenant's whole rule set whenever it changes (state-carrying, keyed by tenant)",
    )
    runtime.publishes(
        topic=topics.APPROVAL_DECISIONS.name,
        schema=ApprovalDecision,
        description="Final decisions: the requesting service releases (approved) or drops (rejected) the item",
    )
    runtime.publishes(
        topic=topics.APPROVAL_PENDING.name,
        schema=ApprovalPending,
        description="A step now waits for one of its roles (new request, next step, escalation): for notification",
    )
    app = runtime.http_app
    app.state.runtime = runtime
    app.include_router(handlers.router)
    return app
