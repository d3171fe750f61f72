"""Metering use cases. Kafka batches and HTTP batches run the same `ingest`, each inside one transaction
(the kernel's batch unit of work, or the request's), so a record is stored whole or not at all.

`ingest` per record, for one tenant:

1. A record that cannot be read (`Malformed`) is dead-lettered with its field, code and reason.
2. The rest are decided against metering's copy of the catalog and the tenant's approval rules
   (`domain.acceptance`). A rejected record (wrong unit, time on a non-Time service) is dead-lettered
   and does not claim its id, so a corrected record with the same id is still welcome.
3. The others claim their idempotency key in ``record_keys`` (unpartitioned, so it holds across months).
   A key already there with the same content fingerprint is a ``duplicate`` (no-op); with different
   content, a ``conflict`` (dead-lettered, reason ``conflict``).
4. New records are stored in their month's partition as accepted, unmapped or held; accepted ones are
   published to rating, held ones send an approval request; all through the outbox, in the transaction.
5. One audit row names every record the call stored or refused.

The same id twice in one call is judged in order: the later copy is a duplicate or a conflict of the
first.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

import structlog
from prometheus_client import Counter

from services.metering.adapters.repository import DeadLetterRow, KeyRow, MeteringRepository, RawRow
from services.metering.domain.acceptance import (
    Decision,
    Verdict,
    decide,
    decide_time,
    plan_in_force,
    record_id,
    time_record_id,
)
from services.metering.domain.approval import approval_request, request_id_for
from services.metering.domain.fingerprint import fingerprint
from services.metering.domain.validation import Malformed, read_record
from services.metering.domain.window import DAYS_AHEAD, DAYS_BACK, Window, accepted_window
from shared import audit, principals, topics
from shared.contracts.approvals import (
    ApprovalDecision,
    ApprovalItemType,
    ApprovalOutcome,
    ApprovalRuleSet,
)
from shared.contracts.base import format_decimal
from shared.contracts.catalog import AssignmentState, CatalogEvent, CompanyState, ServiceState, TenantState, UserState
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord
from shared.db.uow import UnitOfWork
from shared.faults import INGEST_BEFORE_COMMIT, fault_point
from shared.messaging.consumer import Reject, Rejections, payload_excerpt
from shared.messaging.envelope import Envelope, Parsed
from shared.periods import local_date

log = structlog.get_logger(__name__)

INGESTED = Counter(
    "metering_records_total",
    "Records metering answered, by record type, channel and answer (accepted, unmapped, held, duplicate, "
    "conflict, rejected)",
    ["record_type", "channel", "outcome"],
)
SETTLED = Counter(
    "metering_records_settled_total",
    "Records that left unmapped or held, by record type and new status",
    ["record_type", "status"],
)

R = TypeVar("R", UsageRecord, TimeEntry)
MODEL: dict[str, Any] = {"usage": UsageRecord, "time": TimeEntry}
ID_FIELD = {"usage": "event_id", "time": "entry_id"}


@dataclass(frozen=True, slots=True)
class Incoming(Generic[R]):
    """One record as received: its contract (or why it is unreadable), and ``letter``, which gives its
    payload text and the id its dead letter gets (Kafka: the kernel's, from the message id; HTTP: from the
    payload, so a re-sent bad record updates the same letter). ``letter`` is called only for a record that
    is refused: the others never need either."""

    body: R | Malformed
    letter: Callable[[], tuple[str, UUID]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer for one record. ``answer``: accepted, duplicate, conflict or rejected; ``state`` (for
    accepted): accepted, unmapped or held."""

    answer: str
    record_id: UUID | None = None
    state: str | None = None
    field: str | None = None
    code: str | None = None
    reason: str | None = None
    error_class: str | None = None
    dead_letter_id: UUID | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.answer}
        for name in ("record_id", "state", "field", "code", "reason", "dead_letter_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value) if isinstance(value, UUID) else value
        return out


def http_dead_letter_id(tenant_id: UUID, record_type: str, payload: str) -> UUID:
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"metering:http:{tenant_id}:{record_type}:{digest}")


def external_id(record: UsageRecord | TimeEntry) -> str:
    return record.event_id if isinstance(record, UsageRecord) else record.entry_id


def occurred(record: UsageRecord | TimeEntry) -> datetime:
    return record.occurred_at if isinstance(record, UsageRecord) else record.start_time


