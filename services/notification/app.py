"""Notification's composition root: settings, runtime (pool, broker, relay, HTTP), consumers, routes and the
delivery worker that sends recorded notifications after their transaction commits."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import FastAPI

from services.notification import handlers, use_cases
from services.notification.adapters import secrets_box
from services.notification.adapters.channels import Channels
from services.notification.adapters.readiness import READINESS
from services.notification.adapters.targets import OutboundPolicy
from services.notification.settings import NotificationSettings
from shared import topics
from shared.contracts.approvals import ApprovalPending
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import InvoiceEvent
from shared.contracts.notification import DeliveryOutcome
from shared.contracts.rating import ThresholdCrossed
from shared.messaging.consumer import TRANSIENT_ERRORS
from shared.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


def create_app(settings: NotificationSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Notification",
        description=(
            "Invoices, payment reminders, overage alerts, renewal notices and approval requests by email (SMTP), "
            "SMS (HTTP gateway) and signed webhooks, by each recipient's preferences, exactly once. Consumes "
            "invoicing.lifecycle.v1, rating.thresholds.v1, approvals.pending.v1, catalog.events.v1 and "
            "billing.clock.v1; publishes each delivery outcome on notification.deliveries.v1."
        ),
    )
    runtime.subscribe(
        purpose="invoices",
        consumer=handlers.INVOICES,
        payload=InvoiceEvent,
        description="Finalized invoices (emailed, PDF attached when carried) and payments / voids (reminders stop)",
    )
    runtime.subscribe(
        purpose="thresholds",
        consumer=handlers.THRESHOLDS,
        payload=ThresholdCrossed,
        description="Bucket and usage levels crossed: overage alerts and bucket warnings",
    )
    runtime.subscribe(
        purpose="approvals",
        consumer=handlers.APPROVALS,
        payload=ApprovalPending,
        description="A step waits for roles: its approvers are told",
    )
    runtime.subscribe(
        purpose="catalog",
        consumer=handlers.CATALOG,
        payload=CatalogEvent,
        description="Tenants, clients, users (staff and contacts), plans and assignments (term renewals)",
    )
    runtime.subscribe(
        purpose="clock",
        consumer=handlers.CLOCK,
        payload=ClockTick,
        description="Billing time: payment reminders, renewal notices and delivery retries fall due",
    )
    runtime.publishes(
        topic=topics.NOTIFICATION_DELIVERIES.name,
        schema=DeliveryOutcome,
        description="Each delivery outcome of a notification: sent, retrying, failed, bounced or suppressed",
    )
    use_cases.configure_links(settings.public_url)
    secrets_box.configure(settings.secrets_keys)
    policy = OutboundPolicy(frozenset(settings.outbound_allow_hosts.split(",")))
    channels = Channels(policy)
    idle_s = settings.delivery_idle_ms / 1000

    async def deliver_forever() -> None:
        while True:
            try:
                sent = await use_cases.deliver_due(runtime.pool, channels, limit=settings.delivery_batch)
            except TRANSIENT_ERRORS:
                log.warning("delivery_pass_failed", exc_info=True)
                sent = 0
            except Exception:
                log.exception("delivery_pass_crashed")
                sent = 0
            if not sent:
                await asyncio.sleep(idle_s)

    async def start_worker(rt: ServiceRuntime) -> None:
        rt.run_in_background(deliver_forever(), name="delivery-worker")

    async def stop_channels(_: ServiceRuntime) -> None:
        await channels.close()

    runtime.on_start(start_worker)
    runtime.on_stop(stop_channels)
    app = runtime.http_app
    app.state.runtime = runtime
    app.state.outbound_policy = policy
    app.include_router(handlers.router)
    return app
