"""The outbox relay: publishes committed outbox rows to Kafka in order, then marks them published.

At least once: a relay that dies after publishing and before marking publishes those rows again, with
the same ``message-id`` header, and consumers' inboxes absorb the repeat. One relay per service is active
at a time (a Postgres advisory lock), which keeps rows in commit order per key across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from prometheus_client import Counter, Gauge

from shared.db.lease import leased
from shared.db.pool import DbConnection
from shared.faults import RELAY_AFTER_PUBLISH_BEFORE_MARK, RELAY_HELD, armed, fault_point
from shared.messaging.envelope import MESSAGE_ID_HEADER
from shared.messaging.streaks import FailureStreaks

log = structlog.get_logger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox rows relayed to Kafka", ["topic"])
PENDING = Gauge("outbox_last_batch_rows", "Rows in the relay's last batch")
SET_ASIDE = Counter(
    "outbox_set_aside_total", "Outbox rows the broker refused for good (too large …), set aside: alert on it", ["topic"]
)
REPLAY_WINDOW = timedelta(days=7)


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        batch_size: int = 500,
        idle_ms: int = 20,
        broker_epoch: str | None = None,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._idle = idle_ms / 1000
        self._epoch = broker_epoch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_key = f"outbox-relay:{schema}"
        self._failures = FailureStreaks("the outbox relay")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures.failed(exc)
                log.exception("relay_failed_retrying")
                await asyncio.sleep(1)

    def stuck(self, *, after_s: float = 30.0) -> str | None:
        """Why the relay counts as stuck (failing for more than ``after_s`` seconds in a row), or None: readiness
        reports it, so a relay that publishes nothing no longer hides behind a green /health/ready (issue 17)."""
        return self._failures.stuck(after_s=after_s)

    async def _lead(self) -> None:
        # One relay per schema among the replicas (shared/db/lease.py); its work runs on the lease's own
        # connection, so a relay that lost its session cannot carry on.
        async with leased(self._pool, self._lock_key) as lease:
            conn = lease.conn
            await conn.add_listener(f"{self._schema}_outbox", self._notified)
            try:
                if self._epoch:
                    requeued = await conn.fetchval(
                        "SELECT relay_switch_epoch($1, now() - $2::interval)", self._epoch, REPLAY_WINDOW
                    )
                    if requeued:
                        log.info("outbox_requeued_for_new_broker", rows=requeued, epoch=self._epoch)
                while True:
                    # Clear before looking, so a NOTIFY that lands while we look is not lost.
                    self._wake.clear()
                    if not await self.relay_once(conn):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), timeout=self._idle * 10)
            finally:
                await conn.remove_listener(f"{self._schema}_outbox", self._notified)

    async def relay_once(self, conn: DbConnection) -> int:
        if armed(RELAY_HELD):  # tests: a relay that has not got round to its rows yet, for as long as it takes
            return 0
        rows = await conn.fetch("SELECT * FROM outbox_pending($1)", self._batch_size)
        PENDING.set(len(rows))
        if not rows:
            self._failures.passed()
            return 0
        sent: list[tuple[Any, asyncio.Future[Any]]] = []
        for row in rows:
            headers = [(k, str(v).encode()) for k, v in (row["headers"] or {}).items()]
            headers.append((MESSAGE_ID_HEADER, str(row["message_id"]).encode()))
            headers.append(("content-type", b"application/json"))
            try:
                future = await self._producer.send(
                    row["topic"], value=bytes(row["payload"]), key=row["key"].encode(), headers=headers
                )
            except Exception as exc:
                if _retriable(exc):
                    raise
                await self._set_aside(conn, row, exc)
                continue
            sent.append((row, future))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        published = []
        for (row, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                if _retriable(result):
                    raise result  # the broker is away: the batch is sent again (inboxes absorb the repeats)
                await self._set_aside(conn, row, result)
            else:
                published.append(row)
        fault_point(RELAY_AFTER_PUBLISH_BEFORE_MARK)
        await conn.fetchval("SELECT outbox_mark_published($1::bigint[])", [r["seq"] for r in published])
        for row in published:
            PUBLISHED.labels(row["topic"]).inc()
        self._failures.passed()  # a pass went through: the relay is not stuck
        return len(rows)

    async def _set_aside(self, conn: DbConnection, row: Any, exc: BaseException) -> None:
        """One row the broker will never take must not stop the relay: keep it with the reason and move on."""
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        await conn.fetchval("SELECT outbox_set_aside($1, $2)", row["seq"], reason)
        SET_ASIDE.labels(row["topic"]).inc()
        log.error(
            "outbox_row_set_aside",
            topic=row["topic"],
            seq=row["seq"],
            message_id=str(row["message_id"]),
            bytes=len(row["payload"]),
            reason=reason,
        )


def _retriable(exc: BaseException) -> bool:
    """A broker or network hiccup (try the batch again) rather than a row the broker will never take."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaConnectionError | KafkaTimeoutError)
    return isinstance(exc, OSError | asyncio.TimeoutError)
