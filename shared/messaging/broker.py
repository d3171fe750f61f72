"""The broker factory and the one way services subscribe.

Every subscriber is a batch consumer in a named consumer group with ``AckPolicy.NACK_ON_ERROR``: offsets
are committed only after the batch's transaction commits; an exception redelivers the batch. FastStream's
default for Kafka (commit on receipt) is never used. Bodies are not validated by FastStream (the kernel
parses each record itself so that one bad record is dead-lettered instead of failing the batch); the
handler's annotation still documents the payload in the AsyncAPI document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import asyncpg
import structlog
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from prometheus_client import REGISTRY, Counter
from pydantic import TypeAdapter, WithJsonSchema

from shared.messaging.consumer import BatchConsumer, process_batch
from shared.messaging.decoding import raw_bodies
from shared.messaging.envelope import Envelope
from shared.messaging.streaks import FailureStreaks
from shared.settings import ServiceSettings
from shared.topology import subscription

T = TypeVar("T")
log = structlog.get_logger(__name__)

CONSUMED = Counter("consumer_records_total", "Records consumed", ["consumer", "outcome"])


class LogContextMiddleware(BaseMiddleware):
    """Binds topic, partition and offsets of the message (or batch) being consumed to every log line."""

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        raw = msg.raw_message
        records = raw if isinstance(raw, (list, tuple)) else (raw,)
        first = records[0] if records else None
        ctx: dict[str, Any] = {"batch_size": len(records)}
        if first is not None:
            ctx |= {"topic": first.topic, "partition": first.partition, "offset": first.offset}
        with structlog.contextvars.bound_contextvars(**ctx):
            return await call_next(msg)


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve local ``$defs`` references in place (contracts are not recursive), so the schema can be
    embedded in another document whole. Keywords beside a ``$ref`` (a field's description) are kept, and
    discriminator mappings (which pointed into ``$defs``) are reduced to the property name, as AsyncAPI
    expects."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: resolve(v) for k, v in node.items() if k != "$ref"}
            return {**resolve(defs[ref.removeprefix("#/$defs/")]), **siblings}
        out = {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def create_broker(settings: ServiceSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        middlewares=(LogContextMiddleware, KafkaPrometheusMiddleware(registry=REGISTRY)),
        enable_idempotence=settings.kafka_idempotent_producer,
        acks="all",
        description=f"The {settings.service_name} service's topics",
    )


def subscribe(
    broker: KafkaBroker,
    *,
    pool: Callable[[], asyncpg.Pool],
    settings: ServiceSettings,
    purpose: str,
    consumer: BatchConsumer[T],
    payload: Any,
    description: str,
    failures: FailureStreaks | None = None,
) -> None:
    """Register ``consumer`` for the subscription declared in shared/topology.py as (service, purpose).

    ``pool`` is called per batch: the pool is created when the service starts, after registration. Each
    batch's partitions are counted in ``failures`` as failing (the batch raised and will be redelivered) or
    passing, for readiness.
    """
    sub = subscription(settings.service_name, purpose)
    streaks = failures or FailureStreaks(f"consumer {consumer.consumer}")

    async def handle(body: list[Any], msg: KafkaMessage) -> None:
        envelopes = [Envelope.from_record(r) for r in msg.raw_message]
        partitions = {f"{r.topic}[{r.partition}]" for r in msg.raw_message}
        try:
            outcome = await process_batch(pool(), consumer, envelopes)
        except Exception as exc:
            wait = max(streaks.failed(exc, partition) for partition in partitions)
            log.warning("batch_retrying", consumer=consumer.consumer, error=f"{type(exc).__name__}: {exc}", wait_s=wait)
            await asyncio.sleep(wait)  # then redelivered (NACK_ON_ERROR), with a backoff while it keeps failing
            raise
        for partition in partitions:
            streaks.passed(partition)
        CONSUMED.labels(consumer.consumer, "applied").inc(outcome.applied)
        CONSUMED.labels(consumer.consumer, "duplicate").inc(outcome.duplicates)
        CONSUMED.labels(consumer.consumer, "dead_lettered").inc(outcome.dead_lettered)

    handle.__name__ = f"on_{purpose}"
    # Documented as the contract, validated by the kernel: FastStream accepts any body here.
    documented = Annotated[Any, WithJsonSchema(inline_schema(TypeAdapter(payload).json_schema()))]
    handle.__annotations__ = {"body": list[documented], "msg": KafkaMessage, "return": None}
    broker.subscriber(
        sub.topic.name,
        group_id=sub.group,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_bodies,  # the kernel reads every record itself, with limits (shared/messaging/decoding.py)
        auto_offset_reset="earliest",
        title=f"{sub.topic.name}:{sub.group}",
        description=description,
    )(handle)


def document_publisher(broker: KafkaBroker, *, topic: str, schema: Any, description: str) -> None:
    """Publishing goes through the outbox relay; this only puts the topic in the AsyncAPI document."""
    broker.publisher(topic, schema=schema, description=description, title=f"{topic}:publish")


def dead_letter_docs(broker: KafkaBroker, topics: Sequence[str]) -> None:
    from shared.contracts.dead_letters import DeadLetter

    for name in topics:
        document_publisher(
            broker,
            topic=f"{name}.dlq",
            schema=DeadLetter,
            description=f"Messages from {name} that can never succeed, with the reason",
        )