# -- deciding against the catalog ---------------------------------------------------------------------
@dataclass(slots=True)
class Context:
    """What a batch is decided against, loaded in one multi-row statement."""

    tenant_known: bool
    rules: ApprovalRuleSet | None
    companies: dict[tuple[str, str], Any]
    services: dict[str, Any]
    users: dict[str, UUID]
    plans: dict[UUID, list[tuple[date, date | None]]]  # the found clients' assignments, for no_active_plan
    timezone: str = "UTC"  # the tenant's: plans are in force on its days
    window: Window | None = None  # the record times accepted

    @classmethod
    async def load(
        cls, repo: MeteringRepository, tenant: UUID, records: Sequence[UsageRecord | TimeEntry], *, now: datetime
    ) -> Context:
        found = await repo.batch_context(
            tenant,
            {(r.source, r.company_ref) for r in records},
            {r.service_ref for r in records},
            {r.user_ref for r in records if isinstance(r, TimeEntry)},
        )
        return cls(
            found.tenant_known,
            found.rules,
            dict(found.companies),
            dict(found.services),
            found.users,
            found.plans,
            found.timezone,
            accepted_window(live=found.live, clock=found.clock, now=now, days_back=WINDOW.back, days_ahead=WINDOW.ahead)
            if found.tenant_known
            else None,
        )

    def decide(self, r: UsageRecord | TimeEntry, rid: UUID | None = None) -> Decision:
        company, service = self.companies.get((r.source, r.company_ref)), self.services.get(r.service_ref)
        if isinstance(r, UsageRecord):
            return decide(
                r, company, service, tenant_known=self.tenant_known, rules=self.rules, rid=rid, window=self.window
            )
        return decide_time(
            r,
            company,
            service,
            user_id=self.users.get(r.user_ref),
            tenant_known=self.tenant_known,
            rules=self.rules,
            rid=rid,
            window=self.window,
        )


@dataclass(frozen=True, slots=True)
class WindowDays:
    back: int = DAYS_BACK
    ahead: int = DAYS_AHEAD


WINDOW = WindowDays()
"""The accepted window's days, set once by the composition root from MeteringSettings (`configure`)."""


def configure(*, days_back: int, days_ahead: int) -> None:
    global WINDOW
    WINDOW = WindowDays(days_back, days_ahead)


def _no_plan(ctx: Context, decided: Sequence[tuple[Any, Decision]]) -> set[UUID]:
    """Record ids of mapped records whose client has no plan in force on the record's day (the tenant's, as
    rating judges it: docs/billing-rules.md §1)."""
    return {
        d.accepted.record_id
        for r, d in decided
        if d.accepted is not None
        and not plan_in_force(ctx.plans.get(d.accepted.company_id, ()), local_date(occurred(r), tz=ctx.timezone))
    }


def _raw(record: UsageRecord | TimeEntry, decision: Decision, record_id: UUID, no_plan: bool, content: str) -> RawRow:
    """The stored row; ``content`` is the record's content fingerprint. The payload is the record as
    validated (defaults filled, extras kept), as JSON text: Postgres parses it into the jsonb column."""
    request_id = (
        request_id_for(record.tenant_id, "usage" if isinstance(record, UsageRecord) else "time", record_id)
        if decision.verdict is Verdict.HELD
        else None
    )
    common: dict[str, Any] = {
        "record_id": record_id,
        "occurred_at": occurred(record),
        "source": record.source,
        "external_id": external_id(record),
        "fingerprint": content,
        "status": decision.verdict.value,
        "reason": decision.reason,
        "reason_code": decision.code,
        "company_ref": record.company_ref,
        "service_ref": record.service_ref,
        "company_id": decision.company_id,
        "service_id": decision.service_id,
        "no_active_plan": no_plan,
        "request_id": request_id,
        "payload": record.model_dump_json(),
    }
    if isinstance(record, UsageRecord):
        return RawRow(**common, kind=record.kind.value, quantity=record.quantity, unit=record.unit)
    user_id = decision.accepted.user_id if isinstance(decision.accepted, AcceptedTime) else None
    return RawRow(
        **common,
        end_time=record.end_time,
        user_ref=record.user_ref,
        user_id=user_id,
        hours=record.hours,
        billable=record.billable,
    )


