"""Metering's message handlers and HTTP routes: read input, call a use case in a unit of work, answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from services.metering import use_cases
from services.metering.domain.validation import Malformed, read_record
from shared.auth import Permission, Principal, requires, requires_any
from shared.contracts.approvals import ApprovalDecision, ApprovalRuleSet
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.time_entries import TimeEntry
from shared.contracts.usage import UsageRecord
from shared.db.uow import NIL_TENANT, unit_of_work
from shared.faults import INGEST_AFTER_COMMIT_BEFORE_ANSWER, fault_point
from shared.messaging.consumer import TRANSIENT_ERRORS, BatchConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

MAX_BATCH = 1000


# -- messages -------------------------------------------------------------------------------------------
def parse_usage(env: Envelope) -> tuple[UUID, UsageRecord | Malformed]:
    """Never raises: an unreadable record is handed on as `Malformed`, so metering stores its dead letter
    (under the tenant it names, when readable) for the API, and the kernel publishes it on the .dlq."""
    body = read_record(env.value, UsageRecord, "event_id")
    return _tenant_of(body), body


def parse_time(env: Envelope) -> tuple[UUID, TimeEntry | Malformed]:
    body = read_record(env.value, TimeEntry, "entry_id")
    return _tenant_of(body), body


def _tenant_of(body: UsageRecord | TimeEntry | Malformed) -> UUID:
    return body.tenant_id or NIL_TENANT


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


def parse_rule_set(env: Envelope) -> tuple[UUID, ApprovalRuleSet]:
    return parse_contract(env, ApprovalRuleSet)


def parse_decision(env: Envelope) -> tuple[UUID, ApprovalDecision]:
    return parse_contract(env, ApprovalDecision)


USAGE = BatchConsumer(service="metering", consumer="usage", parse=parse_usage, apply=use_cases.accept_usage)
TIME = BatchConsumer(service="metering", consumer="time", parse=parse_time, apply=use_cases.accept_time)
CATALOG = BatchConsumer(service="metering", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
CLOCK = BatchConsumer(service="metering", consumer="clock", parse=parse_tick, apply=use_cases.project_clock)
RULES = BatchConsumer(service="metering", consumer="rules", parse=parse_rule_set, apply=use_cases.keep_rule_sets)
DECISIONS = BatchConsumer(
    service="metering", consumer="decisions", parse=parse_decision, apply=use_cases.apply_decisions
)


# -- HTTP -----------------------------------------------------------------------------------------------
router = APIRouter(prefix="/v1", tags=["metering"])
RecordType = Literal["usage", "time"]
Ingest = Annotated[Principal, Depends(requires(Permission.USAGE_INGEST))]
IngestTime = Annotated[Principal, Depends(requires_any(Permission.USAGE_INGEST, Permission.TIME_REPORT))]
Reader = Annotated[Principal, Depends(requires(Permission.USAGE_READ))]

BATCH_EXAMPLE = {
    "records": [
        {
            "event_id": "ninja-7f3a9c21",
            "source": "ninjaone",
            "tenant_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "company_ref": "ACME-001",
            "service_ref": "managed-device",
            "quantity": "42",
            "unit": "device",
            "occurred_at": "2026-01-31T09:00:00Z",
        }
    ]
}


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool  # type: ignore[no-any-return]


def _records(body: dict[str, Any]) -> list[Any]:
    records = body.get("records")
    if not isinstance(records, list):
        raise HTTPException(422, detail="records: a JSON array of records is required")
    if not records:
        raise HTTPException(422, detail="records: at least one record is required")
    if len(records) > MAX_BATCH:
        raise HTTPException(413, detail=f"records: at most {MAX_BATCH} records per request, got {len(records)}")
    return records


async def _ingest(request: Request, principal: Principal, record_type: str, body: dict[str, Any]) -> dict[str, Any]:
    records = _records(body)
    for attempt in range(3):  # a deadlock or serialization failure retries the whole (atomic) request
        try:
            async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
                outcomes = await use_cases.ingest_http(
                    uow,
                    record_type,
                    records,
                    actor=principal.actor,
                    now=datetime.now(UTC),
                    # who may only report time (a technician) reports their own: issue 17
                    own_time_of=None if principal.may(Permission.USAGE_INGEST) else principal.user_id,
                )
            break
        except TRANSIENT_ERRORS:
            if attempt == 2:
                raise
    fault_point(INGEST_AFTER_COMMIT_BEFORE_ANSWER)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.answer] = counts.get(o.answer, 0) + 1
    return {"results": [o.as_json() for o in outcomes], "counts": counts}


@router.post("/usage:batch", summary="Ingest up to 1,000 usage records (billing.usage.v1 contract)")
async def ingest_usage(
    request: Request, principal: Ingest, body: Annotated[dict[str, Any], Body(examples=[BATCH_EXAMPLE])]
) -> dict[str, Any]:
    """One transaction; one answer per record, in order: ``accepted`` (with ``state`` accepted, unmapped or
    held), ``duplicate``, ``conflict`` or ``rejected`` (with ``field``, ``code`` and ``reason``)."""
    return await _ingest(request, principal, "usage", body)


@router.post("/time-entries:batch", summary="Ingest up to 1,000 time entries (billing.time-entries.v1 contract)")
async def ingest_time(request: Request, principal: IngestTime, body: dict[str, Any]) -> dict[str, Any]:
    """As ``/v1/usage:batch``, for time entries."""
    return await _ingest(request, principal, "time", body)


@router.get("/ingestion/{record_type}/{source}/{external_id}", summary="Ingestion status of one record")
async def ingestion_status(
    request: Request, principal: Reader, record_type: RecordType, source: str, external_id: str
) -> dict[str, Any]:
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        try:
            return await use_cases.ingestion_status(uow, record_type, source, external_id)
        except use_cases.NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc


def _period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, detail="start/end: timestamps need an offset")
    if end <= start:
        raise HTTPException(422, detail="end: must be after start")


@router.get("/usage", summary="Accepted usage in [start, end), by client and service")
async def usage(
    request: Request,
    principal: Reader,
    start: datetime,
    end: datetime,
    company_ref: str | None = None,
    service_ref: str | None = None,
) -> dict[str, Any]:
    _period(start, end)
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        try:
            return await use_cases.usage_in_period(
                uow, company_ref=company_ref, service_ref=service_ref, start=start, end=end
            )
        except use_cases.NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc


@router.get("/time-entries", summary="Accepted time entries starting in [start, end)")
async def time_entries(
    request: Request,
    principal: Reader,
    start: datetime,
    end: datetime,
    company_ref: str | None = None,
    service_ref: str | None = None,
) -> dict[str, Any]:
    _period(start, end)
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        try:
            return await use_cases.time_in_period(
                uow, company_ref=company_ref, service_ref=service_ref, start=start, end=end
            )
        except use_cases.NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc


async def _list(request: Request, principal: Principal, **kwargs: Any) -> dict[str, Any]:
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        return {"records": await use_cases.list_records(uow, **kwargs)}


@router.get("/approval-rules", summary="The approval rules metering applies to incoming records (its copy)")
async def approval_rules(request: Request, principal: Reader) -> dict[str, Any]:
    """The rule set (with its version) last received on approvals.rules.v1; 404 until one has arrived. A
    client that has just changed a rule in approvals can wait here until metering applies that version."""
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        try:
            return await use_cases.approval_rules(uow)
        except use_cases.NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc


@router.get("/unmapped", summary="Records waiting for their tenant, client or service in the catalog")
async def unmapped(request: Request, principal: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    return await _list(request, principal, status="unmapped", limit=limit)


@router.get("/held", summary="Records held for an approval decision")
async def held(request: Request, principal: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    return await _list(request, principal, status="held", limit=limit)


@router.get("/rejected", summary="Records an approver rejected (never billed)")
async def rejected(request: Request, principal: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    return await _list(request, principal, status="rejected", limit=limit)


@router.get("/without-plan", summary="Accepted records of a client with no plan in force on their date")
async def without_plan(request: Request, principal: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    return await _list(request, principal, no_active_plan=True, limit=limit)


@router.get("/dead-letters", summary="Records metering could not take, with reasons")
async def dead_letters(
    request: Request,
    principal: Reader,
    include_redriven: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        return {"dead_letters": await use_cases.list_dead_letters(uow, include_redriven=include_redriven, limit=limit)}


@router.post("/dead-letters/{dead_letter_id}/redrive", summary="Run a dead-lettered record through ingestion again")
async def redrive_dead_letter(request: Request, principal: Ingest, dead_letter_id: UUID) -> dict[str, Any]:
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        try:
            outcome = await use_cases.redrive_dead_letter(
                uow, dead_letter_id, actor=principal.actor, now=datetime.now(UTC)
            )
        except use_cases.NotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc
    return outcome.as_json()


@router.post("/unmapped/redrive", summary="Decide every unmapped record again now")
async def redrive_unmapped(request: Request, principal: Ingest) -> dict[str, Any]:
    async with unit_of_work(_pool(request), tenant_id=principal.tenant_id) as uow:
        settled = await use_cases.redrive_unmapped(uow, actor=principal.actor, now=datetime.now(UTC))
    return {"settled": settled}
