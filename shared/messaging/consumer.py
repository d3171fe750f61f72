"""Batch consumption with exactly-once effects.

For each batch the kernel opens one transaction and, per tenant in the batch: records every message id in
the inbox (ids already there are skipped: redeliveries change nothing), hands the new messages to the
service's ``apply`` function, and writes dead letters for messages that can never succeed. The offsets are
acknowledged only after that transaction commits (FastStream ``AckPolicy.NACK_ON_ERROR``); a crash in
between redelivers the batch, and the inbox absorbs it.

A message that makes ``apply`` raise unexpectedly is isolated by re-running the tenant's messages one by
one in savepoints, so it alone is dead-lettered and its partition keeps flowing. Errors that mean "try
again later" (the database unreachable, a serialization failure) fail the whole batch instead, so it is
redelivered.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

import asyncpg
import structlog

from shared.contracts.dead_letters import DeadLetter
from shared.db.pool import DbConnection
from shared.db.uow import NIL_TENANT, UnitOfWork, unit_of_work
from shared.faults import AFTER_COMMIT_BEFORE_ACK, fault_point
from shared.messaging.envelope import Envelope, Parsed
from shared.topics import max_record_bytes

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Reject(Exception):
    """This message can never succeed: dead-letter it with a specific reason."""

    def __init__(
        self, reason: str, *, error_class: str, field: str | None = None, tenant_id: UUID | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_class = error_class
        self.field = field
        self.tenant_id = tenant_id


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
    # the database restarting: "the database system is starting up / shutting down" (issue 24)
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


Rejections = list[tuple[Parsed[T], Reject]]
"""What ``apply`` refused (a conflict, an unknown tenant …): the kernel dead-letters each with its reason."""


class Retry(Exception):
    """The batch cannot be applied yet (e.g. a dependency not yet consumed); redeliver it."""


RETRYABLE: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, Retry)


@dataclass(slots=True)
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True, slots=True)
class BatchConsumer(Generic[T]):
    """What a service supplies for one subscription: how to read a message and how to apply new ones."""

    service: str
    consumer: str
    parse: Callable[[Envelope], tuple[UUID, T]]
    apply: Callable[[UnitOfWork, Sequence[Parsed[T]]], Awaitable[Rejections[T]]]


@dataclass(slots=True)
class _TenantGroup(Generic[T]):
    parsed: list[Parsed[T]] = field(default_factory=list)
    rejected: list[tuple[Envelope, Reject]] = field(default_factory=list)


EXCERPT_CHARS = 16 * 1024
"""A dead letter carries at most this much of the payload (escaped), so it always fits its topic."""


def payload_excerpt(value: bytes) -> tuple[str, bool]:
    """The payload as text (undecodable bytes escaped), cut to EXCERPT_CHARS; and whether it was cut."""
    text = value[: EXCERPT_CHARS + 1].decode("utf-8", "backslashreplace")
    cut = len(text) > EXCERPT_CHARS or len(value) > EXCERPT_CHARS + 1
    return text[:EXCERPT_CHARS], cut


def dead_letter_for(service: str, consumer: str, env: Envelope, rej: Reject, tenant: UUID | None) -> DeadLetter:
    payload, truncated = payload_excerpt(env.value)
    return DeadLetter(
        dead_letter_id=uuid.uuid5(uuid.NAMESPACE_URL, f"dlq:{service}:{consumer}:{env.message_id}"),
        service=service,
        consumer=consumer,
        topic=env.topic,
        partition=env.partition,
        offset=env.offset,
        key=env.key,
        tenant_id=tenant,
        error_class=rej.error_class,
        reason=rej.reason,
        field=rej.field,
        payload=payload,
        payload_bytes=len(env.value),
        payload_sha256=hashlib.sha256(env.value).hexdigest(),
        payload_truncated=truncated,
        received_at=datetime.now(UTC),
    )


def write_dead_letter(uow: UnitOfWork, service: str, consumer: str, env: Envelope, rej: Reject) -> None:
    tenant = uow.require_tenant()
    letter = dead_letter_for(service, consumer, env, rej, None if tenant == NIL_TENANT else tenant)
    uow.publish(topic=f"{env.topic}.dlq", key=env.key or "", message=letter, message_id=letter.dead_letter_id)
    log.warning(
        "dead_lettered",
        topic=env.topic,
        offset=env.offset,
        error_class=rej.error_class,
        reason=rej.reason,
        field=rej.field,
    )


async def claim_inbox(conn: DbConnection, consumer: str, tenant: UUID, ids: Sequence[str]) -> set[str]:
    """Record ids in the inbox; returns the ones not seen before (one round trip)."""
    rows = await conn.fetch(
        """
        INSERT INTO inbox (tenant_id, consumer, message_id)
        SELECT $1, $2, unnest($3::text[])
        ON CONFLICT DO NOTHING
        RETURNING message_id
        """,
        tenant,
        consumer,
        list(ids),
    )
    return {r["message_id"] for r in rows}


def _too_large(env: Envelope) -> Reject | None:
    limit = max_record_bytes(env.topic)
    if len(env.value) <= limit:
        return None
    return Reject(f"record is {len(env.value)} bytes, over the topic's limit of {limit}", error_class="too_large")


def _group(spec: BatchConsumer[T], envelopes: Sequence[Envelope]) -> dict[UUID, _TenantGroup[T]]:
    groups: dict[UUID, _TenantGroup[T]] = {}
    for env in envelopes:
        try:
            if (big := _too_large(env)) is not None:
                raise big
            tenant, body = spec.parse(env)
        except Reject as rej:
            groups.setdefault(rej.tenant_id or NIL_TENANT, _TenantGroup()).rejected.append((env, rej))
        except RecursionError:  # a parser that decoded without the kernel's limits
            deep = Reject("payload nests too deep to read", error_class="too_deep")
            groups.setdefault(NIL_TENANT, _TenantGroup()).rejected.append((env, deep))
        except Exception as exc:  # a parser bug must not stall the partition either
            bug = Reject(f"{type(exc).__name__}: {exc}", error_class="unexpected_error")
            groups.setdefault(NIL_TENANT, _TenantGroup()).rejected.append((env, bug))
        else:
            groups.setdefault(tenant, _TenantGroup()).parsed.append(Parsed(env, tenant, body))
    return groups


def _dead_letter_failure(uow: UnitOfWork, spec: BatchConsumer[T], item: Parsed[T], exc: Exception) -> None:
    log.error("apply_failed", event_id=item.envelope.message_id, exc_info=exc)
    rej = Reject(f"{type(exc).__name__}: {exc}", error_class="unexpected_error")
    write_dead_letter(uow, spec.service, spec.consumer, item.envelope, rej)


def _dead_letter_refused(uow: UnitOfWork, spec: BatchConsumer[T], refused: Rejections[T]) -> None:
    for item, rej in refused:
        write_dead_letter(uow, spec.service, spec.consumer, item.envelope, rej)


async def _apply_isolating_poison(uow: UnitOfWork, spec: BatchConsumer[T], items: list[Parsed[T]]) -> int:
    """Apply items together; if that raises unexpectedly, apply them one by one and dead-letter the bad."""
    await uow.flush()
    try:
        async with uow.conn.transaction():
            refused = await spec.apply(uow, items)
            _dead_letter_refused(uow, spec, refused)
            await uow.flush()
        return len(refused)
    except RETRYABLE:
        raise
    except Exception as exc:
        uow.discard_pending()
        if len(items) == 1:
            _dead_letter_failure(uow, spec, items[0], exc)
            return 1
    failed = 0
    for item in items:
        try:
            async with uow.conn.transaction():
                refused = await spec.apply(uow, [item])
                _dead_letter_refused(uow, spec, refused)
                await uow.flush()
            failed += len(refused)
        except RETRYABLE:
            raise
        except Exception as exc:
            uow.discard_pending()
            _dead_letter_failure(uow, spec, item, exc)
            failed += 1
    return failed


async def process_batch(pool: asyncpg.Pool, spec: BatchConsumer[T], envelopes: Sequence[Envelope]) -> BatchOutcome:
    outcome = BatchOutcome()
    groups = _group(spec, envelopes)
    async with unit_of_work(pool) as uow:
        for tenant, group in groups.items():
            await uow.set_tenant(tenant)
            ids = [p.envelope.message_id for p in group.parsed] + [e.message_id for e, _ in group.rejected]
            fresh = await claim_inbox(uow.conn, spec.consumer, tenant, ids)
            outcome.duplicates += len(ids) - len(fresh)
            for env, rej in group.rejected:
                if env.message_id in fresh:
                    write_dead_letter(uow, spec.service, spec.consumer, env, rej)
                    outcome.dead_lettered += 1
            new = [p for p in group.parsed if p.envelope.message_id in fresh]
            if not new:
                continue
            with structlog.contextvars.bound_contextvars(tenant_id=str(tenant)):
                failed = await _apply_isolating_poison(uow, spec, new)
            outcome.dead_lettered += failed
            outcome.applied += len(new) - failed
    fault_point(AFTER_COMMIT_BEFORE_ACK)
    return outcome