def _publish_effects(
    uow: UnitOfWork, record: UsageRecord | TimeEntry, decision: Decision, at: datetime, *, actor: str
) -> None:
    """Accepted: to rating. Held: an approval request (rating hears of it only once approved), naming who
    submitted it (``actor`` when it is a user, else the sending system) and, for time, whose time it is."""
    accepted = decision.accepted
    if accepted is None:
        return
    if decision.verdict is Verdict.ACCEPTED:
        uow.publish(
            topic=topics.METERING_ACCEPTED.name, key=accepted.key(), message=accepted, message_id=accepted.record_id
        )
    elif decision.verdict is Verdict.HELD and decision.rule is not None:
        if isinstance(record, UsageRecord):
            value, rt = record.quantity, "usage"
            summary = f"{record.quantity} {record.unit or ''} of {record.service_ref} for {record.company_ref}"
            details: dict[str, Any] = {"source": record.source, "event_id": record.event_id, "kind": record.kind.value}
        else:
            value, rt = record.hours, "time"
            ticket = f" on {record.ticket_ref}" if record.ticket_ref else ""
            summary = f"{record.hours.normalize():f} h by {record.user_ref}{ticket} ({record.company_ref})"
            details = {
                "source": record.source,
                "entry_id": record.entry_id,
                "user_ref": record.user_ref,
                "start_time": record.start_time.isoformat(),
                "end_time": record.end_time.isoformat(),
                "notes": record.notes,
            }
        for_whom = None
        if isinstance(record, TimeEntry):
            user_id = accepted.user_id if isinstance(accepted, AcceptedTime) else None
            for_whom = f"user:{user_id}" if user_id else record.user_ref
        request = approval_request(
            requested_by=actor if actor.startswith("user:") else f"source:{record.source}",
            requested_for=for_whom,
            service_code=None if isinstance(record, TimeEntry) else record.service_ref,
            tenant_id=record.tenant_id,
            record_type=rt,
            record_id=accepted.record_id,
            company_ref=record.company_ref,
            value=value,
            rule=decision.rule,
            summary=summary,
            details=details,
            at=at,
        )
        uow.publish(
            topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id
        )


# -- ingesting ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Decided:
    """A first copy of an id that was not rejected, with what is worked out for it exactly once."""

    index: int
    record: Any  # UsageRecord | TimeEntry
    key: tuple[str, str]  # (source, external id)
    record_id: UUID
    fingerprint: str
    decision: Decision


