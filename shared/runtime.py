"""What every service process is made of, built once per process by the service's ``app.py``.

``ServiceRuntime`` owns the pool, the broker, the outbox relay and the HTTP app (health, readiness,
the outbox backlog, Prometheus metrics, OpenAPI and AsyncAPI documents, the service's audit report
``GET /v1/audit`` and its per-tenant readiness ``GET /v1/readiness``). A service's composition root creates
one with its readiness check, registers its subscriptions and routes on it, and hands ``runtime.http_app``
to uvicorn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI, get_asyncapi_html
from prometheus_client import make_asgi_app

from shared import principals
from shared.audit_api import audit_router
from shared.auth import TokenVerifier
from shared.db.pool import create_pool
from shared.http_text import RejectUnstorableText
from shared.messaging.broker import create_broker, dead_letter_docs, document_publisher, subscribe
from shared.messaging.consumer import BatchConsumer
from shared.messaging.progress import ProgressWatch
from shared.messaging.relay import OutboxRelay
from shared.messaging.streaks import FailureStreaks
from shared.openapi import document_every_answer
from shared.readiness import ReadinessCheck, readiness_router
from shared.settings import ServiceSettings
from shared.topics import PRODUCER_MAX_REQUEST_BYTES
from shared.topology import of_service, subscription

log = structlog.get_logger(__name__)

Hook = Callable[["ServiceRuntime"], Awaitable[None]]
SHUTDOWN_TIMEOUT_S = 15.0


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, title: str, description: str, readiness: ReadinessCheck) -> None:
        self.settings = settings
        self.broker: KafkaBroker = create_broker(settings)
        self._pool: asyncpg.Pool | None = None
        self._relay: OutboxRelay | None = None
        self._producer: AIOKafkaProducer | None = None
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._background: list[asyncio.Task[None]] = []
        self._consumer_failures: list[FailureStreaks] = []  # one per subscription, for readiness
        groups = of_service(settings.service_name)  # are they making progress? (shared/messaging/progress.py)
        self._progress = ProgressWatch(groups, stuck_after_s=settings.consumer_stuck_after_s) if groups else None
        self.http_app = FastAPI(title=title, description=description, lifespan=self._lifespan)
        self.http_app.state.token_verifier = TokenVerifier.from_setting(settings.auth_public_keys)
        # Each token is also checked against the user as catalog last published them (shared/principals.py).
        self.http_app.state.principal_standing = lambda principal: principals.standing(self.pool, principal)
        self.http_app.include_router(self._ops_router())
        # Every service answers for its own audit trail (GET /v1/audit); see shared/audit_api.py.
        self.http_app.include_router(audit_router(settings.service_name, lambda: self.pool))
        # Whether this service's read model is ready for the caller's tenant (shared/readiness.py).
        self.http_app.include_router(readiness_router(settings.service_name, lambda: self.pool, readiness))
        self.http_app.mount("/metrics", make_asgi_app())
        document_every_answer(self.http_app)  # 401/403/404/409/413/422 and CSV in the OpenAPI document
        self.http_app.add_middleware(RejectUnstorableText)  # NUL, lone surrogates: a 422 naming where

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the pool exists only while the service runs")
        return self._pool

    def on_start(self, hook: Hook) -> None:
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    def run_in_background(self, coro: Awaitable[None], *, name: str) -> None:
        self._background.append(asyncio.ensure_future(coro))
        self._background[-1].set_name(name)

    def subscribe(self, *, purpose: str, consumer: BatchConsumer[Any], payload: Any, description: str) -> None:
        self._consumer_failures.append(FailureStreaks(f"consumer {consumer.consumer}"))
        subscribe(
            self.broker,
            pool=lambda: self.pool,
            settings=self.settings,
            purpose=purpose,
            consumer=consumer,
            payload=payload,
            description=description,
            failures=self._consumer_failures[-1],
        )
        dead_letter_docs(self.broker, [subscription(self.settings.service_name, purpose).topic.name])

    def publishes(self, *, topic: str, schema: Any, description: str) -> None:
        """Document a topic this service publishes to (through its outbox) in the AsyncAPI document."""
        document_publisher(self.broker, topic=topic, schema=schema, description=description)

    def asyncapi(self) -> dict[str, Any]:
        spec = AsyncAPI(
            self.broker,
            title=f"{self.settings.service_name} events",
            version="1.0.0",
            description=self.http_app.description,
            schema_version="3.0.0",
        )
        return spec.to_specification().to_jsonable()  # type: ignore[no-any-return]

    def _ops_router(self) -> APIRouter:
        router = APIRouter(tags=["operations"])

        @router.get("/health/live", summary="Liveness: the process is up")
        async def live() -> dict[str, str]:
            return {"status": "ok", "service": self.settings.service_name}

        @router.get("/health/ready", summary="Readiness: broker and database answer")
        async def ready() -> JSONResponse:
            checks = {"database": False, "broker": False}
            try:
                checks["database"] = self._pool is not None and await self._pool.fetchval("SELECT 1") == 1
            except Exception:
                log.warning("readiness_database_failed", exc_info=True)
            try:
                checks["broker"] = await self.broker.ping(timeout=2.0)
            except Exception:
                log.warning("readiness_broker_failed", exc_info=True)
            relay = self._relay.stuck() if self._relay is not None else None
            consumers = [r for f in self._consumer_failures if (r := f.stuck()) is not None]
            if self._progress is not None and (idle := self._progress.stuck()) is not None:
                consumers.append(idle)
            checks["relay"], checks["consumers"] = relay is None, not consumers
            stuck = "; ".join(([relay] if relay else []) + consumers)
            ok = all(checks.values())
            answer: dict[str, Any] = {"ready": ok, "checks": checks} | ({"reason": stuck} if stuck else {})
            return JSONResponse(answer, status_code=200 if ok else 503)

        @router.get(
            "/health/outbox",
            summary="Outbox rows committed and not yet relayed to Kafka, across tenants (the test clock waits on it)",
        )
        async def outbox() -> JSONResponse:
            if self._pool is None:
                return JSONResponse({"service": self.settings.service_name, "pending": None}, status_code=503)
            pending = await self._pool.fetchval("SELECT outbox_backlog()")
            set_aside = await self._pool.fetchval("SELECT outbox_set_aside_count()")
            marks = await self._pool.fetchrow("SELECT * FROM outbox_marks()")
            assert marks is not None  # the function returns one row
            return JSONResponse(
                {"service": self.settings.service_name, "pending": pending, "set_aside": set_aside}
                | {"allocated": marks["allocated"], "relayed_through": marks["relayed_through"]}
            )

        @router.get("/asyncapi.json", summary="The AsyncAPI 3 document of this service's topics")
        async def asyncapi_json() -> dict[str, Any]:
            return self.asyncapi()

        @router.get("/asyncapi", summary="The AsyncAPI document, rendered", response_class=HTMLResponse)
        async def asyncapi_html() -> HTMLResponse:
            spec = AsyncAPI(self.broker, title=f"{self.settings.service_name} events", schema_version="3.0.0")
            return HTMLResponse(get_asyncapi_html(spec.to_specification()))

        return router

    async def _start_broker(self) -> None:
        """``KafkaBroker.start()`` with the subscribers started together rather than one after another.

        Starting a consumer waits for its group's first join, which a broker may hold for seconds (Tansu holds
        it for half the session timeout); one after another, a service with five groups took five times that
        before it served anything. FastStream's own start is connect, start each subscriber, start each
        publisher, mark running: the same steps, the subscribers concurrently.
        """
        await self.broker.connect()
        await asyncio.gather(*(sub.start() for sub in self.broker.subscribers))
        for pub in self.broker.publishers:
            await pub.start()
        self.broker.running = True

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        s = self.settings
        self._pool = await create_pool(s.database_url, max_size=s.db_pool_max)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id=f"{s.service_name}-relay",
            acks="all",
            enable_idempotence=s.kafka_idempotent_producer,
            linger_ms=2,
            max_request_size=PRODUCER_MAX_REQUEST_BYTES,  # the largest topic's limit; the broker enforces each topic's
        )
        await self._producer.start()
        self._relay = OutboxRelay(
            pool=self._pool,
            producer=self._producer,
            schema=s.service_name,
            batch_size=s.relay_batch_size,
            idle_ms=s.relay_idle_ms,
            broker_epoch=s.broker_epoch,
        )
        self._relay.start()
        for hook in self._on_start:
            await hook(self)
        await self._start_broker()
        if self._progress is not None:
            self.run_in_background(self._progress.run(s.kafka_bootstrap_servers), name="consumer-progress")
        log.info("service_started", port=s.http_port)
        try:
            yield
        finally:
            try:
                # Bounded: with the broker or Postgres already gone, a graceful stop must not hang forever.
                await asyncio.wait_for(self._shutdown(), timeout=SHUTDOWN_TIMEOUT_S)
                log.info("service_stopped")
            except TimeoutError:
                log.error("service_stop_timed_out", timeout_s=SHUTDOWN_TIMEOUT_S)
                self._pool.terminate()

    async def _shutdown(self) -> None:
        assert self._relay is not None
        assert self._producer is not None
        assert self._pool is not None
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.broker.stop()
        for hook in self._on_stop:
            await hook(self)
        await self._relay.stop()
        await self._producer.stop()
        await self._pool.close()
