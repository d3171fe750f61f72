"""Catalog's composition root: settings, runtime (pool, broker, relay, HTTP), routes, the clock scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from fastapi import FastAPI

from services.catalog import handlers, use_cases
from services.catalog.adapters.readiness import READINESS
from services.catalog.adapters.scheduler import WallClockScheduler
from services.catalog.adapters.throttle import SignInLimits, SignInThrottle
from services.catalog.domain.live_close import CloseRules
from services.catalog.handlers import router
from services.catalog.settings import CatalogSettings
from shared import topics
from shared.auth import TokenIssuer
from shared.clock.barrier import CloseBarrier
from shared.clock.lag import ConsumerLagProbe
from shared.clock.outboxes import ServiceOutboxes
from shared.contracts.approvals import ApprovalDecision, ApprovalRequest, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


def create_app(settings: CatalogSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        readiness=READINESS,
        title="Catalog",
        description=(
            "Tenants, clients, services, plans, assignments and discounts; the billing clock. Publishes "
            "catalog.events.v1 (state-carrying), billing.clock.v1 and approvals.requests.v1 (discounts to approve); "
            "consumes approvals.rules.v1 and approvals.decisions.v1."
        ),
    )
    runtime.publishes(
        topic=topics.CATALOG_EVENTS.name,
        schema=CatalogEvent,
        description="Every change to a catalog entity, with its full state",
    )
    runtime.publishes(
        topic=topics.CLOCK_TICKS.name,
        schema=ClockTick,
        description="Billing-clock ticks: wall clock for live tenants, test clock for sandboxes",
    )

    runtime.publishes(
        topic=topics.APPROVAL_REQUESTS.name,
        schema=ApprovalRequest,
        description="Discounts that crossed an approval rule, held pending until a decision",
    )
    runtime.subscribe(
        purpose="rules",
        consumer=handlers.RULES,
        payload=ApprovalRuleSet,
        description="Each tenant's approval rules (state-carrying): discounts are checked against them when saved",
    )
    runtime.subscribe(
        purpose="decisions",
        consumer=handlers.DECISIONS,
        payload=ApprovalDecision,
        description="Final approval decisions: a pending discount becomes approved or rejected",
    )

    # Settled = every declared group caught up and every service's outbox relayed (shared/clock/lag.py).
    outboxes = ServiceOutboxes(urls=settings.other_services(), own=("catalog", lambda: runtime.pool))
    lag_probe = ConsumerLagProbe(settings.kafka_bootstrap_servers, outboxes=outboxes)
    # Live periods close at local midnight once the grace has passed and the barrier says nothing published
    # before is still in flight (services/catalog/domain/live_close.py).
    close = use_cases.LiveClose(
        rules=CloseRules(
            grace=timedelta(seconds=settings.close_grace_seconds),
            max_wait=timedelta(seconds=settings.close_max_wait_seconds),
        ),
        barrier=CloseBarrier(lag_probe, outboxes),
        barrier_timeout_s=max(30.0, settings.clock_tick_seconds),
    )
    offset = timedelta(seconds=settings.wall_clock_offset_seconds)

    async def scheduler(rt: ServiceRuntime) -> None:
        async def tick(now: datetime) -> int:
            return await use_cases.tick_live_tenants(rt.pool, now=now, close=close)

        every = settings.clock_tick_seconds  # one replica at a time ticks (adapters/scheduler.py)
        ticker = WallClockScheduler(rt.pool, tick, every_s=every, now=lambda: datetime.now(UTC) + offset)
        rt.run_in_background(ticker.run(), name="wall-clock-scheduler")

    runtime.on_start(scheduler)
    app = runtime.http_app
    app.state.runtime = runtime
    app.state.admin_token = settings.admin_token
    app.state.token_issuer = TokenIssuer(private_key_pem=settings.auth_private_key, key_id=settings.auth_key_id)
    app.state.token_ttl = timedelta(minutes=settings.token_ttl_minutes)
    app.state.signin_throttle = SignInThrottle(
        SignInLimits(per_client=settings.signin_limit_per_client, per_key=settings.signin_limit_per_key)
    )
    app.state.lag_probe = lag_probe
    app.state.advance_timeout_s = settings.clock_advance_timeout_s
    app.include_router(router)
    return app