async def ingest(
    uow: UnitOfWork,
    record_type: str,
    items: Sequence[Incoming[Any]],
    *,
    channel: str,
    actor: str,
    now: datetime,
    own_time_of: UUID | None = None,
) -> list[Outcome]:
    """Answer every item (same order). See the module docstring. ``own_time_of``: the user reporting their own
    time (a technician): an entry of anyone else is rejected ``not_your_time``."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    outcomes: list[Outcome | None] = [None] * len(items)
    letters: list[DeadLetterRow] = []
    id_field = ID_FIELD[record_type]

    def refuse(i: int, item: Incoming[Any], *, error_class: str, code: str, field: str | None, reason: str) -> None:
        body = item.body
        source = body.source
        ext = external_id(body) if not isinstance(body, Malformed) else body.external_id
        payload, letter_id = item.letter()
        letters.append(
            DeadLetterRow(letter_id, record_type, channel, source, ext, error_class, code, field, reason, payload)
        )
        answer = "conflict" if error_class == "conflict" else "rejected"
        outcomes[i] = Outcome(
            answer, field=field, code=code, reason=reason, error_class=error_class, dead_letter_id=letter_id
        )

    # 1. unreadable records; the first copy of each id goes on, later copies wait for the next round
    first: dict[tuple[str, str], int] = {}
    later: list[int] = []
    for i, item in enumerate(items):
        body = item.body
        if isinstance(body, Malformed):
            refuse(i, item, error_class=body.error_class, code=body.code, field=body.field, reason=body.reason)
            continue
        key = (body.source, external_id(body))
        if key in first:
            later.append(i)
        else:
            first[key] = i

    # 2. decide; each record's id and content fingerprint are worked out once, here
    decided: list[_Decided] = []
    ctx: Context | None = None
    if first:
        records: list[UsageRecord | TimeEntry] = [_readable(items[i].body) for i in first.values()]
        ctx = await Context.load(repo, tenant, records, now=now)
        for (key, i), r in zip(first.items(), records, strict=True):
            rid = _record_id(r)
            if own_time_of is not None and isinstance(r, TimeEntry) and ctx.users.get(r.user_ref) != own_time_of:
                why = f"user_ref {r.user_ref!r} is not you: a technician reports their own time only"
                refuse(i, items[i], error_class="validation_error", code="not_your_time", field="user_ref", reason=why)
                continue
            d = ctx.decide(r, rid)
            if d.verdict is Verdict.REJECTED:
                refuse(
                    i,
                    items[i],
                    error_class="validation_error",
                    code=d.code or "invalid_value",
                    field=d.field,
                    reason=d.reason or "rejected",
                )
            else:
                decided.append(_Decided(i, r, key, rid, fingerprint(r), d))

    # 3. claim keys and store the records whose key was new, in one statement (rows are built for all, the
    #    statement keeps those it claimed)
    keys = [KeyRow(x.key[0], x.key[1], x.record_id, x.fingerprint, occurred(x.record)) for x in decided]
    no_plan = _no_plan(ctx, [(x.record, x.decision) for x in decided]) if ctx is not None else set()
    candidates = [_raw(x.record, x.decision, x.record_id, x.record_id in no_plan, x.fingerprint) for x in decided]
    new = await repo.claim_and_store(tenant, record_type, keys, candidates, now)
    fresh = [x for x in decided if x.key in new]
    rows = [row for x, row in zip(decided, candidates, strict=True) if x.key in new]
    no_plan = {x.record_id for x in fresh if x.record_id in no_plan}
    seen = [x for x in decided if x.key not in new]
    if seen:
        stored = await repo.fingerprints(tenant, record_type, [x.key for x in seen])
        for x in seen:
            content, rid = stored[x.key]
            if content == x.fingerprint:
                outcomes[x.index] = Outcome("duplicate", record_id=rid)
            else:
                refuse(
                    x.index,
                    items[x.index],
                    error_class="conflict",
                    code="conflict",
                    field=id_field,
                    reason=f"{id_field} {x.key[1]!r} from {x.key[0]!r} was already received with different content",
                )

    # 4. publish the new ones
    for x in fresh:
        d = x.decision
        _publish_effects(uow, x.record, d, now, actor=actor)
        outcomes[x.index] = Outcome(
            "accepted", record_id=x.record_id, state=d.verdict.value, field=d.field, code=d.code, reason=d.reason
        )
    await repo.insert_dead_letters(tenant, letters, now)

    # 5. audit what changed
    if rows or letters:
        await audit.record(
            uow,
            actor=actor,
            action=f"{record_type}_ingested",
            entity_type=f"{record_type}_batch",
            entity_id=uuid.uuid4(),
            at=now,
            after={
                "channel": channel,
                "stored": {
                    s: [str(x.record_id) for x in rows if x.status == s] for s in ("accepted", "unmapped", "held")
                },
                "no_active_plan": sorted(str(x) for x in no_plan),
                "dead_lettered": [
                    {"dead_letter_id": str(x.dead_letter_id), "code": x.code, "field": x.field} for x in letters
                ],
            },
        )

    # 6. later copies of an id in the same call, against what was just stored
    if later:
        again = await ingest(uow, record_type, [items[i] for i in later], channel=channel, actor=actor, now=now)
        for i, o in zip(later, again, strict=True):
            outcomes[i] = o
    if rows:
        fault_point(INGEST_BEFORE_COMMIT)
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(items)
    answered: dict[str, int] = {}
    for o in done:
        label = o.state if o.answer == "accepted" and o.state else o.answer
        answered[label] = answered.get(label, 0) + 1
    for label, n in answered.items():
        INGESTED.labels(record_type, channel, label).inc(n)
    return done


def _readable(body: UsageRecord | TimeEntry | Malformed) -> UsageRecord | TimeEntry:
    assert not isinstance(body, Malformed)
    return body


def _record_id(r: UsageRecord | TimeEntry) -> UUID:
    if isinstance(r, UsageRecord):
        return record_id(r.tenant_id, r.source, r.event_id)
    return time_record_id(r.tenant_id, r.source, r.entry_id)


# -- Kafka --------------------------------------------------------------------------------------------
def _kafka_dead_letter_id(consumer: str, message_id: str) -> UUID:
    # the id the kernel gives the letter it publishes on <topic>.dlq (shared.messaging.consumer.dead_letter_for)
    return uuid.uuid5(uuid.NAMESPACE_URL, f"dlq:metering:{consumer}:{message_id}")


def _kafka_letter(consumer: str, envelope: Envelope) -> Callable[[], tuple[str, UUID]]:
    def letter() -> tuple[str, UUID]:
        payload, _ = payload_excerpt(envelope.value)  # as the kernel's letter on <topic>.dlq: bounded
        return payload, _kafka_dead_letter_id(consumer, envelope.message_id)

    return letter


async def _consume(uow: UnitOfWork, record_type: str, consumer: str, items: Sequence[Parsed[Any]]) -> Rejections[Any]:
    incoming = [Incoming(p.body, _kafka_letter(consumer, p.envelope)) for p in items]
    outcomes = await ingest(
        uow, record_type, incoming, channel="kafka", actor=f"kafka:{consumer}", now=datetime.now(UTC)
    )
    return [
        (p, Reject(o.reason or o.answer, error_class=o.error_class or o.answer, field=o.field))
        for p, o in zip(items, outcomes, strict=True)
        if o.answer in ("conflict", "rejected")
    ]


async def accept_usage(uow: UnitOfWork, items: Sequence[Parsed[UsageRecord | Malformed]]) -> Rejections[Any]:
    """billing.usage.v1, in batches: `ingest`; refused records go back to the kernel for <topic>.dlq."""
    return await _consume(uow, "usage", "usage", items)


async def accept_time(uow: UnitOfWork, items: Sequence[Parsed[TimeEntry | Malformed]]) -> Rejections[Any]:
    """billing.time-entries.v1, in batches: `ingest`; refused records go back to the kernel for <topic>.dlq."""
    return await _consume(uow, "time", "time", items)


# -- HTTP ---------------------------------------------------------------------------------------------
def _http_letter(tenant: UUID, record_type: str, raw: Any, given: UUID | None) -> Callable[[], tuple[str, UUID]]:
    def letter() -> tuple[str, UUID]:
        payload = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, separators=(",", ":"))
        return payload, given or http_dead_letter_id(tenant, record_type, payload)

    return letter


async def ingest_http(
    uow: UnitOfWork,
    record_type: str,
    raw_records: Sequence[Any],
    *,
    actor: str,
    now: datetime,
    channel: str = "http",
    dead_letter_ids: Sequence[UUID] | None = None,
    own_time_of: UUID | None = None,
) -> list[Outcome]:
    """An HTTP batch: each element read on its own (a bad one never fails the others), then `ingest`.
    A record whose tenant_id is not the caller's is rejected on tenant_id."""
    tenant = uow.require_tenant()
    model, id_field = MODEL[record_type], ID_FIELD[record_type]
    incoming: list[Incoming[Any]] = []
    for n, raw in enumerate(raw_records):
        body = read_record(raw.encode() if isinstance(raw, str) else raw, model, id_field)
        if not isinstance(body, Malformed) and body.tenant_id != tenant:
            body = Malformed(
                "validation_error",
                "tenant_mismatch",
                f"tenant_id: {body.tenant_id} is not the tenant of the caller's token",
                "tenant_id",
                source=body.source,
                external_id=external_id(body),
            )
        given = dead_letter_ids[n] if dead_letter_ids else None
        incoming.append(Incoming(body, _http_letter(tenant, record_type, raw, given)))
    return await ingest(uow, record_type, incoming, channel=channel, actor=actor, now=now, own_time_of=own_time_of)


class NotFound(LookupError):
    """Nothing of that id for this tenant."""


async def redrive_dead_letter(uow: UnitOfWork, dead_letter_id: UUID, *, actor: str, now: datetime) -> Outcome:
    """Run a dead-lettered record through `ingest` again (after its cause was fixed: the catalog's unit, a
    corrected mapping …). Its answer is recorded on the letter; a letter that fails again stays open."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    letter = await repo.dead_letter(tenant, dead_letter_id)
    if letter is None:
        raise NotFound(f"dead letter {dead_letter_id} not found")
    [outcome] = await ingest_http(
        uow,
        letter["record_type"],
        [letter["payload"]],
        actor=actor,
        now=now,
        channel="redrive",
        dead_letter_ids=[dead_letter_id],
    )
    if outcome.answer in ("accepted", "duplicate"):
        await repo.mark_redriven(tenant, dead_letter_id, outcome.answer, now)
    await audit.record(
        uow,
        actor=actor,
        action="dead_letter_redriven",
        entity_type="dead_letter",
        entity_id=dead_letter_id,
        at=now,
        before={"code": letter["code"], "reason": letter["reason"]},
        after=outcome.as_json(),
    )
    return outcome


async def redrive_unmapped(uow: UnitOfWork, *, actor: str, now: datetime) -> int:
    """Decide every unmapped record of the tenant again now (what catalog events do automatically)."""
    moved = await remap_unmapped(uow, MeteringRepository(uow.conn), actor=actor, now=now)
    await audit.record(
        uow,
        actor=actor,
        action="unmapped_redriven",
        entity_type="unmapped",
        entity_id=uow.require_tenant(),
        at=now,
        after={"settled": moved},
    )
    return moved


# -- queries ------------------------------------------------------------------------------------------
def row_json(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if key in ("tenant_id", "fingerprint"):
            continue
        if isinstance(value, UUID | datetime):
            value = str(value) if isinstance(value, UUID) else value.isoformat()
        elif isinstance(value, Decimal):
            value = format_decimal(value)
        out[key] = value
    return out


async def ingestion_status(uow: UnitOfWork, record_type: str, source: str, ext_id: str) -> dict[str, Any]:
    """Where a record stands: stored (with status and reason) and / or dead-lettered (with reasons)."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    stored = await repo.stored(tenant, record_type, source, ext_id)
    letters = await repo.dead_letters_of(tenant, record_type, source, ext_id)
    if stored is None and not letters:
        raise NotFound(f"no {record_type} record {ext_id!r} from {source!r}")
    return {
        "record_type": record_type,
        "source": source,
        ID_FIELD[record_type]: ext_id,
        "status": stored["status"] if stored is not None else "dead_lettered",
        "record": row_json(stored) if stored is not None else None,
        "dead_letters": [row_json(x) for x in letters],
    }


async def _ids(repo: MeteringRepository, tenant: UUID, company_ref: str | None, service_ref: str | None) -> Any:
    company_id = await repo.company_id_of(tenant, company_ref) if company_ref else None
    service_id = await repo.service_id_of(tenant, service_ref) if service_ref else None
    if (company_ref and company_id is None) or (service_ref and service_id is None):
        raise NotFound(f"company_ref {company_ref!r} / service_ref {service_ref!r} not in metering's catalog")
    return company_id, service_id


async def usage_in_period(
    uow: UnitOfWork, *, company_ref: str | None, service_ref: str | None, start: datetime, end: datetime
) -> dict[str, Any]:
    """Accepted usage in [start, end), per client and service: deltas summed; snapshots listed with the
    one in force at ``start`` (the last before it) and at the end (a snapshot stays in force until the next)."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    company_id, service_id = await _ids(repo, tenant, company_ref, service_ref)
    rows = await repo.records(
        tenant,
        "usage",
        status="accepted",
        company_id=company_id,
        service_id=service_id,
        start=start,
        end=end,
        limit=100_000,
    )
    groups: dict[tuple[UUID, UUID], list[Any]] = {}
    for r in rows:
        groups.setdefault((r["company_id"], r["service_id"]), []).append(r)
    if company_id and service_id:
        groups.setdefault((company_id, service_id), [])
    lines = []
    for (cid, sid), recs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        deltas = [r for r in recs if r["kind"] == "delta"]
        snaps = [r for r in recs if r["kind"] == "snapshot"]
        before = await repo.last_snapshot_before(tenant, cid, sid, start)
        at_end = snaps[-1] if snaps else before
        lines.append(
            {
                "company_id": str(cid),
                "service_id": str(sid),
                "company_ref": recs[0]["company_ref"] if recs else company_ref,
                "service_ref": recs[0]["service_ref"] if recs else service_ref,
                "delta_total": format_decimal(sum((r["quantity"] for r in deltas), Decimal(0))),
                "delta_records": len(deltas),
                "snapshot_in_force_at_start": format_decimal(before["quantity"]) if before else None,
                "snapshot_in_force_at_end": format_decimal(at_end["quantity"]) if at_end else None,
                "snapshots": [
                    {"occurred_at": r["occurred_at"].isoformat(), "quantity": format_decimal(r["quantity"])}
                    for r in snaps
                ],
            }
        )
    return {"start": start.isoformat(), "end": end.isoformat(), "lines": lines, "records": [row_json(r) for r in rows]}


async def time_in_period(
    uow: UnitOfWork, *, company_ref: str | None, service_ref: str | None, start: datetime, end: datetime
) -> dict[str, Any]:
    """Accepted time entries starting in [start, end), with billable and non-billable hours."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    company_id, service_id = await _ids(repo, tenant, company_ref, service_ref)
    rows = await repo.records(
        tenant,
        "time",
        status="accepted",
        company_id=company_id,
        service_id=service_id,
        start=start,
        end=end,
        limit=100_000,
    )
    billable = sum((r["hours"] for r in rows if r["billable"]), Decimal(0))
    other = sum((r["hours"] for r in rows if not r["billable"]), Decimal(0))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "billable_hours": format_decimal(billable),
        "non_billable_hours": format_decimal(other),
        "entries": [row_json(r) for r in rows],
    }


async def approval_rules(uow: UnitOfWork) -> dict[str, Any]:
    """The approval rules metering holds records against: its copy of the tenant's last published rule set."""
    held = await MeteringRepository(uow.conn).approval_rules(uow.require_tenant())
    if held is None:
        raise NotFound("metering has not received this tenant's approval rules yet")
    return held


async def list_records(
    uow: UnitOfWork, *, status: str | None = None, no_active_plan: bool | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Usage and time records of the tenant with that status (unmapped, held, rejected …), with reasons."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    out = []
    for record_type in ("usage", "time"):
        rows = await repo.records(tenant, record_type, status=status, no_active_plan=no_active_plan, limit=limit)
        out += [{"record_type": record_type} | row_json(r) for r in rows]
    return out


async def list_dead_letters(uow: UnitOfWork, *, include_redriven: bool, limit: int) -> list[dict[str, Any]]:
    rows = await MeteringRepository(uow.conn).dead_letters(
        uow.require_tenant(), include_redriven=include_redriven, limit=limit
    )
    return [row_json(r) for r in rows]


# -- the billing clock --------------------------------------------------------------------------------
async def project_clock(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """Keep the tenant's billing time: the accepted window is around it (domain/window.py)."""
    latest = max(i.body.now for i in items)
    await MeteringRepository(uow.conn).save_clock(uow.require_tenant(), latest)
    return []


# -- catalog ------------------------------------------------------------------------------------------
async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    """Keep the read model of tenants, clients, services, assignments and technicians that metering maps
    records with, then decide again the records that were waiting for it."""
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
    repo = MeteringRepository(uow.conn)
    tenant = uow.require_tenant()
    for item in items:
        event, state = item.body, item.body.state
        if isinstance(state, TenantState):
            if await repo.save_tenant(state.tenant_id, event.version, state.timezone, state.mode.value):
                await repo.clear_no_plan_covered(state.tenant_id)  # days judged before the time zone was known
        elif isinstance(state, CompanyState):
            await repo.save_company(state, event.version)
        elif isinstance(state, ServiceState):
            await repo.save_service(state, event.version)
        elif isinstance(state, UserState):
            await repo.save_user(state, event.version)
        elif (
            isinstance(state, AssignmentState)
            and await repo.save_assignment(state, event.version, deleted=event.deleted)
            and not event.deleted
        ):
            cleared = await repo.clear_no_plan(tenant, state)
            if cleared:
                await audit.record(
                    uow,
                    actor="kafka:catalog",
                    action="plan_found",
                    entity_type="assignment",
                    entity_id=state.assignment_id,
                    at=datetime.now(UTC),
                    after={"company_id": str(state.company_id), "records_no_longer_without_plan": cleared},
                )
    await remap_unmapped(uow, repo, actor="kafka:catalog", now=datetime.now(UTC))
    return []


async def remap_unmapped(uow: UnitOfWork, repo: MeteringRepository, *, actor: str, now: datetime) -> int:
    """Decide the tenant's unmapped records again; those that now map are accepted (and published) or held."""
    tenant = uow.require_tenant()
    moved = 0
    for record_type in ("usage", "time"):
        waiting = [MODEL[record_type].model_validate(doc) for doc in await repo.unmapped(tenant, record_type)]
        if not waiting:
            continue
        ctx = await Context.load(repo, tenant, waiting, now=now)
        decided = [(r, ctx.decide(r)) for r in waiting]
        changed = [(r, d) for r, d in decided if d.verdict is not Verdict.UNMAPPED]
        if not changed:
            continue
        no_plan = _no_plan(ctx, changed)
        rows = []
        for r, d in changed:
            rid = _record_id(r)
            if d.verdict is Verdict.REJECTED:  # e.g. the service's unit is not the record's: never billable
                d = Decision(Verdict.REJECTED, d.reason, d.field, d.code)
            rows.append(_raw(r, d, rid, rid in no_plan, fingerprint(r)))
            _publish_effects(uow, r, d, now, actor=actor)
            SETTLED.labels(record_type, d.verdict.value).inc()
        await repo.settle(tenant, record_type, rows)
        await audit.record(
            uow,
            actor=actor,
            action=f"{record_type}_mapped",
            entity_type=f"{record_type}_batch",
            entity_id=uuid.uuid4(),
            at=now,
            after={s: [str(x.record_id) for x in rows if x.status == s] for s in ("accepted", "held", "rejected")},
        )
        moved += len(rows)
    return moved


# -- approvals ----------------------------------------------------------------------------------------
async def keep_rule_sets(uow: UnitOfWork, items: Sequence[Parsed[ApprovalRuleSet]]) -> Rejections[ApprovalRuleSet]:
    """Hold each tenant's approval rules as last published (a newer version replaces; older or repeated
    versions change nothing). Records already stored are not re-evaluated: rules apply from the next record."""
    repo = MeteringRepository(uow.conn)
    for item in items:
        replaced = await repo.replace_approval_rules(item.body)
        log.info("approval_rules_received", version=item.body.version, replaced=replaced)
        if replaced:
            await audit.record(
                uow,
                actor="kafka:rules",
                action="approval_rules_replaced",
                entity_type="approval_rules",
                entity_id=item.body.tenant_id,
                at=item.body.occurred_at,
                after={"version": item.body.version, "rules": len(item.body.rules)},
            )
    return []


RECORD_TYPE = {ApprovalItemType.TIME_ENTRY: "time", ApprovalItemType.USAGE_REPORT: "usage"}


async def apply_decisions(uow: UnitOfWork, items: Sequence[Parsed[ApprovalDecision]]) -> Rejections[ApprovalDecision]:
    """A final decision on a held record: approved → accepted and published to rating (with approved_by);
    rejected → recorded as rejected, never published. Decisions for other item types, unknown records or
    records no longer held change nothing."""
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    for item in items:
        decision = item.body
        record_type = RECORD_TYPE.get(decision.item_type)
        if record_type is None or not decision.final:
            continue
        row = await repo.held(tenant, record_type, decision.request_id)
        if row is None or str(row["record_id"]) != decision.item_id:
            log.info("decision_not_applied", item_id=decision.item_id, request_id=str(decision.request_id))
            continue
        approved = decision.outcome is ApprovalOutcome.APPROVED
        status = "accepted" if approved else "rejected"
        reason = (
            None
            if approved
            else f"rejected by {decision.decided_by}" + (f": {decision.reason}" if decision.reason else "")
        )
        accepted = (
            await _released(repo, tenant, record_type, row, approved_by=decision.decided_by) if approved else None
        )
        if approved and accepted is None:  # its client or service left the catalog meanwhile: wait for it
            status, reason = "unmapped", "approved, but its client or service is no longer in the catalog"
        await repo.decide_held(tenant, record_type, row, status=status, reason=reason, decided_by=decision.decided_by)
        if accepted is not None:
            uow.publish(
                topic=topics.METERING_ACCEPTED.name,
                key=accepted.key(),
                message=accepted,
                message_id=accepted.record_id,
            )
        SETTLED.labels(record_type, status).inc()
        await audit.record(
            uow,
            actor=decision.decided_by,
            action=f"approval_{decision.outcome.value}",
            entity_type=record_type,
            entity_id=row["record_id"],
            at=decision.decided_at,
            before={"status": "held", "request_id": str(decision.request_id)},
            after={"status": status, "reason": reason, "decision_id": str(decision.decision_id)},
        )
    return []


async def _released(
    repo: MeteringRepository, tenant: UUID, record_type: str, row: Any, *, approved_by: str
) -> AcceptedUsage | AcceptedTime | None:
    """The accepted message of an approved record: decided again against the catalog, without the rules
    (it has been approved), so it names the client and service exactly as an unheld record would."""
    record = MODEL[record_type].model_validate(row["payload"])
    ctx = await Context.load(repo, tenant, [record], now=datetime.now(UTC))
    ctx.rules = None
    ctx.window = None  # it was inside the window when it was held
    accepted = ctx.decide(record).accepted
    return accepted.model_copy(update={"approved_by": approved_by}) if accepted is not None else None
